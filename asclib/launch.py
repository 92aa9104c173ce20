"""The notebooks' independent training runs side by side through an existing scheduler
(`reproduce --launcher local|slurm`): submitit's local executor on one machine, one run per GPU
(each process sees one card) or per CPU core without one, and a Slurm job array on a cluster.

Each run is a `RunTask`, a small picklable description. In its own process it reads the
dataset's index, rebuilds its training set from the caches the launching process made (offline
augmentations, log-mels), trains (`train.fit`, which resumes from the run's last epoch
checkpoint) and stores its evaluation predictions in its run folder, where the notebooks read
them. When a scheduler preempts a run or its time limit comes, submitit calls
`RunTask.checkpoint` and requeues it: it resumes from that checkpoint. Finished runs are never
launched again (`finished`), so the same command re-runs a failed run, alone. Every job's log
is in runs/<profile>/launch/. Used by `runs.prepare`; its estimates and labels come from `plan`.
"""

from __future__ import annotations

import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import submitit

from asclib import plan
from asclib.config import Profile, paths

LAUNCHERS = ("pool", "local", "slurm")  # pool: forked processes (`train.fit_many`), no scheduler
POLL_SECONDS = 2.0
LOCAL_TIME_LIMIT_HOURS = 24 * 7  # the local executor's default (2 minutes) would interrupt every run


class LaunchError(RuntimeError):
    """Some runs of a launch failed (the others are kept)."""


@dataclass(frozen=True)
class Settings:
    """How `runs.prepare` launches the runs: `launcher` (`LAUNCHERS`), `slots` runs at a time
    (one GPU each if `gpus`), a time limit per job, more sbatch settings (`slurm`: partition,
    account, mem_gb, ...), only the runs labelled `only`, the dataset folder, and the runs'
    estimated seconds by label (for the time left)."""

    launcher: str
    slots: int
    gpus: bool
    data_dir: str
    time_limit_hours: float | None = None
    slurm: dict = field(default_factory=dict)
    only: tuple[str, ...] = ()
    seconds: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunTask(submitit.helpers.Checkpointable):
    """One training run: `train.fit`'s keyword arguments (`fit`, without the training set), the
    set's offline augmentations and seed, the dataset folder, and an estimate of its seconds."""

    label: str
    fit: dict
    offline: tuple[str, ...]
    data_dir: str
    data_seed: int
    profile: Profile = field(repr=False)  # the launching profile, which made the training sets
    seconds: float = 0.0

    def __call__(self) -> str:
        """Train (or resume) the run and store its predictions; return its folder."""
        from threadpoolctl import threadpool_limits

        from asclib import evaluation, train
        from asclib.data import load_index

        with threadpool_limits(limits=1):  # as the forked workers of `parallel.process_map`
            index = load_index(self.data_dir, self.profile)
            data = train.training_set(index, self.fit["n_classes"], self.profile, self.offline, seed=self.data_seed)
            folder = train.run_folder(**{**self.fit, "data": data})
            done = _epochs_done(folder)
            print(f"{self.label}: {'resuming from epoch ' + str(done) if done else 'starting'} in {folder}",
                  flush=True)
            run = train.fit(**self.fit, data=data, progress=False)
            evaluation.run_predictions(run, index, self.fit["profile"])
        return str(run.folder)


def _epochs_done(folder: Path) -> int:
    from asclib import train

    checkpoint = folder / train.CHECKPOINT
    return int(train.read_checkpoint(checkpoint)["epoch"]) if checkpoint.is_file() else 0


def finished(folder: Path, name: str, profile: Profile) -> bool:
    """Whether the run in `folder` has trained all its epochs and stored its predictions."""
    from asclib import evaluation

    return (folder / evaluation.PREDICTIONS).is_file() and _epochs_done(folder) >= profile.epochs(name)


def settings(launcher: str | None, profile: Profile, data_dir: str | Path, data_seed: int = 0,
             gpus: int | None = None, nodes: int = 1, time_limit_hours: float | None = None,
             slurm: dict | None = None, only=(), card: str = "H200") -> Settings | None:
    """The launch settings of a command line (`reproduce`, `train`): by default forked
    processes ("pool") with at most one GPU visible and the local executor, one run per GPU,
    with several; `gpus` (local: how many of the visible GPUs; Slurm: runs at a time per node,
    0 for CPU jobs) and `nodes` (Slurm). The runs' estimates come from this machine's timings
    (`plan.measure`) locally and from `card`'s measured rates on Slurm. None: the default pool."""
    import torch

    visible = torch.cuda.device_count()
    launcher = check(launcher, nodes, time_limit_hours, visible)
    if launcher == "pool":
        return Settings("pool", 0, False, str(data_dir), only=tuple(only)) if only else None
    if launcher == "local":
        if gpus is not None and gpus > visible:
            raise ValueError(f"--gpus {gpus}: this machine has {visible} visible GPU(s)")
        slots, use_gpus = (gpus or visible, True) if visible else (gpus or _cores(), False)
        seconds = plan.run_seconds(profile, data_dir, data_seed)
    else:
        slots, use_gpus = (1 if gpus is None else max(gpus, 1)) * nodes, gpus != 0
        seconds = plan.run_seconds(profile, data_dir, data_seed, card) if profile.name == "paper" else {}
    return Settings(launcher, slots, use_gpus, str(data_dir), time_limit_hours, dict(slurm or {}), tuple(only),
                    seconds)


