"""Ensembles and the two-stage fusion of class probabilities, joined by filename (notebooks 07,
08, 11).

A probability table is a DataFrame indexed by `filename` whose columns are exactly the 10
scenes (`data.SCENES`) or the 3 coarse classes (`data.COARSE_CLASSES`), one row per clip
summing to one. Every function checks its inputs with `check_probabilities` and matches clips
by filename, never by row position: the reference's published two-stage number came from
multiplying two score files whose rows are different clips (docs/spec.md section 8.4, notebook 11). Outputs
are sorted by filename, so the row order of the inputs never matters.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from asclib import metrics
from asclib.data import (COARSE_CLASSES, COARSE_OF, DEVELOPMENT_DEVICES, DEVICE_GROUPS, DEVICES, GROUP_OF, SCENES,
                         listing)

TOLERANCE = 1e-3  # rows must sum to one within this: prediction CSVs carry 6 decimals
META = ("filename", "device", "label")  # the columns of a prediction CSV before the classes
LOG_LOSS_DECIMALS = 3  # evaluate() rounds the log loss to this many decimals


class FusionError(ValueError):
    """A probability table or a truth table is unusable (wrong columns, clips, or values)."""


def _check_meta(predictions: pd.DataFrame, what: str) -> None:
    missing = [c for c in META if c not in predictions.columns]
    if missing:
        raise FusionError(f"{what}: missing column(s) {missing}; a prediction table has columns "
                          f"{list(META)} followed by one probability column per class")


def probabilities(predictions: pd.DataFrame, what: str = "predictions") -> pd.DataFrame:
    """The filename-indexed class probabilities of a prediction table (filename, device, label,
    one column per class), checked."""
    _check_meta(predictions, what)
    return check_probabilities(predictions.set_index("filename").drop(columns=["device", "label"]), what)


def truth(predictions: pd.DataFrame, what: str = "predictions") -> pd.DataFrame:
    """The filename-indexed `device` and `label` (true class) of a prediction table."""
    _check_meta(predictions, what)
    table = predictions.set_index("filename")[["device", "label"]].astype(str)
    _check_unique(table.index, what)
    return table


def _check_unique(index: pd.Index, what: str) -> None:
    duplicated = index[index.duplicated()].unique()
    if len(duplicated):
        raise FusionError(f"{what}: {len(duplicated)} duplicated filename(s): {listing(duplicated)}")


def _class_set(columns, what: str) -> tuple[str, ...]:
    """SCENES or COARSE_CLASSES, whichever `columns` are; otherwise an error naming the difference."""
    columns = [str(c) for c in columns]
    for classes in (SCENES, COARSE_CLASSES):
        if sorted(columns) == sorted(classes):
            return classes
    closest = max((SCENES, COARSE_CLASSES), key=lambda classes: len(set(classes) & set(columns)))
    missing = [c for c in closest if c not in columns]
    unknown = [c for c in columns if c not in closest]
    raise FusionError(f"{what}: the class columns must be the {len(closest)} classes {list(closest)}; "
                      f"missing: {missing or 'none'}, unknown: {unknown or 'none'}")


def _first_bad(table: pd.DataFrame, bad: np.ndarray, what: str, problem: str) -> None:
    if bad.any():
        raise FusionError(f"{what}: {bad.sum()} row(s) {problem}: {listing(table.index[bad])}")


def check_probabilities(table: pd.DataFrame, what: str = "table") -> pd.DataFrame:
    """`table` with its class columns in canonical order, after checking that it is a probability
    table: unique `filename` index, the 10 or 3 classes, no NaN, no negative value, rows summing
    to one (within TOLERANCE). Raises FusionError naming the problem and the first filenames."""
    if table.index.name != "filename":
        raise FusionError(f"{what}: the index must be named 'filename' (one row per clip), "
                          f"found {table.index.name!r}")
    _check_unique(table.index, what)
    table = table[list(_class_set(table.columns, what))]
    try:
        values = table.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise FusionError(f"{what}: the class columns must hold numbers") from None
    _first_bad(table, np.isnan(values).any(axis=1), what, "with NaN")
    _first_bad(table, (values < 0).any(axis=1), what, "with a negative probability")
    _first_bad(table, np.abs(values.sum(axis=1) - 1) > TOLERANCE, what,
               f"not summing to one (tolerance {TOLERANCE:g})")
    return table.astype(float)


def _same_filenames(tables: list[pd.DataFrame], names: list[str]) -> None:
    first = set(tables[0].index)
    for table, name in zip(tables[1:], names[1:]):
        other = set(table.index)
        if other != first:
            raise FusionError(
                f"{names[0]} and {name} must hold the same clips; only in {names[0]}: "
                f"{listing(sorted(first - other)) or 'none'}; only in {name}: {listing(sorted(other - first)) or 'none'}")


def _covered(values: pd.DataFrame | pd.Series, index: pd.Index, what: str):
    """`values` (a truth table) restricted to `index`, in its order; every filename must be there."""
    missing = index[~index.isin(values.index)]
    if len(missing):
        raise FusionError(f"{what}: no truth for {len(missing)} filename(s) of the table: {listing(missing)}")
    _check_unique(values.index, what)
    return values.loc[index]


def ensemble(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Equal-weight mean of probability tables of the same clips and classes (notebook 07)."""
    if not tables:
        raise FusionError("ensemble needs at least one table")
    names = [f"table {k + 1}" for k in range(len(tables))]
    checked = [check_probabilities(t, name) for t, name in zip(tables, names)]
    sets = {tuple(t.columns) for t in checked}
    if len(sets) > 1:
        raise FusionError(f"ensemble: the tables have different class sets: {sorted(sets, key=len)}")
    _same_filenames(checked, names)
    return sum(t.sort_index() for t in checked) / len(checked)


