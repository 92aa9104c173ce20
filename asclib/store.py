"""Committed runs: each finished training run kept as a small file under `results/<profile>/runs/`,
so that the tables are rebuilt from what was trained once, and checked by retraining a sample.

A run of the quick profile trains for minutes to a quarter of an hour; all of them take CPU-hours
(docs/results.md). `python -m asclib train` trains each run once and writes its *entry*: the
evaluation predictions as float16 (in the order of `CLIPS`, the evaluation clips), the training
loss and learning rate of every step (float32), the training seconds, the predictions at the end
of the first `WAYPOINT_EPOCHS` epochs (for the sample check), and where it was made (commit,
CPU, date). The entries of the first seed's notebook runs keep their weights too (notebook 10's
class activation maps, `asclib predict`). An entry is named by its model and `entry_key`: the
run's key (`train.run_key`) without the machine's kernel caps (its clips named by `clips_key`),
with the key of the prediction code and clips (`evaluation.predictions_key`). Every clone computes the same key, so a clone
reads the entries, and a change to the code, the data or the recipe of a run makes its entry
stale: that run is trained again.

The sample check (`check_sample`): a few runs, chosen by the commit id, are trained again from
scratch in a scratch folder for their first `WAYPOINT_EPOCHS` epochs, and their loss at every
step and their predictions there must equal the entry's bit for bit. A whole run takes up to a
quarter of an hour on a 2-core CPU, its first cycles about a ninth of that; `--retrain-all`
trains every run to its end and compares the final predictions. Where the CPU's code paths are
not capped at AVX2 (`kernels`), bits cannot agree, and the predictions are compared within the
spread that one rounding of one initial weight makes (the one-ulp replicate,
benchmarks/results/cpu_agreement_one_ulp_nudge_vs_committed.txt).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asclib import architectures, curves, evaluation, kernels, provenance, train
from asclib.config import PROJECT_ROOT, Profile, config_hash, paths
from asclib.files import atomic_path, recorded_settings
from asclib.parallel import process_map

CLIPS = "clips.csv"  # the evaluation clips, in the order of every entry's rows
WAYPOINT_EPOCHS = 14  # the end of the third cosine cycle: what the sample check trains again
ONE_ULP = PROJECT_ROOT / "benchmarks" / "results" / "cpu_agreement_one_ulp_nudge_vs_committed.txt"
_RUN_ARGUMENTS = ("name", "n_classes", "profile", "seed", "augmentations")
WEIGHTS_RECORD = ("model", "metadata", "profile", "epoch")  # what a kept weights file holds of its checkpoint


def folder(profile: Profile) -> Path:
    """Where the profile's entries live: `results/<profile>/runs/`."""
    return paths(profile).results / "runs"


def evaluation_clips(index: pd.DataFrame) -> pd.DataFrame:
    """The evaluation split of `index`: the clips every entry predicts, in this order."""
    return index[index["split"] == "evaluate"]


def entry_key(job: dict, data: train.TrainingSet, clips: pd.DataFrame) -> str:
    """The key of a `train.fit_many` job's entry (module docstring): the same on every machine
    that computes the recipe (the kernel caps left out, of the run and of its clips), another for
    any change of it."""
    key = train.run_key(**{name: job[name] for name in _RUN_ARGUMENTS if name in job}, data=data)
    key.pop("kernels")
    key["clips"] = clips_key(data)
    return config_hash({"run": key, "predictions": evaluation.predictions_key(clips, job["n_classes"])})


# What a data set's recorded settings hold of the machine: its kernel caps, and the feature store
# (keyed by them) whose log-mels spectrum correction carries; the run key holds the feature code
MACHINE_SETTINGS = ("kernels", "log_mels")


def clips_key(data: train.TrainingSet) -> str:
    """The training clips of `data` as every machine names them: each clip's name within its data
    set (`<root>/audio/<file>`) with the settings that made the set, less `MACHINE_SETTINGS`
    (`train.clips_fingerprint` keeps them); the set's own fingerprint where a data set was not
    made here or the set was made in memory."""
    made, names = {}, []
    for path in map(Path, data.paths):
        root = path.parent.parent
        if root not in made:
            settings = recorded_settings(root, train.DATA_SET_MANIFESTS)
            if settings is None:
                return data.fingerprint
            made[root] = config_hash({key: value for key, value in settings.items() if key not in MACHINE_SETTINGS})
        names.append([made[root], f"{path.parent.name}/{path.name}"])
    return config_hash(names) if names else data.fingerprint


