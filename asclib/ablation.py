"""The augmentation ablation of the paper's Table 3 (section 3.3), over several seeds (notebook 09).

The 10-class ResNet is trained once per row and seed. Mixup and random crop are always on;
each row adds augmentations to the one before: SpecAugment (sa), spectrum correction (sc),
reverberation with DRC (r), then pitch shift, speed change, noise and mixing (aug). The paper's
rows enable SpecAugment on the ResNet although the authors' code (and notebook 04) trains it
without; `NOTEBOOK_04_ROW` is notebook 04's recipe at the ablation's budget, for comparison.

Every row has the same budget (`profile.ablation`: width, epochs) and the same offline
augmented clips; a seed changes the initial weights, the batch order and the online
augmentations. Runs are cached like every training (`train.fit`), and each run's evaluation
predictions are stored in its run folder, so re-running costs seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from asclib import train
from asclib.config import Profile, get_profile
from asclib.data import DEVICE_GROUPS
from asclib.files import atomic_path

EXTRA = ("pitch_shift", "speed_change", "noise", "mix_audio")
# label -> (offline augmentations, SpecAugment); each row adds to the one before
ROWS = {
    "ResNet (mixup, crop)": ((), False),
    "+sa": ((), True),
    "+sa+sc": (("spectrum_correction",), True),
    "+sa+sc+r": (("spectrum_correction", "reverb_drc"), True),
    "+sa+sc+r+aug": (("spectrum_correction", "reverb_drc", *EXTRA), True),
}
NOTEBOOK_04_ROW = ("+sc+r+aug, no sa (notebook 04's recipe)", (("spectrum_correction", "reverb_drc", *EXTRA), False))
PREDICTIONS = "evaluation.csv"
GROUP = "ablation"  # runs/<profile>/ablation/: apart from the notebooks' models
COLUMNS = (*DEVICE_GROUPS, "overall")


def budget(profile: str | Profile) -> Profile:
    """The profile with the ablation's ResNet width and epochs: what every row is trained with."""
    profile = get_profile(profile)
    return dataclasses.replace(
        profile, models=dataclasses.replace(profile.models, resnet_width=profile.ablation.resnet_width),
        train=dataclasses.replace(profile.train, resnet_epochs=profile.ablation.epochs))


def rows(with_notebook_04: bool = True) -> dict:
    """The rows to train, in order: Table 3's, then (optionally) notebook 04's recipe."""
    return {**ROWS, **dict([NOTEBOOK_04_ROW])} if with_notebook_04 else dict(ROWS)


def run_all(index: pd.DataFrame, profile: str | Profile = "quick", with_notebook_04: bool = True,
            workers: int | None = None) -> pd.DataFrame:
    """Train every row under every seed of `profile.ablation` (cached, two at a time on a CPU) and
    return one row per (row, seed) with the accuracy per device and group (%)."""
    profile = get_profile(profile)
    trained = budget(profile)
    chosen = rows(with_notebook_04)
    sets = {methods: train.training_set(index, 10, profile, methods) for methods, _ in chosen.values()}
    jobs = [{"name": "resnet", "n_classes": 10, "data": methods, "profile": trained, "seed": seed,
             "spec_augment": masked, "group": GROUP} for methods, masked in chosen.values() for seed in profile.ablation.seeds]
    train.fit_many(jobs, sets, f"ablation: {len(chosen)} rows x {len(profile.ablation.seeds)} seeds")
    evaluation = index[index["split"] == "evaluate"]
    results = []
    for label, (methods, masked) in chosen.items():
        for seed in profile.ablation.seeds:
            run = train.fit("resnet", 10, sets[methods], trained, seed, progress=False, spec_augment=masked,
                            group=GROUP)
            accuracy = train.accuracy(_predictions(run, evaluation, trained)).iloc[0]
            results.append({"row": label, "seed": seed, **accuracy.to_dict()})
    return pd.DataFrame(results)


def _predictions(run: train.Run, evaluation: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """A run's evaluation predictions, computed once and kept in its run folder."""
    path = run.folder / PREDICTIONS
    if path.is_file():
        stored = pd.read_csv(path)
        if set(stored["filename"]) == set(evaluation["filename"]):
            return stored
    predictions = train.predict(run.model, evaluation, 10, profile)
    with atomic_path(path) as temporary:
        predictions.to_csv(temporary, index=False, float_format="%.6f")
    return predictions


def table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of every accuracy column, each followed by its standard deviation
    (`<column> std`), one row per ablation row in training order."""
    columns = [c for c in results.columns if c not in ("row", "seed")]
    grouped = results.groupby("row", sort=False)[columns]
    mean, spread = grouped.mean(), grouped.std(ddof=1)
    summary = pd.concat([mean, spread.add_suffix(" std")], axis=1)
    summary = summary[[name for c in columns for name in (c, f"{c} std")]].round(2)
    summary.index.name = "system"
    return summary


def steps(results: pd.DataFrame, columns=COLUMNS, confidence: float = 0.95) -> pd.DataFrame:
    """For each step of Table 3 (a row against the row before) and each column: the paired
    difference across seeds (same seed, same evaluation clips), its mean, standard deviation
    and Student-t interval, and whether the interval excludes zero."""
    labels = list(dict.fromkeys(results["row"]))
    chain = [label for label in labels if label in ROWS]
    pairs = list(zip(chain[1:], chain[:-1]))
    if NOTEBOOK_04_ROW[0] in labels:
        pairs.append((chain[-1], NOTEBOOK_04_ROW[0]))  # SpecAugment on top of everything
    by_row = results.set_index(["row", "seed"])
    out = []
    for row, before in pairs:
        for column in columns:
            difference = (by_row.loc[row, column] - by_row.loc[before, column]).dropna()
            n = len(difference)
            mean, spread = difference.mean(), difference.std(ddof=1)
            half = stats.t.ppf(0.5 + confidence / 2, n - 1) * spread / np.sqrt(n)
            out.append({"step": row, "from": before, "group": column, "seeds": n, "mean gain": round(mean, 2),
                        "std": round(spread, 2), "low": round(mean - half, 2), "high": round(mean + half, 2),
                        "beyond seed noise": bool(mean - half > 0 or mean + half < 0)})
    return pd.DataFrame(out).set_index(["step", "from", "group"])


def describe(step_table: pd.DataFrame, group: str = "overall") -> list[str]:
    """One plain sentence per step, from the intervals of `steps` (notebook 09, README)."""
    sentences = []
    for (row, before, column), values in step_table.xs(group, level="group", drop_level=False).iterrows():
        interval = f"{values['mean gain']:+.1f} points ({values['low']:+.1f} to {values['high']:+.1f}, {values['seeds']} seeds)"
        if values["beyond seed noise"]:
            verdict = "larger than the seed-to-seed noise: a gain" if values["mean gain"] > 0 else \
                "larger than the seed-to-seed noise: a loss"
        else:
            verdict = "not distinguishable from the seed-to-seed noise here"
        sentences.append(f"{row} against {before}, {column}: {interval}, {verdict}.")
    return sentences
