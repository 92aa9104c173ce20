"""Result tables (notebooks 07, 08): accuracy rows, gains with paired-bootstrap intervals, words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asclib import tables
from asclib.data import COARSE_CLASSES


def _systems():
    """40 clips, 20 on device a and 20 on s4, all truly indoor. `base` is right on half of a
    and half of s4; `better` is right on all of a and on the same half of s4."""
    filenames = pd.Index([f"clip{k:02d}.wav" for k in range(40)], name="filename")
    devices = ["a"] * 20 + ["s4"] * 20
    truth = pd.DataFrame({"device": devices, "label": "indoor"}, index=filenames)
    right, wrong = [0.6, 0.2, 0.2], [0.2, 0.6, 0.2]
    base = [right if k % 2 == 0 else wrong for k in range(40)]
    better = [right if (k < 20 or k % 2 == 0) else wrong for k in range(40)]
    make = lambda rows: pd.DataFrame(rows, index=filenames, columns=list(COARSE_CLASSES))
    return {"base": make(base), "better": make(better)}, truth


def test_accuracy_rows_are_hand_checkable():
    systems, truth = _systems()
    rows = tables.accuracy_rows(systems, truth)
    assert rows.loc["base", ["a", "s4", "A", "s4-s6", "overall"]].tolist() == [50.0, 50.0, 50.0, 50.0, 50.0]
    assert rows.loc["better", ["a", "s4", "overall"]].tolist() == [100.0, 50.0, 75.0]
    # log loss: -ln 0.6 on right clips, -ln 0.2 on wrong ones
    assert rows.loc["better", "log loss"] == pytest.approx(round(-(30 * np.log(0.6) + 10 * np.log(0.2)) / 40, 3))


def test_gains_intervals_and_their_sentence():
    systems, truth = _systems()
    gains = tables.gains(systems, truth, [("better", "base")], n_resamples=2000, seed=1)
    block = gains.loc[("better", "base")]
    assert list(block.index) == ["A", "s4-s6", "overall"]
    assert block.loc["A", "gain"] == 50.0 and block.loc["overall", "gain"] == 25.0
    assert (block.loc["s4-s6", ["gain", "low", "high"]] == 0).all()  # identical on s4: no spread at all
    assert block.loc["A", "low"] > 0 and block.loc["A", "high"] <= 100 and block.loc["A", "distinguishable"]
    assert not block.loc["s4-s6", "distinguishable"]
    sentence = tables.describe_gains(gains)
    assert sentence.startswith("better vs base: distinguishable from zero on A +50.0 points")
    assert sentence.endswith("; not on s4-s6.")
    joined = tables.with_gains(tables.accuracy_rows(systems, truth), gains)
    assert joined.loc["better", "compared with"] == "base" and joined.loc["better", "gain"] == 25.0
    assert pd.isna(joined.loc["base", "gain"])


def test_no_gain_is_said_plainly():
    systems, truth = _systems()
    gains = tables.gains({"x": systems["base"], "y": systems["base"].sample(frac=1, random_state=0)}, truth,
                         [("y", "x")])
    assert tables.describe_gains(gains) == "y vs x: no difference distinguishable from zero."
