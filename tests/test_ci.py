"""CI cannot pass with a required test skipped: skip_or_fail skips, or fails when its variable is set."""

import pytest

from conftest import _need, skip_or_fail

VARIABLE = "ASC_REQUIRE_EXAMPLE"


@pytest.mark.parametrize("value", [None, "", "0"])
def test_skips_when_the_variable_is_unset(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, value)
    with pytest.raises(pytest.skip.Exception, match="the thing is missing"):
        skip_or_fail("the thing is missing", VARIABLE)


def test_fails_when_the_variable_is_set(monkeypatch):
    monkeypatch.setenv(VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=f"the thing is missing.*{VARIABLE}=1"):
        skip_or_fail("the thing is missing", VARIABLE)


def test_missing_shared_material_fails_under_asc_require_shared(monkeypatch, tmp_path):
    absent = tmp_path / "absent"
    monkeypatch.delenv("ASC_REQUIRE_SHARED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="reference material not found"):
        _need(absent)
    monkeypatch.setenv("ASC_REQUIRE_SHARED", "1")
    with pytest.raises(pytest.fail.Exception, match="ASC_REQUIRE_SHARED=1") as failure:
        _need(absent)
    assert str(absent) in str(failure.value)
    assert _need(tmp_path) == tmp_path  # present: returned, neither skipped nor failed


def test_a_run_without_the_reference_material_ends_by_saying_what_it_skipped_and_why(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "test_example.py").write_text(
        "import pytest\n"
        "def test_real_clips():\n    pytest.skip('reference material not found at /nowhere (set ASC_SHARED_DIR)')\n"
        "def test_released_scores():\n    pytest.skip('reference material not found at /nowhere (set ASC_SHARED_DIR)')\n"
        "def test_sox():\n    pytest.skip('the sox binary is not installed')\n"
        "def test_runs():\n    pass\n")
    tests = Path(__file__).parent
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "skip_summary", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(tests), "PATH": ""})
    lines = done.stdout.splitlines()
    assert "3 tests skipped: what this run did not test" in done.stdout, done.stdout
    assert "SKIPPED 2: reference material not found at /nowhere (set ASC_SHARED_DIR)" in lines
    assert "SKIPPED 1: the sox binary is not installed" in lines
    assert "1 passed, 3 skipped" in lines[-1]  # pytest's own closing line still closes the run
