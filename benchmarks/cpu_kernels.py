"""Benchmark: how far the quick results move when the CPU's kernels change (issue 8, item 8).

Prints numbers; asserts nothing. Run:  .venv/bin/python benchmarks/cpu_kernels.py

Floating-point kernels differ between CPUs (AVX-512 here, AVX2 on many machines), and a short
training run amplifies a difference in the last bit into different weights. This script
retrains the five quick models in a child process whose kernels are capped at AVX2
(`ATEN_CPU_CAPABILITY=avx2` for PyTorch's own kernels, `ONEDNN_MAX_CPU_ISA=AVX2` for the
oneDNN convolutions), as another machine of the same kind would run them, with separate run
and results folders. It then compares the Table 1 and Table 2 systems (single models,
ensembles, two-stage fusions) with the committed results of `results/quick/`, which were made
with this machine's default kernels, and writes the three tables to
`benchmarks/results/cpu_kernels_avx2.csv`. Needs the quick corpus and about 10 minutes on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from asclib import config, data, fusion, synth, tables, train

TRAIN_ALL = """
from asclib import config, data, synth, train
prof = config.get_profile("quick")
index = data.load_index(synth.dataset(prof), prof)
train.train_all(index, prof, 0)  # two runs side by side, as `python -m asclib reproduce` does
for name, n in {systems}:
    run, predictions = train.train_and_evaluate(name, n, index, prof, 0)
    train.save_predictions(predictions, f"{{name}}-{{n}}c", prof)
"""


def systems_table(profile: config.Profile, index: pd.DataFrame) -> pd.DataFrame:
    """Overall and per-group accuracy of the single models, ensembles and two-stage fusions."""
    models3, truth3 = tables.load_models(profile, index, 3)
    models10, truth10 = tables.load_models(profile, index, 10)
    ensemble3, ensemble10 = fusion.ensemble(list(models3.values())), fusion.ensemble(list(models10.values()))
    ten = {**models10, "ensemble": ensemble10}
    ten.update({f"2-stage {name}": fusion.two_stage(table, ensemble3) for name, table in list(ten.items())})
    rows = [tables.accuracy_rows(ten, truth10),
            tables.accuracy_rows({**models3, "ensemble": ensemble3}, truth3).rename(index=lambda n: f"{n} (3c)")]
    return pd.concat(rows)[["A", "B&C", "s1-s3", "s4-s6", "overall"]]


def main() -> None:
    profile = config.get_profile("quick")
    index = data.load_index(synth.dataset(profile), profile)
    default = systems_table(profile, index)
    with tempfile.TemporaryDirectory() as scratch:
        environment = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                       "ASC_RUNS_DIR": str(Path(scratch) / "runs"), "ASC_RESULTS_DIR": str(Path(scratch) / "results")}
        subprocess.run([sys.executable, "-c", TRAIN_ALL.format(systems=train.NOTEBOOK_RUNS)], env=environment, check=True)
        os.environ["ASC_RESULTS_DIR"] = environment["ASC_RESULTS_DIR"]
        capped = systems_table(profile, index)
    difference = (capped - default).round(1)
    print("accuracy % with this machine's default kernels (results/quick):")
    print(default.to_string())
    print("\nthe same with kernels capped at AVX2:")
    print(capped.to_string())
    print("\nAVX2 minus default (points):")
    print(difference.to_string())
    out = Path(__file__).parent / "results" / "cpu_kernels_avx2.csv"
    pd.concat({"default": default, "avx2": capped, "avx2 minus default": difference}, names=["kernels"]).to_csv(out)
    print(f"\nwritten to {out}")
    print(f"largest absolute change: overall {difference['overall'].abs().max():.1f} points, "
          f"any group {difference.abs().to_numpy().max():.1f} points; "
          f"median over systems (overall) {difference['overall'].abs().median():.1f} points")


if __name__ == "__main__":
    main()
