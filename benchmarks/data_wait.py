"""Benchmark: how much of each training step waits for its data (issue 10, item 5).

Prints numbers; asserts nothing. Run:  .venv/bin/python benchmarks/data_wait.py [--profile paper]

For each of the five systems, on random log-mels of the profile's size read from a
memory-mapped store file (as `features.log_mel_rows` serves them), it times three things, each
the median of `--repeats` timings of `--steps` steps with the min-max spread:
- loop: the training loop of `asclib.train.fit` (the stream of `asclib.batches`: draw the
  step's random choices, read the clips and build the batch on the device, on a GPU prepared one
  step ahead on a background thread; `train.training_step`), the GPU synchronised only at the
  end, as in `fit`;
- network: `train.training_step` alone, repeated on one batch already on the device;
- batch: drawing and building one batch alone, in the foreground (synchronised).
The share of the loop spent waiting for data is 1 - network / loop (0 when building the next
batch is fully hidden behind the GPU's work); training samples/s is batch size / loop time.
With `--peak-tflops` (the card's dense bf16 peak, e.g. 989 for an H100 SXM) it also counts each
model's FLOPs per training sample (`benchmarks/models.py`'s `training_flops`: convolutions and
matrix products of one forward and backward pass) and gives the loop's achieved share of that
peak.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import asclib  # noqa: F401  first: it caps numpy's and torch's CPU code paths (asclib.kernels)
import numpy as np
import torch

from asclib import architectures, batches, features, train
from asclib.profiles import get_profile
from models import training_flops  # benchmarks/models.py, beside this script


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(function, steps: int, repeats: int, device: torch.device) -> list[float]:
    """Seconds per call of `function` over `steps` calls, `repeats` times, after one warm-up."""
    function()
    _synchronise(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            function()
        _synchronise(device)
        times.append((time.perf_counter() - start) / steps)
    return times


def _median_spread(values: list[float], scale: float = 1000.0) -> str:
    return f"{np.median(values) * scale:.1f} [{min(values) * scale:.1f}-{max(values) * scale:.1f}]"


class Loop:
    """One system's training loop as `asclib.train.fit` runs it, on the clips of `log_mels`
    with random labels: the model (compiled on a GPU unless ASC_COMPILE=0), its optimiser and
    the stream of batches (`asclib.batches.stream`, prepared ahead on a background thread on a
    GPU). `side_by_side.py` runs several of them at once."""

    def __init__(self, name: str, n_classes: int, profile, log_mels, device: torch.device, precision: str):
        rng = np.random.default_rng(0)
        self.name, self.n_classes, self.profile, self.device, self.precision = name, n_classes, profile, device, precision
        self.log_mels, self.labels, self.rng = log_mels, rng.integers(0, n_classes, len(log_mels)), rng
        self.order = train.MixupBatches(len(log_mels), profile.train.batch_size, np.random.default_rng(1))
        self.channels_last = device.type == "cuda"
        torch.manual_seed(0)
        model = architectures.build(name, n_classes, profile).to(device).train()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.optimizer = train._optimizer(model, name, profile)
        self.eager, self.model = model, train.compiled(model, device)  # as `fit` runs it

    @classmethod
    def of(cls, system: str, profile, log_mels, device: torch.device, precision: str) -> "Loop":
        """The loop of a system named as this script prints it: "resnet-10c", "fcnn-3c", ..."""
        name, classes = system.rsplit("-", 1)
        return cls(name, int(classes.rstrip("c")), profile, log_mels, device, precision)

    def batches(self, steps: int, background: bool | None = None):
        return batches.stream(self.log_mels, self.labels, self.order, steps, "spec_augment" in train.online_methods(self.name),
                              slice(0, self.profile.train.batch_size), self.n_classes, self.profile, self.rng,
                              self.device, self.channels_last, background)

    def run(self, steps: int, synchronise: bool = True) -> None:
        """`steps` training steps, the GPU synchronised only at the end, as in `fit`."""
        for x, y in self.batches(steps):
            train.training_step(self.model, self.optimizer, x, y, self.precision)
        if synchronise:
            _synchronise(self.device)


def measure(loop: Loop, steps: int, repeats: int) -> dict:
    device, precision, profile = loop.device, loop.precision, loop.profile
    ready = next(loop.batches(1))
    built = _timed(lambda: (list(loop.batches(1, background=False)), _synchronise(device)), steps, repeats, device)
    looped = [seconds / steps for seconds in _timed(lambda: loop.run(steps), 1, repeats, device)]
    network = _timed(lambda: train.training_step(loop.model, loop.optimizer, *ready, precision), steps, repeats,
                     device)
    waits = [max(0.0, 1 - n / t) for n, t in zip(network, looped)]  # repeat k of each
    flops = training_flops(loop.eager, ready[0][:1], ready[1][:1],
                           torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"))
    samples = [profile.train.batch_size / t for t in looped]
    return {"model": f"{loop.name}-{loop.n_classes}c", "batch ms": _median_spread(built),
            "loop ms": _median_spread(looped), "network ms": _median_spread(network),
            "samples/s": _median_spread(samples, 1.0), "waiting %": _median_spread(waits, 100.0),
            "GFLOP/sample": f"{flops / 1e9:.3g}", "TFLOP/s": f"{np.median(samples) * flops / 1e12:.3g}"}


def synchronising_call(loop: Loop, steps: int = 3) -> str:
    """The first call in `steps` steps of the loop that makes the CPU wait for the GPU (a copy
    from pageable memory, reading a value, ...), or "none": each would leave the GPU idle while
    the CPU prepares the next step."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        loop.run(steps, synchronise=False)
    except RuntimeError as error:
        return str(error).splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
    return "none"


