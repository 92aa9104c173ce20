"""Atomic writes (asclib.files.atomic_path): a folder replaces the previous one only when
complete, and two processes finishing the same folder at once both succeed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from asclib import files


def _write_folder(path: Path, text: str) -> None:
    path.mkdir()
    (path / "content.txt").write_text(text)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_folder_replaces_the_previous_one_only_when_complete(tmp_path):
    destination = tmp_path / "out"
    with files.atomic_path(destination) as temporary:
        _write_folder(temporary, "first")
    with pytest.raises(RuntimeError), files.atomic_path(destination) as temporary:
        _write_folder(temporary, "broken")
        raise RuntimeError("crash while writing")
    assert (destination / "content.txt").read_text() == "first"
    with files.atomic_path(destination) as temporary:
        _write_folder(temporary, "second")
    assert (destination / "content.txt").read_text() == "second" and _leftovers(tmp_path) == []


def test_the_previous_folder_moved_aside_by_another_process_is_no_error(tmp_path):
    destination = tmp_path / "out"
    _write_folder(destination, "old")
    with files.atomic_path(destination) as temporary:
        _write_folder(temporary, "ours")
        os.replace(destination, tmp_path / ".out.old-other")  # the other process, mid-swap
    assert (destination / "content.txt").read_text() == "ours"


def test_a_complete_copy_landing_first_is_kept(tmp_path, monkeypatch):
    destination, real_replace = tmp_path / "out", os.replace
    _write_folder(destination, "old")

    def other_process_lands_first(source, target):
        if Path(source).name.startswith(".out.partial"):
            _write_folder(Path(target), "theirs")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", other_process_lands_first)
    with files.atomic_path(destination) as temporary:
        _write_folder(temporary, "ours")
    assert (destination / "content.txt").read_text() == "theirs" and _leftovers(tmp_path) == []


def test_any_other_failure_puts_the_previous_folder_back(tmp_path, monkeypatch):
    destination, real_replace = tmp_path / "out", os.replace
    _write_folder(destination, "old")

    def refused(source, target):
        if Path(source).name.startswith(".out.partial"):
            raise PermissionError(errno.EACCES, "refused", str(target))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(PermissionError), files.atomic_path(destination) as temporary:
        _write_folder(temporary, "ours")
    assert (destination / "content.txt").read_text() == "old" and _leftovers(tmp_path) == []
