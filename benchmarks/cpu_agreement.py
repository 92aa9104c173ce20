"""Benchmark: do the quick tables, and what they conclude, hold on another CPU (issue 17, item 3)?

Prints numbers and writes a CSV; asserts nothing (tests/test_pins.py is the test). Two ways:

    .venv/bin/python benchmarks/cpu_agreement.py --committed
        compares the tables computed from the runs under `ASC_RESULTS_DIR` (trained first if missing:
        the whole quick training) with the committed `results/quick/tables`; to train the committed
        runs again on this machine and compare them, `python -m asclib check --retrain-all` is the tool;
    .venv/bin/python benchmarks/cpu_agreement.py --env ATEN_CPU_CAPABILITY=default [--env ...] [--against committed]
        trains every quick run again in child processes with those variables (other kernels, as
        another processor would run them), in separate run folders, and compares their tables with
        those of this machine's default runs (or, `--against committed`, with the committed ones:
        do capped kernels on this processor give what another processor gave?).
    .venv/bin/python benchmarks/cpu_agreement.py --nudge [--against committed]
        trains every quick run again with one initial weight moved by one unit in the last place
        (ulp), in separate run folders: what a processor that rounds a single operation otherwise
        does to a run, with the same code paths everywhere else. Which cells and verdicts survive
        it is what a CPU that the caps do not make agree can expect.

For every system of Tables 1, 2 (and the one-stage rows of notebook 07) and 3: the overall
accuracy both ways and its difference; for every stated gain, the verdict both ways (a gain,
a loss, or not distinguishable: where its 95 % interval over seeds and clips lies). Written to
`benchmarks/results/cpu_agreement_<label>.csv` (`--label`), and the whole printed report, headed by
the command, the machine, the commit, the date and the time taken, to `..._<label>.txt`. Before the tables, run by run (the
15 of notebooks 04-06): are the evaluation scores the same to the last stored digit, and if not,
their largest difference and the share of clips whose predicted class changed.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asclib  # noqa: F401  first: it caps numpy's and torch's CPU code paths (asclib.kernels)
import pandas as pd
import torch

from asclib import architectures, config, data, kernels, profiles, provenance, runs, store, synth, tables

TRAIN_EVERYTHING = [sys.executable, "-m", "asclib", "train", "--profile", "quick"]


def fresh_tables() -> dict[str, pd.DataFrame]:
    """Tables 1-3 from the committed runs under the current `ASC_RESULTS_DIR` (`asclib.store`;
    trained if missing, into `ASC_RUNS_DIR`)."""
    prof = profiles.get_profile("quick")
    return tables.paper_tables(data.load_index(synth.dataset(prof), prof), prof)


def fresh_predictions() -> dict[str, pd.DataFrame]:
    """The evaluation predictions of the committed runs of notebooks 04-06 under the current
    `ASC_RESULTS_DIR` (trained if missing), named as in `results/quick/predictions`."""
    prof = profiles.get_profile("quick")
    index = data.load_index(synth.dataset(prof), prof)
    return {f"{name}-{n}c-seed{seed}": table for n in (10, 3)
            for seed, by_model in store.seed_predictions(index, prof, n).items()
            for name, table in by_model.items()}


COMMITTED = config.PROJECT_ROOT / "results" / "quick"


def committed_predictions(results: Path = COMMITTED) -> dict[str, pd.DataFrame]:
    folder = results / "predictions"
    # files are named "<notebook number>_<model>-<classes>c-seed<k>.csv"; the runs without the number
    return {path.stem.split("_", 1)[1]: pd.read_csv(path) for path in sorted(folder.glob("*.csv"))}


def write_fresh(folder: Path) -> None:
    """Write this process's `fresh_tables` and `fresh_predictions` under `folder` in the layout
    of the committed results, so that another process reads them (`--env`: the caps are part of
    every run key, so only a process started with the other variables finds their runs)."""
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    (folder / "predictions").mkdir(parents=True, exist_ok=True)
    for name, table in fresh_tables().items():
        table.to_csv(folder / "tables" / f"{name}.csv")
    for run, table in fresh_predictions().items():
        table.to_csv(folder / "predictions" / f"00_{run}.csv", index=False)


def nudge_initial_weights() -> None:
    """Make every model built from now on (in this process and in the workers it forks) start
    with the first element of its first parameter moved up by one ulp."""
    build = architectures.build

    def nudged(*args, **kwargs):
        model = build(*args, **kwargs)
        with torch.no_grad():
            first = next(model.parameters()).view(-1)
            first[0] = torch.nextafter(first[0], torch.tensor(float("inf")))
        return model

    architectures.build = nudged


def train_nudged() -> None:
    """Train every quick run (notebooks 04-06 and 09) with `nudge_initial_weights` in force."""
    nudge_initial_weights()
    prof = profiles.get_profile("quick")
    runs.prepare(data.load_index(synth.dataset(prof), prof), prof)


def compare_predictions(first: dict[str, pd.DataFrame], second: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per run: are its scores equal to the stored digit, their largest absolute
    difference, and the share (%) of clips whose predicted class differs."""
    rows = []
    for run, old in first.items():
        new = second[run].set_index("filename").loc[old["filename"]].reset_index()
        classes = [c for c in old.columns if c not in ("filename", "device", "label")]
        before, after = old[classes].to_numpy(), new[classes].to_numpy()
        difference = before - after
        changed = (before.argmax(1) != after.argmax(1)).mean()
        rows.append({"run": run, "identical": bool((difference == 0).all()),
                     "largest score difference": abs(difference).max(), "predicted class changed %": round(100 * changed, 2)})
    return pd.DataFrame(rows).set_index("run")


