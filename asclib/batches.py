"""Training batches built with torch on the training device (asclib.train, notebooks 04-06, 09).

One step of the reference recipe (spec section 5.2) takes 2 x batch clips, stacks the deltas,
masks them (SpecAugment, FCNNs only), crops them and mixes the two halves pair by pair. The
random numbers are drawn first, on the CPU, from the run's numpy generator in the reference's
order (`draw`); the arithmetic then runs as torch operations wherever the model is (`build`),
so a GPU is not kept waiting by one CPU thread, and a CPU run gives bit for bit the batches of
the numpy functions in `asclib.augment` (tested). Under torchrun every process draws the whole
global batch (the generators stay in step) and builds only its share of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from asclib import augment, features
from asclib.config import Profile


@dataclass
class StepDraws:
    """Every random choice of one step: the clips of the two halves (positions in the training
    set), their SpecAugment masks (2, batch, 3, 4) or None, their crop starts (2, batch) and
    the mixup weight of each pair (batch,)."""

    first: np.ndarray
    second: np.ndarray
    masks: np.ndarray | None
    crops: np.ndarray
    weights: np.ndarray


def draw(first: np.ndarray, second: np.ndarray, masked: bool, profile: Profile,
         rng: np.random.Generator) -> StepDraws:
    """The random choices of a step whose halves are the clips `first` and `second` (from
    `train.MixupBatches`), drawn from `rng` in the order of the reference (per half: masks,
    then crops; then the mixup weights)."""
    config, frames = profile.augment, features.input_frames(profile)
    masks, crops = [], []
    for half in (first, second):
        if masked:
            shape = (len(half), 3, profile.features.n_mels, frames)
            masks.append(augment.spec_augment_draws(shape, config.freq_mask_max, config.time_mask_max, rng))
        crops.append(augment.crop_starts(len(half), frames, config.crop_frames, rng))
    weights = augment.mixup_weights(len(first), config.mixup_alpha, rng)
    return StepDraws(first, second, np.stack(masks) if masked else None, np.stack(crops), weights)


def build(log_mels, labels: np.ndarray, draws: StepDraws, share: slice, n_classes: int, profile: Profile,
          device: torch.device, channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's `share` of the step's mixed batch on `device`: inputs (share, 3, n_mels,
    crop) and soft targets (share, n_classes). `log_mels` is anything indexed by clip positions
    (an array or `features.LogMelRows`); only the 2 x share clips needed are read."""
    rows = np.concatenate([draws.first[share], draws.second[share]])
    host = torch.from_numpy(np.ascontiguousarray(log_mels[rows]))
    if device.type == "cuda":
        host = host.pin_memory()  # lets the copy overlap the GPU's work on the previous step
    x = stack_deltas(host.to(device, non_blocking=True))
    if draws.masks is not None:
        x = mask(x, torch.from_numpy(draws.masks[:, share].reshape(-1, *draws.masks.shape[2:])).to(device))
    x = crop(x, torch.from_numpy(draws.crops[:, share].reshape(-1)).to(device), profile.augment.crop_frames)
    targets = torch.eye(n_classes, dtype=torch.float32)[torch.from_numpy(labels[rows])].to(device)
    weight = torch.from_numpy(draws.weights[share]).to(device)
    size = len(weight)
    x = _mix(x[:size], x[size:], weight)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, _mix(targets[:size], targets[size:], weight)


def stack_deltas(log_mels: torch.Tensor) -> torch.Tensor:
    """`features.stack_deltas` in torch: (clips, 3, n_mels, frames - 8)."""
    delta = features.valid_delta(log_mels)
    edge = features.EDGE_FRAMES
    return torch.stack([log_mels[..., edge:-edge], delta[..., 2:-2], features.valid_delta(delta)], dim=1)


def mask(x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Zero each example's and channel's frequency band and time span (`augment.spec_augment`);
    `draws` (clips, channels, 4) from `augment.spec_augment_draws`."""
    bins = torch.arange(x.shape[2], device=x.device)[:, None]
    frames = torch.arange(x.shape[3], device=x.device)[None, :]
    freq_start, freq_width, time_start, time_width = (d[..., None, None] for d in draws.unbind(-1))
    hidden = ((bins >= freq_start) & (bins < freq_start + freq_width)) | \
        ((frames >= time_start) & (frames < time_start + time_width))
    return x.masked_fill(hidden, 0.0)


def crop(x: torch.Tensor, starts: torch.Tensor, frames: int) -> torch.Tensor:
    """`frames` consecutive frames of each example from its start (`augment.random_crop`)."""
    positions = starts[:, None] + torch.arange(frames, device=x.device)
    return x.gather(3, positions[:, None, None, :].expand(*x.shape[:3], frames))


def _mix(first: torch.Tensor, second: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`augment.mixup`'s weighted sum, pair by pair, in the same order of operations."""
    weight = weight.reshape((-1,) + (1,) * (first.ndim - 1))
    return weight * first + (1 - weight) * second
