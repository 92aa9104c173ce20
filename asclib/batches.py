"""Training batches built with torch on the training device, and the online augmentations
(`mixup`, `random_crop`, `spec_augment`, `freq_mixstyle` and the substitution of device
impulse response copies, `dir`, of `asclib.augment`'s registry), implemented here once
(asclib.train, notebooks 03-06, 09, 12).

One step of the reference recipe (docs/spec.md section 5.2) takes 2 x batch clips, stacks the deltas,
masks them (SpecAugment, where the recipe has it), crops them and mixes the two halves pair by
pair. The random numbers are drawn first, on the CPU, from the run's numpy generator in the
reference's order (`draw`: `spec_augment_draws`, `crop_starts`, `mixup_weights`); the share's
clips and draws are gathered in host memory (`host_batch`) and the arithmetic then runs as torch
operations wherever the model is (`assemble`: `mask`, `crop`, `mix`), so a GPU is not kept
waiting by one CPU thread; on a CPU the batches equal, bit for bit, those of the reference's
numpy code (tests/test_batches.py keeps a numpy version as the reference). `stream` gives a
run's batches step after step; on a GPU it prepares the next step's host side (draws, clips,
pinned) on a background thread, and nothing in a step makes the CPU wait for the GPU. Under
torchrun every process draws the whole global batch (the generators stay in step) and builds
only its share of it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from asclib import features
from asclib.config import Profile


def crop_starts(count: int, total: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """First frame of each of `count` crops of `frames` out of `total`, uniform from 0 to
    total - frames - 1, as the reference's `np.random.randint(0, 423 - 400)` (0 to 22 in the
    paper profile): the last position is never drawn, unless it is the only one."""
    if frames > total:
        raise ValueError(f"crop of {frames} frames asked from inputs of {total} frames")
    return rng.integers(0, max(total - frames, 1), size=count)


def spec_augment_draws(shape: tuple[int, int, int, int], freq_max: int, time_max: int,
                       rng: np.random.Generator) -> np.ndarray:
    """The masks of SpecAugment for a batch of `shape` (B, C, F, T), drawn in the reference's
    order: per example and channel a frequency band (width 0..freq_max, then its start) and a
    time span (width 0..time_max, then its start). Returns (B, C, 4) integers: frequency start,
    frequency width, time start, time width."""
    batch_size, channels, bins, frames = shape
    draws = np.empty((batch_size, channels, 4), dtype=np.int64)
    for b in range(batch_size):
        for c in range(channels):
            freq_width = rng.integers(0, freq_max + 1)
            freq_start = rng.integers(0, bins - freq_width)
            time_width = rng.integers(0, time_max + 1)
            draws[b, c] = freq_start, freq_width, rng.integers(0, frames - time_width), time_width
    return draws


def mixup_weights(count: int, alpha: float, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """The weight of the first clip of each of `count` pairs, Beta(alpha, alpha)."""
    return rng.beta(alpha, alpha, size=count).astype(dtype)


@dataclass(frozen=True)
class LaterMethods:
    """The online methods that came after the paper, as a run uses them: device impulse
    responses (`substitutes`: for each training clip the log-mel row of its copy through a
    microphone of the training pool, -1 where it has none; `asclib.augment`'s `dir`) and
    Freq-MixStyle (`mixstyle`). Each draws from a generator of its own, seeded by the run's
    seed, its seed id and the step (`own_generator`): the paper's draws never move, and a resumed
    run draws what an uninterrupted one would without storing any state."""

    seed: int
    substitutes: np.ndarray | None = None
    mixstyle: bool = False


def own_generator(seed: int, method: str, step: int) -> np.random.Generator:
    """The generator of a later online method (`LaterMethods`) at one step of a run of `seed`."""
    from asclib.augment import METHODS

    return np.random.default_rng([seed, 17, METHODS[method].seed_id, step])


def substitute(clips: np.ndarray, copies: np.ndarray, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Device impulse response augmentation (Morocutti et al., EUSIPCO 2023) on a step's clips:
    each clip that has copies (`copies[clip]`, one row per copy, each through another microphone;
    -1 where a clip has none: every clip but device A's) is read, with `probability`, from one
    of its copies drawn uniformly; returns the log-mel rows to read. The authors convolve each
    read with a freshly drawn response; the copies are that draw made ahead (docs/spec.md
    section 10)."""
    read = rng.random(len(clips)) < probability
    chosen = copies[clips, rng.integers(0, copies.shape[1], size=len(clips))]
    return np.where((chosen >= 0) & read, chosen, clips)


def mixstyle_draws(count: int, probability: float, alpha: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """Freq-MixStyle's choices for the `count` clips of a step (both halves): None (with
    1 - `probability`: the step is left alone, as the method's authors do it per batch), or each
    clip's weight of its own statistics, Beta(alpha, alpha), and a random key per clip whose order
    gives its partner (`host_batch`; the authors' random permutation)."""
    if rng.random() >= probability:
        return None
    return rng.beta(alpha, alpha, size=count).astype(np.float32), rng.random(count)


@dataclass
class StepDraws:
    """Every random choice of one step: the clips of the two halves (positions in the training
    set), their SpecAugment masks (2, batch, 3, 4) or None, their crop starts (2, batch), the
    mixup weight of each pair (batch,); for later methods (`LaterMethods`) the log-mel rows to
    read for first and second halves together (None: the clips themselves) and Freq-MixStyle's
    weights and keys (or None)."""

    first: np.ndarray
    second: np.ndarray
    masks: np.ndarray | None
    crops: np.ndarray
    weights: np.ndarray
    rows: np.ndarray | None = None
    mixstyle: tuple[np.ndarray, np.ndarray] | None = None


def draw(first: np.ndarray, second: np.ndarray, masked: bool, profile: Profile,
         rng: np.random.Generator, later: LaterMethods | None = None, step: int = 0) -> StepDraws:
    """The random choices of step `step` whose halves are the clips `first` and `second` (from
    `train.MixupBatches`), drawn from `rng` in the order of the reference (per half: masks,
    then crops; then the mixup weights), then those of the `later` methods from their own
    generators."""
    config, frames = profile.augment, features.input_frames(profile)
    masks, crops = [], []
    for half in (first, second):
        if masked:
            shape = (len(half), 3, profile.features.n_mels, frames)
            masks.append(spec_augment_draws(shape, config.freq_mask_max, config.time_mask_max, rng))
        crops.append(crop_starts(len(half), frames, config.crop_frames, rng))
    weights = mixup_weights(len(first), config.mixup_alpha, rng)
    drawn = StepDraws(first, second, np.stack(masks) if masked else None, np.stack(crops), weights)
    if later is not None and later.substitutes is not None:
        drawn.rows = substitute(np.concatenate([first, second]), later.substitutes, config.dir_probability,
                                own_generator(later.seed, "dir", step))
    if later is not None and later.mixstyle:
        drawn.mixstyle = mixstyle_draws(2 * len(first), config.mixstyle_probability, config.mixstyle_alpha,
                                        own_generator(later.seed, "freq_mixstyle", step))
    return drawn


@dataclass
class HostBatch:
    """What a step's batch is made of, in host memory: the share's clips' log-mels and one-hot
    labels (first halves, then second halves), their masks (or None), crop starts and mixup
    weights, and Freq-MixStyle's weights and partners (positions in the share) or None. Pinned
    when bound for a GPU, so that copying it neither waits for the GPU's queued work nor makes
    the CPU wait for the copy."""

    log_mels: torch.Tensor
    targets: torch.Tensor
    masks: torch.Tensor | None
    crops: torch.Tensor
    weights: torch.Tensor
    mixstyle_weights: torch.Tensor | None = None
    mixstyle_partners: torch.Tensor | None = None


def host_batch(log_mels, labels: np.ndarray, draws: StepDraws, share: slice, n_classes: int,
               device: torch.device) -> HostBatch:
    """This process's `share` of a step, in host memory (`HostBatch`): the 2 x share clips it needs,
    read from `log_mels` (anything indexed by clip positions: an array or
    `features.LogMelRows`), and their labels and draws. Freq-MixStyle's partners are those of
    the share (the order of its clips' keys): each process mixes statistics within its share."""
    def of_share(drawn: np.ndarray) -> np.ndarray:  # a step's draws, first halves then second, kept for the share
        size = len(draws.first)
        return np.concatenate([drawn[:size][share], drawn[size:][share]])

    clips = np.concatenate([draws.first[share], draws.second[share]])
    rows = clips if draws.rows is None else of_share(draws.rows)
    masks = None if draws.masks is None else draws.masks[:, share].reshape(-1, *draws.masks.shape[2:])
    mixstyle = [None, None]
    if draws.mixstyle is not None:
        mixstyle_weights, keys = (of_share(part) for part in draws.mixstyle)
        mixstyle = [mixstyle_weights, np.argsort(keys, kind="stable")]
    parts = [log_mels[rows], np.eye(n_classes, dtype=np.float32)[labels[clips]], masks,
             draws.crops[:, share].reshape(-1), draws.weights[share], *mixstyle]
    tensors = [None if part is None else torch.from_numpy(np.ascontiguousarray(part)) for part in parts]
    if device.type == "cuda":
        tensors = [None if tensor is None else tensor.pin_memory() for tensor in tensors]
    return HostBatch(*tensors)


def assemble(host: HostBatch, profile: Profile, device: torch.device,
             channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The share's mixed batch on `device` from its `HostBatch` (deltas, masks, crop, mixup):
    inputs (share, 3, n_mels, crop) and soft targets (share, n_classes)."""
    def moved(tensor):
        return tensor.to(device, non_blocking=True)

    log_mels = moved(host.log_mels)
    if host.mixstyle_weights is not None:
        log_mels = freq_mixstyle(log_mels, moved(host.mixstyle_weights), moved(host.mixstyle_partners))
    x = stack_deltas(log_mels)
    if host.masks is not None:
        x = mask(x, moved(host.masks))
    x = crop(x, moved(host.crops), profile.augment.crop_frames)
    weight, targets = moved(host.weights), moved(host.targets)
    size = len(weight)
    x = mix(x[:size], x[size:], weight)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, mix(targets[:size], targets[size:], weight)


def stream(log_mels, labels: np.ndarray, order, steps: int, masked: bool, share: slice, n_classes: int,
           profile: Profile, rng: np.random.Generator, device: torch.device, channels_last: bool = False,
           background: bool | None = None, later: LaterMethods | None = None, first_step: int = 0):
    """The batches (x, y) of `steps` consecutive training steps, from step `first_step` on
    (`host_batch`, then `assemble`), from the clips `order.next()` gives (`train.MixupBatches`),
    the draws of `rng` and those of the `later` methods.

    On a GPU the next step's draws and `HostBatch` are prepared on a background thread while the
    current step trains (reading rows and pinning them release Python's lock), so the GPU does not
    wait for that CPU work; the same thread draws every step in turn, so the numbers and their
    order are those of the plain loop, and nothing is drawn beyond `steps` (a checkpoint taken
    after them saves the generators' true state). On a CPU each step is prepared when asked
    (`background` overrides the choice).
    """
    background = device.type == "cuda" if background is None else background

    def prepare(index):
        drawn = draw(*order.next(), masked, profile, rng, later, first_step + index)
        return host_batch(log_mels, labels, drawn, share, n_classes, device)

    def prepared():
        if not background:
            for index in range(steps):
                yield prepare(index)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="asclib-batches") as pool:
            pending = pool.submit(prepare, 0) if steps else None
            for index in range(steps):
                ready = pending.result()
                pending = pool.submit(prepare, index + 1) if index + 1 < steps else None
                yield ready

    for host in prepared():
        yield assemble(host, profile, device, channels_last)


def stack_deltas(log_mels: torch.Tensor) -> torch.Tensor:
    """`features.stack_deltas` in torch: (clips, 3, n_mels, frames - 8)."""
    delta = features.valid_delta(log_mels)
    edge = features.EDGE_FRAMES
    return torch.stack([log_mels[..., edge:-edge], delta[..., 2:-2], features.valid_delta(delta)], dim=1)


def mask(x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """SpecAugment: zero each example's and channel's frequency band and time span, as the
    reference does; `draws` (clips, channels, 4) from `spec_augment_draws`."""
    bins = torch.arange(x.shape[2], device=x.device)[:, None]
    frames = torch.arange(x.shape[3], device=x.device)[None, :]
    freq_start, freq_width, time_start, time_width = (d[..., None, None] for d in draws.unbind(-1))
    hidden = ((bins >= freq_start) & (bins < freq_start + freq_width)) | \
        ((frames >= time_start) & (frames < time_start + time_width))
    return x.masked_fill(hidden, 0.0)


def crop(x: torch.Tensor, starts: torch.Tensor, frames: int) -> torch.Tensor:
    """Random crop: `frames` consecutive frames of each example from its start (`crop_starts`)."""
    positions = starts[:, None] + torch.arange(frames, device=x.device)
    return x.gather(3, positions[:, None, None, :].expand(*x.shape[:3], frames))


def freq_mixstyle(log_mels: torch.Tensor, weights: torch.Tensor, partners: torch.Tensor,
                  eps: float = 1e-6) -> torch.Tensor:
    """Freq-MixStyle (Schmid et al., DCASE 2022 technical report, after MixStyle: Zhou et al.,
    ICLR 2021) on one-channel log-mels (clips, n_mels, frames), as the authors' code
    (cpjku_dcase23 `helpers/utils.py`, `mixstyle`) does it: each clip's frequency bands are
    normalised by their mean and standard deviation over time (torch's default, unbiased
    variance, plus `eps`), then re-scaled with statistics mixed between the clip's own (weight
    `weights`, per clip) and those of clip `partners[i]`. Statistics are constants (no gradient
    flows through them). `assemble` applies it before the deltas are taken and before mixup, so
    the deltas follow the new statistics (docs/spec.md section 10)."""
    mean = log_mels.mean(dim=-1, keepdim=True).detach()
    std = (log_mels.var(dim=-1, keepdim=True) + eps).sqrt().detach()
    weight = weights.reshape(-1, 1, 1)
    mixed_mean = weight * mean + (1 - weight) * mean[partners]
    mixed_std = weight * std + (1 - weight) * std[partners]
    return (log_mels - mean) / std * mixed_std + mixed_mean


def mix(first: torch.Tensor, second: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mixup: the weighted sum of pairs (inputs or soft targets) with the first one's weight
    per pair (`mixup_weights`), in the reference's order of operations."""
    weight = weight.reshape((-1,) + (1,) * (first.ndim - 1))
    return weight * first + (1 - weight) * second
