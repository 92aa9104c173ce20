"""What TensorBoard curves (asclib.curves) cost a quick run: the time to write one whole run's
curves (every step's loss and learning rate, epoch by epoch, then the accuracy by device), the
median of five, against that run's committed training time (results/quick/tables/0[456]_*_training.csv).

    .venv/bin/python benchmarks/curves_overhead.py   # prints a table; writes nothing under results/
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import asclib  # noqa: F401  (first: the CPU code paths)
import pandas as pd

from asclib import curves
from asclib.config import PROJECT_ROOT


def write_seconds(steps: int, epochs: int) -> float:
    """Seconds to write a run of `steps` steps in `epochs` epochs, as train.fit and evaluation do."""
    per_epoch = steps // epochs
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        logged = curves.TrainingCurves(folder)
        for epoch in range(epochs):
            logged.epoch([(step, epoch, 0.05, 1.0) for step in range(epoch * per_epoch, (epoch + 1) * per_epoch)])
        logged.close()
        curves.log_accuracy(folder, pd.DataFrame({f"device {k}": [50.0] for k in range(21)}), steps)
        return time.perf_counter() - start


def main() -> None:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    print(f"machine: {model}, {len(os.sched_getaffinity(0))} cores; {time.strftime('%Y-%m-%d')}")
    rows = []
    for path in sorted((PROJECT_ROOT / "results" / "quick" / "tables").glob("0[456]_*_training.csv")):
        table = pd.read_csv(path, index_col=0)
        first = table.iloc[0]
        timings = [write_seconds(int(first["steps"]), int(first["epochs"])) for _ in range(5)]
        rows.append({"run": table.index[0], "steps": int(first["steps"]), "training s (committed)": first["training s"],
                     "curves ms (median of 5)": round(1000 * statistics.median(timings), 1),
                     "min-max ms": f"{1000 * min(timings):.1f}-{1000 * max(timings):.1f}",
                     "share %": round(100 * statistics.median(timings) / first["training s"], 3)})
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
