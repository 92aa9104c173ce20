"""Regenerating every notebook headless, the documentation's generated blocks, and the manifest.

`reproduce(profile)` first reads the committed runs of notebooks 04-06 and 09 (`asclib.store`;
those missing are trained side by side, `runs.prepare`) and trains a sample of them again to
check them (`check_committed`), then executes `notebooks/NN_*.ipynb` in order with papermill, passing the
parameters `profile`, `data_dir` and `seed` to each notebook's `parameters` cell. For the
`quick` profile the executed notebooks replace the committed ones (their outputs are what
readers see on GitHub); for any other profile, and for a smoke run (training shortened by
`config.reduce_training`), they are written to the results folder's `notebooks/`. A notebook
that fails leaves its previous version untouched. The results folder is `results/<profile>/`
(a smoke run's `results/<profile>-smoke/`); its `manifest.json` records the code version, the
parameters, a smoke run's reductions, the run time of each notebook and a hash of each file in it.

What the registries hold (the augmentations, the networks, Table 3's rows, the devices) is
rendered from them by `registry_table`, into the `<!-- registry: NAME -->` blocks of the docs
(`update_registries`; `update_readme` fills them too) and into notebooks 03 and 09, so that no
count or list of a registry is typed by hand (docs/library.md, "The registries").
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import re
import time
from pathlib import Path

import pandas as pd

from asclib import ablation, architectures, augment, kernels, runs, synth, train
from asclib.provenance import cpu_model, git_commit
from asclib.config import PROJECT_ROOT, paths, training_overrides
from asclib.data import (DEVELOPMENT_DEVICES, DEVICES, GROUP_OF, MINOR_TRAINING_DEVICES, check_dataset,
                         exclude_files, load_index)
from asclib.files import atomic_path
from asclib.result_files import NOTEBOOK_DIR, markdown_table, notebook_of
from asclib.profiles import get_profile

MANIFEST = "manifest.json"


README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"  # the documentation beside the README, whose results and registry blocks are filled too
# A README block that the reproduce command fills: the tables of results/<profile>/ matching
# the pattern (CSV files, rows concatenated in name order), rendered as Markdown.
_README_BLOCK = re.compile(r"(<!-- results: (?P<pattern>[^ ]+) -->\n).*?(<!-- /results -->)", re.S)


def update_readme(profile: str = "quick", readme: Path = README) -> list[str]:
    """Rewrite every `<!-- results: PATTERN -->` ... `<!-- /results -->` block of `readme` from
    the CSV tables of `results/<profile>/` matching PATTERN, so that the README's numbers are
    always the committed results', followed by a line naming the notebooks that make them (a
    result file's name starts with its notebook's number), and every `<!-- registry: NAME -->`
    block from the registries (`fill_registries`). Returns the patterns and registry names
    filled; a pattern matching no file, or a file of no notebook, is an error (and the README is
    left as it was)."""
    results = paths(profile).results

    def fill(match: re.Match) -> str:
        files = sorted(results.glob(match["pattern"]))
        if not files:
            raise FileNotFoundError(f"{readme}: the results block {match['pattern']!r} matches no file "
                                    f"under {results}; run the notebook that writes it first")
        table = pd.concat([pd.read_csv(file, index_col=0) for file in files])
        makers = " and ".join(f"`notebooks/{name}`" for name in dict.fromkeys(notebook_of(file).name for file in files))
        caption = f"\n*From `results/{profile}/{match['pattern']}`, made by {makers}.*\n"
        return match[1] + markdown_table(table) + caption + match[3]

    text = readme.read_text()
    updated = fill_registries(_README_BLOCK.sub(fill, text), readme)
    if updated != text:
        with atomic_path(readme) as temporary:
            temporary.write_text(updated)
    return [match["pattern"] for match in _README_BLOCK.finditer(text)] + \
        [match["name"] for match in _REGISTRY_BLOCK.finditer(text)]


# --------------------------------------------------------------------------------------------
# What the registries hold, as tables (module docstring)

# A block of the docs filled from a registry: `registry_table(NAME)` rendered as Markdown.
_REGISTRY_BLOCK = re.compile(r"(<!-- registry: (?P<name>[\w-]+) -->\n).*?(<!-- /registry -->)", re.S)
_YES_NO = {True: "yes", False: "no"}


def _listed(names) -> str:
    return ", ".join(names) or "–"


def _augmentations() -> pd.DataFrame:
    """`augment.METHODS`: each method's kind, whether the paper has it (its full recipe in Table 3
    does), what it acts on, the networks whose recipe has it and the first row of Table 3 that adds it."""
    rows = ablation.rows()
    listed = []
    for name, method in augment.METHODS.items():
        acts_on = "batches" if method.kind == "online" else \
            ("device-A" if method.device_a_only else "all") + " training clips" + \
            (" (copies, one read in place of the clip)" if method.substitutes else "")
        listed.append({"method": name, "kind": method.kind,
                       "from": "the paper" if name in ablation.PAPER_RECIPE else "after the paper",
                       "acts on": acts_on,
                       "networks' recipes": _listed([entry.title for entry in architectures.REGISTRY.values()
                                                     if name in entry.augmentations]),
                       "first row of Table 3": next((label for label, recipe in rows.items() if name in recipe), "–"),
                       "what": method.description})
    return pd.DataFrame(listed).set_index("method")


def _networks() -> pd.DataFrame:
    """`architectures.REGISTRY`: each network's title, class, class counts, notebook, recipe and CAM."""
    return pd.DataFrame([{"network": name, "title": entry.title, "class": entry.model_class.__name__,
                          "classes": _listed(map(str, entry.trained_for)), "notebook": entry.notebook,
                          "recipe": _listed(entry.augmentations), "class activation map": entry.cam}
                         for name, entry in architectures.REGISTRY.items()]).set_index("network")


