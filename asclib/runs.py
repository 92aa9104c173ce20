"""Every run the notebooks need, made ahead of them (`python -m asclib train` and `reproduce`):
the runs of notebooks 04-06 under every training seed and the ablation's of notebook 09, trained
side by side, then their evaluation predictions. By default in forked processes, one run per CPU
core (one on a GPU: `train.fit_many`, then `predict_all`); with a launcher (`launch.Settings`)
through submitit, one run per GPU or a Slurm job array, each run predicting in its own job.

Predicting the 2,700 evaluation clips of the quick corpus takes a 10-class ResNet 10-25 s on one
core; computed here, in parallel, each run's predictions are kept in its folder
(`evaluation.run_predictions`) and the notebooks only read them.
"""

from __future__ import annotations

import pandas as pd

from asclib import ablation, distributed, evaluation, launch, train
from asclib.config import Profile
from asclib.parallel import process_map

_WORK: dict = {}  # the evaluation index and training sets that `predict_all`'s forked workers read


def _predict_in_worker(job: dict) -> None:
    run = train.fit(**{**job, "data": _WORK["sets"][job["data"]]}, progress=False)
    evaluation.run_predictions(run, _WORK["index"], job["profile"])


def predict_all(jobs: list[dict], sets: dict, index: pd.DataFrame, workers: int | None = None) -> None:
    """Store the evaluation predictions of the finished runs `jobs` (`train.fit_many`'s jobs),
    `workers` at a time (default: one per core); each run once, however often it is listed."""
    unique = {train.job_folder(job, sets): job for job in jobs}
    _WORK.update(sets=sets, index=index)
    try:
        process_map(_predict_in_worker, list(unique.values()), workers or train.default_workers(),
                    f"evaluation predictions of {len(unique)} runs", "run")
    finally:
        _WORK.clear()


def prepare(index: pd.DataFrame, profile: Profile, data_seed: int = 0, workers: int | None = None,
            with_ablation: bool = True, settings: launch.Settings | None = None) -> None:
    """Train every run of notebooks 04-06 (and 09's unless not `with_ablation`) and store their
    evaluation predictions: in forked processes (`workers` at a time), or through the launcher
    of `settings`, where `settings.only` may pick runs by label (`plan.label`). Under torchrun
    (several processes) only the training is done; the notebooks predict later."""
    extra = ablation.jobs(index, profile, data_seed=data_seed) if with_ablation else ((), {})
    jobs, sets = train.unique_jobs(index, profile, data_seed, also=extra)
    if settings is not None and settings.only:
        jobs = launch.chosen(jobs, settings.only)
    if settings is None or settings.launcher == "pool":
        train.fit_many(jobs, sets, f"training {len(jobs)} runs", workers)
        if not distributed.context().active:
            predict_all(jobs, sets, index, workers)
        return
    pending = launch.tasks(jobs, sets, settings.data_dir, profile, data_seed, settings.seconds)
    print(f"{len(jobs) - len(pending)} of {len(jobs)} runs are finished; launching the other {len(pending)}",
          flush=True)
    outcome = launch.run(pending, settings.launcher, settings.slots, settings.gpus, profile,
                         settings.time_limit_hours, settings.slurm)
    if outcome.failed:
        logs = "; ".join(f"{run}: {log}" for run, log in outcome.failed.items())
        raise launch.LaunchError(f"{len(outcome.failed)} of {len(pending)} runs failed ({logs}); the other runs "
                                 "are kept, and the same command runs only what is missing")
