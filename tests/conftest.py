"""Shared fixtures: the reference material in ../shared (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asclib.config import PROJECT_ROOT

SHARED = Path(os.environ.get("ASC_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
RELEASED = SHARED / "reference" / "hu2021-released"
REAL_CLIPS = SHARED / "real-clips" / "tau2020-mobile-dev"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference material not found at {path} (set ASC_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def released_dir() -> Path:
    """The authors' released split files and scores."""
    return _need(RELEASED)


@pytest.fixture(scope="session")
def real_clips() -> list[Path]:
    """The 13 real TAU 2020 Mobile clips (44.1 kHz, 24-bit, mono, 10 s)."""
    return sorted(_need(REAL_CLIPS).glob("*.wav"))
