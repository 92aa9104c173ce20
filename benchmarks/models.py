"""Benchmark: training and inference throughput and peak memory of the five CNNs (issue 5).

Prints numbers; asserts nothing. Run:  .venv/bin/python benchmarks/models.py [options]

Each measurement runs in a fresh forked process so that its peak memory is its own. Training
steps use random inputs of the profile's crop size (batch 32, soft targets, Keras SGD), so the
numbers are the network's, without data loading; inference uses full-length inputs. On a GPU,
`--bf16` turns on bfloat16 autocast and `--channels-last` the NHWC memory layout. The
estimated wall time of the profile's full recipe multiplies the step time by its number of
steps: for `quick`, epochs x 38 steps; for `paper`, the steps the reference recipe takes on
the real development set with all six offline augmentations (13,965 + 2 x 10,215 + 4 x 13,965
= 90,255 clips, 2,821 steps per epoch, 126 or 254 epochs).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from asclib import features, models, train
from asclib.config import get_profile

SYSTEMS = (("resnet", 10), ("resnet", 3), ("fcnn", 10), ("fcnn", 3), ("fsfcnn", 10))
PAPER_TRAINING_CLIPS = 13_965 + 2 * 10_215 + 4 * 13_965


def measure(name: str, n_classes: int, profile_name: str, device: str, steps: int, bf16: bool,
            channels_last: bool, queue) -> None:
    profile = get_profile(profile_name)
    torch.manual_seed(0)
    model = models.build(name, n_classes, profile).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = train._optimizer(model, name, profile)
    batch = profile.train.batch_size
    x = torch.rand(batch, 3, profile.features.n_mels, profile.augment.crop_frames, device=device)
    x = x.contiguous(memory_format=memory_format)
    y = torch.softmax(torch.rand(batch, n_classes, device=device), dim=1)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16)

    def step():
        with autocast:
            loss = -(y * F.log_softmax(model(x).float(), dim=1)).sum(dim=1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    model.train()
    for _ in range(2):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    step_seconds = (time.perf_counter() - start) / steps

    model.eval()
    frames = features.frame_count(profile) - 8
    test = torch.rand(batch, 3, profile.features.n_mels, frames, device=device).contiguous(memory_format=memory_format)
    with torch.no_grad(), autocast:
        model(test)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            model(test)
        sync()
    inference_seconds = (time.perf_counter() - start) / steps
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    per_epoch = profile.train.steps_per_epoch or int(np.ceil(PAPER_TRAINING_CLIPS / batch))
    full_steps = train.epochs_of(name, profile) * per_epoch
    queue.put({"model": f"{name}-{n_classes}c", "parameters": models.count_parameters(model),
               "train samples/s": batch / step_seconds, "inference clips/s": batch / inference_seconds,
               "peak memory GiB": peak / 2**30, "full recipe": _duration(full_steps * step_seconds)})


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("quick", "paper", "both"), default="both")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 quick, 3 paper on CPU)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    profiles = ("quick", "paper") if args.profile == "both" else (args.profile,)
    context = mp.get_context("spawn" if args.device == "cuda" else "fork")
    print(f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else
                                     f" ({torch.get_num_threads()} threads)")
          + f", bf16 {args.bf16}, channels_last {args.channels_last}, batch 32")
    for profile in profiles:
        steps = args.steps or (3 if profile == "paper" and args.device == "cpu" else 10)
        print(f"\n{profile} profile ({steps} timed steps)")
        print(f"{'model':12s} {'params':>11s} {'train samples/s':>16s} {'inference clips/s':>18s} "
              f"{'peak GiB':>9s} {'full recipe':>12s}")
        for name, n_classes in SYSTEMS:
            queue = context.Queue()
            worker = context.Process(target=measure, args=(name, n_classes, profile, args.device, steps,
                                                           args.bf16, args.channels_last, queue))
            worker.start()
            row = queue.get()
            worker.join()
            print(f"{row['model']:12s} {row['parameters']:11,d} {row['train samples/s']:16.1f} "
                  f"{row['inference clips/s']:18.1f} {row['peak memory GiB']:9.2f} {row['full recipe']:>12s}")


if __name__ == "__main__":
    main()
