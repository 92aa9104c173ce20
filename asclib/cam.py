"""Class activation maps: where in time and frequency a CNN found the evidence for a class
(paper section 3.4; notebook 10 and `python -m asclib predict --cam`).

`maps(model, inputs)` gives one map per clip on the clip's own (mel bands, frames) grid, so it
can be drawn under the spectrogram (`plots.cam_figure`). The methods (`architectures.CAM_METHODS`):
- "cam" (Zhou et al. 2016), the paper's: the class map a model averages into its logit (the
  ResNet's is classes x mel bands x frames / 16, `models.ResNet.class_maps`). The FCNN's and
  fsFCNN's class maps exist too but are coarse (frequency / 16 and / 4, time / 16 and / 32),
  which is why the paper shows the ResNet only.
- "gradcam" (Selvaraju et al. 2017), so that every model can be looked at: the feature
  maps of one layer, weighted by the mean gradient of the class's logit over each map, summed
  and rectified. By default the layer is the last ReLU before the 1x1 classifier convolution,
  i.e. the output of the last convolutional block: for the FCNN the block's own resolution,
  before its max pooling (twice the class maps' in both axes), for the fsFCNN its class maps'
  resolution (its last block is not pooled), for the ResNet the two frequency paths joined.
  `layer` names another one (a name from `model.named_modules()`).

Do the maps fall on the acoustic events? `event_frames` marks the frames of a clip inside its
events (the corpus's `events.tsv`), `mass_in_events` measures each clip's share of map mass
there against the share of frames there, `attention_ratio` pools clips with a bootstrap
interval (notebook 10), and `profile_agreement` asks whether two models (3 and 10 classes)
look at the same moments.

The models are fully convolutional, so any clip length works. Each map cell is put back at the
centre of its receptive field in the input, worked out from the kernels, strides and paddings of
the layers in front of it (TensorFlow's "same" padding pads the end of an even-sized axis and
both ends of an odd one, so the centres move with the clip length: in the quick ResNet cell j
of a 112-frame clip sits at frame 16 j + 15, of a 118-frame clip at 16 j + 5). Each mel band
and frame then takes the linear interpolation between its two nearest cell centres, the
outermost cell's value beyond them: a separable bilinear interpolation with the cells at their
true positions, rather than `align_corners=False`, which would put them up to about half a
stride off here.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from asclib import architectures, features, metrics, models
from asclib.config import Profile

METHODS = architectures.CAM_METHODS


def default_method(model: nn.Module) -> str:
    """The method `maps` uses when none is asked: its architecture's (`architectures`): "cam"
    for the ResNet (the paper's maps), "gradcam" for the FCNN and fsFCNN (their class maps are
    coarse). A model of no registered architecture is refused."""
    try:
        return architectures.of_model(model).cam
    except ValueError as error:
        raise ValueError(f"no class activation maps: {error} (methods {', '.join(METHODS)})") from None


def maps(model: nn.Module, inputs, classes=None, method: str | None = None, *, layer: str | None = None) -> np.ndarray:
    """Class activation maps of `inputs` (clips, 3, mel bands, frames; array or tensor, any
    number of frames) as float32 (clips, mel bands, frames).

    `classes`: None (each clip's predicted class), an int (the same class for every clip) or
    one int per clip. `method`: "cam", "gradcam" or None (`default_method(model)`); `layer`: the
    layer Grad-CAM reads (default: the output of the last convolutional block). Maps are
    rectified and divided by their maximum, so each clip's map lies in [0, 1] (an all-zero map
    stays zero). The model is evaluated in eval mode and left as it was: same mode, no
    gradients, no hooks.
    """
    default = default_method(model)  # refuses unsupported models, whichever method is asked
    method = method or default
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {METHODS}")
    if method == "cam" and layer is not None:
        raise ValueError("CAM reads the class maps; a layer can be chosen for Grad-CAM only")
    if method == "gradcam":
        layer = layer or _default_layer(model)
        if layer not in _layers(model):
            raise ValueError(f"{type(model).__name__} has no layer {layer!r} for Grad-CAM; "
                             f"choose one of: {', '.join(_layers(model))}")
    x = torch.as_tensor(inputs, dtype=torch.float32, device=next(model.parameters()).device)
    x = models.check_inputs(x, model.n_mels)
    was_training = model.training
    model.eval()
    try:
        coarse = _class_map(model, x, classes) if method == "cam" else _grad_cam(model, x, classes, layer)
    finally:
        model.train(was_training)
    return _on_input_grid(coarse.cpu().numpy(), _grid_steps(model, layer), x.shape[2:])


def _class_map(model: nn.Module, x: torch.Tensor, classes) -> torch.Tensor:
    with torch.no_grad():
        class_maps = model.class_maps(x)
    chosen = _classes(classes, class_maps.mean(dim=(2, 3)))
    return class_maps[torch.arange(len(x)), chosen]


def _grad_cam(model: nn.Module, x: torch.Tensor, classes, layer: str) -> torch.Tensor:
    kept = []

    def keep(module, inputs, output):  # a leaf of its own: no gradient reaches the parameters
        kept.append(output.detach().requires_grad_())
        return kept[-1]

    hook = dict(model.named_modules())[layer].register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(x)
            chosen = _classes(classes, logits.detach())
            (gradient,) = torch.autograd.grad(logits[torch.arange(len(x)), chosen].sum(), kept[0])
    finally:
        hook.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    return (weights * kept[0].detach()).sum(dim=1)


def _classes(classes, logits: torch.Tensor) -> torch.Tensor:
    """The class of each clip: the predicted one, or the one(s) asked for, checked."""
    clips, n_classes = logits.shape
    if classes is None:
        return logits.argmax(dim=1)
    chosen = torch.as_tensor(classes, dtype=torch.long, device=logits.device)
    if chosen.dim() == 0:
        chosen = chosen.expand(clips)
    if chosen.shape != (clips,) or chosen.min() < 0 or chosen.max() >= n_classes:
        raise ValueError(f"classes must be an int or one int per clip ({clips}), each in 0..{n_classes - 1}; "
                         f"got {classes!r}")
    return chosen


def _chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The named layers from the input to the class maps, in the order they run. The ResNet's
    second frequency path is left out: it sees the upper mel bands on the same time grid, and
    neither path strides in frequency, so walking one path maps both halves."""
    roots = ("low", "head") if isinstance(model, models.ResNet) else ("body", "head")
    return [(name, module) for name, module in model.named_modules() if name.split(".")[0] in roots]