def _table_3_rows() -> pd.DataFrame:
    """`ablation.rows()`: each row of Table 3, whose it is, the row it is compared with or built on
    (`ablation.steps`), what it changes there, and its recipe."""
    rows, listed, previous = ablation.rows(), [], None
    for label, recipe in rows.items():
        if label in ablation.ROWS:
            source, base, previous = "the paper", previous, label
        else:
            source, base = ("beyond the paper" if label in ablation.BEYOND_PAPER else "notebook 04's recipe"), \
                ablation.PAPER_ROW
        before = rows[base] if base else ()
        change = [f"+{name}" for name in recipe if name not in before] + \
            [f"-{name}" for name in before if name not in recipe]
        listed.append({"row": label, "from": source, "differs from": base or "–",
                       "change": _listed(change) if base else "–", "recipe": _listed(recipe)})
    return pd.DataFrame(listed).set_index("row")


def _devices() -> pd.DataFrame:
    """`data.DEVICES`: each device's group, whether it records training clips and whether the
    "overall" accuracy counts it (the development set's devices)."""
    return pd.DataFrame([{"device": device, "group": GROUP_OF[device],
                          "in training": _YES_NO[device == "a" or device in MINOR_TRAINING_DEVICES],
                          "in overall": _YES_NO[device in DEVELOPMENT_DEVICES]}
                         for device in DEVICES]).set_index("device")


REGISTRIES = {  # block name -> (the table, where it comes from)
    "augmentations": (_augmentations, "`augment.METHODS`"),
    "networks": (_networks, "`architectures.REGISTRY`"),
    "table-3-rows": (_table_3_rows, "`ablation.rows()`"),
    "devices": (_devices, "`data.DEVICES`"),
}


def registry_table(name: str) -> pd.DataFrame:
    """What a registry holds, one row per entry, in registration order: `name` one of
    `REGISTRIES` (notebooks 03 and 09; docs/library.md, "The registries")."""
    if name not in REGISTRIES:
        raise ValueError(f"unknown registry {name!r}: expected one of {tuple(REGISTRIES)}")
    return REGISTRIES[name][0]()


