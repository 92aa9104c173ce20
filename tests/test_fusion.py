"""Ensembles and two-stage fusion joined by filename: hand-computed values and every refusal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asclib import fusion
from asclib.data import COARSE_CLASSES, COARSE_OF, SCENES
from asclib.fusion import FusionError


def _table(rows: dict[str, dict[str, float]], classes=SCENES) -> pd.DataFrame:
    """A probability table from {filename: {class: probability}}; unnamed classes get 0."""
    table = pd.DataFrame([{c: row.get(c, 0.0) for c in classes} for row in rows.values()],
                         index=pd.Index(list(rows), name="filename"))
    return table


P10 = _table({"y.wav": {c: 0.1 for c in SCENES},
              "x.wav": {"airport": 0.5, "bus": 0.3, "park": 0.2}})
P3 = _table({"x.wav": {"indoor": 0.2, "outdoor": 0.3, "transportation": 0.5},
             "y.wav": {"indoor": 1.0}}, COARSE_CLASSES)


def test_two_stage_by_hand():
    fused = fusion.two_stage(P10, P3)
    # x: airport 0.5 x 0.2 = 0.1, bus 0.3 x 0.5 = 0.15, park 0.2 x 0.3 = 0.06; total 0.31
    # y: the three indoor scenes 0.1 x 1 each, the rest 0; total 0.3
    expected = _table({"x.wav": {"airport": 0.1 / 0.31, "bus": 0.15 / 0.31, "park": 0.06 / 0.31},
                       "y.wav": {"airport": 1 / 3, "metro_station": 1 / 3, "shopping_mall": 1 / 3}})
    pd.testing.assert_frame_equal(fused, expected)
    assert fusion.decisions(fused).to_dict() == {"x.wav": "bus", "y.wav": "airport"}


def test_row_order_never_matters():
    shuffled = P3.iloc[::-1]
    pd.testing.assert_frame_equal(fusion.two_stage(P10, shuffled), fusion.two_stage(P10, P3))
    other = _table({"x.wav": {"bus": 1.0}, "y.wav": {"tram": 1.0}})
    pd.testing.assert_frame_equal(fusion.ensemble([P10, other.iloc[::-1]]), fusion.ensemble([P10, other]))


def test_ensemble_is_the_mean_sorted_by_filename():
    a = _table({"y.wav": {"indoor": 0.6, "outdoor": 0.4}, "x.wav": {"transportation": 1.0}}, COARSE_CLASSES)
    b = _table({"x.wav": {"indoor": 0.5, "transportation": 0.5}, "y.wav": {"outdoor": 1.0}}, COARSE_CLASSES)
    expected = _table({"x.wav": {"indoor": 0.25, "transportation": 0.75},
                       "y.wav": {"indoor": 0.3, "outdoor": 0.7}}, COARSE_CLASSES)
    pd.testing.assert_frame_equal(fusion.ensemble([a, b]), expected)


def test_columns_come_back_in_canonical_order():
    reordered = P3[list(reversed(COARSE_CLASSES))]
    assert list(fusion.check_probabilities(reordered).columns) == list(COARSE_CLASSES)


def test_oracle_by_hand():
    truth = pd.Series({"y.wav": "outdoor", "x.wav": "transportation"})
    # x: only bus (0.3) is a transportation scene with a score; y: four outdoor scenes, 0.1 each
    expected = _table({"x.wav": {"bus": 1.0},
                       "y.wav": {c: 0.25 for c in ("park", "public_square", "street_pedestrian", "street_traffic")}})
    pd.testing.assert_frame_equal(fusion.oracle(P10, truth), expected)
    with pytest.raises(FusionError, match="no truth for 1 filename.*x.wav"):
        fusion.oracle(P10, truth.drop("x.wav"))
    with pytest.raises(FusionError, match="not one of.*y.wav"):
        fusion.oracle(P10, truth.replace("outdoor", "park"))


def test_oracle_keeps_the_scores_of_a_clip_no_fusion_can_reach():
    """Every transportation scene of x scores zero: no product with a first stage can pick one,
    so x keeps its 10-class scores (and its wrong decision), with a warning that names it."""
    unreachable = _table({"x.wav": {"airport": 0.6, "park": 0.4}, "y.wav": {"bus": 1.0}})
    truth = pd.Series({"x.wav": "transportation", "y.wav": "transportation"})
    with pytest.warns(UserWarning, match="1 clip.*out of reach.*x.wav"):
        got = fusion.oracle(unreachable, truth)
    pd.testing.assert_frame_equal(got, unreachable.sort_index())


def test_coarse_sums_the_scenes_of_each_coarse_class():
    expected = _table({"y.wav": {"indoor": 0.3, "outdoor": 0.4, "transportation": 0.3},
                       "x.wav": {"indoor": 0.5, "outdoor": 0.2, "transportation": 0.3}}, COARSE_CLASSES)
    pd.testing.assert_frame_equal(fusion.coarse(P10), expected)


TRUTH = pd.DataFrame({"device": ["a", "s4"], "label": ["bus", "metro"]},
                     index=pd.Index(["x.wav", "y.wav"], name="filename"))


def test_evaluate_by_hand():
    row = fusion.evaluate(fusion.two_stage(P10, P3), TRUTH, "fused", decimals=None).loc["fused"]
    # x (device a) is decided bus: right; y (s4) is decided airport: wrong, metro scores 0
    assert (row["a"], row["A"], row["s4"], row["s4-s6"], row["overall"]) == (100, 100, 0, 0, 50)
    assert row["log loss"] == pytest.approx((-np.log(0.15 / 0.31) - np.log(1e-15)) / 2)
    with pytest.raises(FusionError, match="no truth for 1 filename.*y.wav"):
        fusion.evaluate(P10, TRUTH.drop("y.wav"))
    with pytest.raises(FusionError, match="label is not one of.*x.wav"):
        fusion.evaluate(P3, TRUTH)


def test_changed_decisions_by_hand():
    names = ["a1", "a2", "b1", "s4"]
    before = _table(dict(zip(names, [{"bus": 1.0}, {"bus": 1.0}, {"park": 1.0}, {"park": 1.0}])))
    after = _table(dict(zip(names, [{"tram": 1.0}, {"bus": 1.0}, {"tram": 1.0}, {"metro": 1.0}])))
    truth = pd.DataFrame({"device": ["a", "a", "b", "s4"], "label": ["tram", "bus", "park", "tram"]},
                         index=pd.Index(names, name="filename"))
    counts = fusion.changed_decisions(before, after, truth)
    # a1 wrong->right, a2 unchanged, b1 right->wrong, s4 wrong->wrong
    assert counts.loc["A"].to_dict() == {"clips": 2, "changed": 1, "wrong->right": 1, "right->wrong": 0,
                                         "wrong->wrong": 0}
    assert counts.loc["B&C"].to_dict() == {"clips": 1, "changed": 1, "wrong->right": 0, "right->wrong": 1,
                                           "wrong->wrong": 0}
    assert counts.loc["s1-s3"].sum() == 0
    assert counts.loc["s4-s6", "wrong->wrong"] == 1
    assert counts.loc["overall"].to_dict() == {"clips": 4, "changed": 3, "wrong->right": 1, "right->wrong": 1,
                                               "wrong->wrong": 1}


def test_mismatch_stays_within_classes_and_is_seeded():
    names = [f"{k}.wav" for k in range(8)]
    table = _table({name: {COARSE_CLASSES[k % 2]: 1.0} for k, name in enumerate(names)}, COARSE_CLASSES)
    classes = pd.Series([COARSE_CLASSES[k % 2] for k in range(8)], index=names)
    mixed = fusion.mismatch_within_classes(table, classes, seed=1)
    assert sorted(mixed.index) == sorted(names) and not mixed.index.equals(table.index)
    assert (fusion.decisions(mixed) == classes.loc[mixed.index]).all()  # rows moved within class
    pd.testing.assert_frame_equal(mixed, fusion.mismatch_within_classes(table, classes, seed=1))


def test_consistency_of_agreeing_and_mixed_tables():
    p10 = _table({"x.wav": {"bus": 0.9, "park": 0.1}, "y.wav": {"park": 0.8, "bus": 0.2}})
    p3 = _table({"x.wav": {"transportation": 0.7, "outdoor": 0.3},
                 "y.wav": {"outdoor": 0.4, "transportation": 0.6}}, COARSE_CLASSES)
    truth = pd.Series({"x.wav": "transportation", "y.wav": "outdoor"})
    row = fusion.consistency(p10, p3, truth, "pair").loc["pair"]
    # decisions: p10 transportation, outdoor; p3 transportation, transportation
    assert row["argmax agreement %"] == 50 and row["wrong in both"] == 0
    # true-class scores: p10 (0.9, 0.8), p3 (0.7, 0.4): both decrease, correlation 1
    assert row["correlation of true-class scores"] == pytest.approx(1.0)


def test_prediction_csv_tables(tmp_path):
    predictions = pd.DataFrame({"filename": ["y.wav", "x.wav"], "device": ["s4", "a"],
                                "label": ["outdoor", "transportation"],
                                "transportation": [0.0, 0.5], "indoor": [1.0, 0.2], "outdoor": [0.0, 0.3]})
    path = tmp_path / "model-3c.csv"
    predictions.to_csv(path, index=False)
    read = pd.read_csv(path)
    pd.testing.assert_frame_equal(fusion.probabilities(read), P3.loc[["y.wav", "x.wav"]])
    truth = fusion.truth(read)
    assert truth.loc["x.wav"].to_dict() == {"device": "a", "label": "transportation"}
    with pytest.raises(FusionError, match="missing column.*'device'"):
        fusion.probabilities(read.drop(columns="device"))


# --- every refusal names the problem and the offending filenames --------------------------------

def _with(table: pd.DataFrame, filename: str, column: str, value: float) -> pd.DataFrame:
    table = table.copy()
    table.loc[filename, column] = value
    return table


@pytest.mark.parametrize("make, message", [
    (lambda: P3.rename(index={"y.wav": "x.wav"}), "1 duplicated filename.*x.wav"),
    (lambda: P3.rename_axis("clip"), "index must be named 'filename'"),
    (lambda: P3.drop(columns="outdoor"), r"missing: \['outdoor'\], unknown: none"),
    (lambda: P3.rename(columns={"outdoor": "outside"}), r"missing: \['outdoor'\], unknown: \['outside'\]"),
    (lambda: P10.assign(beach=0.0), r"missing: none, unknown: \['beach'\]"),
    (lambda: _with(P3, "y.wav", "indoor", np.nan), "1 row.* with NaN: y.wav"),
    (lambda: _with(_with(P3, "x.wav", "indoor", -0.1), "x.wav", "outdoor", 0.6), "negative probability: x.wav"),
    (lambda: _with(P3, "x.wav", "indoor", 0.25), "not summing to one.*: x.wav"),
])
def test_check_probabilities_refuses(make, message):
    with pytest.raises(FusionError, match=message):
        fusion.check_probabilities(make())


def test_rows_within_csv_rounding_are_accepted():
    fusion.check_probabilities(_with(P3, "x.wav", "indoor", 0.2 + 5e-4))


def test_different_clips_are_refused_naming_them():
    extra = pd.concat([P3, _table({"z.wav": {"indoor": 1.0}}, COARSE_CLASSES)])
    with pytest.raises(FusionError, match=r"only in table 1: none; only in table 2: z.wav"):
        fusion.ensemble([P3, extra])
    with pytest.raises(FusionError, match=r"only in p10: y.wav; only in p3: none"):
        fusion.two_stage(P10, P3.drop("y.wav"))
    with pytest.raises(FusionError, match="different class sets"):
        fusion.ensemble([P3, P10])
    with pytest.raises(FusionError, match="a 10-class table and a 3-class table"):
        fusion.two_stage(P3, P10)


# --- a join by row position instead of by filename fails each of these ---------------------------
# The second table and the truth list the clips as b, c, a, the scores as a, b, c: a positional
# join pairs every clip with another's row, and changes every answer below.

SHUFFLED = ["b.wav", "c.wav", "a.wav"]
SCORES = _table({"a.wav": {"bus": 0.6, "park": 0.4}, "b.wav": {"park": 0.7, "airport": 0.3},
                 "c.wav": {"airport": 0.8, "tram": 0.2}})
SCORES_TRUTH = pd.DataFrame({"device": ["a", "b", "s4"], "label": ["bus", "park", "airport"]},
                            index=pd.Index(["a.wav", "b.wav", "c.wav"], name="filename")).loc[SHUFFLED]
TRUE_COARSE = SCORES_TRUTH["label"].map(COARSE_OF)  # b outdoor, c indoor, a transportation


def test_two_stage_joins_p3_by_filename():
    """Each clip keeps only the scenes of its own P3 class; by position a would get b's (outdoor)."""
    p3 = _table({"b.wav": {"outdoor": 1.0}, "c.wav": {"indoor": 1.0}, "a.wav": {"transportation": 1.0}},
                COARSE_CLASSES)
    expected = _table({"a.wav": {"bus": 1.0}, "b.wav": {"park": 1.0}, "c.wav": {"airport": 1.0}})
    pd.testing.assert_frame_equal(fusion.two_stage(SCORES, p3), expected)


