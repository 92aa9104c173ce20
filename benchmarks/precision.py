"""Benchmark: do bf16 autocast runs follow the float32 loss curve? (issue 10, item 2)

Prints numbers; asserts nothing. Run:  .venv/bin/python benchmarks/precision.py [--epochs 14]

Trains the 10-class ResNet and FCNN of the quick profile on the quick corpus's training set
(with its offline augmentations) for `--epochs` epochs in float32 and under bf16 autocast
(`asclib.train.fit(..., precision=...)`), same seed and batches, and once more in float32 with
another seed; it prints the mean training loss of each epoch with the relative differences
bf16 - float32 and seed 1 - seed 0: the second says how far two equally valid runs drift apart. The runs go to a
temporary folder; nothing in runs/ is touched.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import asclib  # noqa: F401  first: it caps numpy's and torch's CPU code paths (asclib.kernels)
import numpy as np
import pandas as pd

from asclib import architectures, profiles, synth, train
from asclib.profiles import get_profile
from asclib.data import load_index


def curves(name: str, data: train.TrainingSet, profile) -> pd.DataFrame:
    """Epoch-mean training loss of `name` in both precisions (seed 0) and in float32 with seed 1,
    and the relative differences: bf16 against float32, and, as the yardstick, another seed."""
    runs = {"fp32": ("fp32", 0), "bf16": ("bf16", 0), "fp32 seed 1": ("fp32", 1)}
    table = pd.DataFrame({label: train.fit(name, 10, data, profile, seed=seed, progress=False, precision=precision)
                          .history.groupby("epoch")["loss"].mean() for label, (precision, seed) in runs.items()})
    table["bf16 vs fp32 %"] = 100 * (table["bf16"] / table["fp32"] - 1)
    table["seed 1 vs seed 0 %"] = 100 * (table["fp32 seed 1"] / table["fp32"] - 1)
    table.index = table.index + 1
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=14, help="a cosine-cycle end: 2, 6, 14, 30, 62")
    args = parser.parse_args()
    quick = get_profile("quick")
    profile = profiles.resized(quick, epochs=args.epochs)
    data = train.training_set(load_index(synth.dataset(quick, None, 0), quick), 10, quick,
                              architectures.PAPER_OFFLINE)
    print(f"quick profile, {len(data.labels):,} training clips, {args.epochs} epochs of "
          f"{profile.train.steps_per_epoch} steps, seed 0, {train.device_name()}")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["ASC_RUNS_DIR"] = folder
        for name in ("fcnn", "resnet"):
            table = curves(name, data, profile)
            print(f"\n{name}, 10 classes: epoch-mean training loss")
            print(table.round(4).to_string())
            for column in ("bf16 vs fp32 %", "seed 1 vs seed 0 %"):
                difference = table[column].abs()
                print(f"{column}: largest |difference| {difference.max():.2f} %, median {np.median(difference):.2f} %, "
                      f"last epoch {table[column].iloc[-1]:+.2f} %")


if __name__ == "__main__":
    main()
