"""Results: regenerating every notebook headless, and the manifest of what was made.

`reproduce(profile)` executes `notebooks/NN_*.ipynb` in order with papermill, passing the
parameters `profile`, `data_dir` and `seed` to each notebook's `parameters` cell. For the
`quick` profile the executed notebooks replace the committed ones (their outputs are what
readers see on GitHub); for any other profile they are written to `results/<profile>/notebooks/`.
A notebook that fails leaves its previous version untouched. `results/<profile>/manifest.json`
records the code version, the parameters, the run time of each notebook and a hash of each file
under `results/<profile>/`.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from pathlib import Path

from asclib.config import PROJECT_ROOT, get_profile, paths
from asclib.files import atomic_path

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
MANIFEST = "manifest.json"


def notebooks() -> list[Path]:
    """The numbered notebooks, in the order they run."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def reproduce(profile: str = "quick", data_dir: str | None = None, seed: int = 0,
              only: list[str] | None = None) -> Path:
    """Execute the notebooks (all, or those whose names start with an entry of `only`)."""
    import papermill

    name = get_profile(profile).name
    results = paths(name).results
    selected = [nb for nb in notebooks() if not only or any(nb.name.startswith(o) for o in only)]
    if only and not selected:
        raise ValueError(f"no notebook in {NOTEBOOK_DIR} starts with any of {only}")
    parameters = {"profile": name, "data_dir": data_dir, "seed": seed}
    timings = {}
    for number, notebook in enumerate(selected, start=1):
        target = notebook if name == "quick" else results / "notebooks" / notebook.name
        print(f"[{number}/{len(selected)}] {notebook.name} ({name} profile)", flush=True)
        start = time.perf_counter()
        with atomic_path(target) as temporary:
            papermill.execute_notebook(
                str(notebook), str(temporary), parameters=parameters, kernel_name="python3",
                cwd=str(NOTEBOOK_DIR), progress_bar=True,
            )
        timings[notebook.name] = round(time.perf_counter() - start, 1)
        print(f"    done in {timings[notebook.name]:.1f} s", flush=True)
    return write_manifest(name, parameters, timings)


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "asclib", "notebooks"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""
    return commit + ("-dirty" if dirty.strip() else "")


def write_manifest(profile: str, parameters: dict, timings: dict) -> Path:
    """Write `results/<profile>/manifest.json`; notebooks not run this time keep their entry."""
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
        "git_commit": _git_commit(),
        "parameters": parameters,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "notebook_seconds": {**previous, **timings},
        "files": files,
    }
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