def test_explain_joins_p3_by_filename():
    """Each clip's steps use its own P3 row (listed here as b, c, a); by position a would take b's.
    a: bus 0.6 x 0.7 = 0.42 and park 0.4 x 0.2 = 0.08, renormalised over their sum 0.5."""
    p3 = _table({"b.wav": {"outdoor": 0.6, "indoor": 0.3, "transportation": 0.1},
                 "c.wav": {"indoor": 0.5, "outdoor": 0.25, "transportation": 0.25},
                 "a.wav": {"transportation": 0.7, "outdoor": 0.2, "indoor": 0.1}}, COARSE_CLASSES)
    steps = fusion.explain(SCORES, p3, "a.wav")
    first = [p3.loc["a.wav", COARSE_OF[scene]] for scene in SCENES]
    fine = [SCORES.loc["a.wav", scene] for scene in SCENES]
    expected = pd.DataFrame({"coarse class": [COARSE_OF[scene] for scene in SCENES], "P10": fine,
                             "P3 of its coarse class": first, "product": np.multiply(fine, first),
                             "two-stage (renormalised)": np.multiply(fine, first) / 0.5},
                            index=pd.Index(SCENES, name="scene"))
    pd.testing.assert_frame_equal(steps, expected)
    assert steps.loc[["bus", "park"], "two-stage (renormalised)"].tolist() == pytest.approx([0.84, 0.16])