def _renormalised(scores: pd.DataFrame, what: str) -> pd.DataFrame:
    totals = scores.sum(axis=1)
    _first_bad(scores, (totals <= 0).to_numpy(), what, "where every class scores zero")
    return scores.div(totals, axis=0).sort_index()


def two_stage(p10: pd.DataFrame, p3: pd.DataFrame) -> pd.DataFrame:
    """The paper's two-stage fusion (notebook 08): for each scene q, P3[coarse(q)] x P10[q],
    renormalised per clip. The argmax is the paper's decision; the renormalisation makes the
    scores probabilities, so that a log loss means something. Clips are joined by filename."""
    p10, p3 = check_probabilities(p10, "p10"), check_probabilities(p3, "p3")
    if p10.columns.size != len(SCENES) or p3.columns.size != len(COARSE_CLASSES):
        raise FusionError(f"two_stage needs a {len(SCENES)}-class table and a {len(COARSE_CLASSES)}-class "
                          f"table; got {p10.columns.size} and {p3.columns.size} classes")
    _same_filenames([p10, p3], ["p10", "p3"])
    coarse = p3.loc[p10.index, [COARSE_OF[scene] for scene in SCENES]].to_numpy()
    return _renormalised(p10 * coarse, "two_stage")


def explain(p10: pd.DataFrame, p3: pd.DataFrame, filename: str) -> pd.DataFrame:
    """The two-stage fusion of one clip, step by step (notebook 08): per scene, its coarse
    class, P10, P3 of that coarse class, their product and the renormalised score."""
    fused = two_stage(p10, p3)
    if filename not in fused.index:
        raise FusionError(f"explain: {filename!r} is not one of the clips of p10 and p3")
    coarse_classes = [COARSE_OF[scene] for scene in SCENES]
    fine, first = p10.loc[filename, list(SCENES)].to_numpy(), p3.loc[filename, coarse_classes].to_numpy()
    return pd.DataFrame({"coarse class": coarse_classes, "P10": fine, "P3 of its coarse class": first,
                         "product": fine * first, "two-stage (renormalised)": fused.loc[filename].to_numpy()},
                        index=pd.Index(SCENES, name="scene"))


