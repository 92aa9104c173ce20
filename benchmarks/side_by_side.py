"""Benchmark: several trainings side by side on one GPU (issue 10, item 5).

Prints numbers; asserts nothing. Run (on a GPU machine):
    python benchmarks/side_by_side.py --profile paper --model resnet-10c --processes 1 2 3

The paper recipe is many independent runs (five models, then Table 3's rows x seeds), and one
run of these narrow networks leaves most of an H100 idle. For each count N this starts N
processes on the same device, each with one training loop as `asclib.train.fit` runs it
(`data_wait.Loop`: compiled on a GPU unless ASC_COMPILE=0, bf16, batches prepared ahead) on a
shared memory-mapped store of random log-mels; each warms up, waits for the others, trains
`--steps` steps and reports its time. Aggregate samples/s = N x steps x batch / the slowest
process's time; the speed-up is against N = 1. Without the CUDA multi-process service (MPS) the
GPU time-slices between processes; under MPS (`gpu_paper.sh` starts it where it exists) their
kernels may run at once.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import asclib  # noqa: F401  first: it caps numpy's and torch's CPU code paths (asclib.kernels)
import torch

from asclib import train
from asclib.profiles import get_profile
from data_wait import Loop, open_store, random_store  # beside this script

WARM_UP_STEPS = 5


def _worker(model: str, profile_name: str, folder: str, clips: int, device: str, steps: int, barrier, results) -> None:
    profile = get_profile(profile_name)
    device = torch.device(device)
    if device.type == "cpu":
        torch.set_num_threads(train.TRAIN_THREADS)
    loop = Loop.of(model, profile, open_store(Path(folder), clips, profile), device, train.default_precision(device))
    loop.run(WARM_UP_STEPS)  # compiles, and fills the allocator's caches
    barrier.wait()
    start = time.perf_counter()
    loop.run(steps)
    results.put(time.perf_counter() - start)


def measure(model: str, processes: int, profile, folder: Path, clips: int, device: str, steps: int) -> list[float]:
    """Seconds each of `processes` side-by-side processes took for `steps` steps of `model`."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_worker, args=(model, profile.name, str(folder), clips, device, steps,
                                                     barrier, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    times = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode:
            raise SystemExit(f"a {model} process failed with exit code {worker.exitcode}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("quick", "paper"), default="paper")
    parser.add_argument("--model", nargs="+", default=["resnet-10c"],
                        help="systems as data_wait.py names them (resnet-10c, fcnn-3c, ...)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    batch = profile.train.batch_size
    where = torch.cuda.get_device_name() if args.device == "cuda" else train.device_name()
    print(f"{args.profile} profile on {where}; {args.steps} timed steps per process after {WARM_UP_STEPS} "
          f"warm-up steps; batch {batch}", flush=True)
    print(f"{'model':>10}  {'processes':>9}  {'slowest s':>9}  {'samples/s, all':>14}  {'speed-up':>8}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        random_store(Path(folder), args.clips, profile)
        for model in args.model:
            alone = None  # samples/s of one process, once measured
            for count in args.processes:
                slowest = max(measure(model, count, profile, Path(folder), args.clips, args.device, args.steps))
                rate = count * args.steps * batch / slowest
                if count == 1:
                    alone = rate
                speed_up = f"{rate / alone:.2f}" if alone else "-"
                print(f"{model:>10}  {count:>9}  {slowest:>9.2f}  {rate:>14.1f}  {speed_up:>8}", flush=True)


if __name__ == "__main__":
    main()
