"""Launching the independent trainings through submitit (asclib/launch.py): runs side by side
through the local executor give the same bytes as runs made one after another; a run
interrupted mid-way is requeued and resumes to the same weights; the Slurm job array that
would be submitted, checked without a cluster; the schedule of the dry run."""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from submitit.core.utils import DelayedSubmission
from submitit.local.local import LocalJobEnvironment

from asclib import architectures, data, evaluation, launch, plan, profiles, runs, train
from conftest import PAPER, TINY
from test_train import TINY_TRAINING


@pytest.fixture
def folders(tmp_path, monkeypatch):
    for variable, folder in (("ASC_RUNS_DIR", "runs"), ("ASC_CACHE_DIR", "cache"), ("ASC_AUGMENTED_DIR", "augmented"),
                             ("ASC_RESULTS_DIR", "results")):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    return tmp_path


def _profile(epochs: int = 2, steps: int = 3):
    tiny = profiles.tiny(TINY, epochs=epochs)
    return dataclasses.replace(tiny, models=TINY_TRAINING.models,
                               train=dataclasses.replace(tiny.train, steps_per_epoch=steps, batch_size=4, seeds=(0,)),
                               augment=dataclasses.replace(TINY.augment, crop_frames=32))


def _stored_predictions(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.glob(f"**/{evaluation.PREDICTIONS}"))}


def _entries(root: Path) -> dict[str, tuple[bytes, ...]]:
    """The arrays that training and prediction make (`asclib.store`) of every entry under `root`."""
    found = {}
    for path in sorted(root.glob("**/*.npz")):
        with np.load(path) as stored:
            found[path.name] = tuple(stored[name].tobytes() for name in ("probabilities", "waypoint", "loss", "lr"))
    return found


def test_runs_side_by_side_through_the_local_executor_match_runs_made_one_after_another(tiny_corpus, folders,
                                                                                       monkeypatch):
    profile = _profile()
    index = data.load_index(tiny_corpus, profile)
    settings = launch.Settings("local", slots=2, gpus=False, data_dir=str(tiny_corpus))
    runs.prepare(index, profile, with_ablation=False, settings=settings)
    side_by_side = _stored_predictions(folders / "runs")
    assert len(side_by_side) == len(architectures.notebook_runs())
    assert len(list((paths_runs(profile) / "launch").glob("*/*_log.out"))) == len(side_by_side)
    committed = _entries(folders / "results")  # written here after the launch
    assert len(committed) == len(side_by_side)

    monkeypatch.setenv("ASC_RUNS_DIR", str(folders / "sequential"))
    monkeypatch.setenv("ASC_RESULTS_DIR", str(folders / "results-sequential"))
    runs.prepare(index, profile, workers=1, with_ablation=False)  # in this process, one after another
    assert _entries(folders / "results-sequential") == committed  # bit for bit

    monkeypatch.setenv("ASC_RUNS_DIR", str(folders / "runs"))  # everything finished: nothing is launched
    jobs, sets = train.unique_jobs(index, profile)
    assert launch.tasks(jobs, sets, tiny_corpus, profile, 0) == []