def test_ensemble_joins_tables_by_filename():
    """Each clip averages its own two rows; by position a would be averaged with b's row."""
    first = _table({"a.wav": {"indoor": 1.0}, "b.wav": {"outdoor": 1.0}, "c.wav": {"transportation": 1.0}},
                   COARSE_CLASSES)
    second = _table({"b.wav": {"outdoor": 0.5, "transportation": 0.5}, "c.wav": {"transportation": 1.0},
                     "a.wav": {"indoor": 0.5, "outdoor": 0.5}}, COARSE_CLASSES)
    expected = _table({"a.wav": {"indoor": 0.75, "outdoor": 0.25},
                       "b.wav": {"outdoor": 0.75, "transportation": 0.25},
                       "c.wav": {"transportation": 1.0}}, COARSE_CLASSES)
    pd.testing.assert_frame_equal(fusion.ensemble([first, second]), expected)


def test_oracle_joins_true_coarse_by_filename():
    """Each clip is masked to its own true coarse class; by position a would keep park, c tram."""
    expected = _table({"a.wav": {"bus": 1.0}, "b.wav": {"park": 1.0}, "c.wav": {"airport": 1.0}})
    pd.testing.assert_frame_equal(fusion.oracle(SCORES, TRUE_COARSE), expected)


def test_correct_joins_truth_by_filename():
    """Every decision is its own clip's label; by position every one would be wrong."""
    assert fusion.correct(SCORES, SCORES_TRUTH).to_dict() == {"a.wav": True, "b.wav": True, "c.wav": True}