def check(launcher: str | None, nodes: int = 1, time_limit_hours: float | None = None,
          visible: int | None = None) -> str:
    """The launcher that `settings` will use (None: "local" with several GPUs `visible`, else
    "pool"), once the options are checked: cheap, so that a command line refuses them before
    any long work."""
    import os

    if visible is None:
        import torch

        visible = torch.cuda.device_count()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun the processes train each run together
        if launcher not in (None, "pool"):
            raise ValueError(f"--launcher {launcher} cannot run under torchrun: launch `python -m asclib train` "
                             "without torchrun, or use torchrun without --launcher")
        launcher = "pool"
    launcher = launcher or ("local" if visible > 1 else "pool")
    if launcher not in LAUNCHERS:
        raise ValueError(f"--launcher must be one of {LAUNCHERS}, got {launcher!r}")
    if nodes != 1 and launcher != "slurm":
        raise ValueError(f"--nodes {nodes} needs --launcher slurm (the {launcher} launcher uses this machine alone)")
    if launcher == "slurm" and not time_limit_hours:
        raise ValueError("--launcher slurm needs each job's time limit: --time-limit HOURS")
    return launcher


def _cores() -> int:
    from asclib.train import default_workers

    return default_workers()


def chosen(jobs: list[dict], labels) -> list[dict]:
    """The jobs whose `label` is among `labels`; an unknown label is an error that lists them all."""
    known = [plan.label(job) for job in jobs]
    unknown = sorted(set(labels) - set(known))
    if unknown:
        raise ValueError(f"no run is labelled {', '.join(map(repr, unknown))}; the runs are: {', '.join(known)}")
    return [job for job in jobs if plan.label(job) in set(labels)]


def tasks(jobs: list[dict], sets: dict, data_dir: str | Path, profile: Profile, data_seed: int,
          seconds: dict | None = None) -> list[RunTask]:
    """The unfinished runs among `train.fit_many`'s `jobs` (training sets in `sets`, made from
    `data_dir` with `profile` and `data_seed`) as tasks; `seconds`: estimates by label."""
    from asclib import train

    made = []
    for job in jobs:
        data = sets[job["data"]]
        fit = {key: value for key, value in job.items() if key != "data"}
        if not finished(train.run_folder(**{**fit, "data": data}), job["name"], job["profile"]):
            made.append(RunTask(plan.label(job), fit, tuple(data.methods), str(Path(data_dir).resolve()), data_seed,
                                profile, (seconds or {}).get(plan.label(job), 0.0)))
    return made


@dataclass
class Outcome:
    """What a launch did: the runs that finished and those that failed (label -> log file)."""

    done: list[str]
    failed: dict[str, str]


def run(pending: list[RunTask], launcher: str, slots: int, gpus: bool, profile: Profile,
        time_limit_hours: float | None = None, slurm: dict | None = None, poll: float = POLL_SECONDS) -> Outcome:
    """Run `pending` (longest first) through `launcher`, `slots` at a time (one GPU each if
    `gpus`), showing runs done, running and left and the time left; if this process is stopped,
    every job it started is cancelled. `slurm`: more sbatch settings (partition, account, ...)."""
    from tqdm.auto import tqdm

    if launcher not in LAUNCHERS[1:]:
        raise ValueError(f"launcher must be one of {LAUNCHERS[1:]}, got {launcher!r}")
    if slots < 1:
        raise ValueError(f"slots must be at least 1, got {slots}")
    pending = sorted(pending, key=lambda task: -task.seconds)
    folder = paths(profile).runs / "launch"
    outcome, running = Outcome([], {}), {}  # running: job -> (task, slot, start)
    bar = tqdm(total=len(pending), desc=f"{len(pending)} runs, {slots} at a time ({launcher})", unit="run")
    try:
        if launcher == "slurm":
            jobs = submit_array(pending, slots, gpus, profile, time_limit_hours, slurm or {})
            running = {job: (task, None, time.monotonic()) for job, task in zip(jobs, pending)}
            pending = []
        else:
            executor, cards = _local_executor(folder, gpus, time_limit_hours), _cards(slots if gpus else 0)
        while pending or running:
            for job in [job for job in running if job.done()]:
                task, _, _ = running.pop(job)
                if job.exception() is None:
                    outcome.done.append(task.label)
                else:
                    outcome.failed[task.label] = str(job.paths.stderr)
                    print(f"FAILED: {task.label}; its log: {job.paths.stderr}; to run it alone: "
                          f"{rerun_command(task, profile.name)}", flush=True)
                bar.update()
            taken = {slot for _, slot, _ in running.values()}
            for slot in [s for s in range(slots) if s not in taken][:len(pending)]:
                task = pending.pop(0)
                if gpus:
                    executor.update_parameters(visible_gpus=(cards[slot],))
                running[executor.submit(task)] = (task, slot, time.monotonic())
            bar.set_postfix_str(_progress(pending, running, slots, launcher), refresh=True)
            if pending or running:
                time.sleep(poll)
    finally:
        for job in running:  # stopped or failed here: no job is left running
            job.cancel(check=False)
        bar.close()
    return outcome