def test_an_interrupted_run_is_requeued_and_resumes_to_the_same_weights(tiny_corpus, folders, monkeypatch):
    profile = _profile(epochs=6, steps=100)
    index = data.load_index(tiny_corpus, profile)
    jobs, sets = train.unique_jobs(index, profile)
    job = next(job for job in jobs if job["name"] == "fcnn" and job["n_classes"] == 10)
    task = launch.tasks([job], sets, tiny_corpus, profile, 0)[0]
    folder = train.run_folder(**{**task.fit, "data": sets[job["data"]]})

    executor = launch._local_executor(folders / "logs", gpus=False, time_limit_hours=1)
    started = executor.submit(task)
    deadline = time.monotonic() + 300
    while not (folder / train.CHECKPOINT).is_file():  # the first epoch is saved: interrupt it mid-way
        assert started.state == "RUNNING" and time.monotonic() < deadline, started.stderr()
        time.sleep(0.02)
    # what Slurm sends a job's task on preemption or before its time limit (the local executor too)
    controller = started._process.pid
    task_process = int(Path(f"/proc/{controller}/task/{controller}/children").read_text().split()[0])
    os.kill(task_process, LocalJobEnvironment._usr_sig())
    assert started.result() == str(folder)
    log = started.stdout()
    assert f"{task.label}: starting" in log and f"{task.label}: resuming from epoch" in log, log
    interrupted = torch.load(folder / train.CHECKPOINT, weights_only=False)
    assert interrupted["epoch"] == 6 and len(interrupted["history"]) == 6 * 100

    monkeypatch.setenv("ASC_RUNS_DIR", str(folders / "whole"))
    whole = train.fit(**task.fit, data=sets[job["data"]], progress=False).model.state_dict()
    assert all(torch.equal(whole[key], interrupted["model"][key]) for key in whole)


def test_a_failed_run_is_reported_with_its_log_and_the_others_are_kept(tiny_corpus, folders, capsys):
    profile = _profile()
    jobs, sets = train.unique_jobs(data.load_index(tiny_corpus, profile), profile)
    good, bad = launch.tasks(jobs[:2], sets, tiny_corpus, profile, 0)
    bad = dataclasses.replace(bad, data_dir=str(folders / "missing"))
    outcome = launch.run([good, bad], "local", slots=2, gpus=False, profile=profile, poll=0.2)
    assert outcome.done == [good.label] and list(outcome.failed) == [bad.label]
    assert "missing" in Path(outcome.failed[bad.label]).read_text()  # the log holds the error
    printed = capsys.readouterr().out
    assert f"FAILED: {bad.label}; its log: {outcome.failed[bad.label]}" in printed
    assert f"python -m asclib train --profile {profile.name} --only '{bad.label}'" in printed