def random_store(folder: Path, clips: int, profile) -> features.LogMelRows:
    """`clips` random log-mels in a memory-mapped file, served like the feature store."""
    store = np.memmap(folder / "log_mels.f32", dtype=np.float32, mode="w+", shape=_store_shape(clips, profile))
    store[:] = np.random.default_rng(2).uniform(size=store.shape).astype(np.float32)
    store.flush()
    return open_store(folder, clips, profile)


def open_store(folder: Path, clips: int, profile) -> features.LogMelRows:
    """The store `random_store` wrote in `folder`, opened read-only (another process may)."""
    rows = np.memmap(folder / "log_mels.f32", dtype=np.float32, mode="r", shape=_store_shape(clips, profile))
    return features.LogMelRows(rows, np.random.default_rng(3).permutation(clips))


def _store_shape(clips: int, profile) -> tuple[int, int, int]:
    return clips, profile.features.n_mels, features.frame_count(profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("quick", "paper"), default="quick")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=train.PRECISIONS, default=None,
                        help="default: as training chooses (bf16 on a GPU, float32 on a CPU)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=512, help="random clips in the store to draw batches from")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak, for the share")
    parser.add_argument("--models", nargs="+", default=[f"{name}-{n}c" for name, n in architectures.notebook_runs()],
                        help="systems to measure (default: the five of notebooks 04-06)")
    args = parser.parse_args()
    profile, device = get_profile(args.profile), torch.device(args.device)
    precision = args.precision or train.default_precision(device)
    if device.type == "cpu":
        torch.set_num_threads(train.TRAIN_THREADS)
    where = torch.cuda.get_device_name() if device.type == "cuda" else train.device_name()
    compiled = device.type == "cuda" and os.environ.get("ASC_COMPILE", "1") == "1"
    print(f"{args.profile} profile on {where}, {precision}, {'torch.compile' if compiled else 'eager'}; batch {profile.train.batch_size} (mixup of 2 x "
          f"{profile.train.batch_size} clips); median [min-max] of {args.repeats} timings of {args.steps} steps")
    with tempfile.TemporaryDirectory() as folder:
        log_mels = random_store(Path(folder), args.clips, profile)
        rows, syncs = [], []
        for system in args.models:
            loop = Loop.of(system, profile, log_mels, device, precision)
            rows.append(measure(loop, args.steps, args.repeats))
            if device.type == "cuda":
                syncs.append(f"{system}: {synchronising_call(loop)}")
    for row in rows:
        if args.peak_tflops:
            row["% of peak"] = f"{100 * float(row['TFLOP/s']) / args.peak_tflops:.1f}"
    columns = list(rows[0])
    widths = [max(len(column), *(len(row[column]) for row in rows)) for column in columns]
    print("  ".join(column.rjust(width) for column, width in zip(columns, widths)))
    for row in rows:
        print("  ".join(row[column].rjust(width) for column, width in zip(columns, widths)), flush=True)
    if syncs:
        print("CPU-GPU synchronisation inside the loop (torch.cuda.set_sync_debug_mode, 3 steps):")
        print("\n".join(syncs))


if __name__ == "__main__":
    main()