def _progress(pending: list[RunTask], running: dict, slots: int, launcher: str) -> str:
    """Runs running and left, and the time left from the runs' estimates (none when not estimated).
    On Slurm every run is submitted at once: those not done are counted as running, and the time
    left is their schedule from now, as if none had started."""
    if launcher == "slurm":
        wall = plan.schedule(sorted((task.seconds for task, _, _ in running.values()), reverse=True), slots)[2]
    else:
        now = time.monotonic()
        busy = [max(task.seconds - (now - start), 0.0) for task, _, start in running.values()]
        wall = plan.schedule([task.seconds for task in pending], slots, busy)[2]
    text = f"running {len(running)}, left {len(pending)}"
    return text + (f", about {_hours(wall)} left" if wall else "")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def _cards(count: int) -> list[int]:
    """The first `count` GPUs this process may use, as numbers for each job's CUDA_VISIBLE_DEVICES:
    those this process's CUDA_VISIBLE_DEVICES lists, else 0, 1, ..."""
    import os

    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return list(range(count))
    cards = [entry.strip() for entry in listed.split(",") if entry.strip()]
    if not all(card.isdigit() for card in cards) or len(cards) < count:
        raise ValueError(f"CUDA_VISIBLE_DEVICES={listed!r}: the local launcher needs {count} GPU numbers there "
                         "(or the variable unset)")
    return [int(card) for card in cards[:count]]


def _local_executor(folder: Path, gpus: bool, time_limit_hours: float | None) -> submitit.LocalExecutor:
    executor = submitit.LocalExecutor(folder=folder / "%j")
    executor.update_parameters(timeout_min=int(60 * (time_limit_hours or LOCAL_TIME_LIMIT_HOURS)),
                               gpus_per_node=1 if gpus else 0)
    return executor


def slurm_executor(folder: Path, slots: int, gpus: bool, profile: Profile, time_limit_hours: float,
                   longest_seconds: float, settings: dict) -> submitit.SlurmExecutor:
    """A Slurm executor for a job array of runs: one task per run, `slots` at a time
    (`--array=0-N%slots`), one GPU each, `time_limit_hours` each; a run that meets its time
    limit or is preempted is requeued and resumes, as often as its estimate needs (and three
    times more). `settings`: other sbatch options (partition, account, qos, mem_gb, ...)."""
    requeues = math.ceil(longest_seconds / (3600 * time_limit_hours)) + 3
    executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=requeues)
    executor.update_parameters(job_name=f"asclib-{profile.name}", time=int(60 * time_limit_hours),
                               array_parallelism=slots, nodes=1, ntasks_per_node=1,
                               **({"gpus_per_node": 1} if gpus else {}),
                               signal_delay_s=120, additional_parameters={"requeue": True}, **settings)
    return executor


def submit_array(pending: list[RunTask], slots: int, gpus: bool, profile: Profile, time_limit_hours: float | None,
                 settings: dict) -> list:
    """Submit `pending` as one Slurm job array (`slurm_executor`); return its jobs."""
    if not time_limit_hours:
        raise ValueError("a Slurm launch needs a time limit per job (--time-limit HOURS)")
    longest = max((task.seconds for task in pending), default=0.0)
    executor = slurm_executor(paths(profile).runs / "launch", slots, gpus, profile, time_limit_hours, longest,
                              settings)
    with executor.batch():
        jobs = [executor.submit(task) for task in pending]
    return jobs


def rerun_command(task: RunTask, profile_name: str) -> str:
    """The command that trains one run alone (after a failure)."""
    return f"python -m asclib train --profile {profile_name} --only {shlex.quote(task.label)}"