def fill_registries(text: str, document: Path | str = "the text") -> str:
    """`text` with every `<!-- registry: NAME -->` ... `<!-- /registry -->` block rewritten from
    `registry_table(NAME)`, with a line naming its source."""
    def fill(match: re.Match) -> str:
        if match["name"] not in REGISTRIES:
            raise ValueError(f"{document}: unknown registry block {match['name']!r}; expected one of {tuple(REGISTRIES)}")
        caption = f"\n*From {REGISTRIES[match['name']][1]}, by `report.registry_table(\"{match['name']}\")`.*\n"
        return match[1] + markdown_table(registry_table(match["name"])) + caption + match[3]

    return _REGISTRY_BLOCK.sub(fill, text)


def update_registries(documents=None) -> list[Path]:
    """Fill the registry blocks of `documents` (default: the README and docs/*.md), which need no
    training, and leave their results blocks as they are; returns the documents changed. After
    registering a network, an augmentation, a Table 3 row or a device:
    `python -c "from asclib import report; report.update_registries()"`."""
    changed = []
    for document in documents or [README, *sorted(DOCS.glob("*.md"))]:
        text = Path(document).read_text()
        updated = fill_registries(text, document)
        if updated != text:
            with atomic_path(Path(document)) as temporary:
                temporary.write_text(updated)
            changed.append(Path(document))
    return changed


def notebooks() -> list[Path]:
    """The numbered notebooks, in the order they run."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def declared_parameters(notebook: Path) -> set[str]:
    """The names assigned in `notebook`'s cell tagged `parameters`."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


ABLATION_NOTEBOOKS = ("09_ablation", "12_unseen_devices")  # the notebooks that read the ablation's runs


def trains_ablation(only: list[str] | None) -> bool:
    """Whether a reproduce run of the notebooks `only` (name prefixes; None: all) needs the ablation's runs."""
    return not only or any(nb.startswith(o) for nb in ABLATION_NOTEBOOKS for o in only)


