"""Features: the paper recipe against an independent implementation, the cache, bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf

from asclib import features
from asclib.profiles import get_profile
from asclib.data import AudioError, load_audio

from conftest import PAPER, QUICK, source_reads


def reference_features(audio: np.ndarray, sr=44_100, n_fft=2048, hop=1024, n_mels=128) -> np.ndarray:
    """The spec's formulas written out plainly, in float64 (docs/spec.md sections 2 and 3)."""
    padded = np.pad(audio, n_fft // 2, mode="reflect")
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann
    frames = 1 + len(audio) // hop
    power = np.array([np.abs(np.fft.rfft(padded[t * hop:t * hop + n_fft] * window)) ** 2 for t in range(frames)]).T

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    bins = np.linspace(0, sr / 2, n_fft // 2 + 1)
    filters = np.zeros((n_mels, len(bins)))
    for i in range(n_mels):
        rising = (bins - edges[i]) / (edges[i + 1] - edges[i])
        falling = (edges[i + 2] - bins) / (edges[i + 2] - edges[i + 1])
        filters[i] = np.maximum(0.0, np.minimum(rising, falling))
    logmel = np.log(filters @ power + 1e-8)
    scaled = (logmel - logmel.min()) / (logmel.max() - logmel.min())

    def delta(x):
        t = np.arange(2, x.shape[1] - 2)
        return ((x[:, t + 1] - x[:, t - 1]) + 2 * (x[:, t + 2] - x[:, t - 2])) / 10

    d1 = delta(scaled)
    d2 = delta(d1)
    return np.stack([scaled[:, 4:-4], d1[:, 2:-2], d2])


def test_paper_features_match_the_formulas_on_real_clips(real_clips):
    worst = 0.0
    for clip in real_clips:
        audio = load_audio(clip, PAPER)
        ours = features.extract(audio, PAPER)
        assert ours.shape == (3, 128, 423) and ours.dtype == np.float32
        worst = max(worst, float(np.abs(ours - reference_features(audio.astype(np.float64))).max()))
        assert ours[0].min() == 0.0 and ours[0].max() == 1.0
    assert worst <= 1e-5, f"largest difference {worst:.2e}"


@pytest.mark.parametrize("name", ["quick", "paper"])
def test_htk_mel_filters_are_librosas_bit_for_bit(name):
    import librosa

    profile = get_profile(name)
    config = profile.features
    ours = features.htk_mel_filters(profile.audio.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
    theirs = librosa.filters.mel(sr=profile.audio.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                                 fmin=config.fmin, fmax=config.fmax, htk=True, norm=None)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape and ours.tobytes() == theirs.tobytes()


def test_features_never_import_librosa():
    """Each worker process would pay librosa's import and numba set-up (about a second)."""
    code = ("import sys, numpy as np; from asclib import features; from asclib.profiles import get_profile; features.log_mel(np.zeros(441_000), get_profile('paper')); "
            "assert 'librosa' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reflect_pad_is_numpys():
    audio = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    expected = np.pad(audio.astype(np.float64), 10, mode="reflect")
    assert features.reflect_pad(audio, 10).tobytes() == expected.tobytes()
    with pytest.raises(ValueError, match="too short"):
        features.reflect_pad(audio[:10], 10)


def test_frame_arithmetic():
    assert features.frame_count(PAPER) == 431  # 1 + 441000 // 1024
    assert features.extract(np.random.default_rng(0).standard_normal(441_000) * 0.1, PAPER).shape[-1] == 423
    quick = get_profile("quick")
    assert features.extract(np.zeros(quick.audio.n_samples), quick).shape == (3, quick.features.n_mels, features.frame_count(quick) - 8)


def test_deltas_of_a_batch_are_those_of_each_clip():
    batch = np.random.default_rng(0).random((3, 40, 30), dtype=np.float32)
    stacked = features.stack_deltas(batch)
    assert stacked.shape == (3, 3, 40, 22)
    assert all(np.array_equal(stacked[k], features.stack_deltas(batch[k])) for k in range(3))
    with pytest.raises(ValueError, match="expected a log-mel"):
        features.stack_deltas(batch[None])


def test_silent_clip_gives_zeros_not_nan():
    out = features.extract(np.zeros(64_000, np.float32), QUICK)
    assert np.all(np.isfinite(out)) and not out.any()


def test_bad_audio_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ValueError, match="32000 samples where the quick profile expects 64000"):
        features.log_mel(np.zeros(32_000), QUICK)
    broken = np.zeros(64_000)
    broken[5] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        features.log_mel(broken, QUICK)
    sf.write(tmp_path / "nan.wav", broken.astype(np.float32), 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan.wav: 1 NaN or infinite sample"):
        load_audio(tmp_path / "nan.wav", QUICK)


@pytest.fixture
def clips(tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    paths = []
    for k in range(5):
        path = tmp_path / f"park-espoo-1-{k}-a.wav"
        sf.write(path, (0.1 * rng.standard_normal(64_000)).astype(np.float32), 16_000)
        paths.append(str(path))
    return paths


def test_cache_computes_once_and_matches_direct_extraction(clips, monkeypatch):
    first = features.cached_log_mels(clips, QUICK, workers=2, progress=False)
    assert np.array_equal(first[2], features.log_mel(load_audio(clips[2], QUICK), QUICK))
    monkeypatch.setattr(features, "_compute_and_store", lambda task: pytest.fail("recomputed a cached clip"))
    assert np.array_equal(features.cached_log_mels(clips, QUICK, workers=1, progress=False), first)
    inputs = features.network_inputs(first)
    assert inputs.shape == (5, 3, get_profile("quick").features.n_mels, first.shape[-1] - 8)


def test_changed_config_never_reuses_stale_features(clips):
    quick = get_profile("quick")
    other = dataclasses.replace(quick, features=dataclasses.replace(quick.features, n_mels=32))
    assert features.cache_folder(other) != features.cache_folder(quick)
    assert features.cached_log_mels(clips[:1], other, workers=1, progress=False).shape[1] == 32


def test_changed_feature_code_never_reuses_stale_features(clips, monkeypatch):
    """The store is keyed by the code that makes a log-mel (`features.code_hash`): log-mels
    scaled differently, or audio read differently, get a new store; prose and the store's own
    mechanics keep it."""
    from asclib import data

    def folder_with(module, text):
        with source_reads(module, text, features.code_hash):
            return features.cache_folder(QUICK)

    before = features.cache_folder(QUICK)
    source, reader = Path(features.__file__).read_text(), Path(data.__file__).read_text()
    scaled = source.replace("return (logmel - low) / (high - low)", "return 0.5 * (logmel - low) / (high - low)")
    store = source.replace("return len(self.rows)", "return int(len(self.rows))")  # LogMelRows, not a log-mel
    padded = reader.replace("if samples.shape[0] == 0:", "if samples.shape[0] == 0 or False:")
    assert len({source, scaled, store}) == 3 and padded != reader
    assert folder_with(features, source.replace('"""', '"""Reworded. ', 1) + "# a comment\n") == before
    assert folder_with(features, store) == before
    assert folder_with(features, scaled) != before
    assert folder_with(data, padded) != before


def test_a_truncated_store_is_detected_and_recomputed(clips):
    good = features.cached_log_mels(clips, QUICK, workers=1, progress=False)
    store = features.cache_folder(QUICK) / features.STORE
    store.write_bytes(store.read_bytes()[:-100])  # the last row cut short, as after a crash or a full disk
    with pytest.warns(UserWarning, match="holds 4 complete rows of the 5"):
        again = features.cached_log_mels(clips, QUICK, workers=1, progress=False)
    assert np.array_equal(again, good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(features.cached_log_mels(clips, QUICK, workers=1, progress=False), good)


def test_a_corrupt_entry_or_index_is_computed_again(clips):
    folder = features.cache_folder(QUICK)
    folder.mkdir(parents=True)
    leftover = features.cache_files(clips[:1], QUICK)[0]
    leftover.write_bytes(b"\x93NUMPY garbage")  # an entry a crashed worker left behind
    with pytest.warns(UserWarning, match="corrupt feature cache entry"):
        first = features.cached_log_mels(clips[:1], QUICK, workers=1, progress=False)
    assert np.array_equal(first[0], features.log_mel(load_audio(clips[0], QUICK), QUICK))
    assert not leftover.exists()  # stored, then the entry removed
    (folder / features.STORE_INDEX).write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable feature store index"):
        again = features.cached_log_mels(clips, QUICK, workers=1, progress=False)
    assert np.array_equal(again[0], first[0])
    assert (folder / features.STORE).stat().st_size == 5 * first[0].nbytes  # rebuilt, not appended


def test_memory_mapped_rows_read_only_what_is_asked(clips):
    rows = features.log_mel_rows(clips, QUICK, workers=1, progress=False)
    assert isinstance(rows.store, np.memmap) and rows.shape == (5,) + rows.store.shape[1:]
    both = features.log_mel_rows([clips[3], clips[1], clips[3]], QUICK, workers=1, progress=False)
    assert list(both.rows) == [rows.rows[3], rows.rows[1], rows.rows[3]]  # shared rows, nothing appended
    assert np.array_equal(both[np.array([2, 0])], np.asarray(rows)[[3, 3]])


def test_a_full_disk_leaves_the_store_as_it_was(clips, monkeypatch):
    import errno

    from asclib.files import DiskFullError

    good = features.cached_log_mels(clips[:2], QUICK, workers=1, progress=False)
    store = features.cache_folder(QUICK) / features.STORE
    before = store.read_bytes()
    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if str(path).endswith(features.STORE) and "a" in mode:
            def fail(data):
                raise OSError(errno.ENOSPC, "No space left on device")
            handle.write = fail
        return handle

    monkeypatch.setattr("builtins.open", full_disk_open)
    with pytest.raises(DiskFullError, match=f"no space left on the disk while writing {store}.*left as it was"):
        features.cached_log_mels(clips, QUICK, workers=1, progress=False)
    monkeypatch.undo()
    assert store.read_bytes() == before
    assert np.array_equal(features.cached_log_mels(clips[:2], QUICK, workers=1, progress=False), good)


def test_a_rewritten_clip_gets_a_new_cache_entry(clips):
    before = features.cache_files(clips, QUICK)
    sf.write(clips[0], np.zeros(64_000, np.float32), 16_000)
    after = features.cache_files(clips, QUICK)
    assert before[0] != after[0] and before[1:] == after[1:]
    assert not features.cached_log_mels(clips[:1], QUICK, workers=1, progress=False).any()  # silence now