def oracle(p10: pd.DataFrame, true_coarse: pd.Series) -> pd.DataFrame:
    """10-class probabilities masked to each clip's true coarse class and renormalised: what a
    perfect first stage would give, the upper bound of any two-stage fusion (notebooks 08, 11).
    A clip that scores zero on every scene of its true coarse class (a model sure of another
    one: its small probabilities round to zero in the stored decimals) is out of reach of any
    fusion, whose product is then zero on every right answer: it keeps its 10-class scores,
    and so its wrong decision, and a warning names it."""
    p10 = check_probabilities(p10, "p10")
    true_coarse = _coarse_labels(true_coarse, p10.index)
    mask = np.array([COARSE_OF[scene] for scene in p10.columns]) == true_coarse.to_numpy()[:, None]
    masked = p10 * mask
    unreachable = (masked.sum(axis=1) <= 0).to_numpy()
    if unreachable.any():
        warnings.warn(f"oracle: {unreachable.sum()} clip(s) score zero on every scene of their true coarse class, "
                      f"out of reach of any two-stage fusion; they keep their 10-class scores: "
                      f"{listing(p10.index[unreachable])}", stacklevel=2)
        masked[unreachable] = p10[unreachable]
    return _renormalised(masked, "oracle")


def _coarse_labels(true_coarse: pd.Series, index: pd.Index) -> pd.Series:
    """The true coarse class of each clip of `index`, checked."""
    true_coarse = _covered(true_coarse, index, "true_coarse").astype(str)
    wrong = ~true_coarse.isin(COARSE_CLASSES)
    if wrong.any():
        raise FusionError(f"true_coarse: {wrong.sum()} clip(s) whose class is not one of {list(COARSE_CLASSES)}: "
                          f"{listing(true_coarse.index[wrong])}")
    return true_coarse


def coarse(p10: pd.DataFrame) -> pd.DataFrame:
    """The coarse-class probabilities implied by a 10-class table: the sum of its scenes'."""
    p10 = check_probabilities(p10, "p10")
    return p10.T.groupby(lambda scene: COARSE_OF[scene]).sum().T[list(COARSE_CLASSES)]


def decisions(table: pd.DataFrame) -> pd.Series:
    """The decided class (argmax; the first of equal scores) of each clip, indexed by filename."""
    table = check_probabilities(table)
    return pd.Series(table.columns[table.to_numpy().argmax(axis=1)], index=table.index, name="decision")