def _layers(model: nn.Module) -> list[str]:
    """Layers Grad-CAM can read: those whose output covers the whole input grid (after the
    ResNet's two paths join), outside the channel attention's MLP."""
    chain = _chain(model)
    attention = tuple(name + "." for name, module in chain if isinstance(module, models.ChannelAttention))
    return [name for name, _ in chain if not name.startswith("low") and not name.startswith(attention)]


def _default_layer(model: nn.Module) -> str:
    """The last ReLU before the 1x1 classifier convolution."""
    if isinstance(model, models.ResNet):
        return "head.1"
    return [name for name, module in model.body.named_modules(prefix="body") if isinstance(module, nn.ReLU)][-1]


def _grid_steps(model: nn.Module, layer: str | None) -> list[tuple]:
    """(kernel, stride, padding) along (frequency, time) of every layer that moves or resamples
    the grid, from the input up to `layer`'s output (None: the class maps); padding is a number
    of cells or "same"."""
    chain = _chain(model)
    if layer is not None:
        names = [name for name, _ in chain]
        end = names.index(layer) + 1
        while end < len(names) and names[end].startswith(layer + "."):
            end += 1
        chain = chain[:end]
    steps = []
    for _, module in chain:
        if isinstance(module, models.SameConv):
            steps.append(tuple(zip(module.kernel_size, module.stride, ("same", "same"))))
        elif isinstance(module, models.SamePool):
            steps.append(tuple(zip((3, 3), module.stride, ("same", "same"))))
        elif isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
            steps.append(tuple(zip(*(_pair(v) for v in (module.kernel_size, module.stride, module.padding)))))
    return steps


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, tuple) else (value, value)


