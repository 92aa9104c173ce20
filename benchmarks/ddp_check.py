"""Check (not a benchmark): training on several processes against one, on this machine's device
(issue 10, item 3; asclib/distributed.py).

Run:  .venv/bin/python benchmarks/ddp_check.py [--processes 2] [--share-gpu]

Trains a tiny ResNet and FCNN (6 steps, global batch 4, random clips) once in one process and
once in `--processes` processes started as torchrun would (RANK, WORLD_SIZE, LOCAL_RANK), on
the GPUs when CUDA is available (NCCL, SyncBatchNorm), else on CPU processes (gloo). With
`--share-gpu` every process uses cuda:0 over gloo: NCCL refuses two ranks on one GPU, so this is
how a one-GPU machine exercises the CUDA path (SyncBatchNorm, DDP with device_ids, barriers).
TF32 is switched off so that the comparison measures the split, not TF32 rounding. Prints both
loss curves and the largest differences, for every registered architecture; exits 1 when the
curves or weights of one without dropout (the ResNet) differ by more than --rtol. One with
dropout (the FCNNs) is reported, not judged: on a GPU its dropout masks differ from the
one-process run's by design (docs/performance.md, "Several GPUs").
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np


def _tiny():
    from asclib import profiles
    from asclib.profiles import get_profile

    quick = profiles.tiny(get_profile("quick"))
    return dataclasses.replace(quick, train=dataclasses.replace(quick.train, steps_per_epoch=3, batch_size=4))


def _train(rank: int, world: int, port: int, runs: str, name: str, share_gpu: bool) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK="0" if share_gpu else str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), ASC_RUNS_DIR=runs)
    import torch
    import torch.distributed as dist

    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    if share_gpu:
        init = dist.init_process_group
        dist.init_process_group = lambda backend, **options: init("gloo", **options)
    from asclib import distributed, train

    profile = _tiny()
    rng = np.random.default_rng(0)
    data = train.TrainingSet(rng.uniform(size=(24, profile.features.n_mels, 126)).astype(np.float32),
                             rng.integers(0, 10, 24), "random clips")
    ctx = distributed.context()
    train.fit(name, 10, data, profile, seed=1, progress=False)
    trained = distributed.parallel(train.architectures.build(name, 10, profile).to(ctx.device), ctx)  # as `fit` wraps it
    kinds = sorted({type(m).__name__ for m in trained.modules()}
                   & {"SyncBatchNorm", "GlobalBatchNorm", "BatchNorm2d", "Dropout", "GlobalBatchDropout"})
    if rank == 0:
        print(f"{name}, {world} process(es), {ctx.device}, {dist.get_backend() if ctx.active else 'none'}: "
              f"normalisation and dropout layers {kinds}", flush=True)
    distributed.finish()


def _run(world: int, runs: Path, name: str, share_gpu: bool) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = multiprocessing.get_context("spawn")  # the parent never touches CUDA
    children = [context.Process(target=_train, args=(rank, world, port, str(runs), name, share_gpu))
                for rank in range(world)]
    for child in children:
        child.start()
    for child in children:
        child.join(600)
    if any(child.exitcode for child in children):
        sys.exit(f"{name}: a process of {world} failed")
    from asclib import train

    (folder,) = (runs / "quick").glob(f"{name}-10c-*")
    return train.read_checkpoint(folder / train.CHECKPOINT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--share-gpu", action="store_true")
    parser.add_argument("--rtol", type=float, default=1e-4)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        import torch

        from asclib import architectures

        for name in architectures.REGISTRY:
            one = _run(1, Path(folder) / f"{name}-one", name, False)
            many = _run(args.processes, Path(folder) / f"{name}-many", name, args.share_gpu)
            a, b = (np.array([row[3] for row in state["history"]]) for state in (one, many))
            loss = float(np.max(np.abs(a - b) / np.abs(a)))
            weights = max(float((one["model"][k].double() - many["model"][k].double()).abs().max()) for k in one["model"])
            print(f"{name}: one process  {np.round(a, 5).tolist()}\n{name}: {args.processes} processes "
                  f"{np.round(b, 5).tolist()}\n{name}: losses differ by {loss:.1e} at most (relative), "
                  f"weights by {weights:.1e} (absolute)", flush=True)
            model = architectures.build(name, 10, _tiny())
            judged = not any(isinstance(module, torch.nn.Dropout) for module in model.modules())
            if judged and not (loss <= args.rtol and weights <= args.rtol):
                print(f"{name}: beyond the tolerance {args.rtol}", flush=True)
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
