"""The augmentation ablation of the paper's Table 3 (section 3.3), over several seeds (notebook 09).

The 10-class ResNet is trained once per row and seed. A row is a recipe, a list of method names
(`augment.METHODS`). Mixup and random crop are always on; each row adds augmentations to the
one before: SpecAugment (sa), spectrum correction (sc), reverberation with DRC (r), then pitch
shift, speed change, noise and mixing (aug). The rows beyond the paper (`BEYOND_PAPER`) add
later methods to its full recipe, such as device impulse responses (dir) and Freq-MixStyle
(fms); every row and its recipe: docs/library.md, "The registries". The paper's rows enable SpecAugment on the ResNet
although the authors' code (and notebook 04) trains it without; `NOTEBOOK_04_ROW` is notebook
04's recipe (`architectures`) at the ablation's budget, for comparison (where that budget is
notebook 04's, as in the paper profile, its runs are notebook 04's own). A new row is one more
entry of `ROWS` (and its method in `augment`, if it is new): no other row's runs change.

Every row has the same budget (`profile.ablation`: width, epochs) and the same offline
augmented clips; a seed changes the initial weights, the batch order and the online
augmentations. Each run is trained once and committed with its evaluation predictions
(`store`), so re-running costs seconds.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from asclib import architectures, augment, metrics, profiles, store, train
from asclib.config import Profile
from asclib.data import DEVICE_GROUPS, DEVICES, GROUP_OF

EXTRA = ("pitch_shift", "speed_change", "noise", "mix_audio")
# label -> recipe (method names of augment.METHODS); each row adds to the one before
ROWS = {
    "ResNet (mixup, crop)": ("mixup", "random_crop"),
    "+sa": ("mixup", "random_crop", "spec_augment"),
    "+sa+sc": ("mixup", "random_crop", "spec_augment", "spectrum_correction"),
    "+sa+sc+r": ("mixup", "random_crop", "spec_augment", "spectrum_correction", "reverb_drc"),
    "+sa+sc+r+aug": ("mixup", "random_crop", "spec_augment", "spectrum_correction", "reverb_drc", *EXTRA),
}
# Beyond the paper: device-robustness methods that came after it (`augment`: dir,
# freq_mixstyle), on top of its full recipe, each row compared with that recipe
PAPER_ROW = "+sa+sc+r+aug"  # the paper's full recipe
PAPER_RECIPE = ROWS[PAPER_ROW]
BEYOND_PAPER = {
    "+sa+sc+r+aug+dir": (*PAPER_RECIPE, "dir"),
    "+sa+sc+r+aug+fms": (*PAPER_RECIPE, "freq_mixstyle"),
    "+sa+sc+r+aug+dir+fms": (*PAPER_RECIPE, "dir", "freq_mixstyle"),
}
NOTEBOOK_04_ROW = ("+sc+r+aug, no sa (notebook 04's recipe)", architectures.get("resnet").augmentations)
GROUP = "ablation"  # runs/<profile>/ablation/: apart from the notebooks' models
# Table 2's systems that notebook 12 compares on the unseen devices (`describe_unseen`)
UNSEEN_SYSTEMS = ("resnet", "fcnn", "fsfcnn", "ensemble", "2-stage ensemble")
COLUMNS = (*DEVICE_GROUPS, "overall")
HALF_WIDTH_GOAL = 1.5  # points: the widest interval (each side) of a step that still says something


def budget(profile: Profile) -> Profile:
    """The profile with the ablation's ResNet width and epochs: what every row is trained with."""
    return profiles.resized(profile, {("resnet", 10): profile.ablation.resnet_width},
                            {"resnet": profile.ablation.epochs})


def rows(with_notebook_04: bool = True) -> dict:
    """The rows to train, in order: Table 3's, those beyond the paper, then (optionally) notebook
    04's recipe."""
    return {**ROWS, **BEYOND_PAPER, **(dict([NOTEBOOK_04_ROW]) if with_notebook_04 else {})}


def run_arguments(label: str, recipe: tuple, seed: int, profile: Profile) -> dict:
    """`train.fit`'s keyword arguments of one row and seed (without data): notebook 04's recipe is
    notebook 04's run of that seed where the ablation's budget is notebook 04's."""
    trained = budget(profile)
    shared = label == NOTEBOOK_04_ROW[0] and trained == profile
    return {"name": "resnet", "n_classes": 10, "seed": seed, "augmentations": recipe, "profile": trained,
            "group": train.seed_group(seed) if shared else GROUP}