def _labels(table: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The truth (device, label) of the clips of `table`, checked against its classes."""
    missing = [c for c in ("device", "label") if c not in truth.columns]
    if missing:
        raise FusionError(f"truth: missing column(s) {missing}; truth has columns device and label")
    truth = _covered(truth, table.index, "truth")
    for column, allowed in (("device", DEVICES), ("label", table.columns)):
        wrong = ~truth[column].astype(str).isin(allowed)
        if wrong.any():
            raise FusionError(f"truth: {wrong.sum()} clip(s) whose {column} is not one of {list(allowed)}: "
                              f"{listing(truth.index[wrong])}")
    return truth.astype({"device": str, "label": str})


def correct(table: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """Whether each clip's decision is its true label (filename-indexed booleans)."""
    table = check_probabilities(table)
    return decisions(table) == _labels(table, truth)["label"]


def evaluate(table: pd.DataFrame, truth: pd.DataFrame, label: str = "accuracy %",
             decimals: int | None = 1) -> pd.DataFrame:
    """One row named `label`: accuracy (%) per device, per group and overall (rounded to
    `decimals`; None: not rounded), and the log loss over the clips "overall" counts (the
    development devices a-s6; notebooks 07, 08, 11)."""
    table = check_probabilities(table)
    labels = _labels(table, truth)
    hits = pd.DataFrame({"device": labels["device"], "correct": decisions(table) == labels["label"]})
    row = metrics.accuracy_by_device(hits, label, decimals)
    development = labels["device"].isin(DEVELOPMENT_DEVICES).to_numpy()  # as "overall"
    true_index = table.columns.get_indexer(labels["label"][development])
    loss = metrics.log_loss(table.to_numpy()[development], true_index)
    row["log loss"] = loss if decimals is None else round(loss, LOG_LOSS_DECIMALS)
    return row


def changed_decisions(before: pd.DataFrame, after: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """How a fusion changed the decisions, per device group and overall (notebooks 08, 11):
    clips, changed, and the changed ones that went wrong->right, right->wrong, wrong->wrong."""
    before, after = check_probabilities(before, "before"), check_probabilities(after, "after")
    if list(before.columns) != list(after.columns):
        raise FusionError("changed_decisions: before and after must have the same classes")
    _same_filenames([before, after], ["before", "after"])
    labels = _labels(before, truth)
    old, new = decisions(before), decisions(after).loc[before.index]
    right_before, right_after = old == labels["label"], new == labels["label"]
    changed = old != new
    flags = pd.DataFrame({
        "clips": True,
        "changed": changed,
        "wrong->right": changed & ~right_before & right_after,
        "right->wrong": changed & right_before & ~right_after,
        "wrong->wrong": changed & ~right_before & ~right_after,
    }, index=before.index)
    counts = flags.groupby(labels["device"].map(GROUP_OF)).sum().reindex(list(DEVICE_GROUPS), fill_value=0)
    counts.index.name = "group"
    counts.loc["overall"] = flags[labels["device"].isin(DEVELOPMENT_DEVICES)].sum()  # as `metrics.accuracy_by_device`
    return counts.astype(int)


def mismatch_within_classes(table: pd.DataFrame, true_classes: pd.Series, seed: int) -> pd.DataFrame:
    """`table` with its rows handed to other clips of the same true class (a seeded permutation
    within each class): the row mix-up of the reference's fusion script, reproduced on purpose
    to measure what it adds (notebook 11). Never use it for a real fusion."""
    table = check_probabilities(table)
    classes = _covered(true_classes, table.index, "true_classes").astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    filenames = table.index.to_numpy().copy()
    for value in sorted(set(classes)):
        positions = np.flatnonzero(classes == value)
        filenames[positions] = filenames[rng.permutation(positions)]
    return table.set_axis(pd.Index(filenames, name="filename"))


def consistency(p10: pd.DataFrame, p3: pd.DataFrame, true_coarse: pd.Series, label: str) -> pd.DataFrame:
    """How well a 3-class table agrees with the coarse classes implied by a 10-class table of the
    same clips (notebook 11): argmax agreement (%), clips both get wrong, and the correlation of
    the scores both give the true coarse class. Two tables of the same clips, made by different
    models, agree far more than two tables whose rows were mixed up."""
    implied = coarse(p10)
    p3 = check_probabilities(p3, "p3")
    _same_filenames([implied, p3], ["p10", "p3"])
    p3 = p3.loc[implied.index]
    true_coarse = _coarse_labels(true_coarse, implied.index)
    columns = implied.columns.get_indexer(true_coarse)
    rows = np.arange(len(columns))
    implied_decision, p3_decision = decisions(implied), decisions(p3)
    return pd.DataFrame({
        "argmax agreement %": (implied_decision == p3_decision).mean() * 100,
        "wrong in both": ((implied_decision != true_coarse) & (p3_decision != true_coarse)).sum(),
        "correlation of true-class scores": np.corrcoef(implied.to_numpy()[rows, columns],
                                                        p3.to_numpy()[rows, columns])[0, 1],
    }, index=[label])