def _on_input_grid(coarse: np.ndarray, steps: list[tuple], grid: tuple[int, int]) -> np.ndarray:
    """Rectify (clips, cells, cells) maps, interpolate them onto `grid` and scale each to [0, 1]."""
    frequency, time = (_interpolation(size, cells, [step[axis] for step in steps])
                       for axis, (size, cells) in enumerate(zip(grid, coarse.shape[1:])))
    placed = np.einsum("fa,cab,tb->cft", frequency, np.maximum(coarse.astype(np.float64), 0), time)
    peaks = placed.max(axis=(1, 2), keepdims=True)
    return (placed / np.where(peaks > 0, peaks, 1)).astype(np.float32)


def _interpolation(size: int, cells: int, steps: list[tuple]) -> np.ndarray:
    """(size, cells) weights along one axis: cell j sits at input position scale * j + offset
    (the centre of its receptive field), and each input bin interpolates linearly between the
    two nearest cell centres (takes the outermost cell's value beyond them)."""
    scale, offset, walked = 1.0, 0.0, size
    for kernel, stride, padding in steps:
        before = models.same_padding(walked, kernel, stride)[0] if padding == "same" else padding
        offset += scale * ((kernel - 1) / 2 - before)
        scale *= stride
        walked = math.ceil(walked / stride) if padding == "same" else (walked + 2 * padding - kernel) // stride + 1
    if walked != cells:
        raise RuntimeError(f"cam.py walked {size} bins to {walked} cells, the model gave {cells}: "
                           "a layer of models.py that changes the grid is missing from _grid_steps")
    position = np.clip((np.arange(size) - offset) / scale, 0, cells - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, cells - 1)
    weights = np.zeros((size, cells))
    np.add.at(weights, (np.arange(size), low), 1 - (position - low))
    np.add.at(weights, (np.arange(size), high), position - low)
    return weights


def for_clips(model: nn.Module, inputs: np.ndarray, method: str | None = None, batch_size: int = 256) -> np.ndarray:
    """`maps` of each clip's predicted class, `batch_size` clips at a time (a whole evaluation
    split at once would hold every layer's activations in memory)."""
    return np.concatenate([maps(model, inputs[start:start + batch_size], method=method)
                           for start in range(0, len(inputs), batch_size)])


# --------------------------------------------------------------------------------------------
# Do the maps fall on the events? (notebook 10)


def event_frames(events: pd.DataFrame, frames: int, profile: Profile) -> np.ndarray:
    """Which of a clip's network-input frames (the log-mel frames the valid deltas keep, the
    first one being log-mel frame 4) have their centre inside one of `events` (onset, offset
    in seconds): boolean (frames,)."""
    centres = (np.arange(frames) + features.EDGE_FRAMES) * profile.features.hop_length / profile.audio.sample_rate
    inside = np.zeros(frames, dtype=bool)
    for onset, offset in events[["onset", "offset"]].itertuples(index=False):
        inside |= (centres >= onset) & (centres < offset)
    return inside


def figure_clips(gain: pd.Series, truth: pd.DataFrame, scenes, eligible: pd.Series) -> list[str]:
    """The clips of notebook 10's Figures 2 and 3: for each scene of `scenes`, the device-A clip of
    that scene among `eligible` whose `gain` is largest (all three indexed by filename; `truth`
    has device and label). A dataset without such a clip (the smoke run's few real clips) gives
    the best unused device-A clip of any scene, else the best unused clip, else the best one."""
    device_a = truth["device"] == "a"
    chosen = []
    for scene in scenes:
        unused = eligible & ~gain.index.isin(chosen)
        pools = (unused & device_a & (truth["label"] == scene), unused & device_a, unused, eligible)
        chosen.append(gain[next(pool for pool in pools if pool.any())].idxmax())
    return chosen


def mass_in_events(cams: np.ndarray, masks: np.ndarray) -> pd.DataFrame:
    """Per clip: the share of its map's mass (summed over mel bands) on event frames, and the
    share of its frames that are event frames (what a map blind to events would put there)."""
    mass = cams.sum(axis=1)
    total = mass.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = np.where(total > 0, (mass * masks).sum(axis=1) / total, np.nan)
    return pd.DataFrame({"mass in events": inside, "area of events": masks.mean(axis=1)})


