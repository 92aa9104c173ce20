"""Accuracy the way the paper reports it (per device, per device group, overall), log loss, and
intervals of the difference between two systems: over the evaluation clips (a paired
bootstrap), and over training seeds and clips together (notebooks 01, 04-09, 11).

Prediction tables have one row per evaluation clip with at least `device` and `correct`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from asclib.config import training_overrides
from asclib.data import DEVELOPMENT_DEVICES, DEVICE_GROUPS, DEVICES, GROUP_OF

EPSILON = 1e-15  # log loss clips probabilities at this floor (as scikit-learn did)
CONFIDENCE = 0.95  # of the bootstrap's percentile interval
DEVICE_SPREAD = "device std"  # the column of `accuracy_by_device` with the spread over devices


def accuracy_by_device(table: pd.DataFrame, label: str = "accuracy %", decimals: int | None = 1) -> pd.DataFrame:
    """One row: accuracy (%) on each device, each group (A, B&C, s1-s3, s4-s6, s7-s11), overall
    and the device spread, rounded to `decimals` (None: not rounded).

    Group accuracies average their devices' clips; with the same number of clips per device
    (the DCASE evaluation split), that is the mean of the devices' accuracies. "overall" is over
    the development set's devices (a to s6), as in the paper, so that it means the same with or
    without the evaluation-only s7-s11; "device std" is the standard deviation of the accuracies
    of every device present (s7-s11 included): how unevenly the devices are served.
    """
    devices = table["device"].astype(str)
    correct = table["correct"].astype(float)
    per_device = correct.groupby(devices).mean()
    per_group = correct.groupby(devices.map(GROUP_OF)).mean()
    row = {**{d: per_device.get(d, np.nan) for d in DEVICES},
           **{g: per_group.get(g, np.nan) for g in DEVICE_GROUPS},
           "overall": correct[devices.isin(DEVELOPMENT_DEVICES)].mean(),
           DEVICE_SPREAD: per_device.std(ddof=0)}
    row = pd.Series(row) * 100
    return (row if decimals is None else row.round(decimals)).to_frame(label).T


def log_loss(probabilities: np.ndarray, true_index: np.ndarray) -> float:
    """Mean over clips of -ln p(true class), with p clipped below at EPSILON (notebooks 07, 08, 11).

    `probabilities` is (clips, classes) with rows summing to one; `true_index` the column of
    each clip's true class.
    """
    probabilities, true_index = np.asarray(probabilities, dtype=float), np.asarray(true_index)
    if probabilities.ndim != 2 or true_index.shape != (len(probabilities),):
        raise ValueError(f"log_loss needs probabilities of shape (clips, classes) and one true index "
                         f"per clip; got shapes {probabilities.shape} and {true_index.shape}")
    if len(true_index) and not (0 <= true_index.min() and true_index.max() < probabilities.shape[1]):
        raise ValueError(f"log_loss: true class indices must lie in 0..{probabilities.shape[1] - 1}, "
                         f"got {true_index.min()}..{true_index.max()}")
    chosen = probabilities[np.arange(len(true_index)), true_index]
    return float(-np.log(np.clip(chosen, EPSILON, None)).mean())


def percentile_interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central `confidence` percentile interval of bootstrap draws (notebooks 07-11)."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return low, high


def _group_resamples(gain: np.ndarray, devices: np.ndarray, n_resamples: int, seed: int) -> dict:
    """Per device group and overall (the development devices, as `accuracy_by_device`): (which
    clips belong to it, the mean of `gain` over `n_resamples` resamples of its clips drawn with
    replacement within each device, so that each device keeps its clip count, in percentage points)."""
    unknown = sorted(set(devices) - set(DEVICES))
    if unknown:
        raise ValueError(f"unknown device(s) {unknown}; expected some of {DEVICES}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    sums, counts = {}, {}  # per device: resampled sums of the gain, and the clip count
    for device in DEVICES:
        clips = gain[devices == device]
        if len(clips):
            draws = rng.integers(0, len(clips), size=(n_resamples, len(clips)))
            sums[device], counts[device] = clips[draws].sum(axis=1), len(clips)
    members = {group: [d for d in sums if GROUP_OF[d] == group] for group in DEVICE_GROUPS}
    members["overall"] = [d for d in sums if d in DEVELOPMENT_DEVICES]
    members = {g: m for g, m in members.items() if m}  # a group without clips (s7-s11 alone: no "overall") has no row
    out = {}
    for group, group_devices in members.items():
        n = sum(counts[d] for d in group_devices)
        out[group] = (np.isin(devices, group_devices), sum(sums[d] for d in group_devices) / n * 100)
    return out


def _paired(correct_a, correct_b, devices, caller: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two systems' per-clip values as (seeds, clips) float arrays and the devices, checked."""
    a, b = np.atleast_2d(np.asarray(correct_a, dtype=float)), np.atleast_2d(np.asarray(correct_b, dtype=float))
    devices = np.asarray(devices).astype(str)
    if not a.shape[-1] == b.shape[-1] == len(devices) or a.shape != b.shape:
        raise ValueError(f"{caller} needs one value per clip in each input, for the same seeds; got "
                         f"{a.shape[-1]} (system a), {b.shape[-1]} (system b) and {len(devices)} (devices), "
                         f"{len(a)} and {len(b)} seeds")
    return a, b, devices


