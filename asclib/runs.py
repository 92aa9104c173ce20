"""Every run the notebooks need, made ahead of them (`python -m asclib train` and `reproduce`),
and the check of the committed ones (`check_sample`).

The runs of notebooks 04-06 under every training seed and the ablation's of notebook 09 are
trained once and committed with their evaluation predictions (`asclib.store`): by default in
forked processes, one run per CPU core, seed after seed, each entry written as its run ends;
with a launcher (`launch.Settings`) through submitit, one run per GPU or a Slurm job array, and
their entries written here after. A sitting can stop at any point: the same command trains only
what is missing, resuming the runs under way from their checkpoints.
"""

from __future__ import annotations

import pandas as pd

from asclib import ablation, distributed, launch, plan, store, train
from asclib.config import Profile

def every_job(index: pd.DataFrame, profile: Profile, data_seed: int = 0,
              with_ablation: bool = True) -> tuple[list[dict], dict]:
    """Every run of notebooks 04-06 (and 09's unless not `with_ablation`) as `train.fit_many`
    jobs, each once, with their training sets."""
    extra = ablation.jobs(index, profile, data_seed=data_seed) if with_ablation else ((), {})
    return train.unique_jobs(index, profile, data_seed, also=extra)


def prepare(index: pd.DataFrame, profile: Profile, data_seed: int = 0, workers: int | None = None,
            with_ablation: bool = True, settings: launch.Settings | None = None) -> None:
    """Train every run of notebooks 04-06 (and 09's unless not `with_ablation`) and store their
    evaluation predictions: in forked processes (`workers` at a time), or through the launcher
    of `settings`, where `settings.only` may pick runs by label (`plan.label`). Under torchrun
    (several processes) only the training is done; the notebooks predict later."""
    jobs, sets = every_job(index, profile, data_seed, with_ablation)
    if settings is not None and settings.only:
        jobs = launch.chosen(jobs, settings.only)
    if distributed.context().active:  # under torchrun: every process trains each run together
        train.fit_many(jobs, sets, f"training {len(jobs)} runs", workers)
        return
    if settings is None or settings.launcher == "pool":
        store.finished(jobs, sets, index, workers)
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
    store.finished(jobs, sets, index, workers, "committing the launched runs")


def check_sample(index: pd.DataFrame, profile: Profile, commit: str, count: int = 2, everything: bool = False,
                 data_seed: int = 0) -> tuple[str, pd.DataFrame]:
    """Where the committed runs come from, in a sentence (`store.origin`), and a sample of them
    trained again and compared (`store.check`): `count` runs chosen by `commit`, or with
    `everything` all of them to their end; one row per run, named as `plan.label` names it."""
    jobs, sets = every_job(index, profile, data_seed)
    origin = store.origin(store.finished(jobs, sets, index))
    table = store.check(jobs, sets, index, commit, count, everything)
    table.insert(0, "run", [plan.label(jobs[position]) for position in table.pop("job")])
    return origin, table


def training_cost(index: pd.DataFrame, profile: Profile, cores=(2, 8, 16), data_seed: int = 0) -> pd.DataFrame:
    """What the one-time training of the committed runs took: runs and CPU-hours (their measured
    seconds, one thread each) of the models of notebooks 04-06 and of Table 3's other rows, and
    the hours on each of `cores` cores, one run per core (CPU-hours / cores: the least it can
    take there; notebook 09, the README)."""
    jobs, sets = every_job(index, profile, data_seed)
    stored = store.finished(jobs, sets, index)
    parts = pd.DataFrame({"part": ["models of notebooks 04-06" if job["group"] != ablation.GROUP else
                                   "Table 3's rows (the no-sa row is notebook 04's runs)" for job in jobs],
                          "CPU hours": [run.seconds / 3600 * train.TRAIN_THREADS for run in stored]})
    table = parts.groupby("part", sort=False).agg(runs=("CPU hours", "size"), cpu=("CPU hours", "sum"))
    table.loc["all"] = table.sum()
    table = table.rename(columns={"cpu": "CPU hours"})
    table.insert(1, "how", "measured")
    for count in cores:
        table[f"hours on {count} cores"] = table["CPU hours"] / count
    table["runs"] = table["runs"].astype(int)
    return table.round(2)

