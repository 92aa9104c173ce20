"""pyproject.toml is the one list of dependencies; environment.yml must mirror it exactly."""

import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from asclib.config import PROJECT_ROOT


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return set(project["dependencies"])


def _environment_requirements() -> tuple[set[str], list]:
    environment = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    conda = [item for item in environment["dependencies"] if isinstance(item, str)]
    return {line for line in pip if line != "-e ."}, conda


def test_environment_yml_mirrors_pyproject():
    pip, _ = _environment_requirements()
    expected = _pyproject_requirements()
    assert pip == expected, (
        f"only in pyproject.toml: {sorted(expected - pip)}; only in environment.yml: {sorted(pip - expected)}"
    )


def test_python_version_and_torch_pin_agree():
    _, conda = _environment_requirements()
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert "python=3.11" in conda and project["requires-python"] == ">=3.11,<3.12"
    assert "torch==2.13.0" in project["dependencies"]


def _locked_versions() -> dict[str, str]:
    lines = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    assert all(len(pin) == 2 for pin in pins), "requirements.lock must hold exact pins name==version only"
    return {canonicalize_name(name): version for name, version in pins}


def test_lock_file_pins_every_dependency_within_its_range():
    locked = _locked_versions()
    for line in _pyproject_requirements():
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is a dependency but has no pin in requirements.lock"
        assert requirement.specifier.contains(locked[name]), (
            f"requirements.lock pins {requirement.name}=={locked[name]}, outside pyproject's {requirement.specifier}")
