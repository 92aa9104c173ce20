"""Every run the notebooks need, made ahead of them (`python -m asclib train` and `reproduce`):
the runs of notebooks 04-06 under every training seed and the ablation's of notebook 09, trained
side by side (`train.train_all`), then their evaluation predictions, also one run per core.

Predicting the 2,700 evaluation clips of the quick corpus takes a 10-class ResNet 10-25 s on one
core; computed here, in parallel, each run's predictions are kept in its folder
(`evaluation.run_predictions`) and the notebooks only read them.
"""

from __future__ import annotations

import pandas as pd

from asclib import ablation, distributed, evaluation, train
from asclib.config import Profile
from asclib.parallel import process_map

_WORK: dict = {}  # the evaluation index and training sets that `predict_all`'s forked workers read


def _predict_in_worker(job: dict) -> None:
    run = train.fit(**{**job, "data": _WORK["sets"][job["data"]]}, progress=False)
    evaluation.run_predictions(run, _WORK["index"], job["profile"])


def predict_all(jobs: list[dict], sets: dict, index: pd.DataFrame, workers: int | None = None) -> None:
    """Store the evaluation predictions of the finished runs `jobs` (`train.fit_many`'s jobs),
    `workers` at a time (default: one per core); each run once, however often it is listed."""
    unique = {train.run_folder(**{**train._folder_arguments(job), "data": sets[job["data"]]}): job for job in jobs}
    _WORK.update(sets=sets, index=index)
    try:
        process_map(_predict_in_worker, list(unique.values()), workers or train.default_workers(),
                    f"evaluation predictions of {len(unique)} runs", "run")
    finally:
        _WORK.clear()


def prepare(index: pd.DataFrame, profile: Profile, data_seed: int = 0, workers: int | None = None) -> None:
    """Train every run of notebooks 04-06 and 09 and store their evaluation predictions. Under
    torchrun (several processes) only the training is done; the notebooks predict later."""
    extra = ablation.jobs(index, profile)
    train.train_all(index, profile, data_seed, workers, also=extra)
    if distributed.context().active:
        return
    jobs, sets = train.notebook_jobs(index, profile, data_seed)
    predict_all([*jobs, *extra[0]], {**sets, **extra[1]}, index, workers)
