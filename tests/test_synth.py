"""The synthetic corpus: determinism, layout, split rules, devices and event side files."""

from __future__ import annotations

import filecmp
import itertools
import json

import numpy as np
import pytest
import soundfile as sf

from asclib import devices, synth
from asclib.data import DEVICES, SCENES, load_events, load_index
from conftest import QUICK, TINY

def test_same_seed_gives_the_same_bytes(tiny_corpus, tmp_path):
    again = synth.generate(tmp_path / "again", TINY, seed=7)
    files = sorted(p.relative_to(tiny_corpus) for p in tiny_corpus.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(tiny_corpus, again, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors and len(match) == len(files)


def test_another_seed_gives_other_audio(tiny_corpus, tmp_path):
    other = synth.generate(tmp_path / "other", TINY, seed=8)
    first = sorted((tiny_corpus / "audio").glob("*.wav"))[0]
    other_first = sorted((other / "audio").glob("*.wav"))[0]
    assert not np.array_equal(sf.read(first)[0], sf.read(other_first)[0])


def test_layout_is_read_by_the_data_layer(tiny_corpus):
    index = load_index(tiny_corpus, TINY)
    per_scene = 6 + 5 * 1 + 14 * 1  # training: a and the five minor devices; evaluation: all 14 devices
    assert len(index) == len(SCENES) * per_scene
    info = sf.info(index["path"].iloc[0])
    assert (info.samplerate, info.frames, info.channels, info.subtype) == (16_000, 24_000, 1, "PCM_16")
    assert set(index["split"]) == {"train", "evaluate"}


def test_split_rules(tiny_corpus):
    index = load_index(tiny_corpus, TINY)
    train, evaluate = index[index["split"] == "train"], index[index["split"] == "evaluate"]
    assert not set(train["location"]) & set(evaluate["location"])
    assert not set(train["device"].astype(str)) & {"s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"}
    counts = train["device"].value_counts()
    assert counts["a"] == 60 and all(counts[d] == 10 for d in ("b", "c", "s1", "s2", "s3"))
    assert set(evaluate["device"].value_counts()) == {10}  # balanced over all fourteen devices
    # parallel recordings: every non-A clip has a device-A twin of the same segment
    stems = index["filename"].str.rsplit("-", n=1).str[0]
    a_stems = set(stems[index["device"] == "a"])
    assert set(stems[index["device"] != "a"]) <= a_stems


def test_quick_profile_plan_has_the_real_proportions():
    plan = synth.plan_corpus(QUICK, seed=0)
    train = plan[plan["split"] == "train"]["device"].value_counts(normalize=True)
    assert 0.72 <= train["a"] <= 0.78 and all(0.04 <= train[d] <= 0.06 for d in ("b", "c", "s1", "s2", "s3"))
    evaluate = plan[plan["split"] == "evaluate"]["device"].value_counts()
    assert sorted(evaluate.index) == sorted(DEVICES) and evaluate.nunique() == 1
    assert plan["filename"].is_unique


def test_device_chains_differ_in_spectral_shape():
    responses = {name: devices.measured_response(chain, 16_000) for name, chain in devices.DEVICE_CHAINS.items()}
    freqs = responses["a"][0]
    band = (freqs > 100) & (freqs < 7000)
    for (name_1, (_, r1)), (name_2, (_, r2)) in itertools.combinations(responses.items(), 2):
        difference = r1[band] - r2[band]
        shape = np.sqrt(np.mean((difference - difference.mean()) ** 2))  # gain removed
        assert shape > 2.0, f"devices {name_1} and {name_2} differ by only {shape:.1f} dB in shape"


def test_parallel_response_recovers_the_device_filter(tiny_corpus):
    index = load_index(tiny_corpus, TINY)
    freqs, measured = devices.parallel_response(index, "s5", TINY)
    designed = devices.magnitude_db(devices.DEVICE_CHAINS["s5"], freqs) - devices.magnitude_db(devices.DEVICE_CHAINS["a"], freqs)
    band = (freqs > 200) & (freqs < 4500)
    error = (measured[band] - measured[band].mean()) - (designed[band] - designed[band].mean())
    assert np.sqrt(np.mean(error**2)) < 3.0


def test_event_side_file_agrees_with_the_audio(tiny_corpus):
    index = load_index(tiny_corpus, TINY).set_index("filename")
    events = load_events(tiny_corpus)
    assert set(events["filename"]) <= set(index.index) and (events["offset"] > events["onset"]).all()
    assert events["onset"].min() >= 0 and events["offset"].max() <= TINY.audio.clip_seconds
    sr = TINY.audio.sample_rate
    checked = 0
    for filename in [f for f in index.index if f.endswith("-a.wav")]:
        row = index.loc[filename]
        location_id, segment = (int(part) for part in filename.split("-")[-3:-1])
        location = synth.make_location(TINY, 7, str(row["scene"]), location_id)
        scene = synth.render_segment(TINY, 7, location, segment)
        listed = events[events["filename"] == filename]
        assert [e["event_label"] for e in scene.events] == list(listed["event_label"])
        assert np.allclose([e["onset"] for e in scene.events], listed["onset"], atol=1e-3)
        written = sf.read(row["path"])[0]
        assert np.corrcoef(written, scene.audio)[0, 1] > 0.9  # the file is that scene through device A
        if scene.events:
            inside = np.zeros(len(scene.foreground), bool)
            for event in scene.events:
                inside[int(event["onset"] * sr):int((event["offset"] + 0.5) * sr)] = True
            energy = scene.foreground**2
            assert energy[inside].sum() >= 0.9 * energy.sum(), filename
            checked += 1
    assert checked >= 20


def test_existing_corpus_is_reused_and_foreign_folders_are_protected(tiny_corpus, tmp_path):
    stamp = (tiny_corpus / "meta.csv").stat().st_mtime_ns
    synth.generate(tiny_corpus, TINY, seed=7)
    assert (tiny_corpus / "meta.csv").stat().st_mtime_ns == stamp
    assert json.loads((tiny_corpus / synth.MANIFEST).read_text())["settings"]["seed"] == 7
    foreign = tmp_path / "my_real_data"
    (foreign / "audio").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not made by asclib.synth"):
        synth.generate(foreign, TINY, seed=7)
    assert (foreign / "audio").is_dir()
