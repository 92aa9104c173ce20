"""Benchmark: paper-profile feature extraction and offline augmentation speed (issues 4 and 10).

Asserts nothing; prints a report and writes it to benchmarks/results/features_cpu.txt (--out).
Run:  .venv/bin/python benchmarks/features_and_augment.py

Every rate is the median of --repeats timings (default 3) with the min-max spread in brackets;
pending file writes are flushed (os.sync) before each timing.

1. Feature extraction of --clips synthetic 10 s, 44.1 kHz, 24-bit clips into the (3, 128, 423)
   network input, measured in turns on the same clips so that load on a shared machine falls
   on both alike:
   - plain librosa in one process: soundfile read, librosa melspectrogram, log, min-max and the
     valid deltas written out in numpy (librosa's numba compilation is done before timing),
     timed with numpy's default BLAS threads and with one: the default collapses when another
     job holds a core (the BLAS threads wait on each other), so the ratio takes the faster;
   - asclib with a cold cache: `features.network_inputs(features.cached_log_mels(...))` into a
     new, empty cache each time, with its default worker processes (one per core); asclib is
     imported before the timings but the parent computes no feature, so every timing includes
     building the filters and starting the workers;
   - asclib with a warm cache: the same call again, reading the cached log-mels.
   The ratio is the faster plain-librosa time over the cold-cache time of the same turn. Fixed
   costs paid once per run are given apart: starting the worker pool, and importing each
   library and computing a first clip in a new interpreter.
2. Offline augmentation, clips per second of each method in one process, for both profiles.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

RESULTS = Path(__file__).resolve().parent / "results" / "features_cpu.txt"
FIRST_CLIP = {  # a new interpreter: import, then one 10 s clip at 44.1 kHz
    "asclib": "import numpy as np; from asclib import features; features.extract(np.zeros(441_000), 'paper')",
    "librosa": ("import numpy as np, librosa; librosa.feature.melspectrogram(y=np.zeros(441_000), sr=44_100, "
                "n_fft=2048, hop_length=1024, n_mels=128, htk=True, norm=None)"),
}


def write_clips(folder: Path, count: int, sr: int, seconds: float) -> list[str]:
    """Noise plus a tone per clip, written as 24-bit PCM like the TAU clips."""
    rng = np.random.default_rng(0)
    paths = []
    t = np.arange(int(sr * seconds)) / sr
    for k in range(count):
        audio = 0.05 * rng.standard_normal(len(t)) + 0.1 * np.sin(2 * np.pi * (200 + 50 * k) * t)
        path = folder / f"park-espoo-{k}-{k}-a.wav"
        sf.write(path, audio.astype(np.float32), sr, subtype="PCM_24")
        paths.append(str(path))
    return paths


def plain_delta(x: np.ndarray) -> np.ndarray:
    """The valid 5-tap delta as the formula reads, independent of asclib's implementation."""
    return ((x[:, 3:-1] - x[:, 1:-3]) + 2 * (x[:, 4:] - x[:, :-4])) / 10


def librosa_baseline(paths: list[str]) -> np.ndarray:
    """The network inputs of `paths` computed the plain way, one clip after another."""
    import librosa

    out = []
    for path in paths:
        audio, sr = sf.read(path, dtype="float64", stop=441_000)
        mel = librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=2048, hop_length=1024, window="hann",
                                             center=True, pad_mode="reflect", power=2.0, n_mels=128,
                                             fmin=0, fmax=22_050, htk=True, norm=None)
        logmel = np.log(mel + 1e-8).astype(np.float32)
        scaled = (logmel - logmel.min()) / (logmel.max() - logmel.min())
        delta = plain_delta(scaled)
        out.append(np.stack([scaled[:, 4:-4], delta[:, 2:-2], plain_delta(delta)]))
    return np.stack(out)


def seconds(function, *arguments):
    """Wall-clock seconds of one call and its result. The kernel first writes out what earlier
    steps wrote (os.sync): it otherwise does so 30 s after the writes, in whichever timing runs
    then (the clips written at the start are 265 MB, each cold cache 44 MB)."""
    os.sync()
    start = time.perf_counter()
    result = function(*arguments)
    return time.perf_counter() - start, result


def spread(values, unit: str, digits: int = 1) -> str:
    """'median [min-max] unit' of a list of measurements."""
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}] {unit}"


def new_interpreter_seconds(code: str) -> float:
    """Wall-clock seconds of `python -c code` in a new process (imports included)."""
    return seconds(lambda: subprocess.run([sys.executable, "-c", code], check=True))[0]


def _noop(task):
    return task


def asclib_pipeline(paths: list[str]) -> np.ndarray:
    """The network inputs of `paths` through asclib's feature cache, as training builds them."""
    from asclib import features
    from asclib.profiles import get_profile

    return features.network_inputs(features.cached_log_mels(paths, get_profile("paper"), progress=False))


