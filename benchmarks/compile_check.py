"""Benchmark: the paper networks' training step with and without torch.compile on a GPU.

Prints numbers; asserts nothing. Run on a GPU machine:  python3 benchmarks/compile_check.py

For the 10-class ResNet, FCNN and fsFCNN of the paper profile: `train.training_step` on one
random batch of 32 (bf16 autocast, channels_last), eager and compiled, the compilation time
(three warm-up steps) and the median of three timings of 20 steps with the spread.
"""

from __future__ import annotations

import time

import asclib  # noqa: F401  first: it caps numpy's and torch's CPU code paths (asclib.kernels)
import numpy as np
import torch

from asclib import architectures, train
from asclib.profiles import get_profile


def measure(name: str, compiled: bool, x: torch.Tensor, y: torch.Tensor) -> str:
    torch.manual_seed(0)
    model = architectures.build(name, 10, get_profile("paper")).to(x.device).to(memory_format=torch.channels_last).train()
    optimizer = train._optimizer(model, name, get_profile("paper"))
    network = torch.compile(model) if compiled else model
    start = time.perf_counter()
    for _ in range(3):
        train.training_step(network, optimizer, x, y, "bf16")
    torch.cuda.synchronize()
    warm_up, times = time.perf_counter() - start, []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(20):
            train.training_step(network, optimizer, x, y, "bf16")
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / 20)
    return (f"{name} compiled={compiled} warm-up {warm_up:.1f} s, step ms median {1000 * np.median(times):.1f} "
            f"[{1000 * min(times):.1f}-{1000 * max(times):.1f}], samples/s {32 / np.median(times):.0f}")


def main() -> None:
    x = torch.rand(32, 3, 128, 400, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.softmax(torch.rand(32, 10, device="cuda"), 1)
    for name in architectures.REGISTRY:
        for compiled in (False, True):
            print(measure(name, compiled, x, y), flush=True)


if __name__ == "__main__":
    main()
