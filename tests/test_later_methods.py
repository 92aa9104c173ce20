"""Device impulse response augmentation and Freq-MixStyle as their authors' code does them
(docs/spec.md section 10): Freq-MixStyle held to the authors' formula, on the log-mel before the
deltas and mixup, off at evaluation; DIR reading a clip's copies through different microphones,
drawn by the run's own generator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import signal

from asclib import augment, batches, evaluation, microphones, train
from asclib.config import paths
from conftest import QUICK, TINY
from test_train import TINY_TRAINING, data, runs  # noqa: F401  (fixtures: random clips, runs in tmp)


def authors_mixstyle(x: torch.Tensor, lmda: torch.Tensor, perm: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The formula of `mixstyle` in the authors' code (github.com/fschmid56/cpjku_dcase23,
    `helpers/utils.py`), written out with its two random draws given: `lmda` (one Beta weight per
    clip) and `perm` (the shuffled batch positions). `x`: (batch, 1, bands, frames) log-mels;
    statistics over dims 1 and 3 (channel and time), torch's default (unbiased) variance."""
    mu = x.mean(dim=[1, 3], keepdim=True)
    sig = (x.var(dim=[1, 3], keepdim=True) + eps).sqrt()
    weight = lmda.reshape(-1, 1, 1, 1)
    return (x - mu) / sig * (sig * weight + sig[perm] * (1 - weight)) + (mu * weight + mu[perm] * (1 - weight))