def reproduce(profile: str = "quick", data_dir: str | None = None, seed: int = 0,
              only: list[str] | None = None, extra: dict | None = None, skip_bad: bool = False,
              launch_settings=None, retrain_all: bool = False) -> Path:
    """Execute the notebooks (all, or those whose names start with an entry of `only`).

    Every notebook gets `profile`, `data_dir` and `seed`; each entry of `extra` goes to the
    notebooks whose `parameters` cell declares it, and a name that no selected notebook
    declares is refused before anything runs (papermill itself would only warn).
    The dataset is checked first (`data.check_dataset`): unusable clips stop the run before any
    long work, unless `skip_bad`, which leaves them out of everything the run loads
    (`data.exclude_files`; they are listed in `results/<profile>/excluded_files.csv`).
    A smoke run's reductions (`config.reduce_training`, in force before the call) reach every
    notebook and training through the environment and are recorded in the manifest.
    `launch_settings(dataset folder)` gives how the trainings are launched (`launch.settings`;
    None: forked processes, `runs.prepare`). The committed runs are read, those missing trained,
    and a sample of them trained again and compared (`check_committed`; every run to its end
    with `retrain_all`).
    """
    prof = get_profile(profile)  # resolved once here (an entry point); the notebooks resolve their own
    name = prof.name
    results = paths(prof).results
    in_place = name == "quick" and not training_overrides()  # the committed notebooks and README
    selected = [nb for nb in notebooks() if not only or any(nb.name.startswith(o) for o in only)]
    if only and not selected:
        raise ValueError(f"no notebook in {NOTEBOOK_DIR} starts with any of {only}")
    declared = {notebook: declared_parameters(notebook) for notebook in selected}
    unknown = sorted(set(extra or {}) - set().union(*declared.values()))
    if unknown:
        known = sorted(set().union(*declared.values()) - {"profile", "data_dir", "seed"})
        raise ValueError(f"unknown notebook parameter(s) {', '.join(unknown)}: the selected notebooks "
                         f"declare {', '.join(known) or 'nothing'} besides profile, data_dir and seed")
    given = Path(data_dir) if data_dir is not None else synth.dataset(prof, None, seed)  # before any join
    exclude_files(check_dataset(given, prof, skip_bad), results / "excluded_files.csv")
    parameters = {"profile": name, "data_dir": data_dir, "seed": seed}
    commit = git_commit()  # before the run: executing the notebooks changes their outputs
    checked = {}
    trainers = {entry.notebook for entry in architectures.REGISTRY.values()} | set(ABLATION_NOTEBOOKS)
    if any(notebook.stem in trainers for notebook in selected):
        ablation_too = trains_ablation(only)
        print(f"the runs of notebooks 04-06{' and 09' if ablation_too else ''}: read from results/{name}/runs/, "
              "those missing trained first, side by side", flush=True)
        dataset = synth.dataset(prof, data_dir, seed)
        index = load_index(dataset, prof)
        runs.prepare(index, prof, seed, with_ablation=ablation_too,
                     settings=launch_settings(dataset) if launch_settings else None)
        if ablation_too:
            checked = check_committed(index, prof, seed, everything=retrain_all)
    timings = {}
    for number, notebook in enumerate(selected, start=1):
        target = notebook if in_place else results / "notebooks" / notebook.name
        print(f"[{number}/{len(selected)}] {notebook.name} ({name} profile)", flush=True)
        start = time.perf_counter()
        with atomic_path(target) as temporary:
            ours = {**parameters, **{k: v for k, v in (extra or {}).items() if k in declared[notebook]}}
            execute(notebook, temporary, ours)
        timings[notebook.name] = round(time.perf_counter() - start, 1)
        print(f"    done in {timings[notebook.name]:.1f} s", flush=True)
    if in_place:
        for document in [README, *sorted(DOCS.glob("*.md"))]:
            update_readme(name, document)
    return write_manifest(name, {**parameters, **(extra or {})}, timings, commit, checked)


def check_committed(index: pd.DataFrame, profile, seed: int = 0, count: int = 2, everything: bool = False) -> dict:
    """Say where the committed runs come from and train a sample of them again (`runs.check_sample`,
    chosen by this commit; with `everything`, every run to its end); a run that does not
    reproduce stops here with its row. Returns both for the manifest."""
    commit = git_commit().removesuffix("-dirty")
    origin, table = runs.check_sample(index, profile, commit, count, everything, seed)
    print(f"the committed runs: {origin}", flush=True)
    print(table.to_string(index=False), flush=True)
    failed = table[~table["passed"]]
    if not failed.empty:
        raise ValueError(f"{len(failed)} of {len(table)} committed runs did not train again the same: "
                         f"{', '.join(failed['run'])} (table above; docs/results.md, \"How the results are made and checked\")")
    return {"origin": origin, "sample": table.to_dict(orient="records")}


def execute(notebook: Path, target: Path, parameters: dict) -> None:
    """Run `notebook` with `parameters` (papermill) into `target`, then write the values that ran
    into its `parameters` cell in place of papermill's added cell (`fold_parameters`) and drop
    what changes from run to run (`_drop_run_metadata`)."""
    import nbformat
    import papermill

    papermill.execute_notebook(str(notebook), str(target), parameters=parameters, kernel_name="python3",
                               cwd=str(notebook.parent), progress_bar=True)
    executed = nbformat.read(target, as_version=4)
    fold_parameters(executed)
    _drop_run_metadata(executed)
    nbformat.write(executed, target)