def attention_ratio(shares: pd.DataFrame, by: list[str], n_resamples: int = 1000, seed: int = 0,
                    confidence: float = 0.95) -> pd.DataFrame:
    """Mean share of map mass on events over mean share of event frames, per group of `by`,
    over the clips where the question can be asked (some frames inside events and some
    outside, a non-zero map), with a percentile bootstrap interval over clips. A ratio above
    one: the maps favour event frames; one: they ignore where the events are."""
    usable = shares[(shares["area of events"] > 0) & (shares["area of events"] < 1)
                    & shares["mass in events"].notna()]
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in usable.groupby(by, observed=True, sort=True):
        inside, area = group["mass in events"].to_numpy(), group["area of events"].to_numpy()
        draws = rng.integers(0, len(group), size=(n_resamples, len(group)))
        resampled = inside[draws].mean(axis=1) / area[draws].mean(axis=1)
        low, high = metrics.percentile_interval(resampled, confidence)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "clips": len(group),
                     "mass in events": inside.mean(), "area of events": area.mean(),
                     "ratio": inside.mean() / area.mean(), "low": low, "high": high})
    return pd.DataFrame(rows).set_index(by).round(3)


def time_profiles(cams: np.ndarray) -> np.ndarray:
    """Each map's mass per frame (summed over mel bands), scaled to sum to one."""
    mass = cams.sum(axis=1)
    return mass / np.maximum(mass.sum(axis=1, keepdims=True), 1e-12)


def profile_agreement(first: np.ndarray, second: np.ndarray, n_resamples: int = 1000, seed: int = 0,
                      confidence: float = 0.95) -> pd.Series:
    """Whether two models look at the same moments: the mean correlation of their per-clip time
    profiles (same clip), against the same with the second model's clips shuffled (what
    unrelated maps would give), each with a bootstrap interval over clips."""
    rng = np.random.default_rng(seed)

    def correlations(a, b):
        a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
        norm = np.sqrt((a ** 2).sum(axis=1) * (b ** 2).sum(axis=1))
        return np.where(norm > 0, (a * b).sum(axis=1) / np.maximum(norm, 1e-12), np.nan)

    same = correlations(first, second)
    shuffled = correlations(first, second[rng.permutation(len(second))])
    out = {}
    for label, values in (("same clip", same), ("shuffled clips", shuffled)):
        values = values[~np.isnan(values)]
        draws = values[rng.integers(0, len(values), size=(n_resamples, len(values)))].mean(axis=1)
        low, high = metrics.percentile_interval(draws, confidence)
        out[label] = {"mean correlation": values.mean(), "low": low, "high": high, "clips": len(values)}
    return pd.DataFrame(out).T.round(3)


def describe_attention(ratios: pd.DataFrame) -> list[str]:
    """One plain sentence per row of `attention_ratio`, from its interval (notebook 10)."""
    sentences = []
    for key, row in ratios.iterrows():
        interval = f"ratio {row['ratio']:.2f} ({row['low']:.2f} to {row['high']:.2f}, {int(row['clips'])} clips)"
        share = f"{100 * abs(row['ratio'] - 1):.0f} %"
        if row["low"] > 1:
            verdict = f"its maps put {share} more mass on event frames than the events' duration alone would"
        elif row["high"] < 1:
            verdict = f"its maps put {share} less mass on event frames than their duration alone would: the background"
        else:
            verdict = "not distinguishable from a map blind to where the events are"
        sentences.append(f"{key}: {interval}: {verdict}.")
    return sentences


def describe_agreement(agreement: pd.DataFrame) -> list[str]:
    """One sentence per model of `profile_agreement`'s tables (indexed model, pairs): whether its
    3-class and 10-class maps agree in time more than maps of different clips do."""
    sentences = []
    for model, table in agreement.groupby(level=0):
        same, other = table.droplevel(0).loc["same clip"], table.droplevel(0).loc["shuffled clips"]
        numbers = (f"correlation {same['mean correlation']:.2f} ({same['low']:.2f} to {same['high']:.2f}) on the same "
                   f"clip, {other['mean correlation']:.2f} ({other['low']:.2f} to {other['high']:.2f}) across clips")
        verdict = ("look at the same moments more than chance" if same["low"] > other["high"]
                   else "do not agree in time more than chance here")
        sentences.append(f"{model}: the 3-class and 10-class maps {verdict}: {numbers}.")
    return sentences
