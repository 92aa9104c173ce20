"""The augmentation ablation (Table 3): rows, seeds, the statistics of the steps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from asclib import ablation, train
from asclib.config import AblationConfig


def _results(gains: dict[str, list[float]]) -> pd.DataFrame:
    """Results of three seeds whose every column equals 50 plus the row's gain of that seed."""
    rows = []
    for label, values in gains.items():
        for seed, value in enumerate(values):
            rows.append({"row": label, "seed": seed, **{c: 50.0 + value for c in ablation.COLUMNS}})
    return pd.DataFrame(rows)


def test_table_and_steps_by_hand():
    labels = list(ablation.ROWS)
    results = _results({labels[0]: [0, 0, 0], labels[1]: [1, 2, 3], labels[2]: [3.0, 4.1, 4.9]})
    summary = ablation.table(results)
    assert list(summary.index) == labels[:3]
    assert summary.loc[labels[1], "overall"] == 52.0 and summary.loc[labels[1], "overall std"] == 1.0
    assert list(summary.columns[:2]) == ["A", "A std"]
    steps = ablation.steps(results)
    first = steps.loc[(labels[1], labels[0], "overall")]
    half = 4.302653 / np.sqrt(3)  # Student t, 2 degrees of freedom, 95 %
    assert (first["mean gain"], first["std"], first["seeds"]) == (2.0, 1.0, 3)
    assert first["low"] == pytest.approx(2 - half, abs=0.01) and first["high"] == pytest.approx(2 + half, abs=0.01)
    assert not first["beyond seed noise"]  # differences 1, 2, 3: the interval holds zero
    second = steps.loc[(labels[2], labels[1], "overall")]  # differences 2.0, 2.1, 1.9
    assert second["mean gain"] == 2.0 and second["beyond seed noise"]
    sentences = ablation.describe(steps)
    assert len(sentences) == 2 and "not distinguishable" in sentences[0] and "a gain" in sentences[1]


def test_steps_pair_by_seed_and_compare_notebook_04s_recipe():
    labels = list(ablation.ROWS)
    gains = {label: [0, 10, 20] for label in labels}  # a seed effect, the same in every row
    gains[ablation.NOTEBOOK_04_ROW[0]] = [-1, 9, 19]
    steps = ablation.steps(_results(gains))
    assert (steps["std"] == 0).all()  # seed effects cancel in the paired differences
    last = steps.loc[(labels[-1], ablation.NOTEBOOK_04_ROW[0], "overall")]
    assert last["mean gain"] == 1.0 and last["beyond seed noise"]


def test_rows_add_augmentations_in_the_papers_order():
    chain = list(ablation.ROWS.values())
    assert chain[0] == ((), False) and chain[1] == ((), True)
    for (before, _), (after, masked) in zip(chain[1:], chain[2:]):
        assert set(before) < set(after) and masked
    assert set(chain[-1][0]) == set(ablation.NOTEBOOK_04_ROW[1][0]) and not ablation.NOTEBOOK_04_ROW[1][1]


def test_run_all_trains_every_row_and_seed_once(tiny_corpus, tmp_path, monkeypatch):
    from asclib.data import load_index
    from conftest import TINY
    from test_train import TINY_TRAINING

    for variable, folder in (("ASC_RUNS_DIR", "runs"), ("ASC_CACHE_DIR", "cache"), ("ASC_AUGMENTED_DIR", "aug")):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    profile = dataclasses.replace(TINY, models=TINY_TRAINING.models, train=TINY_TRAINING.train,
                                  augment=dataclasses.replace(TINY.augment, crop_frames=32),
                                  ablation=AblationConfig(seeds=(0, 1), resnet_width=2, epochs=2))
    index = load_index(tiny_corpus, profile)
    results = ablation.run_all(index, profile, with_notebook_04=False, workers=1)
    assert list(results["row"]) == [label for label in ablation.ROWS for _ in (0, 1)]
    assert set(ablation.COLUMNS) <= set(results.columns)
    folders = sorted((tmp_path / "runs" / "quick" / ablation.GROUP).iterdir())
    assert len(folders) == len(ablation.ROWS) * 2  # every row and seed is its own run
    assert all((folder / ablation.PREDICTIONS).is_file() for folder in folders)
    stamps = [(folder / train.CHECKPOINT).stat().st_mtime_ns for folder in folders]
    again = ablation.run_all(index, profile, with_notebook_04=False, workers=1)
    pd.testing.assert_frame_equal(results, again)
    assert stamps == [(folder / train.CHECKPOINT).stat().st_mtime_ns for folder in folders]  # nothing retrained