def log_mels(batch: int = 6, bands: int = 8, frames: int = 40, seed: int = 0) -> torch.Tensor:
    """Made-up log-mels (batch, bands, frames) whose bands differ in level and spread, clip by clip."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, bands, frames, generator=generator, dtype=torch.float64)
    return noise * (0.1 + 0.3 * torch.rand(batch, bands, 1, generator=generator, dtype=torch.float64)) \
        + torch.rand(batch, bands, 1, generator=generator, dtype=torch.float64)


def test_freq_mixstyle_is_the_authors_formula_on_the_log_mel():
    x = log_mels()
    weights = torch.tensor([0.2, 0.5, 1.0, 0.0, 0.7, 0.9], dtype=torch.float64)
    partners = torch.tensor([1, 2, 0, 4, 5, 3])
    ours = batches.freq_mixstyle(x, weights, partners)
    assert torch.allclose(ours, authors_mixstyle(x[:, None], weights, partners)[:, 0], rtol=0, atol=1e-12)


def test_freq_mixstyle_at_weight_zero_gives_each_clip_its_partners_band_statistics_and_at_one_nothing():
    x = log_mels()
    partners = torch.tensor([1, 0, 3, 2, 5, 4])
    mean, std = x.mean(dim=-1), x.std(dim=-1)
    out = batches.freq_mixstyle(x, torch.zeros(6, dtype=torch.float64), partners)
    assert torch.allclose(out.mean(dim=-1), mean[partners], rtol=0, atol=1e-12)
    assert torch.allclose(out.std(dim=-1), std[partners], rtol=1e-4)  # eps = 1e-6 beside variances of 0.01 or more
    exact = batches.freq_mixstyle(x, torch.zeros(6, dtype=torch.float64), partners, eps=0.0)
    assert torch.allclose(exact.std(dim=-1), std[partners], rtol=1e-12)
    same = batches.freq_mixstyle(x, torch.ones(6, dtype=torch.float64), partners)
    assert torch.allclose(same, x, rtol=0, atol=1e-12)


def test_freq_mixstyle_does_not_pool_the_deltas_into_a_bands_statistics():
    # the case: statistics over log-mel, delta and delta-delta together do not give a clip
    # its partner's within-band spread; over the log-mel alone they do
    x = log_mels(batch=2, frames=60).float()
    out = batches.freq_mixstyle(x, torch.zeros(2), torch.tensor([1, 0]))
    assert torch.allclose(out[0].std(dim=-1), x[1].std(dim=-1), rtol=1e-3)
    pooled = batches.stack_deltas(x)
    mean = pooled.mean(dim=(1, 3), keepdim=True)
    std = (pooled.var(dim=(1, 3), keepdim=True) + 1e-6).sqrt()
    pooled_out = (pooled - mean) / std * std[[1, 0]] + mean[[1, 0]]
    assert not torch.allclose(pooled_out[0, 0].std(dim=-1), pooled[1, 0].std(dim=-1), rtol=0.1)


def test_a_step_applies_freq_mixstyle_to_the_log_mels_before_the_deltas_crop_and_mixup():
    rng = np.random.default_rng(0)
    first, second = np.arange(4), np.arange(4, 8)
    draws = batches.draw(first, second, True, QUICK, rng)
    clips = rng.uniform(size=(8, QUICK.features.n_mels, 126)).astype(np.float32)
    labels = np.arange(8) % 10
    weights, keys = rng.beta(0.4, 0.4, size=8).astype(np.float32), rng.random(8)
    cpu = torch.device("cpu")
    plain = batches.host_batch(clips, labels, draws, slice(None), 10, cpu)
    draws.mixstyle = (weights, keys)
    mixed = batches.host_batch(clips, labels, draws, slice(None), 10, cpu)
    x, y = batches.assemble(mixed, QUICK, cpu)
    partners = torch.from_numpy(np.argsort(keys, kind="stable"))
    plain.log_mels = batches.freq_mixstyle(plain.log_mels, torch.from_numpy(weights), partners)
    expected, expected_y = batches.assemble(plain, QUICK, cpu)
    assert torch.equal(x, expected) and torch.equal(y, expected_y)


def test_freq_mixstyle_acts_in_training_and_never_at_evaluation(data, tiny_corpus, monkeypatch, tmp_path):
    from asclib import data as asc_data

    calls = []
    original = batches.freq_mixstyle
    monkeypatch.setattr(batches, "freq_mixstyle", lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    run = train.fit("resnet", 10, data, TINY_TRAINING, seed=1, progress=False,
                    augmentations=("mixup", "random_crop", "freq_mixstyle"))
    assert calls, "Freq-MixStyle never ran in training"
    calls.clear()
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    index = asc_data.load_index(tiny_corpus, TINY)
    evaluation.predict(run.model, index[index["split"] == "evaluate"].head(6), 10, TINY)
    assert not calls


def test_dir_makes_copies_through_different_training_pool_microphones_with_the_clips_length_and_level():
    audio = np.random.default_rng(0).standard_normal(16_000) * 0.1
    copies = augment.device_impulse_response(audio, 16_000, np.random.default_rng(3),
                                             {"profile": QUICK, "microphones": microphones.training_pool()})
    names = [parameters["microphone"] for _, parameters in copies]
    assert len(copies) == QUICK.augment.substitute_copies == len(set(names))
    assert set(names) <= set(microphones.training_pool())
    for out, parameters in copies:
        assert len(out) == len(audio) and np.isclose(np.sqrt(np.mean(out**2)), np.sqrt(np.mean(audio**2)))
        through = signal.fftconvolve(audio, microphones.response(parameters["microphone"], 16_000))[: len(audio)]
        assert np.allclose(out / np.linalg.norm(out), through / np.linalg.norm(through))  # the convolution, rescaled


def copies_of(count: int, per_clip: int) -> np.ndarray:
    """Every other clip of `count` has `per_clip` copies (rows after the clips), the others none."""
    rows = count + np.arange(count * per_clip).reshape(count, per_clip)
    return np.where((np.arange(count) % 2 == 0)[:, None], rows, -1)


def test_substitution_reads_one_of_a_clips_own_copies_with_the_probability():
    clips, copies = np.arange(10_000), copies_of(10_000, 4)
    rows = batches.substitute(clips, copies, 0.4, np.random.default_rng(0))
    replaced = rows != clips
    assert all(rows[k] in copies[k] for k in np.flatnonzero(replaced))  # a replaced clip is read from its own copy
    assert not replaced[copies[:, 0] < 0].any()  # a clip without copies never is
    assert 0.37 < replaced[copies[:, 0] >= 0].mean() < 0.43  # 0.4, +-4 standard errors
    which = (rows[replaced] - 10_000) % 4
    assert np.all(np.bincount(which, minlength=4) > 0.2 * replaced.sum())  # every copy read, about equally
    assert np.array_equal(batches.substitute(clips, copies, 0.0, np.random.default_rng(0)), clips)


def test_two_seeds_read_different_copies_and_a_clip_meets_every_copy_over_a_run():
    first, second = np.arange(0, 8), np.arange(8, 16)
    copies = copies_of(40, QUICK.augment.substitute_copies)

    def rows(seed, step):
        return batches.draw(first, second, False, QUICK, np.random.default_rng(0),
                            batches.LaterMethods(seed, copies), step=step).rows

    assert not np.array_equal(rows(0, 5), rows(1, 5))
    assert np.array_equal(rows(0, 5), rows(0, 5))  # the step's own generator: a resumed run draws the same
    met = {row for step in range(200) for row in rows(0, step)[[0]] if row != 0}  # clip 0 over 200 steps
    assert met == set(copies[0])


def test_later_methods_leave_the_papers_draws_alone():
    first, second = np.arange(0, 8), np.arange(8, 16)
    plain_rng, later_rng = np.random.default_rng(1), np.random.default_rng(1)
    plain = batches.draw(first, second, True, QUICK, plain_rng)
    later = batches.draw(first, second, True, QUICK, later_rng, batches.LaterMethods(0, copies_of(40, 3), True), step=5)
    assert plain_rng.bit_generator.state == later_rng.bit_generator.state
    assert np.array_equal(plain.masks, later.masks) and np.array_equal(plain.weights, later.weights)


LATER_RECIPE = ("mixup", "random_crop", "freq_mixstyle", "dir")


def _with_copies(data: train.TrainingSet) -> train.TrainingSet:
    """`data` plus two made-up copies of each of its first 12 clips (rows after the clips)."""
    count = len(data.labels)
    made = np.concatenate([data.log_mels[:12] * 0.5 + 0.25, data.log_mels[:12] * 0.8])
    substitutes = np.full((count, 2), -1)
    substitutes[:12] = count + np.stack([np.arange(12), 12 + np.arange(12)], axis=1)
    return train.TrainingSet(np.concatenate([data.log_mels, made]), data.labels, "random clips with copies",
                             substitutes=substitutes)


def test_a_run_with_the_later_methods_resumes_to_the_same_weights(data, monkeypatch, tmp_path):
    with_copies = _with_copies(data)
    whole = train.fit("resnet", 10, with_copies, TINY_TRAINING, seed=1, progress=False, augmentations=LATER_RECIPE)
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path / "other"))
    train.fit("resnet", 10, with_copies, TINY_TRAINING, seed=1, stop_after=1, progress=False, augmentations=LATER_RECIPE)
    resumed = train.fit("resnet", 10, with_copies, TINY_TRAINING, seed=1, progress=False, augmentations=LATER_RECIPE)
    plain = train.fit("resnet", 10, data, TINY_TRAINING, seed=1, progress=False, augmentations=LATER_RECIPE[:2])
    weights = {name: run.model.state_dict() for name, run in (("whole", whole), ("resumed", resumed), ("plain", plain))}
    assert all(torch.equal(weights["whole"][k], weights["resumed"][k]) for k in weights["whole"])
    assert not all(torch.equal(weights["whole"][k], weights["plain"][k]) for k in weights["whole"])
    with pytest.raises(ValueError, match="no copies to substitute"):
        train.fit("resnet", 10, data, TINY_TRAINING, seed=1, progress=False, augmentations=LATER_RECIPE)


def test_the_training_set_of_a_dir_recipe_points_each_device_a_clip_to_its_own_copies(tiny_corpus, tmp_path, monkeypatch):
    from asclib import data as asc_data

    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    index = asc_data.load_index(tiny_corpus, TINY)
    training = train.training_set(index, 10, TINY, ("mixup", "random_crop", "dir"))
    train_rows = index[index["split"] == "train"]
    assert len(training.labels) == len(train_rows) == len(training.substitutes)
    assert training.substitutes.shape[1] == TINY.augment.substitute_copies
    has_copies = training.substitutes[:, 0] >= 0
    assert has_copies.sum() == (train_rows["device"] == "a").sum() and (training.substitutes[has_copies] >= 0).all()
    provenance = pd.read_csv(paths(TINY).augmented / "dir" / "provenance.csv").set_index("filename")
    for row in np.flatnonzero(has_copies)[:3]:
        source = Path(training.paths[row])
        assert index.set_index("path").loc[str(source), "device"] == "a"
        names = [Path(training.paths[k]).name for k in training.substitutes[row]]
        assert names == [f"{source.stem}_dir{copy}.wav" for copy in range(len(names))]
        used = [json.loads(provenance.loc[f"audio/{name}", "parameters"])["microphone"] for name in names]
        assert len(set(used)) == len(used) and set(used) <= set(microphones.training_pool())
