"""Shared fixtures: the reference material in ../shared (skipped cleanly when absent, unless
ASC_REQUIRE_SHARED is set: see skip_or_fail)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import asclib  # noqa: F401  first: it caps the CPU code paths before numpy loads (asclib.kernels)
import numpy as np
import pytest
import soundfile as sf

from asclib import synth
from asclib.config import PROJECT_ROOT, CorpusConfig
from asclib.profiles import get_profile
from asclib.data import parse_filename, read_split

pytest_plugins = ["skip_summary"]  # a closing list of the skipped tests and why (tests/skip_summary.py)

SHARED = Path(os.environ.get("ASC_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
RELEASED = SHARED / "reference" / "hu2021-released"
REAL_CLIPS = SHARED / "real-clips" / "tau2020-mobile-dev"
# Notebook 11 (run by nbval in a kernel that inherits this environment) reads the authors'
# released scores from here instead of downloading them.
if RELEASED.is_dir():
    os.environ.setdefault("ASC_RELEASED_DIR", str(RELEASED.resolve()))
# Notebook 10 draws the maps of one real clip from here (a mechanics check).
if (SHARED / "real-clips").is_dir():
    os.environ.setdefault("ASC_REAL_CLIPS_DIR", str((SHARED / "real-clips").resolve()))


def skip_or_fail(reason: str, variable: str) -> NoReturn:
    """Skip for want of something, or fail when the environment variable `variable` is set
    (to anything but "" or "0"): `.ci/run` sets ASC_REQUIRE_SOX and ASC_REQUIRE_QEMU always and
    ASC_REQUIRE_SHARED when ../shared exists, so that CI cannot pass with those tests silently skipped."""
    __tracebackhide__ = True  # report the caller's line, not this one
    value = os.environ.get(variable, "")
    if value not in ("", "0"):
        pytest.fail(f"{reason}; failing instead of skipping because {variable}={value} (set by .ci/run)",
                    pytrace=False)
    pytest.skip(reason)


def _need(path: Path) -> Path:
    if not path.exists():
        skip_or_fail(f"reference material not found at {path} (set ASC_SHARED_DIR)", "ASC_REQUIRE_SHARED")
    return path


@pytest.fixture(scope="session")
def released_dir() -> Path:
    """The authors' released split files and scores."""
    return _need(RELEASED)


@pytest.fixture(scope="session")
def real_clips() -> list[Path]:
    """The 13 real TAU 2020 Mobile clips (44.1 kHz, 24-bit, mono, 10 s)."""
    return sorted(_need(REAL_CLIPS).glob("*.wav"))


HEADER = "filename\tscene_label"


def write_layout(root: Path, clips: dict[str, Path | np.ndarray], train: set[str], rate=16_000,
                 subtype="PCM_16", copy=False) -> Path:
    """Write a dataset folder in the DCASE layout; clips map file name -> real wav (linked, or
    copied byte for byte with `copy`) or samples."""
    (root / "audio").mkdir(parents=True)
    (root / "evaluation_setup").mkdir()
    meta, train_rows, evaluate_rows = ["filename\tscene_label\tidentifier\tsource_label"], [HEADER], [HEADER]
    for name, source in clips.items():
        if isinstance(source, Path) and copy:
            shutil.copyfile(source, root / "audio" / name)
        elif isinstance(source, Path):
            (root / "audio" / name).symlink_to(source.resolve())
        else:
            sf.write(root / "audio" / name, source, rate, subtype=subtype)
        fields = parse_filename(f"audio/{name}")
        meta.append(f"audio/{name}\t{fields['scene']}\t{fields['location']}\t{fields['device']}")
        (train_rows if name in train else evaluate_rows).append(f"audio/{name}\t{fields['scene']}")
    (root / "meta.csv").write_text("\n".join(meta) + "\n")
    (root / "evaluation_setup" / "fold1_train.csv").write_text("\n".join(train_rows) + "\n")
    (root / "evaluation_setup" / "fold1_evaluate.csv").write_text("\r\n".join(evaluate_rows) + "\r\n")
    test_rows = ["filename"] + [row.split("\t")[0] for row in evaluate_rows[1:]]
    (root / "evaluation_setup" / "fold1_test.csv").write_text("\n".join(test_rows) + "\n")
    return root


@pytest.fixture
def real_layout(tmp_path, real_clips, released_dir):
    official_train = set(read_split(released_dir / "fold1_train.csv")["filename"])
    clips = {clip.name: clip for clip in real_clips}
    train = {name for name in clips if f"audio/{name}" in official_train}
    return write_layout(tmp_path / "tau", clips, train)


QUICK, PAPER = get_profile("quick"), get_profile("paper")  # the recipe profiles, resolved once

# A tiny version of the quick profile: 1.5 s clips, 200 clips in all.
TINY = dataclasses.replace(
    get_profile("quick"),
    audio=dataclasses.replace(get_profile("quick").audio, clip_seconds=1.5),
    corpus=CorpusConfig(train_locations=2, evaluate_locations=1, train_segments=6,
                        minor_segments=1, evaluate_segments=1),
)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """The synthetic corpus of the TINY profile, seed 7."""
    return synth.generate(tmp_path_factory.mktemp("tiny") / "corpus", TINY, seed=7)


@contextmanager
def source_reads(module, text: str, *cached):
    """While it lasts, `module`'s source file reads as `text` to the code hashes (`files.code_tree`
    reads sources with Path.read_text); the lru-cached hashes `cached` are cleared on the way in
    and out, so they see the edit and nothing keeps it."""
    real = Path.read_text
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "read_text", lambda self, *args, **kwargs:
                      text if str(self) == module.__file__ else real(self, *args, **kwargs))
        for function in cached:
            function.cache_clear()
        try:
            yield
        finally:
            for function in cached:
                function.cache_clear()
