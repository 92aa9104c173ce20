"""Result files: the tables and figures a notebook writes under `results/<profile>/`, and reads back.

`save_table` writes a table as CSV and Markdown, `save_figure` a figure as PNG, each atomically;
`read_table` reads a table another notebook saved. A result file's name starts with the number of
the notebook that makes it (`notebook_of`). Notebooks 01-12 and `tables` write through here;
`report` renders the same tables into the README and docs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from asclib.config import PROJECT_ROOT, paths
from asclib.files import atomic_path

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


def save_table(table: pd.DataFrame, name: str, profile: str) -> Path:
    """Write `table` as `results/<profile>/tables/<name>.csv` and `.md`; returns the CSV path."""
    folder = paths(profile).results / "tables"
    with atomic_path(folder / f"{name}.csv") as temporary:
        table.to_csv(temporary)
    with atomic_path(folder / f"{name}.md") as temporary:
        temporary.write_text(markdown_table(table))
    return folder / f"{name}.csv"


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub Markdown rendering of `table`, index included."""
    header = [str(table.index.name or "")] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, *values in table.astype(object).itertuples():
        lines.append("| " + " | ".join([str(label)] + [_cell(v) for v in values]) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    """A table cell: NaN (not reported) as a dash, a float to 3 decimals at most, every digit
    of a whole number kept (a parameter count)."""
    if isinstance(value, float):
        if value != value:
            return "–"
        value = round(value, 3)
        return str(int(value)) if value.is_integer() else str(value)
    return str(value)


def read_table(name: str, profile: str) -> pd.DataFrame:
    """A table another notebook saved (`save_table`), read back; a clear error names the notebook
    to run first (notebook 08 reads notebook 07's one-stage rows)."""
    path = paths(profile).results / "tables" / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run notebooks/{notebook_of(path).name} first")
    return pd.read_csv(path, index_col=0)


def notebook_of(result: Path) -> Path:
    """The notebook that makes a result file: the one whose number starts the file's name."""
    number = result.name[:3]
    found = sorted(NOTEBOOK_DIR.glob(f"{number}*.ipynb")) if re.fullmatch(r"\d\d_", number) else []
    if len(found) != 1:
        raise ValueError(f"{result}: a result file's name starts with its notebook's number (NN_), and "
                         f"{'no notebook' if not found else 'several notebooks'} in {NOTEBOOK_DIR} match it")
    return found[0]


def save_figure(figure, name: str, profile: str) -> Path:
    """Write a matplotlib figure as `results/<profile>/figures/<name>.png`."""
    path = paths(profile).results / "figures" / f"{name}.png"
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    return path
