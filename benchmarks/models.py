"""Benchmark: training and inference throughput and peak memory of the five CNNs (issue 5).

Prints numbers; asserts nothing. Run:  .venv/bin/python benchmarks/models.py [options]

Each measurement runs in a fresh process (forked; spawned on CUDA) so that its peak memory is its own. Training
steps use random inputs of the profile's crop size (batch 32, soft targets, Keras SGD), so the
numbers are the network's, without data loading; inference uses full-length inputs. On a GPU,
`--bf16` turns on bfloat16 autocast and `--channels-last` the NHWC memory layout. After two
warm-up steps, each timing (`--steps` steps) is repeated `--repeats` times in the same process;
the table gives the median and the spread (min-max) of the repeats. The estimated wall time of
the profile's full recipe multiplies the median step time by its number of steps: for `quick`,
epochs x 38 steps; for `paper`, the steps the reference recipe takes on the real development
set with all six offline augmentations (13,965 + 2 x 10,215 + 4 x 13,965 = 90,255 clips, 2,821
steps per epoch, 126 or 254 epochs).

FLOPs per training sample are counted by `torch.utils.flop_counter.FlopCounterMode` over one
forward and backward pass at batch 1 (convolutions and matrix products, 2 FLOPs per
multiply-add; BatchNorm, activations and the optimizer are not counted). The achieved training
FLOP/s is that count times the median training samples/s. `--peak-tflops` adds its share of a
given peak: for an H100 SXM use 989, its dense bfloat16 tensor-core peak. Float32 runs use the
TF32/FP32 paths (PyTorch's default lets cuDNN convolutions use TF32), so their share is also
against the bf16 dense peak, as issue 10 asks. `--out FILE.csv` also writes the table as CSV,
one row per model and profile.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import resource
import statistics
import time

import asclib  # noqa: F401  first: it caps numpy's and torch's CPU code paths (asclib.kernels)
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from asclib import architectures, features, models, train
from asclib.profiles import get_profile

PAPER_TRAINING_CLIPS = 13_965 + 2 * 10_215 + 4 * 13_965


def training_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, autocast) -> int:
    """FLOPs of one forward and backward pass of `model` on the batch (x, y); gradients are cleared."""
    with FlopCounterMode(display=False) as counter:
        with autocast:
            loss = -(y * F.log_softmax(model(x).float(), dim=1)).sum(dim=1).mean()
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def measure(name: str, n_classes: int, profile_name: str, device: str, steps: int, bf16: bool,
            channels_last: bool, repeats: int, queue) -> None:
    profile = get_profile(profile_name)
    torch.manual_seed(0)
    model = architectures.build(name, n_classes, profile).to(device)
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

    def timed(run) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            run()
        sync()
        return (time.perf_counter() - start) / steps

    model.train()
    flops = training_flops(model, x[:1], y[:1], autocast)
    for _ in range(2):
        step()
    step_seconds = [timed(step) for _ in range(repeats)]

    model.eval()
    frames = features.input_frames(profile)
    test = torch.rand(batch, 3, profile.features.n_mels, frames, device=device).contiguous(memory_format=memory_format)
    with torch.no_grad(), autocast:
        model(test)
        inference_seconds = [timed(lambda: model(test)) for _ in range(repeats)]
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    per_epoch = profile.train.steps_per_epoch or int(np.ceil(PAPER_TRAINING_CLIPS / batch))
    full_steps = profile.epochs(name) * per_epoch
    train_rates = [batch / s for s in step_seconds]
    inference_rates = [batch / s for s in inference_seconds]
    queue.put({"model": f"{name}-{n_classes}c", "parameters": models.count_parameters(model),
               "train samples/s": statistics.median(train_rates),
               "train min": min(train_rates), "train max": max(train_rates),
               "inference clips/s": statistics.median(inference_rates),
               "inference min": min(inference_rates), "inference max": max(inference_rates),
               "peak memory GiB": peak / 2**30, "train GFLOP/sample": flops / 1e9,
               "full recipe s": full_steps * batch / statistics.median(train_rates)})


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("quick", "paper", "both"), default="both")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 quick, 3 paper on CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per model; median and min-max reported")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="peak TFLOP/s for the share column (H100 SXM bf16 dense: 989)")
    parser.add_argument("--out", default=None, help="also write the table to this CSV file")
    args = parser.parse_args()
    profiles = ("quick", "paper") if args.profile == "both" else (args.profile,)
    context = mp.get_context("spawn" if args.device == "cuda" else "fork")
    device_name = (f"cuda ({torch.cuda.get_device_name()})" if args.device == "cuda"
                   else f"cpu ({torch.get_num_threads()} threads)")
    print(f"device {device_name}, torch {torch.__version__}, bf16 {args.bf16}, "
          f"channels_last {args.channels_last}, batch 32, {args.repeats} repeats"
          + (f", cudnn TF32 {torch.backends.cudnn.allow_tf32}, matmul TF32 {torch.backends.cuda.matmul.allow_tf32}"
             if args.device == "cuda" else ""))
    rows = []
    for profile in profiles:
        steps = args.steps or (3 if profile == "paper" and args.device == "cpu" else 10)
        print(f"\n{profile} profile ({args.repeats} x {steps} timed steps; median [min-max])")
        print(f"{'model':12s} {'params':>11s} {'train samples/s':>26s} {'inference clips/s':>28s} "
              f"{'peak GiB':>9s} {'GFLOP/sample':>12s} {'TFLOP/s':>8s}"
              + (f" {'% peak':>7s}" if args.peak_tflops else "") + f" {'full recipe':>12s}")
        for name, n_classes in architectures.notebook_runs():
            queue = context.Queue()
            worker = context.Process(target=measure, args=(name, n_classes, profile, args.device, steps,
                                                           args.bf16, args.channels_last, args.repeats, queue))
            worker.start()
            row = queue.get()
            worker.join()
            tflops = row["train GFLOP/sample"] * row["train samples/s"] / 1e3
            share = 100 * tflops / args.peak_tflops if args.peak_tflops else None
            train_cell = f"{row['train samples/s']:.1f} [{row['train min']:.1f}-{row['train max']:.1f}]"
            inference_cell = f"{row['inference clips/s']:.1f} [{row['inference min']:.1f}-{row['inference max']:.1f}]"
            print(f"{row['model']:12s} {row['parameters']:11,d} {train_cell:>26s} {inference_cell:>28s} "
                  f"{row['peak memory GiB']:9.2f} {row['train GFLOP/sample']:12.2f} {tflops:8.2f}"
                  + (f" {share:7.1f}" if share is not None else "") + f" {_duration(row['full recipe s']):>12s}")
            rows.append({"profile": profile, "device": device_name, "torch": torch.__version__,
                         "bf16": args.bf16, "channels_last": args.channels_last, "batch": 32,
                         "steps": steps, "repeats": args.repeats, "model": row["model"],
                         "parameters": row["parameters"],
                         "train_samples_per_s_median": round(row["train samples/s"], 2),
                         "train_samples_per_s_min": round(row["train min"], 2),
                         "train_samples_per_s_max": round(row["train max"], 2),
                         "inference_clips_per_s_median": round(row["inference clips/s"], 2),
                         "inference_clips_per_s_min": round(row["inference min"], 2),
                         "inference_clips_per_s_max": round(row["inference max"], 2),
                         "peak_memory_gib": round(row["peak memory GiB"], 3),
                         "train_gflop_per_sample": round(row["train GFLOP/sample"], 3),
                         "achieved_train_tflops": round(tflops, 3),
                         "peak_tflops": args.peak_tflops or "",
                         "share_of_peak_percent": round(share, 2) if share is not None else "",
                         "full_recipe_hours": round(row["full recipe s"] / 3600, 3)})
    if args.out:
        with open(args.out, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
