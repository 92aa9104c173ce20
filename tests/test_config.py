import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asclib.config import AudioConfig, config_hash, get_profile, paths


def test_profiles_have_the_reference_sizes():
    paper = get_profile("paper")
    assert (paper.audio.sample_rate, paper.audio.n_samples) == (44_100, 441_000)
    assert (paper.features.n_fft, paper.features.hop_length, paper.features.n_mels) == (2048, 1024, 128)
    assert paper.features.fmax == 22_050 and paper.features.htk
    quick = get_profile("quick")
    assert quick.audio.n_samples < paper.audio.n_samples
    assert get_profile(quick) is quick


def test_profiles_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_profile("quick").audio.sample_rate = 8000


def test_unknown_profile_is_named_in_the_error():
    with pytest.raises(ValueError, match="'fast'.*quick, paper"):
        get_profile("fast")


def test_config_hash_is_stable_across_processes_and_sensitive_to_values():
    section = get_profile("paper").features
    code = "from asclib.config import config_hash, get_profile; print(config_hash(get_profile('paper').features))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "123"}).stdout.strip()
    assert config_hash(section) == other
    assert len(other) == 12
    assert config_hash(dataclasses.replace(section, n_mels=64)) != config_hash(section)
    assert config_hash(get_profile("quick").audio) != config_hash(get_profile("paper").audio)
    assert isinstance(get_profile("quick").audio, AudioConfig)


def test_paths_are_per_profile_and_follow_environment_overrides(monkeypatch, tmp_path):
    for variable in ("ASC_DATA_DIR", "ASC_CACHE_DIR", "ASC_RUNS_DIR", "ASC_RESULTS_DIR"):
        monkeypatch.delenv(variable, raising=False)
    quick, paper = paths("quick"), paths("paper")
    assert quick.cache != paper.cache and quick.results.name == "quick"
    monkeypatch.setenv("ASC_DATA_DIR", str(tmp_path / "tau"))
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    overridden = paths("paper")
    assert overridden.data == Path(tmp_path / "tau").resolve()
    assert overridden.cache == (tmp_path / "cache").resolve() / "paper"
