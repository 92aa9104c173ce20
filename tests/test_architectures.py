"""The architecture registry (asclib/architectures.py): a fourth network is one entry and a
builder, and then trains, predicts and gets class activation maps like the paper's three."""

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from asclib import architectures, cam, models, predict, profiles, store, train
from asclib.architectures import Architecture
from asclib.profiles import get_profile

QUICK = get_profile("quick")


class TinyNet(nn.Module):
    """A made-up fully convolutional network: one "same" convolution block, a 1x1 classifier
    convolution and a global average (the `body`/`head` layout Grad-CAM reads)."""

    def __init__(self, n_classes: int, width: int, n_mels: int):
        super().__init__()
        self.n_mels = n_mels
        self.body = nn.Sequential(models.SameConv(3, width, 3), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(width, n_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(models.check_inputs(x, self.n_mels)))


@pytest.fixture
def tinynet():
    """TinyNet registered for the length of one test."""
    entry = architectures.register(Architecture(
        name="tinynet", title="TinyNet", model_class=TinyNet, seed_id=99,
        widths={"quick": {10: 3, 3: 2}}, epochs={"quick": 2}, trained_for=(10, 3), augmentations=("mixup", "random_crop", "spec_augment"),
        weight_decay=0.0, keras_decay=False, cam="gradcam", notebook="12_tinynet", tiny_width=2))
    yield entry
    del architectures.REGISTRY[entry.name]


def _data(n_classes: int) -> train.TrainingSet:
    rng = np.random.default_rng(n_classes)
    log_mels = rng.uniform(size=(8, QUICK.features.n_mels, 126)).astype(np.float32)
    return train.TrainingSet(log_mels, rng.integers(0, n_classes, 8), f"random clips {n_classes}")


def _short(profile):
    return dataclasses.replace(profile, train=dataclasses.replace(profile.train, steps_per_epoch=2, batch_size=4))


def test_a_new_architecture_trains_predicts_and_gets_class_activation_maps(tinynet, tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path / "runs"))
    profile = _short(get_profile("quick"))  # resolved after registering: the entry's sizes are in it
    assert profile.width("tinynet", 10) == 3 and profile.epochs("tinynet") == 2
    assert ("tinynet", 10) in architectures.notebook_runs() and ("tinynet", 3) in architectures.notebook_runs()
    runs = {n: train.fit("tinynet", n, _data(n), profile, progress=False) for n in (10, 3)}
    assert len(runs[10].history) == 2 * 2 and isinstance(runs[10].model, TinyNet)
    assert runs[10].model.body[0].out_channels == 3 and runs[3].model.body[0].out_channels == 2

    found = predict.find_runs([tmp_path / "runs" / "quick"])  # rebuilt from their checkpoints
    assert [(run.name, run.n_classes) for run in found] == [("tinynet", 10), ("tinynet", 3)]
    recording = tmp_path / "clip.wav"
    sf.write(recording, np.random.default_rng(0).uniform(-0.3, 0.3, 5 * QUICK.audio.sample_rate),
             QUICK.audio.sample_rate)
    result = predict.classify([recording], found)
    assert result.table["scene"].notna().all() and not result.failures

    x = torch.rand(2, 3, QUICK.features.n_mels, 112)
    assert cam.default_method(runs[10].model) == "gradcam"
    maps = cam.maps(runs[10].model, x)
    assert maps.shape == (2, QUICK.features.n_mels, 112) and np.isclose(maps.max(), 1.0)


def test_a_new_architecture_changes_no_run_of_the_others(tinynet):
    data = _data(10)
    before = train.run_folder("fcnn", 10, get_profile("quick"), 0, data)
    del architectures.REGISTRY["tinynet"]
    try:
        assert train.run_folder("fcnn", 10, get_profile("quick"), 0, data) == before
    finally:
        architectures.REGISTRY["tinynet"] = tinynet


def test_a_new_architecture_joins_the_paper_tables_only_when_its_entry_says_so(tinynet, monkeypatch):
    """Tables 1 and 2 (`store.seed_predictions`) hold the paper's three networks; a new one
    joins them only with `in_paper_tables=True`, and its runs are then trained for them too."""
    paper = (("resnet", 10), ("resnet", 3), ("fcnn", 10), ("fcnn", 3), ("fsfcnn", 10))
    assert architectures.notebook_runs(in_paper_tables=True) == paper
    assert architectures.notebook_runs()[-2:] == (("tinynet", 10), ("tinynet", 3))
    every_job = [{"name": name, "n_classes": n, "seed": 0} for name, n in architectures.notebook_runs()]
    wanted = []
    monkeypatch.setattr(train, "notebook_jobs", lambda index, profile, data_seed=0: (every_job, {}))
    monkeypatch.setattr(store, "finished", lambda jobs, sets, index: wanted.extend(jobs) or [])
    store.seed_predictions(None, QUICK, 10)
    assert [(job["name"], job["n_classes"]) for job in wanted] == [run for run in paper if run[1] == 10]
    architectures.REGISTRY["tinynet"] = dataclasses.replace(tinynet, in_paper_tables=True)
    assert architectures.notebook_runs(in_paper_tables=True) == paper + (("tinynet", 10), ("tinynet", 3))


def test_the_registry_refuses_what_would_collide_or_mislead(tinynet):
    with pytest.raises(ValueError, match="architecture 'tinynet' is registered already"):
        architectures.register(tinynet)
    with pytest.raises(ValueError, match="seed id 0 of 'other' belongs to 'resnet'"):
        architectures.register(dataclasses.replace(tinynet, name="other", seed_id=0))
    with pytest.raises(ValueError, match=r"cam='saliency' of 'other': expected one of \('cam', 'gradcam'\)"):
        architectures.register(dataclasses.replace(tinynet, name="other", seed_id=98, cam="saliency"))
    with pytest.raises(ValueError, match=r"unknown model\(s\) vgg: the quick profile sizes \['fcnn', 'fsfcnn', 'resnet'\]"):
        profiles.resized(QUICK, {"vgg": 2})
    with pytest.raises(ValueError, match="the paper profile sizes no 10-class tinynet"):
        get_profile("paper").width("tinynet", 10)
    with pytest.raises(ValueError, match="the paper profile gives no epochs of tinynet"):
        get_profile("paper").epochs("tinynet")


def test_the_paper_architectures_keep_their_seeds_and_recipe():
    """The seed ids and per-architecture choices the committed runs were trained with."""
    entries = architectures.REGISTRY
    assert [(name, entry.seed_id) for name, entry in entries.items()][:3] == [("resnet", 0), ("fcnn", 1), ("fsfcnn", 2)]
    assert architectures.notebook_runs()[:5] == (("resnet", 10), ("resnet", 3), ("fcnn", 10), ("fcnn", 3), ("fsfcnn", 10))
    assert ["spec_augment" in train.online_methods(name) for name in ("resnet", "fcnn", "fsfcnn")] == [False, True, True]
    assert {entries[name].augmentations[-6:] for name in ("resnet", "fcnn", "fsfcnn")} == {architectures.PAPER_OFFLINE}
    assert [entries[name].keras_decay for name in ("resnet", "fcnn", "fsfcnn")] == [True, True, False]
    assert [entries[name].weight_decay for name in ("resnet", "fcnn", "fsfcnn")] == [2e-3, 0.0, 0.0]
