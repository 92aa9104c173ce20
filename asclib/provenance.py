"""Where a result comes from: the commit of the code and the CPU that made it (the manifest of
`report.reproduce`, the committed runs of `store`, the benchmarks' reports)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from asclib.config import PROJECT_ROOT


def git_commit() -> str:
    """HEAD, marked "-dirty" when the library or the notebooks differ from it (the manifest;
    benchmarks/cpu_agreement.py's report)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "asclib", "notebooks"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""
    return commit + ("-dirty" if dirty.strip() else "")


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it ("" where /proc/cpuinfo does not say)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
