"""The plan of `python -m asclib reproduce --dry-run`: steps, sizes, estimated times."""

from __future__ import annotations

import math
from collections import defaultdict

import pandas as pd

from asclib import plan as planning
from asclib import architectures
from asclib.profiles import get_profile
from asclib.data import read_split

from conftest import PAPER, QUICK


def fake_timings(seconds: float = 0.01) -> planning.Timings:
    """The same time for every unit of work, so that tests need no measurement."""
    each = defaultdict(lambda: seconds)
    return planning.Timings("CPU (1 thread)", seconds, seconds, each, seconds, each, each, 0.0)


def test_measure_times_every_unit_of_the_quick_profile_and_writes_nothing(tmp_path, monkeypatch):
    for variable in ("ASC_DATA_DIR", "ASC_AUGMENTED_DIR", "ASC_CACHE_DIR", "ASC_RUNS_DIR", "ASC_RESULTS_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable))
    timings = planning.measure(QUICK, corpus=True)
    assert not list(tmp_path.iterdir())
    profile = get_profile("quick")
    assert {(name, n, profile.models) for name, n in architectures.notebook_runs()} <= set(timings.step)
    assert all(value > 0 for value in [timings.header, timings.features, timings.synth, *timings.augment.values(),
                                       *timings.step.values(), *timings.forward.values()])
    assert timings.seconds < 60


def test_paper_plan_without_data_uses_the_official_counts_and_exact_sizes(tmp_path):
    result = planning.plan(PAPER, tmp_path / "nowhere", timings=fake_timings())
    assert any("dataset folder not found" in note for note in result.notes)
    steps = result.steps.set_index("step")
    assert steps.loc["check the dataset (headers)", "amount"] == "23,040 files"
    pitch = steps.loc["augmentation: pitch_shift"]
    assert pitch["amount"] == "13,965 clips" and pitch["disk_bytes"] == 13_965 * (44 + 441_000 * 3)
    # features: training and evaluation clips, two device-A-only augmentations, dir's copies of
    # every device-A clip (after the paper) and four all-device augmentations
    features = 13_965 + 2_970 + (2 + PAPER.augment.substitute_copies) * 10_215 + 4 * 13_965
    assert steps.loc["log-mel features", "disk_bytes"] == features * (128 + 4 * 128 * 431)
    resnet = steps.loc["train resnet, 10 classes, 1 seed(s) (04_resnet)"]
    assert resnet["amount"] == f"1 x {126 * math.ceil((13_965 + 2 * 10_215 + 4 * 13_965) / 32):,} steps"
    assert resnet["disk_bytes"] > 2 * 4 * 12_000_000  # weights and momentum of about 13 M parameters
    text = str(result)
    assert "total" in text and "train fsfcnn, 10 classes" in text and "ablation:" in text


def test_official_counts_match_the_released_split_files(released_dir):
    official = pd.Series(planning.OFFICIAL_FOLD1)
    for split in ("train", "evaluate"):
        counted = read_split(released_dir / f"fold1_{split}.csv")["device"].value_counts()
        assert official[split].to_dict() == counted.to_dict()
    assert official.sum() == 23_040  # 64 hours of 10 s clips


def test_quick_plan_says_the_corpus_will_be_generated(tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_DATA_DIR", str(tmp_path / "corpus"))
    result = planning.plan(QUICK, timings=fake_timings())
    assert "will generate the synthetic corpus" in result.data
    assert result.steps["step"].iloc[0] == "generate the synthetic corpus"
    assert not (tmp_path / "corpus").exists()


def test_plan_counts_the_clips_of_a_dataset_folder(tiny_corpus):
    steps = planning.plan(QUICK, tiny_corpus, timings=fake_timings()).steps.set_index("step")
    assert steps.loc["check the dataset (headers)", "amount"] == "250 files"  # 10 scenes x (11 training + 14 evaluation)


def test_plan_warns_when_the_disk_is_too_small(tmp_path, monkeypatch):
    monkeypatch.setattr(planning.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1000})())
    text = str(planning.plan(PAPER, tmp_path / "nowhere", timings=fake_timings()))
    assert "WARNING: not enough free space" in text and "1.0 kB free" in text
