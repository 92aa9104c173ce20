"""The command line (`python -m asclib`): what it prints and its exit codes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from asclib import plan
from asclib.__main__ import main
from asclib.config import PROJECT_ROOT, TRAINING_OVERRIDES_VARIABLE
from conftest import write_layout
from test_plan import fake_timings


def test_index_summarises_a_dataset_and_exits_0(tiny_corpus, capsys):
    assert main(["index", str(tiny_corpus)]) == 0
    out = capsys.readouterr().out
    assert "evaluate" in out and "train" in out and "s4" in out


def test_a_missing_dataset_is_an_error_with_exit_2(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nowhere")]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["reproduce", "--only", "99"], "no notebook"),
    (["reproduce", "--only", "01", "--set", "n_epochs=3"], "unknown notebook parameter(s) n_epochs"),
    (["reproduce", "--set", "seed"], "--set expects NAME=VALUE"),
    (["reproduce", "--epochs", "5"], "epochs=5 (--epochs): a run must end at the bottom of a cosine cycle"),
    (["train", "--batch-size", "0"], "batch_size=0 (--batch-size): expected a positive whole number"),
    (["train", "--launcher", "slurm"], "--launcher slurm needs each job's time limit: --time-limit HOURS"),
    (["reproduce", "--launcher", "local", "--nodes", "2"], "--nodes 2 needs --launcher slurm"),
    (["train", "--launcher", "slurm", "--time-limit", "4", "--slurm", "partition"],
     "--slurm expects NAME=VALUE with NAME a Python identifier, got 'partition'"),
])
def test_bad_reproduce_arguments_are_refused_before_anything_runs(arguments, message, capsys):
    assert main(arguments) == 2
    assert message in capsys.readouterr().err


def test_the_module_runs_as_a_program():
    ok = subprocess.run([sys.executable, "-m", "asclib", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "reproduce" in ok.stdout
    usage = subprocess.run([sys.executable, "-m", "asclib"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and "required" in usage.stderr


def test_predict_without_runs_is_an_error_with_exit_2(tmp_path, capsys):
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"")
    assert main(["predict", str(clip), "--runs", str(tmp_path / "nowhere")]) == 2
    assert "neither a run folder" in capsys.readouterr().err
    assert main(["predict", str(clip), "--runs", str(tmp_path)]) == 2
    assert "no run folders in it" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_says_the_dataset_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(plan, "measure", lambda profile, corpus=False: fake_timings())
    assert main(["reproduce", "--profile", "paper", "--data-dir", str(tmp_path / "nowhere"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing was done" in out and "dataset folder not found" in out
    assert "train resnet, 10 classes" in out and "total" in out
    assert not list(tmp_path.iterdir())


def test_smoke_options_reach_the_plan_and_move_its_runs_apart(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(plan, "measure", lambda profile, corpus=False: fake_timings())
    monkeypatch.setenv(TRAINING_OVERRIDES_VARIABLE, "")  # the command sets it; restored after the test
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path / "runs"))
    assert main(["reproduce", "--profile", "paper", "--data-dir", str(tmp_path / "nowhere"), "--dry-run",
                 "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "1 x 6 steps" in out and "3 x 6 steps" in out and str(tmp_path / "runs" / "paper-smoke") in out


def test_reproduce_refuses_a_bad_dataset_before_running_anything(tmp_path, capsys):
    names = ["park-espoo-0-0-a.wav", "park-espoo-1-1-a.wav"]
    root = write_layout(tmp_path / "d", {name: np.zeros(64_000, np.float32) for name in names}, train={names[0]})
    (root / "audio" / names[1]).unlink()
    assert main(["reproduce", "--only", "01", "--data-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 listed file(s)" in err and "missing: 1 file(s)" in err and "--skip-bad-files" in err
