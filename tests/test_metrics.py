"""Accuracy by device, log loss and the paired bootstrap, against values computed by hand."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from asclib.config import TRAINING_OVERRIDES_VARIABLE
from asclib.metrics import accuracy_by_device, check_plausible, log_loss, paired_bootstrap, seeded_gain


def test_accuracy_by_device_by_hand():
    table = pd.DataFrame({"device": ["a", "a", "b", "c", "c", "s1", "s4", "s5"],
                          "correct": [True, False, True, False, False, True, True, False]})
    row = accuracy_by_device(table, decimals=None).loc["accuracy %"]
    # a 1/2, b 1/1, c 0/2, s1 1/1, s4 1/1, s5 0/1; groups pool their clips: B&C 1/3, s4-s6 1/2
    expected = {"a": 50.0, "b": 100.0, "c": 0.0, "s1": 100.0, "s4": 100.0, "s5": 0.0,
                "A": 50.0, "B&C": 100 / 3, "s1-s3": 100.0, "s4-s6": 50.0, "overall": 50.0}
    for column, value in expected.items():
        assert row[column] == pytest.approx(value), column
    assert row[["s2", "s3", "s6"]].isna().all()
    assert accuracy_by_device(table).loc["accuracy %", "B&C"] == 33.3  # default: one decimal


def test_log_loss_by_hand():
    probabilities = np.array([[0.8, 0.2], [0.25, 0.75]])
    assert log_loss(probabilities, np.array([0, 0])) == pytest.approx(-(math.log(0.8) + math.log(0.25)) / 2)
    assert log_loss(probabilities, np.array([0, 1])) == pytest.approx(-(math.log(0.8) + math.log(0.75)) / 2)
    # a zero probability for the true class is clipped at 1e-15, not infinite
    assert log_loss(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1, 1])) == pytest.approx(-math.log(1e-15) / 2)


def test_log_loss_rejects_bad_shapes_and_indices():
    with pytest.raises(ValueError, match="one true index per clip"):
        log_loss(np.full((2, 2), 0.5), np.array([0]))
    with pytest.raises(ValueError, match="0..1"):
        log_loss(np.full((2, 2), 0.5), np.array([0, 2]))


def _devices(per_device: int) -> np.ndarray:
    return np.repeat(["a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6"], per_device)


def test_bootstrap_of_identical_systems_is_zero():
    devices = _devices(10)
    correct = np.random.default_rng(1).random(len(devices)) < 0.7
    table = paired_bootstrap(correct, correct, devices, n_resamples=200)
    assert list(table.index) == ["A", "B&C", "s1-s3", "s4-s6", "overall"]
    assert (table[["gain", "low", "high"]] == 0).all().all()
    assert not table["distinguishable"].any()


def test_bootstrap_gain_of_fixed_clips():
    devices = _devices(20)
    a = np.zeros(len(devices), dtype=bool)
    b = a.copy()
    b[np.flatnonzero(devices == "s2")[:3]] = True  # b fixes 3 of the 60 clips of s1-s3
    table = paired_bootstrap(a, b, devices)
    assert table.loc["s1-s3", "gain"] == pytest.approx(100 * 3 / 60)
    assert table.loc["overall", "gain"] == pytest.approx(100 * 3 / 180)
    assert (table.loc[["A", "B&C", "s4-s6"], ["gain", "low", "high"]] == 0).all().all()
    assert ((table["low"] <= table["gain"]) & (table["gain"] <= table["high"])).all()


def test_bootstrap_interval_excludes_zero_only_for_a_clear_gain():
    devices = _devices(40)
    a = np.zeros(len(devices), dtype=bool)
    clear = a.copy()
    clear[::2] = True  # half of every device's clips fixed, none broken
    assert paired_bootstrap(a, clear, devices).loc["overall", "distinguishable"]
    before, after = a.copy(), a.copy()
    before[[1, 3]] = True
    after[[0, 2]] = True  # two clips of device a fixed, two others broken: no net gain
    row = paired_bootstrap(before, after, devices).loc["A"]
    assert row["gain"] == 0 and row["low"] < 0 < row["high"] and not row["distinguishable"]


def test_bootstrap_is_deterministic_and_fast():
    devices = _devices(330)  # as many clips as the real evaluation split
    rng = np.random.default_rng(0)
    a, b = rng.random(len(devices)) < 0.78, rng.random(len(devices)) < 0.8
    start = time.perf_counter()
    first = paired_bootstrap(a, b, devices, n_resamples=1000, seed=3)
    assert time.perf_counter() - start < 1.0
    pd.testing.assert_frame_equal(first, paired_bootstrap(a, b, devices, n_resamples=1000, seed=3))
    assert not first.equals(paired_bootstrap(a, b, devices, n_resamples=1000, seed=4))


# --- devices with unequal clip counts (real data has them; the resamples must pool clips as the gain does)

def _unequal(gain_a: np.ndarray, clips_b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """System a wrong everywhere; system b gains `gain_a` (1 or 0 per clip) on device a and
    nothing on `clips_b` clips of device b. Returns (a, b, devices)."""
    devices = np.array(["a"] * len(gain_a) + ["b"] * clips_b)
    before = np.zeros(len(devices), dtype=bool)
    return before, np.concatenate([gain_a, np.zeros(clips_b)]).astype(bool), devices


def test_bootstrap_of_unequal_devices_is_centred_on_the_pooled_gain():
    """10 clips of device a all fixed, 30 of b unchanged: "overall" pools the 40 clips (+25
    points), and so does every resample (neither device varies): the interval is [25, 25].
    Averaging the two devices equally would centre it on 50."""
    a, b, devices = _unequal(np.ones(10), 30)
    row = paired_bootstrap(a, b, devices, n_resamples=200).loc["overall"]
    assert row[["gain", "low", "high"]].tolist() == pytest.approx([25.0, 25.0, 25.0])


def test_clip_spread_of_unequal_devices_pools_the_clips():
    """5 of device a's 10 clips fixed, 90 clips of b unchanged. The pooled gain over the 100
    clips varies with a's resampled sum only: its standard deviation is sqrt(10 x 0.25) / 100
    = 1.58 points (averaging the devices equally would make it sqrt(0.25 / 10) / 2 = 7.9)."""
    a, b, devices = _unequal(np.arange(10) % 2, 90)
    row = seeded_gain(a, b, devices, n_resamples=4000, seed=2).loc["overall"]
    assert row["gain"] == pytest.approx(5.0)
    assert row["clip std"] == pytest.approx(100 * np.sqrt(10 * 0.25) / 100, rel=0.1)


def test_bootstrap_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"got 3 \(system a\), 2 \(system b\) and 3 \(devices\)"):
        paired_bootstrap([1, 0, 1], [1, 0], ["a", "a", "b"])
    with pytest.raises(ValueError, match="unknown device"):
        paired_bootstrap([1], [0], ["s12"])


def test_the_plausibility_guard_fails_a_broken_pipeline_but_not_a_smoke_run(monkeypatch):
    chance = pd.DataFrame({"A": [10.0], "s4-s6": [10.0], "overall": [10.0]}, index=["broken"])
    monkeypatch.setenv(TRAINING_OVERRIDES_VARIABLE, "")
    with pytest.raises(AssertionError, match="broken: overall accuracy 10.0 % is not above twice chance"):
        check_plausible(chance, 10)
    monkeypatch.setenv(TRAINING_OVERRIDES_VARIABLE, '{"epochs": 2}')  # models trained 2 steps learn nothing
    check_plausible(chance, 10)