def fold_parameters(notebook) -> None:
    """Move the values of papermill's `injected-parameters` cell into the `parameters` cell, each
    on its own line (comment kept), and delete the injected cell: a reader who edits the
    parameters cell of a committed notebook and runs it gets what they wrote, not the injected
    values again. A value the parameters cell does not assign is added at its end."""
    tagged = lambda tag: [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]
    injected, declared = tagged("injected-parameters"), tagged("parameters")
    if not injected:
        return
    if len(injected) > 1 or len(declared) != 1:
        raise ValueError(f"expected one 'parameters' and one 'injected-parameters' cell, found "
                         f"{len(declared)} and {len(injected)}")
    source = injected[0].source
    values = {node.targets[0].id: ast.get_source_segment(source, node.value)
              for node in ast.parse(source).body if isinstance(node, ast.Assign)}
    lines = declared[0].source.splitlines()
    for number, line in enumerate(lines):
        statement = _one_line_assignment(line)
        if statement is None or statement.targets[0].id not in values:
            continue
        name = statement.targets[0].id
        code, comment_at = f"{name} = {values.pop(name)}", line.find("#", statement.value.end_col_offset)
        lines[number] = code if comment_at < 0 else code.ljust(max(comment_at, len(code) + 1)) + line[comment_at:]
    lines += [f"{name} = {value}" for name, value in values.items()]
    declared[0].source = "\n".join(lines)
    notebook.cells.remove(injected[0])


def _one_line_assignment(line: str):
    """`name = value` on this one line as an ast.Assign, else None."""
    try:
        body = ast.parse(line).body
    except SyntaxError:  # a line of a longer statement
        return None
    simple = body and isinstance(body[0], ast.Assign) and isinstance(body[0].targets[0], ast.Name)
    return body[0] if simple else None


def _drop_run_metadata(notebook) -> None:
    """Remove what changes from run to run without changing a result (times, temporary paths,
    random cell and widget ids, progress-bar widgets that GitHub cannot show), so that
    re-running a notebook leaves a clean git diff when its results are the same."""
    run = notebook.metadata.get("papermill", {})
    for key in ("start_time", "end_time", "duration", "input_path", "output_path", "exception"):
        run.pop(key, None)
    notebook.metadata.pop("widgets", None)
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number:02d}"
        cell.metadata.get("papermill", {}).clear()
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs
                            if "application/vnd.jupyter.widget-view+json" not in output.get("data", {})]


def installed_packages() -> dict[str, str]:
    """Every installed distribution and its exact version, sorted by name."""
    from importlib import metadata

    versions = {dist.metadata["Name"].lower(): dist.version for dist in metadata.distributions()}
    return dict(sorted(versions.items()))


def write_manifest(profile: str, parameters: dict, timings: dict, commit: str, checked: dict | None = None) -> Path:
    """Write `results/<profile>/manifest.json`; notebooks not run this time keep their entry.
    `checked`: where the committed runs come from and the sample trained again (`check_committed`)."""
    import torch

    results = paths(profile).results
    results.mkdir(parents=True, exist_ok=True)
    path = results / MANIFEST
    previous = json.loads(path.read_text())["notebook_seconds"] if path.is_file() else {}
    files = {
        str(file.relative_to(results)): hashlib.sha256(file.read_bytes()).hexdigest()[:16]
        for file in sorted(results.rglob("*")) if file.is_file() and file.name != MANIFEST
    }
    manifest = {
        "profile": profile,
        "git_commit": commit,
        "parameters": parameters,
        # a smoke run's shortened training (config.reduce_training); {} for the profile's recipe
        "training_overrides": training_overrides(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_cores": len(os.sched_getaffinity(0)),
        # the widest vector instructions the CPU has (their speed differs much; kernels.py caps the code paths)
        "cpu_avx512": "avx512f" in kernels.cpu_flags(),
        # the kernels torch picked (e.g. AVX512 or AVX2): they decide the last bits of every
        # float, which a short training run amplifies (docs/performance.md, "How far results move between machines")
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "training_threads": train.TRAIN_THREADS,
        "cpu_kernel_caps": kernels.settings(),
        "packages": installed_packages(),
        "committed_runs": checked or {},
        "notebook_seconds": {**previous, **timings},
        "files": files,
    }
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
