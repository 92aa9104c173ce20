"""Benchmark: the paper recipe's arithmetic, and the least time it can take on a card (issue 10, item 5).

Prints numbers; asserts nothing. Run:  .venv/bin/python benchmarks/recipe_flops.py --peak-tflops 989

Counts each paper-profile model's FLOPs per training sample (`benchmarks/models.py`'s
`training_flops`: convolutions and matrix products of one forward and backward pass, counted on
the CPU at batch 1), then gives them to `asclib.plan.plan` as step times at the card's full
dense bf16 peak, so that the plan's own step counts (the official fold-1 clips with their
offline augmentations) turn into the hours each training of the recipe would take at 100 % of
the peak: a lower bound no implementation can beat. It then gives the average share of the peak
the whole recipe would need to finish within `--hours`. With `--measured` (outputs of
`data_wait.py` on the card) it also projects the recipe's training hours at the measured loop
times.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import asclib  # noqa: F401  first: it caps numpy's and torch's CPU code paths (asclib.kernels)
import pandas as pd
import torch

from asclib import ablation, architectures, augment
from asclib.profiles import get_profile
from asclib.plan import Timings, plan
from models import training_flops  # benchmarks/models.py, beside this script


def flops_per_sample(name: str, n_classes: int, profile) -> int:
    from asclib.features import input_frames

    model = architectures.build(name, n_classes, profile).train()
    x = torch.rand(1, 3, profile.features.n_mels, min(profile.augment.crop_frames, input_frames(profile)))
    return training_flops(model, x, torch.full((1, n_classes), 1 / n_classes), torch.autocast("cpu", enabled=False))


def measured_step_seconds(paths: list[str]) -> dict[str, tuple[float, str]]:
    """'resnet-10c' -> (seconds per training step, file): the median loop time of each system in
    `data_wait.py` outputs; a later file's system replaces an earlier file's."""
    times = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            row = re.match(r"\s*(\w+-\d+c)\s+\S+ \[\S+\]\s+(\S+) \[", line)  # model, batch ms, loop ms
            if row:
                times[row[1]] = (float(row[2]) / 1000, Path(path).name)
    return times


def training_hours(profile, step: dict) -> pd.DataFrame:
    """The plan's training steps (`asclib.plan.plan`, official fold-1 counts) with the hours each
    takes at `step` seconds per training step of each training key."""
    timings = Timings(device="given step times", header=0.0, features=0.0,
                      augment={method: 0.0 for method in augment.names("offline")}, synth=None, step=step,
                      forward={key: 0.0 for key in step}, seconds=0.0)
    steps = plan(profile, "/nonexistent", timings=timings).steps
    training = steps[steps["step"].str.startswith(("train ", "ablation: "))].copy()
    training["hours"] = training["seconds"] / 3600
    return training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peak-tflops", type=float, required=True, help="dense bf16 peak (H100 SXM: 989)")
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--measured", nargs="+", default=[],
                        help="data_wait.py outputs from the same card: also project the recipe at their loop times")
    args = parser.parse_args()
    profile = get_profile("paper")
    budget = ablation.budget(profile)
    systems = {(name, n, config.models) for name, n, config in
               [*((name, n, profile) for name, n in architectures.notebook_runs()), ("resnet", 10, budget)]}
    flops = {key: flops_per_sample(key[0], key[1], profile if key[2] == profile.models else budget) for key in systems}
    peak = args.peak_tflops * 1e12
    training = training_hours(profile, {key: profile.train.batch_size * value / peak for key, value in flops.items()})
    columns = {"hours at 100 % of peak": training["hours"]}
    measured = measured_step_seconds(args.measured)
    if args.measured:
        missing = sorted({f"{name}-{n}c" for name, n, _ in systems} - set(measured))
        if missing:
            raise SystemExit(f"--measured: no loop time for {', '.join(missing)} in {', '.join(args.measured)}")
        columns["hours at the measured loop times"] = training_hours(
            profile, {key: measured[f"{key[0]}-{key[1]}c"][0] for key in systems})["hours"]
    print(f"paper recipe, batch {profile.train.batch_size}, official fold-1 counts, peak {args.peak_tflops:g} "
          "TFLOP/s (dense bf16)")
    print("GFLOP per training sample: " + ", ".join(f"{name}-{n}c {value / 1e9:.1f}" for (name, n, _), value
                                                    in sorted(flops.items(), key=lambda item: item[0][:2])))
    if args.measured:
        print("measured loop time per step: " + ", ".join(f"{system} {seconds * 1000:.1f} ms ({source})"
                                                          for system, (seconds, source) in sorted(measured.items())))
    shown = training[["step", "amount"]].assign(**{column: hours.round(2) for column, hours in columns.items()})
    print(shown.to_string(index=False))
    five = training["step"].str.startswith("train ")
    table3 = training["step"].str.startswith("ablation: ") & ~training["step"].str.contains("notebook 04")
    for label, chosen in (("the five models", five), ("the five models and Table 3's five rows", five | table3),
                          ("everything above (with notebook 04's recipe row)", five | ~five)):
        hours = columns["hours at 100 % of peak"][chosen].sum()
        line = (f"{label}: {hours:.1f} h at 100 % of peak; within {args.hours:g} h it needs "
                f"{100 * hours / args.hours:.0f} % of peak on average")
        if args.measured:
            line += f"; {columns['hours at the measured loop times'][chosen].sum():.1f} h at the measured loop times"
        print(line)


if __name__ == "__main__":
    main()