def test_each_local_job_sees_one_of_the_cards_this_process_may_use(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert launch._cards(3) == [0, 1, 2]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,7")
    assert launch._cards(2) == [4, 6]
    with pytest.raises(ValueError, match="needs 4 GPU numbers"):
        launch._cards(4)


def test_torchrun_keeps_its_own_launch(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launch.settings(None, PAPER, tmp_path) is None
    with pytest.raises(ValueError, match="cannot run under torchrun"):
        launch.settings("local", PAPER, tmp_path)


def _fake_slurm(folder: Path) -> Path:
    """`srun` (submitit's test for a cluster) and an `sbatch` that keeps the script it is given."""
    folder.mkdir()
    (folder / "srun").write_text("#!/bin/sh\nexit 0\n")
    (folder / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {folder}/submitted.sh\necho "Submitted batch job 4242"\n')
    for tool in ("srun", "sbatch"):
        (folder / tool).chmod((folder / tool).stat().st_mode | stat.S_IXUSR)
    return folder / "submitted.sh"


def test_the_slurm_job_array_that_would_be_submitted(tiny_corpus, folders, monkeypatch):
    submitted = _fake_slurm(folders / "bin")
    monkeypatch.setenv("PATH", f"{folders / 'bin'}{os.pathsep}{os.environ['PATH']}")
    profile = _profile()
    index = data.load_index(tiny_corpus, profile)
    jobs, sets = train.unique_jobs(index, profile)
    pending = [dataclasses.replace(task, seconds=seconds) for task, seconds in
               zip(launch.tasks(jobs, sets, tiny_corpus, profile, 0), [3600.0, 9 * 3600.0, 60.0, 60.0, 60.0])]
    made = launch.submit_array(pending, slots=3, gpus=True, profile=profile, time_limit_hours=4,
                               settings={"partition": "gpu", "cpus_per_task": 8})
    assert [job.job_id for job in made] == [f"4242_{k}" for k in range(len(pending))]
    script = submitted.read_text()
    for line in ("#SBATCH --array=0-4%3", "#SBATCH --time=240", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --ntasks-per-node=1", "#SBATCH --nodes=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --partition=gpu", "#SBATCH --requeue", "#SBATCH --signal=USR2@120",
                 f"#SBATCH --job-name=asclib-{profile.name}"):
        assert line in script.splitlines(), script
    assert "-u -m submitit.core._submit" in script and str(paths_runs(profile) / "launch") in script
    # each task of the array runs one of the runs, pickled with its settings, and may be requeued
    # (time limit or preemption) as often as the longest run's estimate needs, and three times more
    pickles = sorted((paths_runs(profile) / "launch").glob("*/*_submitted.pkl"))
    assert len(pickles) == len(pending)
    loaded = [DelayedSubmission.load(path) for path in pickles]
    assert {submission.function.label for submission in loaded} == {task.label for task in pending}
    assert {submission._timeout_countdown for submission in loaded} == {3 + 3}  # 9 h in 4 h jobs: 3 jobs


def paths_runs(profile) -> Path:
    from asclib.config import paths

    return paths(profile).runs


def test_a_slurm_launch_needs_a_time_limit(tmp_path):
    with pytest.raises(ValueError, match="--time-limit"):
        launch.settings("slurm", PAPER, tmp_path)


def test_unknown_run_labels_are_refused_with_the_known_ones(tiny_corpus, folders):
    profile = _profile()
    jobs, _ = train.unique_jobs(data.load_index(tiny_corpus, profile), profile)
    with pytest.raises(ValueError, match="no run is labelled 'resnet-10c seed 9'; the runs are: resnet-10c seed 0"):
        launch.chosen(jobs, ["resnet-10c seed 9"])
    assert [plan.label(job) for job in launch.chosen(jobs, ["fcnn-3c seed 0"])] == ["fcnn-3c seed 0"]


@pytest.mark.parametrize("seconds, slots, busy, wall", [
    ([3, 2, 2, 1], 2, [], 4), ([3, 3, 3], 3, [], 3), ([5], 2, [4, 1], 6), ([], 4, [2], 2), ([1, 1], 1, [], 2),
    ([3, 1, 1, 1], 2, [], 3), ([], 2, [], 0)])
def test_schedule_hands_each_run_to_the_first_free_worker(seconds, slots, busy, wall):
    assert plan.schedule(seconds, slots, busy)[2] == wall


def test_gpu_plans_of_the_paper_recipe():
    five = plan.gpu_plan(PAPER, gpus=5, with_ablation=False)
    assert list(five.runs["run"]) == ["resnet-10c seed 0", "fsfcnn-10c seed 0", "fcnn-10c seed 0", "fcnn-3c seed 0",
                                      "resnet-3c seed 0"]  # longest first
    assert sorted(five.runs["gpu"]) == [0, 1, 2, 3, 4] and five.wall_hours == five.runs["hours"].max()
    assert "The longest runs set the wall time" in str(five)
    everything = plan.gpu_plan(PAPER, gpus=8)
    table3 = everything.runs[everything.runs["run"].str.startswith("Table 3")]
    assert len(table3) == 9 * 3 - 1  # notebook 04's recipe under seed 0 is notebook 04's own run
    assert len(everything.runs) == 5 + len(table3)
    assert everything.paper_rows_wall_hours < everything.wall_hours
    assert everything.wall_hours >= everything.runs["hours"].sum() / 8
    ranked = sorted(everything.runs["hours"], reverse=True)
    assert everything.wall_hours >= ranked[7] + ranked[8]  # nine runs on eight GPUs: two share one
    assert f"the 8th and 9th longest runs on one GPU ({ranked[7] + ranked[8]:.1f} h)" in str(everything)
    with pytest.raises(ValueError, match="no measured rates for card 'A100'"):
        plan.gpu_plan(PAPER, gpus=8, card="A100")
