"""pyproject.toml is the one list of dependencies; environment.yml must mirror it exactly."""

import tomllib

import yaml

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
