"""Runs made ahead of the notebooks (asclib/runs.py): after training, every run's evaluation
predictions are computed side by side and stored in its folder, the same as one process would
compute them, each run once however often it is listed."""

from __future__ import annotations

import dataclasses

import pandas as pd

from asclib import architectures, data, evaluation, runs, train
from conftest import TINY
from test_train import TINY_TRAINING


def test_predictions_of_every_run_are_stored_side_by_side(tiny_corpus, tmp_path, monkeypatch):
    for variable, folder in (("ASC_RUNS_DIR", "runs"), ("ASC_CACHE_DIR", "cache"), ("ASC_AUGMENTED_DIR", "augmented")):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    profile = dataclasses.replace(TINY, models=TINY_TRAINING.models, train=TINY_TRAINING.train,
                                  augment=dataclasses.replace(TINY.augment, crop_frames=32))
    index = data.load_index(tiny_corpus, profile)
    jobs, sets = train.notebook_jobs(index, profile)
    train.fit_many(jobs, sets, "training", workers=2)
    stored = lambda: sorted((tmp_path / "runs").glob(f"*/*/*/{evaluation.PREDICTIONS}"))  # noqa: E731
    assert stored() == []
    runs.predict_all(jobs + jobs[:2], sets, index, workers=2)  # two jobs listed twice
    assert len(stored()) == len(jobs) == len(architectures.notebook_runs())
    evaluated = index[index["split"] == "evaluate"]
    for job in jobs:
        run = train.fit(**{**job, "data": sets[job["data"]]}, progress=False)
        kept = pd.read_csv(run.folder / evaluation.PREDICTIONS)
        here = evaluation.predict(run.model, evaluated, run.n_classes, profile)
        assert list(kept["filename"]) == list(here["filename"])
        assert abs(kept.iloc[:, 3:].to_numpy() - here.iloc[:, 3:].to_numpy()).max() < 1e-5  # CSV keeps 6 decimals
