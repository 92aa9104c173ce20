import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asclib import architectures, profiles
from asclib.config import PROFILES, TRAINING_OVERRIDES_VARIABLE, AudioConfig, config_hash, paths, reduce_training
from asclib.profiles import get_profile
from conftest import PAPER


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
    code = "from asclib.config import config_hash; from asclib.profiles import get_profile; print(config_hash(get_profile('paper').features))"
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


def test_a_smoke_run_shortens_every_training_and_nothing_else(monkeypatch):
    monkeypatch.setenv(TRAINING_OVERRIDES_VARIABLE, "")  # restored after the test
    for variable in ("ASC_RUNS_DIR", "ASC_RESULTS_DIR", "ASC_CACHE_DIR"):
        monkeypatch.delenv(variable, raising=False)
    recipe, recipe_paths = get_profile("paper"), paths("paper")
    assert reduce_training(epochs=2, steps_per_epoch=1, batch_size=2) == {"epochs": 2, "steps_per_epoch": 1,
                                                                          "batch_size": 2}
    smoke = get_profile("paper")
    assert {*dict(smoke.train.epochs).values(), smoke.ablation.epochs} == {2}
    assert dict(smoke.train.epochs).keys() == dict(recipe.train.epochs).keys() == architectures.REGISTRY.keys()
    assert (smoke.train.steps_per_epoch, smoke.train.batch_size) == (1, 2)
    assert config_hash(smoke.train) != config_hash(recipe.train)  # other run keys
    for section in ("audio", "features", "augment", "models", "corpus"):
        assert getattr(smoke, section) == getattr(recipe, section)
    assert dataclasses.replace(smoke.ablation, epochs=recipe.ablation.epochs) == recipe.ablation
    smoke_paths = paths("paper")
    assert (smoke_paths.runs.name, smoke_paths.results.name) == ("paper-smoke", "paper-smoke")
    assert (smoke_paths.cache, smoke_paths.augmented) == (recipe_paths.cache, recipe_paths.augmented)
    code = "from asclib.profiles import get_profile; print(get_profile('paper').train.batch_size)"  # a kernel, a worker
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "2\n"
    assert reduce_training() == {} and get_profile("paper") == recipe and paths("paper") == recipe_paths


def test_a_smoke_run_can_keep_only_the_first_training_seeds(monkeypatch):
    monkeypatch.setenv(TRAINING_OVERRIDES_VARIABLE, "")
    written = PROFILES["quick"]  # with three seeds, whatever the committed runs have now
    monkeypatch.setitem(PROFILES, "quick", dataclasses.replace(
        written, train=dataclasses.replace(written.train, seeds=(0, 1, 2)),
        ablation=dataclasses.replace(written.ablation, seeds=(0, 1, 2))))
    recipe = get_profile("quick")
    assert len(recipe.train.seeds) > 1 and len(recipe.ablation.seeds) > 1
    assert reduce_training(epochs=2, seeds=1) == {"epochs": 2, "seeds": 1}
    smoke = get_profile("quick")
    assert (smoke.train.seeds, smoke.ablation.seeds) == (recipe.train.seeds[:1], recipe.ablation.seeds[:1])
    assert dataclasses.replace(smoke.train, seeds=recipe.train.seeds, epochs=recipe.train.epochs) == recipe.train


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": 3}, r"epochs=3 \(--epochs\): a run must end at the bottom of a cosine cycle, i\.e\. after 2, 6, 14"),
    ({"epochs": 1}, r"epochs=1 \(--epochs\)"),
    ({"batch_size": 0}, r"batch_size=0 \(--batch-size\): expected a positive whole number"),
])
def test_shortened_training_refuses_what_the_recipe_cannot_be(overrides, message, monkeypatch):
    monkeypatch.setenv(TRAINING_OVERRIDES_VARIABLE, "")
    with pytest.raises(ValueError, match=message):
        reduce_training(**overrides)
    assert not os.environ[TRAINING_OVERRIDES_VARIABLE] and PAPER.epochs("resnet") == 126


@pytest.mark.parametrize("value, message", [
    ('{"epochs": 2, "width": 1}', "unknown training override.s. width: expected batch_size, epochs, seeds, steps_per_epoch"),
    ('{"steps_per_epoch": "1"}', r"steps_per_epoch='1' \(--steps-per-epoch\)"),
    ("epochs=2", "ASC_TRAINING_OVERRIDES='epochs=2' is not JSON"),
    ("[2]", "expected a JSON object"),
])
def test_a_bad_overrides_variable_is_named_in_the_error(value, message, monkeypatch):
    monkeypatch.setenv(TRAINING_OVERRIDES_VARIABLE, value)
    with pytest.raises(ValueError, match=message):
        get_profile("paper")


def test_a_modified_profile_reaches_the_functions_that_use_it():
    """Library functions take the Profile they are given (issue 19, item 5): nothing turns it back
    into the stock profile of its name."""
    import numpy as np

    from asclib import features

    quick = get_profile("quick")
    narrow = dataclasses.replace(quick, features=dataclasses.replace(quick.features, n_mels=24))
    audio = np.random.default_rng(0).standard_normal(quick.audio.n_samples) * 0.1
    assert features.log_mel(audio, narrow).shape[0] == 24 and features.log_mel(audio, quick).shape[0] == 40
    assert architectures.build("fcnn", 10, narrow).n_mels == 24
    wider = profiles.resized(quick, {"fcnn": (6, 8, 16)})
    assert architectures.build("fcnn", 10, wider).body[1].out_channels == 18  # 6 x the 3 input channels


def test_more_seeds_extends_the_models_and_the_ablation_alike():
    from asclib.profiles import more_seeds

    quick = get_profile("quick")
    wider = more_seeds(quick, 3)
    last = max(quick.train.seeds)
    assert wider.train.seeds == (*quick.train.seeds, last + 1, last + 2, last + 3)
    assert wider.ablation.seeds == (*quick.ablation.seeds, *range(max(quick.ablation.seeds) + 1, max(quick.ablation.seeds) + 4))
    assert more_seeds(quick, 0) == quick
    with pytest.raises(ValueError, match="--more-seeds -1"):
        more_seeds(quick, -1)