def feature_turn(paths: list[str]) -> dict:
    """Seconds of plain librosa (default BLAS threads, then one), then of asclib with a cold and a
    warm cache, and the largest difference of the results. Each batch is dropped before the next
    timing, so that every turn starts with the same memory in use."""
    from threadpoolctl import threadpool_limits

    default, expected = seconds(librosa_baseline, paths)
    with threadpool_limits(limits=1):
        one_thread = seconds(librosa_baseline, paths)[0]
    cold, ours = seconds(asclib_pipeline, paths)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(ours, expected))
    del expected
    warm, again = seconds(asclib_pipeline, paths)
    if not np.array_equal(ours, again):
        raise AssertionError("the warm cache gave other features than the cold one")
    return {"default": default, "one_thread": one_thread, "cold": cold, "warm": warm, "difference": difference}


def benchmark_features(count: int, repeats: int, report) -> None:
    from asclib.parallel import process_map

    workers = os.cpu_count()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_clips(Path(folder), count, 44_100, 10.0)
        librosa_baseline(paths[:2])  # imports and numba compilation, outside the timings
        importlib.import_module("asclib.features")  # imported, as librosa is, but nothing computed
        turns = []
        for turn in range(repeats):
            os.environ["ASC_CACHE_DIR"] = str(Path(folder) / f"cache-{turn}")
            turns.append(feature_turn(paths))
        pool = [seconds(process_map, _noop, range(workers), workers, "", "task", False)[0] for _ in range(repeats)]

    def rates(key: str) -> str:
        return spread([count / turn[key] for turn in turns], "clips/s")

    ratios = [min(turn["default"], turn["one_thread"]) / turn["cold"] for turn in turns]
    report(f"paper-profile features, {count} clips of 10 s at 44.1 kHz (24-bit) -> 3 x 128 x 423:")
    rows = {"plain librosa, one process, default BLAS threads": rates("default"),
            "plain librosa, one process, one BLAS thread": rates("one_thread"),
            f"asclib, cold cache ({workers} workers)": rates("cold"),
            "  ratio to the faster plain librosa of each turn": spread(ratios, "x", 2),
            "asclib, warm cache": rates("warm")}
    for label, value in rows.items():
        report(f"  {label:48s}: {value}")
    report(f"  largest difference between the two: {max(turn['difference'] for turn in turns):.1e}")
    report("fixed costs, paid once (included in the cold-cache time where marked):")
    report(f"  starting and stopping {workers} worker processes (included): {spread([1000 * t for t in pool], 'ms')}")
    for name, code in FIRST_CLIP.items():
        first = [new_interpreter_seconds(code) for _ in range(repeats)]
        report(f"  new interpreter, import {name} and compute one clip (not included): {spread(first, 's', 2)}")


def benchmark_augmentations(profile_name: str, count: int, repeats: int, report) -> None:
    from asclib import augment
    from asclib.profiles import get_profile

    profile = get_profile(profile_name)
    sr, n = profile.audio.sample_rate, profile.audio.n_samples
    rng = np.random.default_rng(0)
    clips = [0.05 * rng.standard_normal(n) for _ in range(count)]
    with tempfile.TemporaryDirectory() as folder:
        os.environ["ASC_CACHE_DIR"] = folder
        bank, rirs = seconds(augment.rir_bank, profile)
        partner = Path(folder) / "partner.wav"
        sf.write(partner, clips[0].astype(np.float32), sr, subtype="FLOAT")
        context = {"profile": profile, "rirs": rirs, "coefficients": np.ones(profile.features.n_fft // 2 + 1),
                   "same_scene": {"park": np.array([str(partner), "other"])}, "scene": "park", "source": "other"}
        report(f"offline augmentation, {profile_name} profile ({profile.audio.clip_seconds:g} s at {sr} Hz), "
               f"one process, {count} clips per timing:")
        report(f"  room impulse response bank ({len(rirs)} rooms, built once and cached): {bank:.1f} s")
        for name in augment.names("offline"):
            method = augment.METHODS[name]
            method.function(clips[0], sr, np.random.default_rng(0), context)  # warm-up
            rates = []
            for _ in range(repeats):
                elapsed = seconds(lambda: [method.function(clip, sr, np.random.default_rng(k), context)
                                           for k, clip in enumerate(clips)])[0]
                rates.append(count / elapsed)
            report(f"  {name:20s} {spread(rates, 'clips/s')}")


def machine() -> str:
    """The CPU model (`asclib.provenance.cpu_model`) and the core count. Asked in a new interpreter:
    asclib.report imports torch, which would make every fork of this process slower."""
    code = "from asclib.provenance import cpu_model; print(cpu_model() or 'unknown CPU')"
    model = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    return f"{model}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200, help="feature clips (default 200)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per figure (default 3)")
    parser.add_argument("--augment-clips", type=int, default=8, help="clips per augmentation timing (default 8)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"report file (default {RESULTS})")
    args = parser.parse_args()
    lines = []

    def report(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    load = os.getloadavg()
    report(f"benchmarks/features_and_augment.py, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
           f"Python {platform.python_version()}")
    report(f"machine: {machine()}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    benchmark_features(args.clips, args.repeats, report)
    for profile in ("quick", "paper"):
        benchmark_augmentations(profile, args.augment_clips, args.repeats, report)
    report(f"load average at end {os.getloadavg()[0]:.2f} (1 min)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