def between_seeds(predictions: dict[str, pd.DataFrame]) -> pd.Series:
    """The yardstick for `compare_predictions`' last column: per model, the share (%) of clips
    whose predicted class differs between two of its training seeds, smallest to largest pair."""
    models = sorted({run.rsplit("-seed", 1)[0] for run in predictions})
    spans = {}
    for model in models:
        seeds = [table for run, table in predictions.items() if run.rsplit("-seed", 1)[0] == model]
        shares = [compare_predictions({"pair": first}, {"pair": second}).loc["pair", "predicted class changed %"]
                  for k, first in enumerate(seeds) for second in seeds[k + 1:]]
        spans[model] = f"{min(shares):.1f}-{max(shares):.1f}"
    return pd.Series(spans, name="predicted class differs between two seeds %").rename_axis("model")


def committed_tables(results: Path = COMMITTED) -> dict[str, pd.DataFrame]:
    folder = results / "tables"
    return {name: pd.read_csv(folder / f"{name}.csv", index_col=0)
            for name in ("07_table1", "07_table2_one_stage", "08_table2", "09_table3")}


def compare(first: dict[str, pd.DataFrame], second: dict[str, pd.DataFrame], names: tuple[str, str]) -> pd.DataFrame:
    """One row per (table, system): overall accuracy both ways, their difference, and its stated
    gain with its interval and verdict both ways (empty where the row states none)."""
    rows = []
    for table, old in first.items():
        new = second[table]
        for system in [s for s in old.index if not str(s).startswith("paper")]:
            row = {"table": table, "system": system, names[0]: old.loc[system, "overall"],
                   names[1]: new.loc[system, "overall"]}
            row["difference"] = round(row[names[1]] - row[names[0]], 2)
            if "gain low" in old and pd.notna(old.loc[system, "gain low"]):
                for name, source in zip(names, (old, new)):
                    gain, low, high = source.loc[system, ["gain", "gain low", "gain high"]]
                    row[f"gain {name}"] = f"{gain:+.1f} [{low:.1f}, {high:.1f}]"
                    row[f"verdict {name}"] = tables.verdict(low, high)
            rows.append(row)
    out = pd.DataFrame(rows).set_index(["table", "system"])
    stated = out[f"verdict {names[0]}"].notna()
    out["same verdict"] = (out[f"verdict {names[0]}"] == out[f"verdict {names[1]}"]).where(stated)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    way = parser.add_mutually_exclusive_group(required=True)
    way.add_argument("--committed", action="store_true", help="this machine's runs against the committed tables")
    way.add_argument("--env", action="append", metavar="NAME=VALUE", help="train again with this variable set")
    way.add_argument("--nudge", action="store_true",
                     help="train again with one initial weight of every run moved by one ulp")
    way.add_argument("--write-to", type=Path, metavar="FOLDER",
                     help="write this process's tables and predictions to FOLDER (what --env runs in its child)")
    parser.add_argument("--nudged", action="store_true", help=argparse.SUPPRESS)  # with --write-to: train nudged first
    parser.add_argument("--against", choices=("default", "committed"), default="default",
                        help="with --env or --nudge: compare with this machine's default runs or with the committed results")
    parser.add_argument("--keep-runs", type=Path, metavar="FOLDER",
                        help="with --env or --nudge: train the second runs in FOLDER and keep them (default: a temporary folder)")
    parser.add_argument("--label", default=None, help="name of the CSV (default: from the comparison)")
    parser.add_argument("--results", type=Path, default=COMMITTED,
                        help="the committed results to compare with (default results/quick; an earlier commit's: "
                             "git archive COMMIT results/quick | tar -x -C FOLDER, then FOLDER/results/quick)")
    args = parser.parse_args()
    started = time.time()
    machine = (f"{provenance.cpu_model()} ({platform.machine()}, AVX-512 {'present' if 'avx512f' in kernels.cpu_flags() else 'absent'}, "
               f"torch CPU capability in use {torch.backends.cpu.get_cpu_capability()})")
    if args.write_to:
        if args.nudged:
            train_nudged()
        write_fresh(args.write_to)
        return
    if args.committed:
        names, label = ("committed", "here"), args.label or "committed"
        first, second = committed_tables(args.results), fresh_tables()
        first_runs = committed_predictions(args.results)
        runs = compare_predictions(first_runs, fresh_predictions())
    else:
        settings = dict(item.split("=", 1) for item in args.env or ())
        names = (args.against, "nudged" if args.nudge else "variables")
        label = args.label or ("one_ulp_nudge" if args.nudge else "_".join(f"{k}-{v}" for k, v in settings.items())) + (
            "_vs_committed" if args.against == "committed" else "")
        first, first_runs = ((committed_tables(args.results), committed_predictions(args.results)) if args.against == "committed"
                             else (fresh_tables(), fresh_predictions()))
        with tempfile.TemporaryDirectory() as scratch:
            # its own runs (kept in --keep-runs), and with --env its own augmented clips and features:
            # they are keyed by the caps, and a folder made under other caps is made again in place,
            # so sharing them would undo this machine's (a nudge changes only the runs)
            own = {"ASC_RUNS_DIR": str(args.keep_runs or Path(scratch) / "runs"),
                   "ASC_RESULTS_DIR": str(Path(scratch) / "entries")}  # its runs' entries (asclib.store), not the committed
            if not args.nudge:
                own.update({variable: str(Path(scratch) / folder) for variable, folder in (
                    ("ASC_AUGMENTED_DIR", "augmented"), ("ASC_CACHE_DIR", "cache"))})
            environment = {**os.environ, **settings, **own}
            written = Path(scratch) / "results"
            if not args.nudge:
                subprocess.run(TRAIN_EVERYTHING, env=environment, check=True)
            subprocess.run([sys.executable, __file__, "--write-to", str(written), *(["--nudged"] if args.nudge else [])],
                           env=environment, check=True)
            second = committed_tables(written)
            runs = compare_predictions(first_runs, committed_predictions(written))
    table = compare(first, second, names)
    stated = table["same verdict"].dropna()
    out = Path(__file__).parent / "results" / f"cpu_agreement_{label}"
    table.to_csv(out.with_suffix(".csv"))
    lines = [
        f"# benchmarks/cpu_agreement.py {' '.join(sys.argv[1:])} on {machine}, {os.cpu_count()} cores, "
        f"commit {provenance.git_commit() or 'unknown'}, "
        f"{time.strftime('%Y-%m-%d')}, {(time.time() - started) / 60:.1f} min",
        f"# first: the {names[0]} results; second: {names[1]}"
        + (" (every run's first initial weight moved by one ulp)" if args.nudge else
           f" (variables {settings})" if not args.committed else " (this machine's runs)"),
        runs.to_string(), "",
        f"{int(runs['identical'].sum())} of {len(runs)} runs give the same evaluation scores", "",
        f"the yardstick, between two seeds of the {names[0]} runs:", between_seeds(first_runs).to_string(), "",
        table.to_string(), "",
        f"largest overall difference {table['difference'].abs().max():.2f} points "
        f"(median {table['difference'].abs().median():.2f}); {int(stated.sum())} of {len(stated)} verdicts the same",
    ]
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {out}.csv and .txt")


if __name__ == "__main__":
    main()
