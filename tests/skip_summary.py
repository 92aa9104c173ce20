"""A pytest plugin (loaded by conftest.py): the run ends with a loud list of what it skipped and
why, grouped by reason, so that `make test` without ../shared (or without sox) says which tests
it did not run, not only under CI, where `.ci/run` turns those skips into failures."""

from __future__ import annotations

from collections import Counter


def _reason(report) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} tests skipped: what this run did not test", sep="!",
                             yellow=True, bold=True)
    for reason, count in Counter(map(_reason, skipped)).most_common():
        terminalreporter.write_line(f"SKIPPED {count}: {reason}", yellow=True, bold=True)