def test_evaluate_joins_truth_by_filename():
    """Accuracies and log loss from each clip's own device and label; by position they would be
    0 % and a log loss with a clipped zero (c scores no bus)."""
    row = fusion.evaluate(SCORES, SCORES_TRUTH, "scores", decimals=None).loc["scores"]
    assert (row["a"], row["b"], row["s4"], row["overall"]) == (100, 100, 100, 100)
    assert row["log loss"] == pytest.approx(-(np.log(0.6) + np.log(0.7) + np.log(0.8)) / 3)


def test_changed_decisions_joins_after_and_truth_by_filename():
    """Counts from each clip's own new decision, label and device; by position after's rows
    would change all three decisions, and the truth's would make a wrong->wrong."""
    after = _table({"b.wav": {"airport": 1.0}, "c.wav": {"airport": 1.0}, "a.wav": {"tram": 1.0}})
    truth = SCORES_TRUTH.assign(label=SCORES_TRUTH["label"].replace("bus", "tram"))  # a: bus was wrong
    counts = fusion.changed_decisions(SCORES, after, truth)
    # a (device a) bus -> tram: wrong->right; b (b) park -> airport: right->wrong; c (s4) unchanged
    assert counts.loc["overall"].to_dict() == {"clips": 3, "changed": 2, "wrong->right": 1, "right->wrong": 1,
                                               "wrong->wrong": 0}
    assert counts["wrong->right"].to_dict() == {"A": 1, "B&C": 0, "s1-s3": 0, "s4-s6": 0, "s7-s11": 0, "overall": 1}
    assert counts["right->wrong"].to_dict() == {"A": 0, "B&C": 1, "s1-s3": 0, "s4-s6": 0, "s7-s11": 0, "overall": 1}


def test_consistency_joins_p3_and_true_coarse_by_filename():
    """Agreement and correlation from each clip's own P3 row and true class; by position P3's
    rows would agree on 1 clip in 3, and the truth's would make every implied decision wrong."""
    p3 = _table({"b.wav": {"outdoor": 0.6, "indoor": 0.4}, "c.wav": {"indoor": 0.3, "outdoor": 0.7},
                 "a.wav": {"transportation": 0.9, "indoor": 0.1}}, COARSE_CLASSES)
    row = fusion.consistency(SCORES, p3, TRUE_COARSE, "pair").loc["pair"]
    # decisions: implied transportation, outdoor, indoor (all right); p3 transportation, outdoor, outdoor
    assert row["argmax agreement %"] == pytest.approx(200 / 3) and row["wrong in both"] == 0
    # true-class scores of a, b, c: implied (0.6, 0.7, 0.8), p3 (0.9, 0.6, 0.3): correlation -1
    assert row["correlation of true-class scores"] == pytest.approx(-1.0)
