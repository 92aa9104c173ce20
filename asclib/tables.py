"""The paper's result tables from prediction files: one row per system, gains with intervals
(notebooks 07 and 08).

A *system* is a filename-indexed probability table (`asclib.fusion`): a single model's
predictions, an ensemble or a two-stage fusion. `accuracy_rows` evaluates systems the way the
paper's Tables 1 and 2 report them (per device, per device group, overall, log loss);
`gains` measures the difference between two systems on the same clips with a paired
bootstrap (`metrics.paired_bootstrap`), and `describe_gains` says in words which differences
the data supports.
"""

from __future__ import annotations

import pandas as pd

from asclib import fusion, metrics, train
from asclib.config import Profile

GAIN_COLUMNS = ("compared with", "gain", "gain low", "gain high")


def load_models(profile: Profile, index: pd.DataFrame, n_classes: int) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The probability tables of the paper's `n_classes` models (notebooks 04-06 write them),
    keyed by model name, and the truth (device, label) of their clips."""
    predictions = {name: train.load_predictions(name, n_classes, profile, index)
                   for name, classes in train.NOTEBOOK_RUNS if classes == n_classes}
    tables = {name: fusion.probabilities(table, f"{name}-{n_classes}c") for name, table in predictions.items()}
    first = next(iter(predictions))
    return tables, fusion.truth(predictions[first], f"{first}-{n_classes}c")


def accuracy_rows(systems: dict[str, pd.DataFrame], truth: pd.DataFrame) -> pd.DataFrame:
    """One row per system: accuracy (%) per device, group and overall, and the log loss."""
    return pd.concat([fusion.evaluate(table, truth, name) for name, table in systems.items()])


def gains(systems: dict[str, pd.DataFrame], truth: pd.DataFrame, pairs: list[tuple[str, str]],
          n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Gain (percentage points) of system over baseline for each (system, baseline) of `pairs`,
    per device group and overall, with 95 % paired-bootstrap intervals; indexed by
    (system, compared with, group)."""
    blocks = {}
    for system, baseline in pairs:
        right = fusion.correct(systems[system], truth)
        before = fusion.correct(systems[baseline], truth).loc[right.index]
        blocks[system, baseline] = metrics.paired_bootstrap(before, right, truth.loc[right.index, "device"],
                                                            n_resamples, seed)
    return pd.concat(blocks, names=["system", "compared with", "group"])


def with_gains(rows: pd.DataFrame, gain_table: pd.DataFrame) -> pd.DataFrame:
    """`rows` with, for each system compared in `gain_table` (its first comparison), the
    baseline, the overall gain and its 95 % interval as extra columns."""
    overall = gain_table.xs("overall", level="group").reset_index("compared with")
    overall = overall[~overall.index.duplicated()].rename(columns={"low": "gain low", "high": "gain high"})
    return rows.join(overall[list(GAIN_COLUMNS)].round({"gain": 1, "gain low": 1, "gain high": 1}))


def describe_gains(gain_table: pd.DataFrame) -> str:
    """One plain sentence per comparison: where the gain is distinguishable from zero (its 95 %
    interval excludes zero) and where it is not."""
    sentences = []
    for (system, baseline), block in gain_table.groupby(level=["system", "compared with"], sort=False):
        block = block.droplevel(["system", "compared with"])
        clear = block[block["distinguishable"]]
        shown = ", ".join(f"{group} {row.gain:+.1f} points ({row.low:+.1f} to {row.high:+.1f})"
                          for group, row in clear.iterrows())
        unclear = ", ".join(block.index[~block["distinguishable"]])
        if not shown:
            sentences.append(f"{system} vs {baseline}: no difference distinguishable from zero.")
        elif not unclear:
            sentences.append(f"{system} vs {baseline}: distinguishable from zero everywhere: {shown}.")
        else:
            sentences.append(f"{system} vs {baseline}: distinguishable from zero on {shown}; not on {unclear}.")
    return "\n".join(sentences)
