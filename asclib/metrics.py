"""Accuracy the way the paper reports it: per device, per device group, overall (notebooks 01, 04-09).

Prediction tables have one row per evaluation clip with at least `device` and `correct`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from asclib.data import DEVICE_GROUPS, DEVICES, GROUP_OF


def accuracy_by_device(table: pd.DataFrame, label: str = "accuracy %") -> pd.DataFrame:
    """One row: accuracy (%) on each device, each group (A, B&C, s1-s3, s4-s6) and overall.

    Group accuracies average their devices' clips; with the same number of clips per device
    (the DCASE evaluation split), that is the mean of the devices' accuracies.
    """
    devices = table["device"].astype(str)
    correct = table["correct"].astype(float)
    per_device = correct.groupby(devices).mean()
    per_group = correct.groupby(devices.map(GROUP_OF)).mean()
    row = {**{d: per_device.get(d, np.nan) for d in DEVICES},
           **{g: per_group.get(g, np.nan) for g in DEVICE_GROUPS},
           "overall": correct.mean()}
    return (pd.Series(row) * 100).round(1).to_frame(label).T


def confusion(true: pd.Series, predicted: pd.Series, classes) -> pd.DataFrame:
    """Counts of (true class, predicted class), rows true, in the given class order."""
    table = pd.crosstab(pd.Categorical(true.astype(str), categories=classes),
                        pd.Categorical(predicted.astype(str), categories=classes), dropna=False)
    table.index.name, table.columns.name = "true", "predicted"
    return table