def paired_bootstrap(correct_a, correct_b, devices, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Accuracy gain of system b over system a (percentage points) per device group and overall,
    with a percentile interval at CONFIDENCE (notebook 11: one pair of released score files).

    Evaluation clips are resampled with replacement within each device (each device keeps its
    clip count), and the same resample is applied to both systems, so the interval reflects
    the clips both were tested on. Columns: gain (on the clips as they are), low, high, and
    distinguishable (the interval excludes zero). Same seed, same result. For systems trained
    under several seeds, `seeded_gain`.
    """
    a, b, devices = _paired(correct_a, correct_b, devices, "paired_bootstrap")
    rows = {}
    gain = (b - a)[0]
    for group, (clips, resampled) in _group_resamples(gain, devices, n_resamples, seed).items():
        low, high = percentile_interval(resampled)
        rows[group] = {"gain": gain[clips].mean() * 100, "low": low, "high": high}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["distinguishable"] = (table["low"] > 0) | (table["high"] < 0)
    return table


def interval_basis(seeds: int) -> str:
    """What a `seeded_gain` interval is taken over, in words: the seeds and the clips, or with
    one seed the clips alone (the sentences of `tables.describe_gains` and `ablation`)."""
    return f"over {seeds} seeds and the clips" if seeds > 1 else "over the clips of one seed"


def seeded_gain(correct_a, correct_b, devices, n_resamples: int = 1000, seed: int = 0,
                confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Accuracy gain of system b over system a (percentage points), mean over training seeds,
    per device group and overall, with an interval that accounts for both the seeds and the
    evaluation clips (notebooks 07-09).

    `correct_a` and `correct_b` are (seeds, clips): row k of both comes from training seed k (the
    same seed for both systems: a paired design) on the same clips. The gain's variance has two
    parts: the seeds' (the variance of the per-seed gains over the seeds, divided by their
    number) and the clips' (the variance of the seed-mean gain over resamples of the clips within
    each device, as `paired_bootstrap` draws them). The interval is gain +- t x sqrt(sum), with
    the t quantile's degrees of freedom by Welch-Satterthwaite (the seeds' part has seeds - 1 of
    them, the clips' part very many): three seeds whose gains disagree widen it a lot, clips alone
    give the normal quantile. With one seed only the clips count (the seed part is unknown, not
    zero: the `seeds` column says so). Columns: gain, low, high, distinguishable (the interval
    excludes zero), seeds, seed std (of the per-seed gains), clip std (of the seed-mean gain over
    clip resamples), half width.
    """
    a, b, devices = _paired(correct_a, correct_b, devices, "seeded_gain")
    seeds = len(a)
    differences = b - a
    seed_mean = differences.mean(axis=0)
    rows = {}
    for group, (clips, resampled) in _group_resamples(seed_mean, devices, n_resamples, seed).items():
        gain = seed_mean[clips].mean() * 100
        per_seed = differences[:, clips].mean(axis=1) * 100
        seed_std = per_seed.std(ddof=1) if seeds > 1 else np.nan
        clip_std = resampled.std(ddof=1) if len(resampled) > 1 else 0.0
        half = half_width(seed_std, clip_std, seeds, confidence)
        rows[group] = {"gain": gain, "low": gain - half, "high": gain + half, "seeds": seeds,
                       "seed std": seed_std, "clip std": clip_std, "half width": half}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.insert(3, "distinguishable", (table["low"] > 0) | (table["high"] < 0))
    return table


def half_width(seed_std: float, clip_std: float, seeds: int, confidence: float = CONFIDENCE) -> float:
    """Half width of `seeded_gain`'s interval: t x sqrt(seed_std^2 / seeds + clip_std^2), the t
    quantile's degrees of freedom by Welch-Satterthwaite; one seed (or seed_std NaN): clips only."""
    from scipy import stats

    seed_part = seed_std ** 2 / seeds if seeds > 1 and np.isfinite(seed_std) else 0.0
    total = seed_part + clip_std ** 2
    freedom = total ** 2 / (seed_part ** 2 / (seeds - 1)) if seed_part > 0 else np.inf
    return float(stats.t.ppf(0.5 + confidence / 2, freedom) * np.sqrt(total))


def confusion(true: pd.Series, predicted: pd.Series, classes) -> pd.DataFrame:
    """Counts of (true class, predicted class), rows true, in the given class order."""
    table = pd.crosstab(pd.Categorical(true.astype(str), categories=classes),
                        pd.Categorical(predicted.astype(str), categories=classes), dropna=False)
    table.index.name, table.columns.name = "true", "predicted"
    return table


def check_plausible(table: pd.DataFrame, n_classes: int) -> None:
    """Guard of every notebook that reports accuracies (04-08): each row's overall accuracy is
    above twice chance and device A is not below the unseen devices s4-s6. Wide on purpose:
    a broken pipeline (clips paired with the wrong labels or scores) fails it, a CPU's last
    decimals do not. Raises AssertionError naming the row. Not applied in a smoke run
    (`config.training_overrides`): models trained a few steps are not expected to learn."""
    if training_overrides():
        return
    for name, row in table.iterrows():
        assert row["overall"] > 2 * 100 / n_classes, (
            f"{name}: overall accuracy {row['overall']} % is not above twice chance ({2 * 100 / n_classes:.1f} %)")
        assert row["A"] >= row["s4-s6"], f"{name}: device A ({row['A']} %) scores below the unseen s4-s6 ({row['s4-s6']} %)"