def jobs(index: pd.DataFrame, profile: Profile, with_notebook_04: bool = True,
         data_seed: int = 0) -> tuple[list[dict], dict]:
    """Every row under every seed of `profile.ablation` as `train.fit_many` jobs, with their
    training sets (`data_seed`: the seed of the offline augmentations; `runs.prepare` trains
    them with the notebooks' runs, in one pool)."""
    chosen = rows(with_notebook_04)
    offline = {label: augment.split(recipe)[1] for label, recipe in chosen.items()}
    sets = {methods: train.training_set(index, 10, profile, methods, seed=data_seed) for methods in offline.values()}
    listed = [{**run_arguments(label, recipe, seed, profile), "data": offline[label]}
              for label, recipe in chosen.items() for seed in profile.ablation.seeds]
    return listed, sets


def run_all(index: pd.DataFrame, profile: Profile,
            with_notebook_04: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every row under every seed, read from the committed runs (`store`; those missing trained,
    one per core), as (results, correct): one row per (row, seed) with the accuracy per device
    and group (%) and the run's training seconds, and, per evaluation clip (indexed by filename,
    with its device), whether each (row, seed) classified it correctly."""
    listed, sets = jobs(index, profile, with_notebook_04)
    stored = store.finished(listed, sets, index, description=f"ablation: {len(rows(with_notebook_04))} rows x "
                                                                 f"{len(profile.ablation.seeds)} seeds")
    labels = [(label, seed) for label in rows(with_notebook_04) for seed in profile.ablation.seeds]
    results, correct = [], {}
    for (label, seed), run in zip(labels, stored):
        predictions = run.predictions.set_index("filename").sort_index()
        correct[label, seed] = predictions[list(train.classes_of(10))].idxmax(axis=1) == predictions["label"]
        accuracy = metrics.accuracy_by_device(
            pd.DataFrame({"device": predictions["device"], "correct": correct[label, seed]})).iloc[0]
        results.append({"row": label, "seed": seed, **accuracy.to_dict(), "training s": run.seconds})
    table = pd.DataFrame(correct)
    table.insert(0, "device", predictions["device"])
    return pd.DataFrame(results), table


def table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of every accuracy column, each followed by its standard deviation
    (`<column> std`), one row per ablation row in training order."""
    columns = [c for c in results.columns if c not in ("row", "seed", "training s")]
    grouped = results.groupby("row", sort=False)[columns]
    mean, spread = grouped.mean(), grouped.std(ddof=1)
    summary = pd.concat([mean, spread.add_suffix(" std")], axis=1)
    summary = summary[[name for c in columns for name in (c, f"{c} std")]].round(2)
    summary.index.name = "system"
    return summary


def steps(results: pd.DataFrame, correct: pd.DataFrame, columns=COLUMNS, n_resamples: int = 1000,
          seed: int = 0) -> pd.DataFrame:
    """For each step of Table 3 (a row against the row before; a row beyond the paper against the
    paper's full recipe) and each column: the gain (mean
    over seeds of the paired difference: same seed, same evaluation clips) with an interval over
    seeds and clips (`metrics.seeded_gain`), its half width, and how many seeds would bring the
    half width to `HALF_WIDTH_GOAL` at the measured spreads (`seeds_needed`)."""
    labels = list(dict.fromkeys(results["row"]))
    chain = [label for label in labels if label in ROWS]
    pairs = list(zip(chain[1:], chain[:-1]))
    pairs += [(label, chain[-1]) for label in labels if label in BEYOND_PAPER]
    if NOTEBOOK_04_ROW[0] in labels:
        pairs.append((chain[-1], NOTEBOOK_04_ROW[0]))  # SpecAugment on top of everything
    seeds = sorted(set(results["seed"]))
    out = []
    for row, before in pairs:
        gain = metrics.seeded_gain(correct[[(before, s) for s in seeds]].to_numpy().T,
                                   correct[[(row, s) for s in seeds]].to_numpy().T, correct["device"],
                                   n_resamples, seed)
        for column in [c for c in columns if c in gain.index]:  # a group without clips has no row (s7-s11 on real data)
            values = gain.loc[column]
            out.append({"step": row, "from": before, "group": column, "seeds": int(values["seeds"]),
                        "mean gain": round(values["gain"], 2), "seed std": round(values["seed std"], 2),
                        "low": round(values["low"], 2), "high": round(values["high"], 2),
                        "half width": round(values["half width"], 2),
                        "beyond noise": bool(values["distinguishable"]),
                        f"seeds for +-{HALF_WIDTH_GOAL:g}": seeds_needed(values)})
    return pd.DataFrame(out).set_index(["step", "from", "group"])


def beyond_paper_pairs(results: pd.DataFrame) -> list[tuple[str, str]]:
    """(row, the paper's full recipe) for each row beyond the paper in `results` (notebook 12)."""
    return [(label, PAPER_ROW) for label in dict.fromkeys(results["row"]) if label in BEYOND_PAPER]


