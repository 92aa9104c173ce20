"""Benchmark: the share of each training step spent building its batch (issue 10, item 5).

Prints numbers; asserts nothing. Run:  .venv/bin/python benchmarks/data_wait.py [--profile paper]

`asclib.train.fit` builds every batch on one CPU thread in numpy (deltas, SpecAugment for the
FCNNs, random crop, mixup) and then runs the network step on the training device. This script
times the two parts separately on random log-mels of the profile's size (no disk reads), for
each of the five systems: the batch time, the network step time (forward, backward, Keras
SGD; synchronised on a GPU) and the share of the step spent waiting for data. Each figure is
the median of `--repeats` timings of `--steps` steps, with the spread.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from asclib import augment, features, models, train
from asclib.config import get_profile


def _median_spread(values: list[float]) -> str:
    return f"{np.median(values) * 1000:8.1f} [{min(values) * 1000:.1f}-{max(values) * 1000:.1f}]"


def measure(name: str, n_classes: int, profile, device: str, steps: int, repeats: int, clips: int) -> dict:
    rng = np.random.default_rng(0)
    data = train.TrainingSet(rng.uniform(size=(clips, profile.features.n_mels, features.frame_count(profile)))
                             .astype(np.float32), rng.integers(0, n_classes, clips), "random")
    batches = train.MixupBatches(clips, profile.train.batch_size, np.random.default_rng(1))
    torch.manual_seed(0)
    model = models.build(name, n_classes, profile).to(device).train()
    optimizer = train._optimizer(model, name, profile)

    def make_batch():
        first, second = batches.next()
        x1, y1 = train._batch(data, first, n_classes, train.uses_spec_augment(name), profile, rng)
        x2, y2 = train._batch(data, second, n_classes, train.uses_spec_augment(name), profile, rng)
        x, y = augment.mixup(x1, y1, x2, y2, profile.augment.mixup_alpha, rng)
        return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def network_step(x, y):
        loss = -(y * F.log_softmax(model(x), dim=1)).sum(dim=1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    network_step(*make_batch())  # warm-up
    batch_times, step_times = [], []
    for _ in range(repeats):
        built, stepped = 0.0, 0.0
        for _ in range(steps):
            start = time.perf_counter()
            x, y = make_batch()
            middle = time.perf_counter()
            network_step(x, y)
            built, stepped = built + middle - start, stepped + time.perf_counter() - middle
        batch_times.append(built / steps)
        step_times.append(stepped / steps)
    share = [b / (b + s) for b, s in zip(batch_times, step_times)]
    return {"model": f"{name}-{n_classes}c", "batch": _median_spread(batch_times),
            "step": _median_spread(step_times), "share": f"{np.median(share) * 100:5.1f} [{min(share) * 100:.1f}-"
                                                             f"{max(share) * 100:.1f}]"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("quick", "paper"), default="quick")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=512, help="random clips to draw batches from")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.profile} profile on {where}; batch {profile.train.batch_size} (mixup of 2 x "
          f"{profile.train.batch_size} clips); median [min-max] of {args.repeats} x {args.steps} steps")
    print(f"{'model':12s} {'batch ms':>22s} {'network step ms':>22s} {'data share %':>18s}")
    for name, n_classes in train.NOTEBOOK_RUNS:
        row = measure(name, n_classes, profile, args.device, args.steps, args.repeats, args.clips)
        print(f"{row['model']:12s} {row['batch']:>22s} {row['step']:>22s} {row['share']:>18s}", flush=True)


if __name__ == "__main__":
    main()
