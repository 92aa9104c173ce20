"""Train a tiny ResNet and a tiny FCNN for a few steps and print a SHA-256 of each one's
parameters and buffers. tests/test_vendor.py runs it natively and under qemu-x86_64 emulating a
processor of the other vendor without AVX-512: x86 CPUs must train the same bits (issue 30,
item 4).

What the real training does, in little: `import asclib` first (it caps every library at AVX2,
`asclib.kernels`), one thread, Keras's he-normal initialisation (`models.initialise`), train
mode (BatchNorm statistics, `models.PortableDropout`), mixup of two halves with Beta(0.4, 0.4)
weights (`batches.mixup_weights`) and soft targets, soft-target cross-entropy, `train.KerasSGD`
with the convolution kernels in a group of their own (`train._optimizer`) and a learning rate
that changes every step. The inputs are random, drawn from seeded generators, shaped as the
networks' inputs: (batch, 3 [log-mel, delta, delta-delta], mel bands, frames).

Prints one JSON line, last: the hashes, and what the process saw of its CPU (LLVM's name for it,
read from CPUID: "znver2" for qemu's EPYC-Rome, "haswell" for its Haswell; torch's chosen
capability; whether the CPU has AVX2 and AVX-512), so that the test can tell the emulation
worked (under qemu-user /proc/cpuinfo is still the host's).
"""

from __future__ import annotations

import asclib  # noqa: F401  first: it caps the CPU code paths before numpy and torch load

import hashlib
import json
import math
import os

import llvmlite.binding as llvm  # loaded anyway (asclib.train imports numba)
import numpy as np
import torch
import torch.nn.functional as F

from asclib import batches, models
from asclib.train import KerasSGD

# A mixed batch of 16 clips at least: with one thread and fewer clips, torch computes a 1x1
# convolution (ResNet's head, the FCNNs' attention head) with MKL's sgemm instead of oneDNN,
# and MKL picks its code path by the processor's vendor (tests/test_vendor.py, which checks that
# MKL is never called here). The training's batch is 32.
N_CLASSES, N_MELS, FRAMES, BATCH, STEPS = 10, 40, 16, 16, 2
LR_MAX, MOMENTUM, BN_MOMENTUM, MIXUP_ALPHA = 0.1, 0.9, 0.01, 0.4  # the quick profile's
# (constructor, width, weight decay of the kernels) as in asclib/architectures.py (`tiny_width`)
NETWORKS = {"resnet": (models.ResNet, 2, 2e-3), "fcnn": (models.FCNN, (2, 2, 4), 0.0)}


def state_hash(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer (BatchNorm statistics included), names and bytes."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def trained(name: str, seed: int = 0) -> torch.nn.Module:
    constructor, width, decay = NETWORKS[name]
    torch.manual_seed(seed)  # initialisation and PortableDropout's masks
    model = constructor(N_CLASSES, width, N_MELS)
    models.initialise(model, BN_MOMENTUM)
    kernels = [p for m in model.modules() if isinstance(m, torch.nn.Conv2d) for p in m.parameters(recurse=False)]
    kernel_ids = {id(p) for p in kernels}
    others = [p for p in model.parameters() if id(p) not in kernel_ids]
    optimizer = KerasSGD([{"params": kernels, "weight_decay": decay}, {"params": others}], lr=LR_MAX, momentum=MOMENTUM)
    inputs = torch.Generator().manual_seed(seed + 1)
    rng = np.random.default_rng(seed + 2)
    model.train()
    for step in range(STEPS):
        x = torch.randn(2 * BATCH, 3, N_MELS, FRAMES, generator=inputs)
        y = F.one_hot(torch.randint(N_CLASSES, (2 * BATCH,), generator=inputs), N_CLASSES).float()
        w = torch.from_numpy(batches.mixup_weights(BATCH, MIXUP_ALPHA, rng))
        mixed = w[:, None, None, None] * x[:BATCH] + (1 - w[:, None, None, None]) * x[BATCH:]
        targets = w[:, None] * y[:BATCH] + (1 - w[:, None]) * y[BATCH:]
        for group in optimizer.param_groups:  # a cosine decay: the rate changes every step
            group["lr"] = LR_MAX * 0.5 * (1 + math.cos(math.pi * step / STEPS))
        loss = -(targets * F.log_softmax(model(mixed), dim=1)).sum(dim=1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model


def main() -> None:
    torch.set_num_threads(1)  # as training does (one process per core)
    hashes = {name: state_hash(trained(name)) for name in NETWORKS}
    print(json.dumps({"hashes": hashes, "cpu": llvm.get_host_cpu_name(),
                      "capability": torch.backends.cpu.get_cpu_capability(),
                      "avx512": torch.cpu._is_avx512_supported(), "avx2": torch.cpu._is_avx2_supported(),
                      "native_kernels": os.environ.get("ASC_NATIVE_KERNELS") == "1"}))


if __name__ == "__main__":
    main()
