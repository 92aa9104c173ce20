"""Unseen devices and the methods after the paper (issue: unseen devices): the microphone pools,
the evaluation-only devices s7-s11, device impulse response augmentation and Freq-MixStyle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import signal

from asclib import augment, batches, devices, metrics, microphones, train
from asclib.config import paths
from asclib.data import DEVELOPMENT_DEVICES, DEVICES, GROUP_OF
from conftest import QUICK, TINY
from test_train import TINY_TRAINING, data, runs  # noqa: F401  (fixtures: random clips, runs in tmp)


def test_the_pools_split_all_66_responses_and_share_no_maker():
    names, unseen, pool = microphones.names(), set(microphones.unseen_pool()), set(microphones.training_pool())
    assert len(names) == 66 and unseen | pool == set(names) and not unseen & pool
    makers = tuple(m.lower() for m in microphones.UNSEEN_MAKERS)
    assert not [n for n in pool if n.removeprefix("IR_").lower().startswith(makers)]
    assert set(microphones.UNSEEN_DEVICES.values()) <= unseen  # every unseen device's microphone
    assert len({name.split("_")[0] for name in microphones.UNSEEN_DEVICES.values()}) == 5  # one maker each


def test_unseen_devices_use_only_unseen_microphones_and_training_devices_none():
    for name, chain in devices.DEVICE_CHAINS.items():
        if name in DEVELOPMENT_DEVICES:
            assert chain.microphone is None, name
        else:
            assert chain.microphone in microphones.unseen_pool() and GROUP_OF[name] == "s7-s11", name
    assert DEVICES[9:] == ("s7", "s8", "s9", "s10", "s11")


def test_a_response_is_resampled_and_has_unit_energy():
    response = microphones.response("Sony_C37Fet", 16_000)
    assert abs(np.sum(response**2) - 1) < 1e-9
    assert abs(len(response) - round(16_459 * 16_000 / 44_100)) <= 1
    with pytest.raises(ValueError, match="unknown microphone response 'Nokia'"):
        microphones.response("Nokia", 16_000)


def test_dir_is_the_clip_through_one_training_pool_response_with_its_length_and_level():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(16_000) * 0.1
    out, parameters = augment.device_impulse_response(audio, 16_000, np.random.default_rng(3),
                                                      {"microphones": microphones.training_pool()})
    name = parameters["microphone"]
    assert name in microphones.training_pool()
    assert len(out) == len(audio) and np.isclose(np.sqrt(np.mean(out**2)), np.sqrt(np.mean(audio**2)))
    through = signal.fftconvolve(audio, microphones.response(name, 16_000))[: len(audio)]
    assert np.allclose(out / np.linalg.norm(out), through / np.linalg.norm(through))  # the convolution, rescaled
    assert not np.allclose(out, audio)


def test_substitution_reads_copies_of_clips_that_have_one_with_the_probability():
    clips = np.arange(10_000)
    copies = np.where(clips % 2 == 0, clips + 10_000, -1)  # every other clip has a copy, after the clips
    rows = batches.substitute(clips, copies, 0.4, np.random.default_rng(0))
    replaced = rows != clips
    assert np.array_equal(rows[replaced], copies[replaced])  # a replaced clip is read from its own copy
    assert not replaced[copies < 0].any()  # a clip without a copy never is
    assert 0.37 < replaced[copies >= 0].mean() < 0.43  # 0.4, +-4 standard errors
    assert np.array_equal(batches.substitute(clips, copies, 0.0, np.random.default_rng(0)), clips)


def test_freq_mixstyle_gives_each_band_the_mixed_statistics_and_is_the_identity_at_weight_one():
    x = torch.randn(6, 3, 8, 20, dtype=torch.float64) * torch.rand(6, 1, 8, 1, dtype=torch.float64) * 3 \
        + torch.randn(6, 1, 8, 1, dtype=torch.float64)
    weights = torch.tensor([0.2, 0.5, 1.0, 0.0, 0.7, 0.9], dtype=torch.float64)
    partners = torch.tensor([1, 2, 0, 4, 5, 3])
    out = batches.freq_mixstyle(x, weights, partners, eps=0.0)
    mean, std = x.mean(dim=(1, 3)), x.std(dim=(1, 3), unbiased=False)
    w = weights[:, None]
    assert torch.allclose(out.mean(dim=(1, 3)), w * mean + (1 - w) * mean[partners])
    assert torch.allclose(out.std(dim=(1, 3), unbiased=False), w * std + (1 - w) * std[partners])
    same = batches.freq_mixstyle(x, torch.ones(6, dtype=torch.float64), partners)
    assert torch.allclose(same, x, atol=1e-12)


def test_later_methods_leave_the_papers_draws_alone_and_depend_on_the_step_only():
    quick = QUICK
    first, second = np.arange(0, 8), np.arange(8, 16)
    copies = np.where(np.arange(40) % 2 == 0, np.arange(40) + 40, -1)
    plain_rng, later_rng = np.random.default_rng(1), np.random.default_rng(1)
    plain = batches.draw(first, second, True, quick, plain_rng)
    later = batches.draw(first, second, True, quick, later_rng, batches.LaterMethods(0, copies, True), step=5)
    assert plain_rng.bit_generator.state == later_rng.bit_generator.state
    assert np.array_equal(plain.masks, later.masks) and np.array_equal(plain.weights, later.weights)
    again = batches.draw(first, second, True, quick, np.random.default_rng(9), batches.LaterMethods(0, copies, True), step=5)
    assert np.array_equal(again.rows, later.rows)
    assert (again.mixstyle is None) == (later.mixstyle is None)


def test_overall_is_over_the_development_devices_and_the_spread_over_all():
    table = pd.DataFrame({"device": ["a", "a", "s4", "s4", "s7", "s7"], "correct": [1, 1, 1, 0, 0, 0]})
    row = metrics.accuracy_by_device(table, decimals=None).iloc[0]
    assert row["overall"] == 75.0 and row["s7-s11"] == 0.0
    assert np.isclose(row[metrics.DEVICE_SPREAD], np.std([100.0, 50.0, 0.0]))


LATER_RECIPE = ("mixup", "random_crop", "freq_mixstyle", "dir")


def _with_copies(data: train.TrainingSet) -> train.TrainingSet:
    """`data` plus a made-up copy of each of its first 12 clips (rows after the clips)."""
    copies = data.log_mels[:12] * 0.5 + 0.25
    substitutes = np.where(np.arange(len(data.labels)) < 12, len(data.labels) + np.arange(len(data.labels)), -1)
    return train.TrainingSet(np.concatenate([data.log_mels, copies]), data.labels, "random clips with copies",
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


def test_the_training_set_of_a_dir_recipe_points_each_device_a_clip_to_its_own_copy(tiny_corpus, tmp_path, monkeypatch):
    from asclib import data as asc_data

    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    index = asc_data.load_index(tiny_corpus, TINY)
    training = train.training_set(index, 10, TINY, ("mixup", "random_crop", "dir"))
    train_rows = index[index["split"] == "train"]
    assert len(training.labels) == len(train_rows) == len(training.substitutes)
    has_copy = training.substitutes >= 0
    assert has_copy.sum() == (train_rows["device"] == "a").sum()
    for row in np.flatnonzero(has_copy)[:3]:
        source, copy = Path(training.paths[row]), Path(training.paths[training.substitutes[row]])
        assert copy.name == f"{source.stem}_dir.wav" and index.set_index("path").loc[str(source), "device"] == "a"
    provenance = pd.read_csv(paths(TINY).augmented / "dir" / "provenance.csv")
    used = {json.loads(p)["microphone"] for p in provenance["parameters"]}
    assert used <= set(microphones.training_pool())


def test_a_real_data_set_is_joined_with_simulated_s7_s11_and_left_untouched(tmp_path, monkeypatch):
    import dataclasses

    from asclib import synth
    from asclib.data import load_index
    from conftest import write_layout

    rng = np.random.default_rng(0)
    names = [f"{scene}-lyon-{k}-{10 + k}-{device}.wav" for k, scene in enumerate(("park", "bus", "airport"))
             for device in ("a", "b")]
    real_layout = write_layout(tmp_path / "tau", {name: rng.standard_normal(64_000) * 0.1 for name in names},
                               train={names[0], names[1]})  # the park segment trains, the other two evaluate
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    profile = dataclasses.replace(QUICK, name="paper")  # a real data set at the quick profile's sizes
    before = sorted(path.name for path in (real_layout / "audio").iterdir())
    joined = synth.dataset(profile, real_layout)
    assert joined != real_layout and sorted(path.name for path in (real_layout / "audio").iterdir()) == before
    original, index = load_index(real_layout, profile), load_index(joined, profile)
    added = index[~index["filename"].isin(original["filename"])]
    sources = original[(original["split"] == "evaluate") & (original["device"] == "a")]
    assert len(added) == 5 * len(sources) == 10
    assert set(added["device"].astype(str)) == set(DEVICES[9:]) and set(added["split"]) == {"evaluate"}
    kept = index[index["filename"].isin(original["filename"])].set_index("filename")
    pd.testing.assert_series_equal(kept["split"].sort_index(), original.set_index("filename")["split"].sort_index())
    stems = set(sources["filename"].str.rsplit("-", n=1).str[0])
    assert set(added["filename"].str.rsplit("-", n=1).str[0]) == stems  # parallel to device A's clips
    stamp = (joined / synth.JOINED_MANIFEST).stat().st_mtime_ns
    assert synth.dataset(profile, real_layout) == joined and (joined / synth.JOINED_MANIFEST).stat().st_mtime_ns == stamp
