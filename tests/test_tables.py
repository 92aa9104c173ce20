"""Result tables (notebooks 07, 08): rows as means over seeds, gains with intervals over seeds and
clips, words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asclib import tables
from asclib.data import COARSE_CLASSES, SCENES


CLIPS = pd.Index([f"clip{k:02d}.wav" for k in range(40)], name="filename")
DEVICES = ["a"] * 20 + ["s4"] * 20  # clips 0-19 on device a, 20-39 on s4
K = np.arange(40)  # clip numbers: K % 2 == 0 (and each K % 4 == j) takes as many clips of a as of s4


def _truth(label: str) -> pd.DataFrame:
    """The 40 clips, all truly `label`."""
    return pd.DataFrame({"device": DEVICES, "label": label}, index=CLIPS)


def _constant(row: dict[str, float], classes=COARSE_CLASSES) -> pd.DataFrame:
    """A probability table giving every clip `row` (classes not named: 0)."""
    return pd.DataFrame([[row.get(c, 0.0) for c in classes]] * len(CLIPS), index=CLIPS, columns=list(classes))


def _rows(where, chosen: list[float], other: list[float]) -> pd.DataFrame:
    """A 3-class table giving the clips where `where` is true the row `chosen`, the others `other`."""
    return pd.DataFrame([chosen if hit else other for hit in where], index=CLIPS, columns=list(COARSE_CLASSES))


def _decided(right) -> pd.DataFrame:
    """A 3-class table deciding indoor (right, for `_truth("indoor")`) on the clips where `right`
    is true and outdoor elsewhere."""
    return _rows(right, [0.6, 0.2, 0.2], [0.2, 0.6, 0.2])


def _systems():
    """40 clips, 20 on device a and 20 on s4, all truly indoor. `base` is right on half of a
    and half of s4; `better` is right on all of a and on the same half of s4."""
    return {"base": _decided(K % 2 == 0), "better": _decided((K < 20) | (K % 2 == 0))}, _truth("indoor")


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


# --- systems are formed and compared within one training seed (issue 30) --------------------------

def test_the_ensemble_is_formed_within_each_seed():
    """Seed 0's models are sure and right everywhere; under seed 1 resnet is wrong on the odd
    clips (outdoor 0.6) and fcnn barely right (indoor 0.5), so their ensemble is wrong there
    (indoor 0.4, outdoor 0.5): 100 % and 50 %, a mean of 75 %, 25 points under fcnn. One ensemble
    of all four models would be right everywhere (indoor 0.7 on the odd clips)."""
    sure = _constant({"indoor": 1.0})
    models = {0: {"resnet": sure, "fcnn": sure},
              1: {"resnet": _rows(K % 2 == 0, [0.8, 0.1, 0.1], [0.3, 0.6, 0.1]),
                  "fcnn": _rows(K % 2 == 0, [0.8, 0.1, 0.1], [0.5, 0.4, 0.1])}}
    table, gains = tables.ensemble_table(models, _truth("indoor"), 3, n_resamples=200)
    assert table.loc["ensemble", ["seeds", "overall", "A", "s4-s6"]].tolist() == [2, 75.0, 75.0, 75.0]
    assert table.loc["ensemble", "overall std"] == pytest.approx(round(np.std([100, 50], ddof=1), 2))
    assert table.loc[["resnet", "fcnn"], "overall"].tolist() == [75.0, 100.0]
    overall = gains.xs("overall", level="group")
    assert overall["gain"].to_dict() == {("ensemble", "fcnn"): -25.0, ("ensemble", "resnet"): 0.0}
    assert (overall["seeds"] == 2).all()
    assert table.loc["ensemble", ["compared with", "gain"]].tolist() == ["fcnn", -25.0]


def _two_stage_models():
    """Every clip is truly park (outdoor). Under both seeds the 10-class models lean to park
    (0.6, airport 0.4: right); the 3-class models say indoor under seed 0 and outdoor under
    seed 1, so every two-stage system of seed 0 decides airport (wrong) and of seed 1 park."""
    lean = _constant({"airport": 0.4, "park": 0.6}, SCENES)
    models10 = {seed: {"resnet": lean, "fcnn": lean} for seed in (0, 1)}
    models3 = {0: {"resnet": _constant({"indoor": 1.0}), "fcnn": _constant({"indoor": 0.6, "outdoor": 0.4})},
               1: {"resnet": _constant({"outdoor": 1.0}), "fcnn": _constant({"outdoor": 0.6, "indoor": 0.4})}}
    return models10, models3, _truth("park")


TWO_STAGE = ["2-stage resnet", "2-stage fcnn", "2-stage ensemble", "2-stage resnet (with resnet 3c)",
             "2-stage fcnn (with fcnn 3c)"]


def test_two_stage_fuses_each_seed_with_its_own_first_stage():
    """Seed k's 10-class models are fused with seed k's 3-class models: 0 % under seed 0, 100 %
    under seed 1 (another seed's first stage would swap them)."""
    models10, models3, truth = _two_stage_models()
    systems, pairs = tables.two_stage_systems(models10, models3)
    assert [fused for fused, _ in pairs] == TWO_STAGE
    per_seed = tables.seed_rows(systems, truth)["overall"]
    for fused in TWO_STAGE:
        assert (per_seed[fused, 0], per_seed[fused, 1]) == (0.0, 100.0), fused


def test_two_stage_rows_and_gains_count_every_seed():
    """Each two-stage row is the mean of both seeds (0 % and 100 %: 50 %, seeds 2), its gain over
    its one-stage system (100 % under both seeds) -50 points over 2 seeds."""
    models10, models3, truth = _two_stage_models()
    one_stage = tables.ensemble_table(models10, truth, 10, n_resamples=200)[0]
    table, gains, _, _ = tables.two_stage_table(models10, models3, truth, one_stage, n_resamples=200)
    assert table.loc[["resnet", "fcnn", "ensemble"], ["seeds", "overall"]].to_numpy().tolist() == [[2, 100.0]] * 3
    spread = round(np.std([0, 100], ddof=1), 2)
    assert table.loc[TWO_STAGE, ["seeds", "overall", "overall std"]].to_numpy().tolist() == [[2, 50.0, spread]] * 5
    assert table.loc[TWO_STAGE, "gain"].tolist() == [-50.0] * len(TWO_STAGE)
    overall = gains.xs("overall", level="group")
    assert overall["seeds"].tolist() == [2] * len(TWO_STAGE) and overall["gain"].tolist() == [-50.0] * len(TWO_STAGE)


def test_each_gain_takes_its_baseline_from_the_same_seed():
    """Seed 0: base right on 50 % of the clips, better on 75 % (+25); seed 1: base on 25 %, better
    on all (+75). The per-seed gains spread by their standard deviation; pairing each seed's
    system with another seed's baseline would make them 50 and 50, with no spread at all."""
    by_seed = {0: {"base": _decided(K % 2 == 0), "better": _decided(K % 4 != 3)},
               1: {"base": _decided(K % 4 == 0), "better": _decided(K >= 0)}}
    overall = tables.gains(by_seed, _truth("indoor"), [("better", "base")], n_resamples=200).loc[
        ("better", "base", "overall")]
    assert overall["gain"] == 50.0 and overall["seeds"] == 2
    assert overall["seed std"] == pytest.approx(np.std([25, 75], ddof=1))
