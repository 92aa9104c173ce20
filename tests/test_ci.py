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
