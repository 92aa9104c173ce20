"""Benchmark: paper-profile feature extraction and offline augmentation speed (issue 4).

Prints numbers; asserts nothing. Run:  .venv/bin/python benchmarks/features_and_augment.py

1. Feature extraction of 10 s, 44.1 kHz, 24-bit clips into the (3, 128, 423) network input:
   asclib's pipeline (`cached_log_mels` with a cold cache, worker processes, then deltas)
   against a single-process plain-librosa baseline (soundfile read, librosa melspectrogram,
   log, min-max, the same valid deltas), measured in the same run on the same clips.
2. Seconds per clip of each offline augmentation, in one process, for both profiles.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def write_clips(folder: Path, count: int, sr: int, seconds: float) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    t = np.arange(int(sr * seconds)) / sr
    for k in range(count):
        audio = 0.05 * rng.standard_normal(len(t)) + 0.1 * np.sin(2 * np.pi * (200 + 50 * k) * t)
        path = folder / f"park-espoo-{k}-{k}-a.wav"
        sf.write(path, audio.astype(np.float32), sr, subtype="PCM_24")
        paths.append(str(path))
    return paths


def librosa_baseline(paths: list[str]) -> np.ndarray:
    import librosa

    from asclib.features import stack_deltas

    out = []
    for path in paths:
        audio, sr = sf.read(path, dtype="float64", stop=441_000)
        mel = librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=2048, hop_length=1024, window="hann",
                                             center=True, pad_mode="reflect", power=2.0, n_mels=128,
                                             fmin=0, fmax=22_050, htk=True, norm=None)
        logmel = np.log(mel + 1e-8).astype(np.float32)
        out.append(stack_deltas((logmel - logmel.min()) / (logmel.max() - logmel.min())))
    return np.stack(out)


def benchmark_features(count: int) -> None:
    from asclib import features

    with tempfile.TemporaryDirectory() as folder:
        paths = write_clips(Path(folder), count, 44_100, 10.0)
        os.environ["ASC_CACHE_DIR"] = str(Path(folder) / "cache")
        librosa_baseline(paths[:2])  # warm-up: numba compilation and imports
        features.log_mel(np.zeros(441_000), "paper")
        start = time.perf_counter()
        expected = librosa_baseline(paths)
        baseline = time.perf_counter() - start
        start = time.perf_counter()
        ours = features.network_inputs(features.cached_log_mels(paths, "paper", progress=False))
        pipeline = time.perf_counter() - start
        start = time.perf_counter()
        features.network_inputs(features.cached_log_mels(paths, "paper", progress=False))
        cached = time.perf_counter() - start
    print(f"paper-profile features, {count} clips of 10 s at 44.1 kHz, {os.cpu_count()} cores")
    print(f"  plain librosa, one process : {count / baseline:7.1f} clips/s")
    print(f"  asclib pipeline, cold cache: {count / pipeline:7.1f} clips/s  ({baseline / pipeline:.2f}x)")
    print(f"  asclib pipeline, warm cache: {count / cached:7.1f} clips/s  ({baseline / cached:.1f}x)")
    print(f"  largest difference between the two: {np.abs(ours - expected).max():.1e}")


def benchmark_augmentations(profile_name: str, count: int) -> None:
    from asclib import augment
    from asclib.config import get_profile

    profile = get_profile(profile_name)
    sr, n = profile.audio.sample_rate, profile.audio.n_samples
    rng = np.random.default_rng(0)
    clips = [0.05 * rng.standard_normal(n) for _ in range(count)]
    with tempfile.TemporaryDirectory() as folder:
        os.environ["ASC_CACHE_DIR"] = folder
        start = time.perf_counter()
        rirs = augment.rir_bank(profile)
        bank = time.perf_counter() - start
        partner = Path(folder) / "partner.wav"
        sf.write(partner, clips[0].astype(np.float32), sr, subtype="FLOAT")
        context = {"profile": profile, "rirs": rirs, "coefficients": np.ones(profile.features.n_fft // 2 + 1),
                   "same_scene": {"park": np.array([str(partner), "other"])}, "scene": "park", "source": "other"}
        print(f"offline augmentation, {profile_name} profile ({profile.audio.clip_seconds:g} s at {sr} Hz), one process:")
        print(f"  room impulse response bank ({len(rirs)} rooms, once, cached): {bank:.1f} s")
        for name, method in augment.OFFLINE_METHODS.items():
            method.function(clips[0], sr, np.random.default_rng(0), context)  # warm-up
            start = time.perf_counter()
            for k, clip in enumerate(clips):
                method.function(clip, sr, np.random.default_rng(k), context)
            print(f"  {name:20s} {1000 * (time.perf_counter() - start) / count:7.1f} ms/clip")


if __name__ == "__main__":
    clips = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    benchmark_features(clips)
    for profile in ("quick", "paper"):
        benchmark_augmentations(profile, 8)