def entry_path(job: dict, data: train.TrainingSet, clips: pd.DataFrame) -> Path:
    """The entry file of a job: `<model>-<classes>c-<entry_key>.npz` in `folder`."""
    return folder(job["profile"]) / f"{job['name']}-{job['n_classes']}c-{entry_key(job, data, clips)}.npz"


@dataclass
class StoredRun:
    """One entry read back: what the tables, notebooks 04-06 and 10 need of a finished run."""

    name: str
    n_classes: int
    seed: int
    history: pd.DataFrame  # one row per step: step, epoch, lr, loss
    seconds: float  # its training time on the machine that trained it
    predictions: pd.DataFrame  # filename, device, label, one probability per class
    waypoint: np.ndarray  # float16 probabilities after WAYPOINT_EPOCHS epochs
    made: dict  # commit, cpu, threads, kernels, date
    path: Path

    @property
    def trained_on(self) -> str:
        return f"{self.made['cpu']} ({self.made['threads']} thread{'s' if self.made['threads'] > 1 else ''})"

    def model(self, profile: Profile) -> torch.nn.Module:
        """The trained network, where the entry kept its weights (the first seed's notebook runs)."""
        weights = self.path.with_suffix(".pt")
        if not weights.is_file():
            raise FileNotFoundError(f"{self.path.name} keeps no weights ({weights.name} is missing): only the first "
                                    "seed's notebook runs keep them; train the run with asclib.train.fit for its model")
        model = architectures.build(self.name, self.n_classes, profile)
        model.load_state_dict(train.read_checkpoint(weights)["model"])
        return model.eval()


def digest(arrays: dict) -> str:
    """A SHA-256 of an entry's arrays (names, types, shapes and bytes): written with them, so that
    a number changed in an entry after it was made is found when it is read."""
    hashed = hashlib.sha256()
    for name in sorted(set(arrays) - {"digest"}):
        value = np.asarray(arrays[name])
        hashed.update(f"{name} {value.dtype.str} {value.shape}".encode())
        hashed.update(value.tobytes())
    return hashed.hexdigest()


