"""The command line (`python -m asclib`): what it prints and its exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from asclib.__main__ import main
from asclib.config import PROJECT_ROOT


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
])
def test_bad_reproduce_arguments_are_refused_before_anything_runs(arguments, message, capsys):
    assert main(arguments) == 2
    assert message in capsys.readouterr().err


def test_the_module_runs_as_a_program():
    ok = subprocess.run([sys.executable, "-m", "asclib", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "reproduce" in ok.stdout
    usage = subprocess.run([sys.executable, "-m", "asclib"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and "required" in usage.stderr