def device_gains(correct: pd.DataFrame, pairs, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per device, the gain of each (row, baseline) of `pairs` (percentage points): the mean over
    seeds with a 95 % interval over seeds and clips (`metrics.seeded_gain` on that device's clips),
    indexed by (system, compared with, group) as `tables.gains`, the group being the device
    (notebook 12: where a method's gain on s7-s11 comes from)."""
    seeds = sorted({s for label, s in correct.columns[1:]})
    blocks = {}
    for row, before in pairs:
        rows = {}
        for device in DEVICES:
            clips = (correct["device"] == device).to_numpy()
            if clips.any():
                gain = metrics.seeded_gain(correct.loc[clips, [(before, s) for s in seeds]].to_numpy().T,
                                           correct.loc[clips, [(row, s) for s in seeds]].to_numpy().T,
                                           correct["device"][clips], n_resamples, seed)
                rows[device] = gain.loc[GROUP_OF[device]]
        blocks[row, before] = pd.DataFrame(rows).T
    return pd.concat(blocks, names=["system", "compared with", "group"])


def seeds_needed(gain: pd.Series, goal: float = HALF_WIDTH_GOAL, most: int = 200) -> int | None:
    """The fewest seeds whose interval (`metrics.half_width`) would be at most `goal` points wide
    on each side, if the per-seed gains spread as they did here (`seed std`) and the clips' part
    stayed what it is (it shrinks a little with more seeds, so this errs high). None when even
    `most` seeds would not do (the clips alone are too few) or the spread is unknown (one seed)."""
    if not np.isfinite(gain["seed std"]):
        return None
    return next((n for n in range(2, most + 1)
                 if metrics.half_width(gain["seed std"], gain["clip std"], n) <= goal), None)


def cost(results: pd.DataFrame, seconds_at_notebook_04: float, step_table: pd.DataFrame,
         cores=(2, 8, 16)) -> pd.DataFrame:
    """What Table 3 costs in training: as run here (its runs' measured seconds), and estimated
    with the seeds that would bring every step's overall interval to `HALF_WIDTH_GOAL` (`steps`;
    unknown with one seed, or where even 200 would not), each run as long as notebook 04's
    ResNet took here (`seconds_at_notebook_04`, the same budget). CPU hours, and the hours on each
    of `cores` cores with one run per core (notebook 09, docs/results.md)."""
    labels = list(dict.fromkeys(results["row"]))
    seeds = results["seed"].nunique()
    needed = step_table.xs("overall", level="group")[f"seeds for +-{HALF_WIDTH_GOAL:g}"]
    most = needed.max() if needed.notna().all() else np.nan
    rows = {
        f"Table 3 as run here ({len(labels)} rows x {seeds} seed{'s' if seeds > 1 else ''})":
            (len(results), results["training s"].sum(), "measured"),
        f"Table 3 with the seeds for +-{HALF_WIDTH_GOAL:g} points on every step":
            (len(labels) * most, len(labels) * most * seconds_at_notebook_04, "estimated"),
    }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["runs", "CPU seconds", "how"])
    table["CPU hours"] = (table["CPU seconds"] / 3600).round(2)
    for count in cores:
        table[f"hours on {count} cores"] = (table["CPU seconds"] / 3600 / count).round(2)
    return table.drop(columns="CPU seconds")


def describe(step_table: pd.DataFrame, group: str = "overall") -> list[str]:
    """One plain sentence per step, from the intervals of `steps` (notebook 09, docs/results.md);
    none where `group` has no clips."""
    sentences = []
    if group not in step_table.index.get_level_values("group"):
        return sentences
    for (row, before, column), values in step_table.xs(group, level="group", drop_level=False).iterrows():
        interval = (f"{values['mean gain']:+.1f} points ({values['low']:+.1f} to {values['high']:+.1f} "
                    f"{metrics.interval_basis(values['seeds'])})")
        if values["beyond noise"]:
            verdict = "a gain" if values["mean gain"] > 0 else "a loss"
        else:
            verdict = "not distinguishable from zero here"
        sentences.append(f"{row} against {before}, {column}: {interval}, {verdict}.")
    return sentences


def widths(step_table: pd.DataFrame, rows_of, group: str) -> pd.Series:
    """The half widths of the steps of `step_table` (`steps`) whose row is in `rows_of`, in
    `group`, each labelled "row against the row it is compared with" (`describe_widths`)."""
    block = step_table.xs(group, level="group")
    block = block[block.index.get_level_values("step").isin(list(rows_of))]
    return pd.Series(block["half width"].to_numpy(), index=[f"{row} against {before}" for row, before in block.index])


def describe_widths(half_widths: pd.Series, what: str, seeds: int, goal: float = HALF_WIDTH_GOAL) -> list[str]:
    """How precise the comparisons `half_widths` (a 95 % interval's half width in points, indexed
    by a label per comparison, over `seeds` seeds and the clips) are against `goal`: how many are
    within it, and each one wider with its width (notebooks 08, 09 and 12, issue 33's aim of
    +-1.5 points). With one seed an interval holds the clips' part alone, and the sentence says so."""
    wider = half_widths[half_widths > goal].sort_values(ascending=False)
    basis = metrics.interval_basis(seeds) + ("" if seeds > 1 else ", without the seeds' part, which one seed cannot measure")
    sentence = (f"{what} ({basis}): {len(half_widths) - len(wider)} of {len(half_widths)} intervals are "
                f"within +-{goal:g} points")
    if wider.empty:
        return [sentence + "."]
    listed = "; ".join(f"{label} +-{width:.1f}" for label, width in wider.items())
    return [sentence + f"; wider: {listed}."]


def _side(values: pd.Series, reference: float) -> str:
    """Where `values` lie against `reference`, in points: below, above, or on both sides."""
    gaps = values - reference
    if (gaps < 0).all():
        return f"{-gaps.max():.1f} to {-gaps.min():.1f} points below"
    if (gaps > 0).all():
        return f"{gaps.min():.1f} to {gaps.max():.1f} points above"
    return f"{gaps.min():+.1f} to {gaps.max():+.1f} points from"


def describe_budget(table3: pd.DataFrame, notebook_04: float, baseline: float) -> list[str]:
    """Where the rows of `table3` (`table`) sit overall against notebook 04's ResNet (its mean
    overall accuracy, `notebook_04`) and notebook 01's mean-log-mel baseline (`baseline`), and
    how far seeds alone move a row against the size of the paper's steps (notebook 09)."""
    from asclib import paper

    overall, spread = table3["overall"], table3["overall std"].dropna()
    steps = np.abs(np.diff(paper.table_3()["overall"].to_numpy()))
    paper_steps = (f"the paper's steps from one row to the next are {steps.min():.1f} to {steps.max():.1f} points "
                   f"({paper.LABEL}, one run each).")
    moved = (f"Seeds alone move a row's overall accuracy by a standard deviation of {spread.min():.1f} to "
             f"{spread.max():.1f} points; " if len(spread) else
             "With one seed per row, how far seeds alone move a row is not measured here; ")
    return [f"The {len(overall)} rows reach {overall.min():.1f} to {overall.max():.1f} % overall: "
            f"{_side(overall, baseline)} notebook 01's mean-log-mel baseline ({baseline:.1f} %) and "
            f"{_side(overall, notebook_04)} notebook 04's ResNet ({notebook_04:.1f} %).", moved + paper_steps]


def describe_unseen(systems: pd.DataFrame, label: str) -> list[str]:
    """How each of `systems` (accuracy rows with device and group columns) does on the unseen
    s7-s11 against s4-s6 (absent from training, simulated like the training devices), and the
    hardest and easiest device of each group, averaged over the systems (notebook 12)."""
    gap = (systems["s7-s11"] - systems["s4-s6"]).round(1)
    listed = ", ".join(f"{system} {value:+.1f}" for system, value in gap.items())
    sentences = [f"{label}: s7-s11 is below s4-s6 for {(gap < 0).sum()} of {len(gap)} systems "
                 f"(s7-s11 minus s4-s6, points: {listed})."]
    for group in ("s4-s6", "s7-s11"):
        mean = systems[[device for device in DEVICES if GROUP_OF[device] == group]].mean()
        sentences.append(f"{label}, averaged over the systems: the hardest device of {group} is {mean.idxmin()} "
                         f"({mean.min():.1f} %), the easiest {mean.idxmax()} ({mean.max():.1f} %).")
    return sentences


def describe_groups(step_table: pd.DataFrame, groups=("s4-s6", "s7-s11")) -> list[str]:
    """For each row beyond the paper, its mean gain over the paper's recipe on each of `groups`
    and whether the data tell where it helps more: only if the two intervals do not overlap
    (notebook 12)."""
    sentences = []
    for row in [label for label in BEYOND_PAPER if label in step_table.index.get_level_values("step")]:
        block = step_table.xs(row, level="step").droplevel("from")
        if not set(groups) <= set(block.index):
            continue
        first, second = (block.loc[group] for group in groups)
        apart = first["low"] > second["high"] or second["low"] > first["high"]
        larger = groups[0] if first["mean gain"] > second["mean gain"] else groups[1]
        sentences.append(f"{row}: mean gain {first['mean gain']:+.1f} points on {groups[0]} and "
                         f"{second['mean gain']:+.1f} on {groups[1]}, larger on {larger}; "
                         + ("the intervals do not overlap." if apart else
                            "the intervals overlap, so the data do not say on which group it helps more."))
    return sentences
