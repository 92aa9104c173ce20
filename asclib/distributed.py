"""Training one model on several processes with torch.distributed: several GPUs, on one machine
or several (docs/performance.md, "Several GPUs").

`torchrun --nproc_per_node=N -m asclib train ...` starts N processes; `context()` reads the
variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and joins the
process group: NCCL with one GPU per process (cuda:LOCAL_RANK) where CUDA is available, gloo on
CPU processes otherwise. Without those variables, or with WORLD_SIZE=1, nothing changes: one
process trains exactly as before.

How `asclib.train.fit` shares a step (the update is the one-process update of the same global
batch, up to floating-point rounding):
- every process draws the random choices of the whole global batch (clip order, SpecAugment
  masks, crops, mixup weights) from the same seeded generators, then reads and builds only its
  contiguous share (`Context.share`, `asclib.batches.host_batch`): a global batch of 32 on 4 GPUs
  gives clips 0-7 to rank 0, 8-15 to rank 1, ...;
- its loss is the mean over its share, and DistributedDataParallel averages the gradients, which
  (shares being equal) is the gradient of the global batch's mean loss; the loss logged is that
  global mean (from `loss_sum`);
- BatchNorm normalises with the statistics of the global batch, not of a share: torch's
  SyncBatchNorm on GPUs; on CPU processes (gloo) `GlobalBatchNorm`, since torch's SyncBatchNorm
  accepts only GPU tensors;
- dropout draws its mask for the global batch and keeps the share's rows (`GlobalBatchDropout`),
  so the torch generator advances as in one process;
- rank 0 alone reads and writes checkpoints, the others receive what it read
  (`Context.from_rank_zero`) and wait while it writes (`Context.barrier`), so machines need not
  share a disk for the runs. The state saved (generators, batch order, weights without DDP's
  `module.` prefix, optimiser) does not depend on the number of processes: a run resumes with
  any number of them.
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from asclib.models import PortableDropout

# How long a process waits for the others at a collective: the others may be making a paper
# corpus's features first (`rank_zero_first`), which takes far longer than torch's default
# (10 minutes for NCCL). A process that fails makes torchrun stop them all anyway.
WAIT = timedelta(hours=6)


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank among `world_size` processes and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    local_rank: int = 0  # its rank among the processes of its machine

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def share(self, batch_size: int) -> slice:
        """This process's contiguous rows of a global batch of `batch_size`."""
        if batch_size % self.world_size:
            raise ValueError(f"a global batch of {batch_size} cannot be split evenly over {self.world_size} "
                             "processes: choose a process count that divides it")
        size = batch_size // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)

    def barrier(self) -> None:
        """Wait until every process gets here (one process: return at once)."""
        if self.active and self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        elif self.active:
            dist.barrier()

    def from_rank_zero(self, value):
        """Rank 0's `value` (any picklable object), in every process: what rank 0 alone read."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]


def context() -> Context:
    """This process's `Context`, from torchrun's environment variables; joins the process group
    on the first call (NCCL on GPUs, gloo on CPUs). One process: rank 0 of 1, on the GPU if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world_size == 1:
        return Context(0, 1, torch.device("cuda" if cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if not dist.is_initialized():
        if cuda:
            if local_rank >= torch.cuda.device_count():
                raise ValueError(f"local rank {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                                 "start at most that many processes per node")
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo", timeout=WAIT)
    return Context(dist.get_rank(), dist.get_world_size(), device, local_rank)


def finish() -> None:
    """Leave the process group (at the end of a torchrun command)."""
    if dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def rank_zero_first():
    """Run the body in each machine's first process (local rank 0), then in the others: the first
    writes what is missing (the corpus, features, offline augmentations) and the others find it
    there, also on machines that share no disk."""
    ctx = context()
    if ctx.local_rank > 0:
        ctx.barrier()
    yield
    if ctx.local_rank == 0:
        ctx.barrier()


def parallel(model: nn.Module, ctx: Context) -> nn.Module:
    """The module that trains: `model` itself in one process; in several, DistributedDataParallel
    around a copy whose BatchNorms and dropouts work on the global batch (`model` is left as it
    is; its state dict keys and the copy's are the same)."""
    if not ctx.active:
        return model
    copied = _replace(copy.deepcopy(model), lambda m: _global(m, ctx))
    return nn.parallel.DistributedDataParallel(copied, device_ids=[ctx.device.index] if ctx.device.type == "cuda"
                                               else None)


def loss_sum(loss: torch.Tensor, ctx: Context) -> torch.Tensor:
    """The sum over the processes of their mean losses over equal shares, detached and left on
    the device (no wait for the GPU): divided by the world size, the global batch's mean loss."""
    if not ctx.active:
        return loss.detach()
    total = loss.detach().clone()
    dist.all_reduce(total)
    return total


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch, gathered over the
    processes with differentiable all-reduces (torch's SyncBatchNorm refuses CPU tensors, so
    gloo runs use this). Mean first, then the variance around it, as torch computes them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        count = x.shape[0] * x.shape[2] * x.shape[3] * dist.get_world_size()
        mean = _SumOverProcesses.apply(x.sum(dim=(0, 2, 3))) / count
        centred = x - mean[None, :, None, None]
        variance = _SumOverProcesses.apply((centred * centred).sum(dim=(0, 2, 3))) / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
            self.running_var.mul_(1 - self.momentum).add_(variance * count / (count - 1), alpha=self.momentum)
        out = centred * torch.rsqrt(variance + self.eps)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out


class _SumOverProcesses(torch.autograd.Function):
    """The sum of a tensor over the processes; its gradient is the sum of theirs (each process's
    loss depends on every process's input through the global statistics)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        total = gradient.clone()
        dist.all_reduce(total)
        return total


class GlobalBatchDropout(PortableDropout):
    """Dropout that draws the mask of the whole global batch, as `models.PortableDropout` draws
    it in one process, and applies this process's rows: the masks are bit for bit those of one
    process training the global batch, and every process's torch generator advances alike."""

    def __init__(self, p: float, rank: int, world_size: int):
        super().__init__(p)
        self.rank, self.world_size = rank, world_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        share = x.shape[0]
        mask = self.scaled_mask((share * self.world_size, *x.shape[1:]), x)
        return x * mask[self.rank * share:(self.rank + 1) * share]


def _global(module: nn.Module, ctx: Context) -> nn.Module:
    """The global-batch replacement of a BatchNorm2d or Dropout (sharing its tensors), else `module`."""
    if type(module) is nn.BatchNorm2d:
        kind = nn.SyncBatchNorm if ctx.device.type == "cuda" else GlobalBatchNorm
        new = kind(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        new.weight, new.bias = module.weight, module.bias
        new.running_mean, new.running_var = module.running_mean, module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        return new.train(module.training)
    if type(module) is PortableDropout:
        return GlobalBatchDropout(module.p, ctx.rank, ctx.world_size).train(module.training)
    return module


def _replace(module: nn.Module, change) -> nn.Module:
    """`module` with each submodule replaced by `change(submodule)` where that differs."""
    for name, child in module.named_children():
        new = change(child)
        module.add_module(name, new if new is not child else _replace(child, change))
    return module