def read(path: Path, clips: pd.DataFrame) -> StoredRun:
    """The entry at `path`, its predictions joined to the evaluation clips `clips`; an entry whose
    arrays no longer match their digest (edited or damaged) is refused."""
    with np.load(path, allow_pickle=False) as stored:
        if str(stored["digest"]) != digest(dict(stored)):
            raise ValueError(f"{path} was changed after it was written (its arrays do not match their digest): "
                             "restore it from git (git checkout -- <file>) or delete it and train the run again")
        made = json.loads(str(stored["made"]))
        n_classes = made["classes"]
        history = pd.DataFrame({"step": np.arange(len(stored["loss"])), "loss": stored["loss"].astype(float),
                                "lr": stored["lr"].astype(float)})
        history.insert(1, "epoch", history["step"] // made["steps_per_epoch"])
        predictions = pd.DataFrame(stored["probabilities"].astype(np.float64), columns=train.classes_of(n_classes))
        waypoint, seconds = stored["waypoint"], float(stored["seconds"])
    predictions.insert(0, "label", clips[train.target_column(n_classes)].astype(str).to_numpy())
    predictions.insert(0, "device", clips["device"].astype(str).to_numpy())
    predictions.insert(0, "filename", clips["filename"].to_numpy())
    return StoredRun(made["name"], n_classes, made["seed"], history[["step", "epoch", "lr", "loss"]], seconds,
                     predictions, waypoint, made, path)


def predictions(model: torch.nn.Module, clips: pd.DataFrame, n_classes: int, profile: Profile) -> pd.DataFrame:
    """The model's prediction table of `clips` (`evaluation.predict`), computed with the
    training's thread count, so that every process makes the same bytes."""
    with train.torch_threads(train.TRAIN_THREADS):
        return evaluation.predict(model, clips, n_classes, profile)


def as_float16(table: pd.DataFrame, n_classes: int) -> np.ndarray:
    """The class probabilities of a prediction table as an entry keeps them."""
    return table[list(train.classes_of(n_classes))].to_numpy().astype(np.float16)


def _fit_arguments(job: dict, data: train.TrainingSet) -> dict:
    return {**{name: job[name] for name in (*_RUN_ARGUMENTS, "group") if name in job}, "data": data, "progress": False}


def waypoint_epochs(job: dict) -> int:
    """The epochs the sample check trains again: `WAYPOINT_EPOCHS`, or the whole run if shorter."""
    return min(WAYPOINT_EPOCHS, job["profile"].epochs(job["name"]))


def prefix(job: dict, data: train.TrainingSet, clips: pd.DataFrame, epochs: int) -> tuple:
    """The loss of every step and the float16 predictions of the job's run trained from scratch
    for its first `epochs` epochs, in a scratch folder removed afterwards."""
    import tempfile
    from unittest import mock

    with tempfile.TemporaryDirectory(prefix="asclib-scratch-") as scratch, \
            mock.patch.dict(os.environ, {"ASC_RUNS_DIR": scratch}):  # as `plan` times its steps
        run = train.fit(**_fit_arguments(job, data), stop_after=epochs)
    return (run.history["loss"].to_numpy(np.float32),
            as_float16(predictions(run.model, clips, job["n_classes"], job["profile"]), job["n_classes"]))


def make(job: dict, data: train.TrainingSet, clips: pd.DataFrame, keep_weights: bool = False) -> Path:
    """Train the job's run (resuming its checkpoint) and write its entry, unless it is there:
    the run stops at the waypoint for its predictions there, then trains to its end (a run
    already past the waypoint has it trained again in a scratch folder)."""
    path = entry_path(job, data, clips)
    if path.is_file():
        return path
    checkpoint = train.job_folder({**job, "data": "set"}, {"set": data}) / train.CHECKPOINT
    done = train.read_checkpoint(checkpoint)["epoch"] if checkpoint.is_file() else 0
    reached = waypoint_epochs(job)
    at_waypoint = None
    if done < reached:
        run = train.fit(**_fit_arguments(job, data), stop_after=reached - done)
        at_waypoint = predictions(run.model, clips, job["n_classes"], job["profile"])
        waypoint = as_float16(at_waypoint, job["n_classes"])
    else:
        waypoint = prefix(job, data, clips, reached)[1]
    run = train.fit(**_fit_arguments(job, data))
    made = {"name": job["name"], "classes": job["n_classes"], "seed": job["seed"],
            "steps_per_epoch": train.steps_per_epoch(job["profile"], len(data.labels)),
            "waypoint_epochs": reached, "commit": provenance.git_commit(), "cpu": provenance.cpu_model(),
            "threads": train.TRAIN_THREADS, "kernels": kernels.settings(),
            "date": time.strftime("%Y-%m-%d", time.gmtime())}
    whole = reached == job["profile"].epochs(job["name"])  # a run no longer than the waypoint
    final = at_waypoint if whole and at_waypoint is not None else predictions(run.model, clips, job["n_classes"],
                                                                              job["profile"])
    curves.log_accuracy(run.folder, evaluation.accuracy(final), len(run.history))
    arrays = {"probabilities": as_float16(final, job["n_classes"]),
              "waypoint": waypoint, "loss": run.history["loss"].to_numpy(np.float32),
              "lr": run.history["lr"].to_numpy(np.float32), "seconds": np.float64(run.seconds),
              "made": np.str_(json.dumps(made, sort_keys=True))}
    arrays["digest"] = np.str_(digest(arrays))
    if keep_weights:  # its checkpoint without the training state: what `predict` and `model` read
        state = train.read_checkpoint(run.folder / train.CHECKPOINT)
        with atomic_path(path.with_suffix(".pt")) as temporary:
            torch.save({key: state[key] for key in WEIGHTS_RECORD}, temporary)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            np.savez_compressed(file, **arrays)
    return path


_WORK: dict = {}  # the training sets and evaluation clips that the forked workers read (`_in_workers`)


def _in_workers(function, tasks: list, sets: dict, clips: pd.DataFrame, workers: int | None, description: str) -> list:
    """`function` over `tasks` (training runs), one at a time per worker (default: one per core),
    the workers reading `sets` and `clips` from `_WORK` (`finished`, `check`)."""
    _WORK.update(sets=sets, clips=clips)
    try:
        return process_map(function, tasks, workers or train.default_workers(), description, "run", long=True)
    finally:
        _WORK.clear()


def _make_in_worker(job: dict) -> None:
    make(job, _WORK["sets"][job["data"]], _WORK["clips"], keeps_weights(job))


def keeps_weights(job: dict) -> bool:
    """Whether a job's entry keeps its weights: the notebooks' runs of the profile's first seed."""
    return job.get("group") == train.seed_group(job["profile"].train.seeds[0])


def finished(jobs: list[dict], sets: dict, index: pd.DataFrame, workers: int | None = None,
             description: str = "training") -> list[StoredRun]:
    """The entry of every `train.fit_many` job (`sets`: their training sets), in order: those
    missing are trained first, seed after seed, `workers` at a time (default: one per core),
    each entry written as its run ends, so that stopping loses only the runs under way (their
    checkpoints resume). A job listed twice is one run."""
    clips = evaluation_clips(index)
    paths_of = [entry_path(job, sets[job["data"]], clips) for job in jobs]
    missing = {path: job for path, job in zip(paths_of, jobs) if not path.is_file()}
    if missing:
        order = sorted(missing.values(), key=lambda job: job["seed"])  # stable: longest first within a seed
        write_clips(clips, jobs[0]["profile"])
        _in_workers(_make_in_worker, order, sets, clips, workers,
                    f"{description}: {len(order)} of {len(set(paths_of))} runs to train")
    return [read(path, clips) for path in paths_of]


def write_clips(clips: pd.DataFrame, profile: Profile) -> Path:
    """`clips.csv` beside the entries: filename, device, scene and coarse class of each row."""
    path = folder(profile) / CLIPS
    with atomic_path(path) as temporary:
        clips[["filename", "device", "scene", "coarse"]].to_csv(temporary, index=False)
    return path


def model_runs(name: str, n_classes: int, index: pd.DataFrame, profile: Profile,
               data_seed: int = 0) -> dict[int, StoredRun]:
    """One model of notebooks 04-06 under every training seed, by seed (trained where its entry
    is missing; notebooks 04-06 through `tables.model_section`)."""
    jobs, sets = train.notebook_jobs(index, profile, data_seed)
    chosen = [job for job in jobs if (job["name"], job["n_classes"]) == (name, n_classes)]
    return {job["seed"]: run for job, run in zip(chosen, finished(chosen, sets, index))}


def seed_predictions(index: pd.DataFrame, profile: Profile, n_classes: int,
                     data_seed: int = 0) -> dict[int, dict[str, pd.DataFrame]]:
    """The evaluation predictions of the `n_classes` models of the paper's tables (notebooks 04-06;
    `Architecture.in_paper_tables`), by training seed and model name (notebooks 07, 08, 10, 11
    read them through `tables.load_models`)."""
    chosen = [(name, n) for name, n in architectures.notebook_runs(in_paper_tables=True) if n == n_classes]
    jobs, sets = train.notebook_jobs(index, profile, data_seed)
    jobs = [job for job in jobs if (job["name"], job["n_classes"]) in chosen]
    by_seed: dict[int, dict[str, pd.DataFrame]] = {seed: {} for seed in profile.train.seeds}
    for job, run in zip(jobs, finished(jobs, sets, index)):
        by_seed[job["seed"]][job["name"]] = run.predictions
    return by_seed


def notebook_models(index: pd.DataFrame, profile: Profile, data_seed: int = 0) -> dict[str, torch.nn.Module]:
    """The trained networks of notebooks 04-06 under the first training seed, keyed "resnet-10c"
    and so on, from the weights their entries keep (notebook 10)."""
    jobs, sets = train.notebook_jobs(index, profile, data_seed)
    jobs = [job for job in jobs if keeps_weights(job)]
    return {f"{run.name}-{run.n_classes}c": run.model(profile) for run in finished(jobs, sets, index)}


def one_ulp_spread(report: Path = ONE_ULP) -> dict[str, float]:
    """The largest share of evaluation clips (%) whose predicted class moved when every run's
    first initial weight was moved by one ulp, by model ("resnet-10c"): the per-run table of the
    one-ulp replicate's report (measured on the runs of the first three cosine cycles)."""
    import re

    found: dict[str, float] = {}
    for line in report.read_text().splitlines():
        match = re.fullmatch(r"(\S+)-seed\d+\s+(?:True|False)\s+[\d.]+\s+([\d.]+)", line.strip())
        if match:
            found[match.group(1)] = max(found.get(match.group(1), 0.0), float(match.group(2)))
    if not found:
        raise ValueError(f"{report} holds no per-run table of the one-ulp replicate (benchmarks/cpu_agreement.py --nudge)")
    return found


def bit_exact_here(made: dict) -> bool:
    """Whether this machine computes the same bits as the one that made an entry: both capped at
    AVX2 (`kernels`) on x86-64, with the same caps."""
    import platform

    capped = kernels.settings() == kernels.AVX2_CAPS
    return capped and platform.machine() in ("x86_64", "AMD64") and made["kernels"] == kernels.settings()


def sample(paths_of: list[Path], commit: str, count: int) -> list[Path]:
    """`count` entries chosen by hashing the commit id with each entry's name: another sample
    for every commit, the same one for everyone who checks that commit."""
    return sorted(set(paths_of), key=lambda path: hashlib.sha256(f"{commit} {path.name}".encode()).hexdigest())[:count]


def _check_in_worker(task: tuple) -> dict:
    path, job, to_end = task
    clips = _WORK["clips"]
    stored = read(path, clips)
    epochs = job["profile"].epochs(job["name"]) if to_end else stored.made["waypoint_epochs"]
    loss, retrained = prefix(job, _WORK["sets"][job["data"]], clips, epochs)
    expected = as_float16(stored.predictions, job["n_classes"]) if to_end else stored.waypoint
    expected_loss = stored.history["loss"].to_numpy(np.float32)[:len(loss)]
    moved = 100 * float(np.mean(retrained.argmax(axis=1) != expected.argmax(axis=1)))
    exact = bit_exact_here(stored.made)
    allowed = 0.0 if exact else one_ulp_spread()[f"{job['name']}-{job['n_classes']}c"]
    same_bits = (np.array_equal(loss.view(np.uint32), expected_loss.view(np.uint32))
                 and np.array_equal(retrained.view(np.uint16), expected.view(np.uint16)))
    return {"entry": path.name, "epochs retrained": epochs,
            "compared": "bit for bit" if exact else "within the one-ulp spread",
            "loss and predictions identical": same_bits, "predicted class moved %": round(moved, 2),
            "allowed %": allowed, "passed": same_bits if exact else moved <= allowed}


def check(jobs: list[dict], sets: dict, index: pd.DataFrame, commit: str, count: int = 2,
          everything: bool = False, workers: int | None = None) -> pd.DataFrame:
    """Train committed runs again from scratch and compare them with their entries (module
    docstring): `count` runs chosen by `commit` (`sample`) for their first `WAYPOINT_EPOCHS`
    epochs, or with `everything` every run to its end. One row per run checked, with `job`
    (its position in `jobs`); an entry missing is an error."""
    clips = evaluation_clips(index)
    paths_of = [entry_path(job, sets[job["data"]], clips) for job in jobs]
    missing = [job for path, job in zip(paths_of, jobs) if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {len(jobs)} runs have no entry in {folder(jobs[0]['profile'])} "
                                "(made by other code, data or recipe, or never trained): run `python -m asclib train`")
    chosen = list(dict.fromkeys(paths_of)) if everything else sample(paths_of, commit, count)
    positions = [paths_of.index(path) for path in chosen]
    tasks = [(path, jobs[position], everything) for path, position in zip(chosen, positions)]
    rows = _in_workers(_check_in_worker, tasks, sets, clips, workers, f"training {len(tasks)} committed runs again")
    return pd.DataFrame(rows).assign(job=positions)


def origin(runs: list[StoredRun]) -> str:
    """Where entries come from, in a sentence: commits, CPUs, dates and the CPU-hours they took."""
    made = pd.DataFrame([run.made for run in runs])
    hours = sum(run.seconds for run in runs) / 3600 * train.TRAIN_THREADS
    return (f"{len(runs)} runs trained at commit(s) {', '.join(sorted(made['commit'].str[:10].unique()))} on "
            f"{'; '.join(sorted(made['cpu'].unique()))}, {made['date'].min()} to {made['date'].max()}, "
            f"{hours:.1f} CPU-hours of training")
