"""Result tables (notebooks 07, 08): rows as means over seeds, gains with intervals over seeds and
clips, words."""

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
    rows = tables.accuracy_rows({0: systems}, truth)
    assert rows.loc["base", ["a", "s4", "A", "s4-s6", "overall"]].tolist() == [50.0, 50.0, 50.0, 50.0, 50.0]
    assert rows.loc["better", ["a", "s4", "overall"]].tolist() == [100.0, 50.0, 75.0]
    assert rows.loc["better", "seeds"] == 1 and pd.isna(rows.loc["better", "overall std"])
    # log loss: -ln 0.6 on right clips, -ln 0.2 on wrong ones
    assert rows.loc["better", "log loss"] == pytest.approx(round(-(30 * np.log(0.6) + 10 * np.log(0.2)) / 40, 3))


def _two_seeds():
    """Seed 0 as `_systems`; under seed 1 `better` is right on every clip (overall 100 %)."""
    systems, truth = _systems()
    perfect = systems["better"].copy()
    perfect[:] = [0.6, 0.2, 0.2]
    return {0: systems, 1: {"base": systems["base"], "better": perfect}}, truth


def test_rows_are_means_over_seeds_with_their_spread():
    by_seed, truth = _two_seeds()
    rows = tables.accuracy_rows(by_seed, truth)
    assert rows.loc["better", ["s4", "overall", "seeds"]].tolist() == [75.0, 87.5, 2]
    assert rows.loc["better", "overall std"] == pytest.approx(round(np.std([75, 100], ddof=1), 2))
    assert rows.loc["base", "overall std"] == 0
    per_seed = tables.seed_rows(by_seed, truth)
    assert per_seed.loc[("better", 1), "overall"] == 100.0


def test_gains_intervals_and_their_sentence():
    systems, truth = _systems()
    gains = tables.gains({0: systems}, truth, [("better", "base")], n_resamples=2000, seed=1)
    block = gains.loc[("better", "base")]
    assert list(block.index) == ["A", "s4-s6", "overall"]
    assert block.loc["A", "gain"] == 50.0 and block.loc["overall", "gain"] == 25.0
    assert (block.loc["s4-s6", ["gain", "low", "high"]] == 0).all()  # identical on s4: no spread at all
    assert block.loc["A", "low"] > 0 and block.loc["A", "distinguishable"]
    assert not block.loc["s4-s6", "distinguishable"]
    sentence = tables.describe_gains(gains)
    assert sentence.startswith("better vs base (over the clips of one seed): distinguishable from zero on A +50.0")
    assert sentence.endswith("; not on s4-s6.")
    joined = tables.with_gains(tables.accuracy_rows({0: systems}, truth), gains)
    assert joined.loc["better", "compared with"] == "base" and joined.loc["better", "gain"] == 25.0
    assert pd.isna(joined.loc["base", "gain"])


def test_gains_over_seeds_count_the_seeds_disagreement():
    """Seed 0's gain is 25 points overall, seed 1's 50: the mean is 37.5, and the interval is wider
    than the clips alone would make it, because two seeds that disagree say little."""
    by_seed, truth = _two_seeds()
    both = tables.gains(by_seed, truth, [("better", "base")], n_resamples=2000).loc[("better", "base", "overall")]
    assert both["gain"] == 37.5 and both["seeds"] == 2
    assert both["seed std"] == pytest.approx(np.std([25, 50], ddof=1))
    normal = 1.96 * np.sqrt(both["seed std"] ** 2 / 2 + both["clip std"] ** 2)
    assert both["half width"] > normal  # a t quantile with few degrees of freedom, not the normal one
    assert both["half width"] > both["seed std"]  # two seeds 25 points apart: no narrow interval
    assert "over 2 seeds and the clips" in tables.describe_gains(tables.gains(by_seed, truth, [("better", "base")]))


def test_no_gain_is_said_plainly():
    systems, truth = _systems()
    gains = tables.gains({0: {"x": systems["base"], "y": systems["base"].sample(frac=1, random_state=0)}}, truth,
                         [("y", "x")])
    assert tables.describe_gains(gains) == "y vs x (over the clips of one seed): no difference distinguishable from zero."
