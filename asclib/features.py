"""Log-mel features with valid deltas, as the reference computes them (notebook 02).

Recipe (docs/spec.md sections 2 and 3): centred STFT frames with reflect padding (librosa 0.6.3's
default), periodic Hann window of n_fft, power 2, HTK mel filters without area normalisation,
natural log of (mel + 1e-8), one min-max per clip over the whole matrix to [0, 1], then the
valid 5-tap delta and the delta of that delta. The three channels are time-aligned on the
frames both deltas cover, so a clip of F frames gives (3, n_mels, F - 8): 431 -> 423 for a
10 s clip of the paper profile. A data set may carry a clip's log-mel itself (`carried_file`):
spectrum correction does, as the reference computes those features from corrected magnitudes.

The STFT runs in float64 (quiet bins lie 100 dB below loud ones; float32 FFT noise would move
the log of those bins), the mel projection in float32. Each clip's scaled log-mel is computed
once per feature configuration and feature code (`code_hash`; in parallel worker processes) and
appended to one store file, indexed by the clip's path, size and time; `log_mel_rows` serves any list of clips from it
memory-mapped (training sets of any size), `cached_log_mels` in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import fft, signal

from asclib import kernels
from asclib.config import Profile, config_hash, paths
from asclib.data import load_audio  # at import, so forked workers inherit it instead of each importing pandas
from asclib.files import atomic_path, definitions_tree, raise_if_disk_full
from asclib.parallel import process_map


def _hz_to_htk_mel(hz):
    """Hz to mel on the HTK scale (librosa's formula)."""
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _htk_mel_to_hz(mel):
    """Mel on the HTK scale to Hz (librosa's formula)."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def htk_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular HTK mel filters without area normalisation, float32 (n_mels, n_fft // 2 + 1).

    The same operations in the same order as `librosa.filters.mel(..., htk=True, norm=None)`
    (librosa 0.11), so the weights are bit-identical (tested), without importing librosa:
    worker processes would otherwise each pay its import and numba set-up, about a second.
    """
    fft_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    edges_hz = _htk_mel_to_hz(np.linspace(_hz_to_htk_mel(np.asarray(fmin)), _hz_to_htk_mel(np.asarray(fmax)),
                                          n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = np.subtract.outer(edges_hz, fft_hz)
    weights = np.zeros((n_mels, len(fft_hz)), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    return weights


def _mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool) -> np.ndarray:
    """The profile's mel filters: HTK in numpy, the Slaney scale from librosa."""
    if htk:
        return htk_mel_filters(sr, n_fft, n_mels, fmin, fmax)
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm=None)


@lru_cache(maxsize=8)
def _filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool) -> tuple:
    """The periodic Hann window and the mel filters (sparse: each filter spans few bins)."""
    from scipy import sparse

    mel = _mel_filters(sr, n_fft, n_mels, fmin, fmax, htk)  # float32, as librosa's
    return signal.get_window("hann", n_fft, fftbins=True), sparse.csr_matrix(mel)


def _profile_filters(profile: Profile) -> tuple:
    config = profile.features
    return _filters(profile.audio.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax, config.htk)


def reflect_pad(audio: np.ndarray, width: int) -> np.ndarray:
    """`np.pad(audio, width, mode="reflect")` in float64, written into one new array (np.pad
    would need a float64 copy of the clip first and is slower)."""
    if len(audio) <= width:
        raise ValueError(f"a clip of {len(audio)} samples is too short to reflect {width} samples at each end")
    padded = np.empty(len(audio) + 2 * width)
    padded[width:-width] = audio
    padded[:width] = audio[width:0:-1]
    padded[-width:] = audio[-2:-width - 2:-1]
    return padded


def power_spectrogram(audio: np.ndarray, n_fft: int, hop_length: int, window: np.ndarray,
                      block: int = 16) -> np.ndarray:
    """|STFT|^2 of centred, reflect-padded frames, float32 (n_fft // 2 + 1, 1 + len(audio) // hop).

    Frames are transformed `block` at a time so the working arrays stay in the CPU cache.
    """
    frames = np.lib.stride_tricks.sliding_window_view(reflect_pad(audio, n_fft // 2), n_fft)[::hop_length]
    power = np.empty((n_fft // 2 + 1, len(frames)), dtype=np.float32)
    for start in range(0, len(frames), block):
        spectrum = fft.rfft(frames[start:start + block] * window, axis=1, overwrite_x=True)
        power[:, start:start + block] = (spectrum.real**2 + spectrum.imag**2).T
    return power


def log_mel(audio: np.ndarray, profile: Profile) -> np.ndarray:
    """The per-clip min-max scaled log-mel spectrogram, float32 (n_mels, frames), in [0, 1]."""
    if len(audio) != profile.audio.n_samples:
        raise ValueError(f"audio has {len(audio)} samples where the {profile.name} profile expects "
                         f"{profile.audio.n_samples}; read clips with asclib.data.load_audio, which pads or trims")
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"audio contains {np.sum(~np.isfinite(audio))} NaN or infinite samples")
    return log_mel_of_power(power(audio, profile), profile)


def power(audio: np.ndarray, profile: Profile) -> np.ndarray:
    """The profile's |STFT|^2 of a clip (n_fft // 2 + 1, frames)."""
    window = _profile_filters(profile)[0]
    return power_spectrogram(audio, profile.features.n_fft, profile.features.hop_length, window)


def log_mel_of_power(power_bins: np.ndarray, profile: Profile) -> np.ndarray:
    """The per-clip min-max scaled log-mel of a power spectrogram: the recipe after the STFT, so
    a spectrum changed bin by bin (spectrum correction) needs no waveform (docs/spec.md section 6.1 step 5)."""
    mel_filters = _profile_filters(profile)[1]
    logmel = np.log(mel_filters @ power_bins + np.float32(profile.features.log_offset))
    low, high = logmel.min(), logmel.max()
    if high <= low:  # a constant clip (silence) carries no information: all zeros, never NaN
        return np.zeros_like(logmel)
    return (logmel - low) / (high - low)


EDGE_FRAMES = 4  # frames the two valid deltas lose at each end: network-input frame t is log-mel frame t + 4


def valid_delta(x: np.ndarray) -> np.ndarray:
    """The 5-tap regression delta along the last axis without padding (2 frames lost per side):
    ((x[t+1] - x[t-1]) + 2 (x[t+2] - x[t-2])) / 10, computed in place in two buffers."""
    delta = x[..., 3:-1] - x[..., 1:-3]
    outer = x[..., 4:] - x[..., :-4]
    outer *= 2
    delta += outer
    delta /= 10
    return delta


def stack_deltas(logmel: np.ndarray) -> np.ndarray:
    """[static, delta, delta-delta] on the frames all three cover: float32 (3, n_mels, frames - 8);
    for a batch (clips, n_mels, frames) the channel axis comes second.

    A batch is done clip by clip, straight into the output, so the temporaries stay in the CPU
    cache: on 200 paper clips at least 3x faster than whole-batch arrays.
    """
    if logmel.ndim not in (2, 3):
        raise ValueError(f"expected a log-mel (n_mels, frames) or a batch of them, got shape {logmel.shape}")
    batch = logmel[None] if logmel.ndim == 2 else logmel
    out = np.empty((len(batch), 3, batch.shape[1], batch.shape[2] - 2 * EDGE_FRAMES), dtype=np.float32)
    for clip, channels in zip(batch, out):
        delta = valid_delta(clip)
        channels[0] = clip[:, EDGE_FRAMES:-EDGE_FRAMES]
        channels[1] = delta[:, 2:-2]
        channels[2] = valid_delta(delta)
    return out[0] if logmel.ndim == 2 else out


def extract(audio: np.ndarray, profile: Profile) -> np.ndarray:
    """The network input of one clip: float32 (3, n_mels, frames - 8)."""
    return stack_deltas(log_mel(audio, profile))


def frame_count(profile: Profile) -> int:
    """Frames of a clip's log-mel (431 for the paper profile); the network input has 8 fewer."""
    return 1 + profile.audio.n_samples // profile.features.hop_length


def input_frames(profile: Profile) -> int:
    """Frames of a full-length network input: the log-mel's less the deltas' edges (423 for the
    paper profile)."""
    return frame_count(profile) - 2 * EDGE_FRAMES


# The functions that make a clip's log-mel from its file: what the feature cache is keyed by
# (`code_hash`); spectrum correction's carried log-mels (`asclib.augment`) come from two of them.
LOG_MEL_CODE = ("log_mel", "log_mel_of_power", "power")


@lru_cache(maxsize=1)
def code_hash() -> str:
    """A hash of the code that computes a cached log-mel: `LOG_MEL_CODE` and what they use in
    this module, and `data.load_audio` with what it uses (syntax trees, prose left out). Part of
    the feature cache's key (`cache_folder`), so changed feature code never reads old log-mels."""
    import ast

    from asclib import data

    return config_hash([ast.dump(definitions_tree(__file__, LOG_MEL_CODE)),
                        ast.dump(definitions_tree(data.__file__, ["load_audio"]))])


def cache_folder(profile: Profile) -> Path:
    """Where the scaled log-mels of this feature configuration and feature code are cached."""
    key = config_hash({"audio": config_hash(profile.audio), "features": config_hash(profile.features),
                       "kernels": kernels.settings(), "code": code_hash()})
    return paths(profile).cache / "features" / key


def cache_files(clip_paths, profile: Profile) -> list[Path]:
    """The cache entry of each clip: named by its path, size and modification time, so a
    rewritten clip never reuses the log-mel of its previous content."""
    folder = cache_folder(profile)
    files = []
    for path in clip_paths:
        stat = os.stat(path)
        identity = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        files.append(folder / f"{Path(path).stem}-{hashlib.sha1(identity.encode()).hexdigest()[:16]}.npy")
    return files


def _read_cached(file: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """A cached log-mel, or None if absent; a corrupt entry is reported, deleted and recomputed."""
    if not file.is_file():
        return None
    try:
        matrix = np.load(file, allow_pickle=False)
        if matrix.shape != shape or matrix.dtype != np.float32 or not np.all(np.isfinite(matrix)):
            raise ValueError(f"shape {matrix.shape}, dtype {matrix.dtype}, expected {shape} float32")
        return matrix
    except (ValueError, OSError, EOFError) as reason:
        warnings.warn(f"corrupt feature cache entry {file} ({reason}): recomputing it", stacklevel=3)
        file.unlink(missing_ok=True)
        return None


def carried_file(clip_path: str | Path, profile: Profile) -> Path:
    """Where a data set may carry a clip's log-mel itself: `log_mels/<feature key>/<stem>.npy`
    beside its `audio/` folder. Spectrum correction writes these (its features come from the
    corrected STFT magnitudes, as the reference's do, not from the re-synthesised waveform);
    when the file exists it is the clip's log-mel."""
    clip_path = Path(clip_path)
    return clip_path.parent.parent / "log_mels" / cache_folder(profile).name / f"{clip_path.stem}.npy"


def _compute_and_store(task: tuple) -> None:
    path, file, profile = task
    carried = carried_file(path, profile)
    matrix = np.load(carried) if carried.is_file() else log_mel(load_audio(path, profile), profile)
    with atomic_path(file) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, matrix)


STORE = "log_mels.f32"  # every cached log-mel of a feature configuration, one row after another
STORE_INDEX = "log_mels.index.json"  # which row holds which clip (by its `cache_files` name)


class LogMelRows:
    """Log-mels of a list of clips, read from the memory-mapped store on demand: indexing with
    an integer, a slice or an array of positions returns those clips as a float32 array, so
    a training set of any size costs no memory until a batch is read (`train.TrainingSet`)."""

    def __init__(self, store: np.ndarray, rows: np.ndarray):
        self.store, self.rows = store, rows

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows),) + self.store.shape[1:]

    def __getitem__(self, chosen) -> np.ndarray:
        return np.asarray(self.store[self.rows[chosen]])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)


def log_mel_rows(clip_paths, profile: Profile, workers: int | None = None,
                 progress: bool = True) -> LogMelRows:
    """The scaled log-mels of `clip_paths` (clips, n_mels, frames), memory-mapped: each clip is
    computed once per feature configuration and appended to the configuration's store
    (`cache/<profile>/features/<key>/log_mels.f32`, indexed by the clip's path, size and
    time); missing clips are computed by `workers` processes (default: all cores) with a
    progress bar. Host memory stays that of one clip whatever the number of clips."""
    folder = cache_folder(profile)
    folder.mkdir(parents=True, exist_ok=True)
    shape = (profile.features.n_mels, frame_count(profile))
    files = cache_files(clip_paths, profile)
    with _locked(folder):
        index = _read_index(folder, shape)
        new = list({file.name: k for k, file in enumerate(files) if file.name not in index}.values())
        if new:
            _add_to_store(folder, index, shape, [(clip_paths[k], files[k]) for k in new], profile, workers, progress)
    store = np.memmap(folder / STORE, dtype=np.float32, mode="r", shape=(len(index),) + shape) if index else \
        np.empty((0,) + shape, np.float32)
    return LogMelRows(store, np.array([index[file.name] for file in files], dtype=np.int64))


def cached_log_mels(clip_paths, profile: Profile, workers: int | None = None,
                    progress: bool = True) -> np.ndarray:
    """The scaled log-mels of `clip_paths` in memory, float32 (clips, n_mels, frames), from the
    store of `log_mel_rows` (computed at most once); for sets that fit in memory."""
    return log_mel_rows(clip_paths, profile, workers, progress)[:]


@contextmanager
def _locked(folder: Path):
    """Hold the store's lock: one process at a time appends to it."""
    import fcntl

    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_index(folder: Path, shape: tuple[int, int]) -> dict[str, int]:
    """The store's rows by clip name (rows are numbered in the order they were appended). Rows
    the store file does not fully hold (a crash or a full disk while appending) are dropped
    with a warning, to be computed again; an unreadable index starts the store afresh."""
    path = folder / STORE_INDEX
    if not path.is_file():
        return {}
    try:
        index = json.loads(path.read_text())
        rows = index["rows"] if index["shape"] == list(shape) else None
    except (ValueError, KeyError, TypeError):
        rows = None
    if rows is None:
        warnings.warn(f"unreadable feature store index {path}: every clip is computed again", stacklevel=4)
        return {}
    stored = (folder / STORE).stat().st_size // _row_bytes(shape) if (folder / STORE).is_file() else 0
    if len(rows) > stored:
        warnings.warn(f"feature store {folder / STORE} holds {stored} complete rows of the {len(rows)} its index "
                      f"lists: the other {len(rows) - stored} clips are computed again", stacklevel=4)
        rows = {name: row for name, row in rows.items() if row < stored}
    return rows


def _row_bytes(shape: tuple[int, int]) -> int:
    return 4 * shape[0] * shape[1]


def _add_to_store(folder: Path, index: dict, shape: tuple[int, int], clips: list[tuple], profile: Profile,
                  workers: int | None, progress: bool) -> None:
    """Compute the clips' log-mels (each in its own `.npy` file first, in worker processes),
    append them to the store, then record them in the index; the index is written last, so a
    failure leaves the store as its index describes it."""
    missing = [(path, file, profile) for path, file in clips if not file.is_file()]
    if missing:
        process_map(_compute_and_store, missing, workers, "log-mel features", "clip", progress)
    rows = dict(index)
    with open(folder / STORE, "ab") as store:
        store.truncate(len(index) * _row_bytes(shape))  # drop what a failed append left behind
        try:
            for path, file in clips:
                matrix = _read_cached(file, shape)
                if matrix is None:  # a corrupt leftover entry: computed again
                    _compute_and_store((path, file, profile))
                    matrix = np.load(file)
                store.write(np.ascontiguousarray(matrix, dtype=np.float32).tobytes())
                rows[file.name] = len(rows)
            store.flush()
            os.fsync(store.fileno())
        except OSError as error:
            store.truncate(len(index) * _row_bytes(shape))
            raise_if_disk_full(error, folder / STORE, "the feature store is left as it was")
            raise
    with atomic_path(folder / STORE_INDEX) as temporary:
        temporary.write_text(json.dumps({"shape": list(shape), "rows": rows}))
    index.update(rows)
    for _, file in clips:
        file.unlink(missing_ok=True)


def network_inputs(log_mels: np.ndarray) -> np.ndarray:
    """Stack deltas on a batch of log-mels: (clips, 3, n_mels, frames - 8), as the reference
    computes them on the fly at training time."""
    return stack_deltas(np.asarray(log_mels))
