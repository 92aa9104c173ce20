"""The authors' released score files and evaluation lists, checked by SHA-256 (notebook 11).

The reference repository `MihawkHu/DCASE2020_task1` ships the per-clip scores of its 10-class
ensemble (sum of 3 softmaxes) and of its 3-class ensemble (sum of 2), without filenames; their
rows follow the fold-1 evaluation list of the 10-class and of the 3-class folder respectively,
two lists of the same clips in different orders (docs/spec.md section 8.4). `load_released` reads the four
files; `Released.p10` and `Released.p3` turn the scores into filename-indexed probability tables
for `asclib.fusion`, and `row_by_row_two_stage` reproduces the reference's fusion, mistake
included.

The files come from a folder (an argument or `ASC_RELEASED_DIR`; `make` sets it when a copy of
the released files lies beside the checkout), or are downloaded once at the pinned commit into the
git-ignored cache root (`<cache root>/released/<commit>`). Every file is checked against its
SHA-256 prefix before use, wherever it comes from.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from asclib import fusion
from asclib.config import paths
from asclib.data import COARSE_CLASSES, COARSE_OF, SCENES, listing, read_table, parse_filename, read_split
from asclib.files import atomic_path

ENV_VARIABLE = "ASC_RELEASED_DIR"
REPOSITORY = "MihawkHu/DCASE2020_task1"
COMMIT = "23b6777e91c91c1f08338fdd9721f081c00b5a22"
BASE_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}"
# name -> (path in the upstream repository, SHA-256 prefix of the file at COMMIT; docs/spec.md
# sections 1 and 8).
FILES = {
    "class10_results_acc0.794.txt": ("task1a/10class/class10_results_acc0.794.txt", "e8dd1a54c9908edb"),
    "class3_results_acc0.932.txt": ("task1a/3class/class3_results_acc0.932.txt", "72dd280793f92e03"),
    "fold1_evaluate.csv": ("task1a/10class/evaluation_setup/fold1_evaluate.csv", "f3a22e0cf95b1d79"),
    "fold1_evaluate_3class.csv": ("task1a/3class/evaluation_setup/fold1_evaluate_3class.csv", "e233ab435ecded80"),
}


class ReleasedFileError(ValueError):
    """A released file is missing, differs from the pinned one, or does not read as expected."""


def cache_folder() -> Path:
    """Where `released_folder` downloads the files: under the git-ignored cache root."""
    return paths("quick").cache.parent / "released" / COMMIT


def _check_digest(name: str, content: bytes, where: str) -> None:
    expected = FILES[name][1]
    found = hashlib.sha256(content).hexdigest()[:len(expected)]
    if found != expected:
        raise ReleasedFileError(f"{where}: SHA-256 starts with {found}, expected {expected}: not the "
                                f"released {name} of {REPOSITORY} at commit {COMMIT[:7]}")


def verify(folder: str | Path) -> Path:
    """`folder`, after checking that it holds every released file with its pinned SHA-256."""
    folder = Path(folder)
    for name in FILES:
        path = folder / name
        if not path.is_file():
            raise ReleasedFileError(f"released file {name} not found in {folder}")
        _check_digest(name, path.read_bytes(), str(path))
    return folder


def fetch(destination: str | Path, base_url: str = BASE_URL) -> Path:
    """Download every released file into `destination` and return it.

    All files are downloaded and checked before any is written, each atomically: a corrupt or
    interrupted download never lands.
    """
    contents = {}
    for name, (upstream, _) in FILES.items():
        url = f"{base_url.rstrip('/')}/{upstream}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                contents[name] = response.read()
        except urllib.error.URLError as error:
            raise OSError(f"cannot download {url} ({error}); without internet access, set "
                          f"{ENV_VARIABLE} to a folder holding the released files") from None
        _check_digest(name, contents[name], url)
    destination = Path(destination)
    for name, content in contents.items():
        with atomic_path(destination / name) as temporary:
            temporary.write_bytes(content)
    return destination


def released_folder(folder: str | Path | None = None) -> Path:
    """The folder of the released files, verified: `folder`, else `$ASC_RELEASED_DIR`, else the
    cache folder, downloaded at the pinned commit if it is incomplete."""
    folder = folder or os.environ.get(ENV_VARIABLE)
    if folder:
        return verify(folder)
    folder = cache_folder()
    if not all((folder / name).is_file() for name in FILES):
        fetch(folder)
    return verify(folder)


@dataclass(frozen=True)
class Released:
    """The released scores (raw sums of softmaxes, as in the files) and both evaluation lists.

    `evaluate10` is fold1_evaluate.csv as `data.read_split` reads it; `evaluate3` is
    fold1_evaluate_3class.csv: filename, coarse, device. Row i of `scores10` is row i of
    `evaluate10`; row i of `scores3` is row i of `evaluate3`.
    """

    scores10: np.ndarray
    scores3: np.ndarray
    evaluate10: pd.DataFrame
    evaluate3: pd.DataFrame

    def p10(self) -> pd.DataFrame:
        """The 10-class ensemble as a probability table (scores / number of models)."""
        return _probabilities(self.scores10, self.evaluate10["filename"], SCENES, "class10 scores")

    def p3(self) -> pd.DataFrame:
        """The 3-class ensemble as a probability table (scores / number of models)."""
        return _probabilities(self.scores3, self.evaluate3["filename"], COARSE_CLASSES, "class3 scores")

    def p3_by_row(self) -> pd.DataFrame:
        """The mistake of the reference's fusion script, on purpose: the 3-class table with row i
        filed under the clip of row i of the 10-class list (the same coarse class, another clip)."""
        return self.p3().set_axis(pd.Index(self.evaluate10["filename"], name="filename"))

    def truth(self) -> pd.DataFrame:
        """Filename-indexed device and label (the scene), in the order of fold1_evaluate.csv."""
        return self.evaluate10.set_index("filename")[["device", "scene"]].rename(columns={"scene": "label"})


def _probabilities(scores: np.ndarray, filenames: pd.Series, classes, what: str) -> pd.DataFrame:
    """Scores that are sums of softmaxes, divided by their number (read off the row sums)."""
    totals = scores.sum(axis=1)
    models = round(float(totals.mean()))
    off = np.abs(totals - models) > fusion.TOLERANCE
    if models < 1 or off.any():
        raise ReleasedFileError(f"{what}: rows should all sum to the same number of models; "
                                f"{off.sum()} row(s) do not sum to {models}")
    table = pd.DataFrame(scores / models, columns=list(classes), index=pd.Index(filenames, name="filename"))
    return fusion.check_probabilities(table, what)


def _read_coarse_split(path: Path) -> pd.DataFrame:
    """fold1_evaluate_3class.csv: filename, coarse (checked against the scene in the name), device."""
    table = read_table(path, ("filename", "scene_label"), f"split file {path.name}")
    table = table.rename(columns={"scene_label": "coarse"})
    fields = pd.DataFrame([parse_filename(name) for name in table["filename"]])
    wrong = table["coarse"].to_numpy() != fields["scene"].map(COARSE_OF).to_numpy()
    if wrong.any():
        raise ReleasedFileError(f"{path}: coarse label disagrees with the scene in the file name for "
                                f"{wrong.sum()} row(s): {listing(table['filename'][wrong])}")
    return table.assign(device=fields["device"])


def _read_scores(path: Path, rows: int, columns: int) -> np.ndarray:
    scores = np.loadtxt(path, ndmin=2)
    if scores.shape != (rows, columns):
        raise ReleasedFileError(f"{path}: {scores.shape[0]} x {scores.shape[1]} scores, expected "
                                f"{rows} x {columns} (one row per clip of its evaluation list)")
    return scores


def load_released(folder: str | Path | None = None) -> Released:
    """The released scores and lists from `released_folder(folder)` (verified first)."""
    folder = released_folder(folder)
    evaluate10 = read_split(folder / "fold1_evaluate.csv")
    evaluate3 = _read_coarse_split(folder / "fold1_evaluate_3class.csv")
    if set(evaluate10["filename"]) != set(evaluate3["filename"]):
        raise ReleasedFileError(f"{folder}: the 10-class and 3-class evaluation lists hold different clips")
    return Released(
        scores10=_read_scores(folder / "class10_results_acc0.794.txt", len(evaluate10), len(SCENES)),
        scores3=_read_scores(folder / "class3_results_acc0.932.txt", len(evaluate3), len(COARSE_CLASSES)),
        evaluate10=evaluate10,
        evaluate3=evaluate3,
    )


def row_by_row_two_stage(released: Released) -> pd.DataFrame:
    """The reference's two-stage product as its eval_hybrid.py computes it, mistake included, on
    purpose: score[i, c] = P10[i, c] x P3[i, coarse(c)] for row i of both score files, although
    row i is a different clip in each (docs/spec.md section 8.3, 8.4). Indexed by the clips of the 10-class list
    (whose labels their accuracy was computed with) and renormalised per row, which leaves the
    decisions unchanged. For the honest fusion use `fusion.two_stage(released.p10(), released.p3())`.
    """
    return fusion.two_stage(released.p10(), released.p3_by_row())
