"""The paper's nine augmentations (section 2.3; spec sections 5.2 and 6) (notebook 03).

Online, on batches of features (numpy, seeded by the caller's generator): `mixup`,
`random_crop`, `spec_augment`; their random draws (`mixup_weights`, `crop_starts`,
`spec_augment_draws`) also drive the same operations in torch on the training device
(`asclib.batches`), so both give the same batches.

Offline, as new clips: `spectrum_correction`, `reverb_drc`, `pitch_shift`, `speed_change`,
`noise`, `mix_audio`. `generate_offline(index, profile, method, seed)` writes one method's clips
as a folder in the DCASE layout (`audio/<clip>_<method>.wav`, `meta.csv`, `evaluation_setup/`,
all rows in the training split) plus `provenance.csv` (filename, source, method, parameters,
seed); `load_augmented` reads those folders back as extra training rows. Augmented names are
unique and are always loaded by full path (the reference's loader resolved augmented rows to
the original files, spec 12.2.3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy import signal

from asclib import features, kernels
from asclib.compand import Compander, compand
from asclib.config import Profile, config_hash, get_profile, paths
from asclib.data import MINOR_TRAINING_DEVICES, load_audio, load_index, parallel_pairs
from asclib.files import atomic_path, folder_is_current
from asclib.parallel import process_map

# --------------------------------------------------------------------------------------------
# Online augmentations (spec 5.2)


def crop_starts(count: int, total: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """First frame of each of `count` crops of `frames` out of `total`, uniform from 0 to
    total - frames - 1, as the reference's `np.random.randint(0, 423 - 400)` (0 to 22 in the
    paper profile): the last position is never drawn, unless it is the only one."""
    if frames > total:
        raise ValueError(f"crop of {frames} frames asked from inputs of {total} frames")
    return rng.integers(0, max(total - frames, 1), size=count)


def random_crop(batch: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Keep `frames` consecutive frames of each example (B, C, F, T), start from `crop_starts`."""
    starts = crop_starts(len(batch), batch.shape[-1], frames, rng)
    return np.stack([x[..., s:s + frames] for x, s in zip(batch, starts)])


def spec_augment_draws(shape: tuple[int, int, int, int], freq_max: int, time_max: int,
                       rng: np.random.Generator) -> np.ndarray:
    """The masks of SpecAugment for a batch of `shape` (B, C, F, T), drawn in the reference's
    order: per example and channel a frequency band (width 0..freq_max, then its start) and a
    time span (width 0..time_max, then its start). Returns (B, C, 4) integers: frequency start,
    frequency width, time start, time width."""
    batch_size, channels, bins, frames = shape
    draws = np.empty((batch_size, channels, 4), dtype=np.int64)
    for b in range(batch_size):
        for c in range(channels):
            freq_width = rng.integers(0, freq_max + 1)
            freq_start = rng.integers(0, bins - freq_width)
            time_width = rng.integers(0, time_max + 1)
            draws[b, c] = freq_start, freq_width, rng.integers(0, frames - time_width), time_width
    return draws


def spec_augment(batch: np.ndarray, freq_max: int, time_max: int, rng: np.random.Generator) -> np.ndarray:
    """One frequency mask (width 0..freq_max) and one time mask (width 0..time_max), set to 0,
    drawn independently for every example and every channel, as the reference does."""
    out = batch.copy()
    draws = spec_augment_draws(batch.shape, freq_max, time_max, rng)
    for (b, c), (freq_start, freq_width, time_start, time_width) in zip(np.ndindex(batch.shape[:2]),
                                                                       draws.reshape(-1, 4)):
        out[b, c, freq_start:freq_start + freq_width, :] = 0
        out[b, c, :, time_start:time_start + time_width] = 0
    return out


def mixup_weights(count: int, alpha: float, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """The weight of the first clip of each of `count` pairs, Beta(alpha, alpha)."""
    return rng.beta(alpha, alpha, size=count).astype(dtype)


def mixup(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, alpha: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mix pairs with a weight drawn per pair from Beta(alpha, alpha); targets become soft."""
    weight = mixup_weights(len(x1), alpha, rng, x1.dtype)
    x_weight = weight.reshape((-1,) + (1,) * (x1.ndim - 1))
    y_weight = weight.reshape((-1,) + (1,) * (y1.ndim - 1))
    return x_weight * x1 + (1 - x_weight) * x2, y_weight * y1 + (1 - y_weight) * y2


# --------------------------------------------------------------------------------------------
# Offline augmentations: each takes (audio, sr, rng, context) and returns (audio, parameters)

# SoX compand transfer curves of the reference's "mardy" family (spec 6.2): (points, gain dB)
DRC_SETS = (
    Compander(((-90, -70), (-60, -40), (0, 0)), 2),
    Compander(((-70, -60), (-20, -10), (0, 0)), 2),
    Compander(((-90, -70), (-35, -20), (0, 0)), 5),
    Compander(((-90, -60), (-60, -20), (0, 0)), 1),
    Compander(((-80, -50), (-50, -20), (0, 0)), 1),
)
DRC_FALLBACK = Compander(((-90, -80), (-30, -20), (0, 0)), -3)


def _stft(audio: np.ndarray, profile: Profile) -> np.ndarray:
    import librosa

    f = profile.features
    return librosa.stft(audio, n_fft=f.n_fft, hop_length=f.hop_length, window="hann", center=True,
                        pad_mode="reflect")


def correction_coefficients(index: pd.DataFrame, profile: str | Profile, seed: int = 0) -> np.ndarray:
    """Per-STFT-bin correction towards the average non-A training device (paper section 2.3).

    For parallel training recordings (device A and one of b, c, s1, s2, s3 of the same segment),
    the magnitude ratio |STFT_device| / |STFT_A| is averaged over frames and over up to
    `correction_pairs_per_device` pairs of every device, all devices pooled. (The reference code
    meant to do this but, through a counter reset, used device s3 only: spec 6.1.)
    """
    profile = get_profile(profile)
    train = index[index["split"] == "train"]
    rng = np.random.default_rng([seed, 11])
    ratios = []
    for device in MINOR_TRAINING_DEVICES:
        pairs = parallel_pairs(train, device)
        if pairs.empty:
            continue
        chosen = rng.permutation(len(pairs))[: profile.augment.correction_pairs_per_device]
        for a_path, device_path in pairs.iloc[np.sort(chosen)].itertuples(index=False):
            device_mag = np.abs(_stft(load_audio(device_path, profile), profile))
            a_mag = np.abs(_stft(load_audio(a_path, profile), profile))
            ratios.append((device_mag / np.maximum(a_mag, 1e-10)).mean(axis=1))
    if not ratios:
        raise ValueError("spectrum correction needs parallel training recordings of device A and "
                         f"at least one of {MINOR_TRAINING_DEVICES}; this index has none")
    return np.mean(ratios, axis=0)


def spectrum_correction(audio, sr, rng, context):
    """Scale every STFT bin of a device-A clip by the correction coefficient, keep the phase.

    The waveform (an inverse STFT) is a listenable rendering only: the clip's features are
    `corrected_log_mel`, computed from the corrected magnitudes as the reference does (spec
    6.1 step 5); re-extracting them from this waveform would move the log-mels (about 1 dB at
    the 95th percentile on a real clip)."""
    import librosa

    profile, coefficients = context["profile"], context["coefficients"]
    spectrum = _stft(audio, profile) * coefficients[:, None]
    corrected = librosa.istft(spectrum, hop_length=profile.features.hop_length, window="hann",
                              center=True, length=len(audio))
    return corrected, {}


def corrected_log_mel(audio: np.ndarray, context: dict) -> np.ndarray:
    """The log-mel of a device-A clip whose power spectrum is scaled by the squared coefficients."""
    profile = context["profile"]
    gains = (context["coefficients"] ** 2).astype(np.float32)[:, None]
    return features.log_mel_of_power(features.power(audio, profile) * gains, profile)


def rir_bank(profile: str | Profile, seed: int = 0) -> list[np.ndarray]:
    """Room impulse responses from small rooms to large halls (rt60 about 0.2 to 2 s), cached.

    Room size and reverberation time grow together along a log scale, so every room can reach
    its rt60; each response is trimmed to 60 dB of decay plus a margin.
    """
    from asclib.scenes import shoebox_rirs

    profile = get_profile(profile)
    count, sr = profile.augment.rir_count, profile.audio.sample_rate
    key = config_hash({"count": count, "sr": sr, "seed": seed, "version": 1})
    path = paths(profile).cache / "rirs" / f"{key}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return [stored[f"rir{k}"] for k in range(count)]
    rng = np.random.default_rng([seed, 12])
    small, large = np.array([3.0, 2.5, 2.4]), np.array([45.0, 30.0, 14.0])
    rirs, rt60s = [], []
    for k in range(count):
        t = (k + rng.uniform()) / count
        dims = small * (large / small) ** t
        rt60 = 0.2 * 10 ** t * rng.uniform(0.9, 1.1)
        rir = shoebox_rirs(dims, rt60, (1.0, 0.3 * dims[:2].min() + 1.0), sr, rng, sources=1)[0]
        rirs.append(rir[: int((rt60 * 1.2 + 0.05) * sr)])
        rt60s.append(rt60)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, rt60=np.array(rt60s), **{f"rir{k}": r for k, r in enumerate(rirs)})
    return rirs


def reverb_drc(audio, sr, rng, context):
    """Convolve with a random room, direct path at time 0, then a random SoX-style compander.

    As the reference: the output is cut to the input length and peak-normalised below 1 if
    the reverberant clip reaches full scale; if the compander clips, the fallback set is used.
    """
    rirs = context["rirs"]
    which = int(rng.integers(len(rirs)))
    rir = rirs[which]
    peak = int(np.argmax(np.abs(rir)))
    wet = signal.fftconvolve(audio, rir)[peak:peak + len(audio)]
    if np.abs(wet).max() >= 1:
        wet *= 0.99 / np.abs(wet).max()
    drc = int(rng.integers(len(DRC_SETS)))
    out = compand(wet, sr, DRC_SETS[drc])
    if np.abs(out).max() > 1:
        out, drc = compand(wet, sr, DRC_FALLBACK), -1
    return out, {"rir": which, "drc_set": drc}


def pitch_shift(audio, sr, rng, context):
    """librosa pitch shift by a continuous number of semitones, uniform in [-4, 4]."""
    import librosa

    steps = float(rng.uniform(-4, 4))
    return librosa.effects.pitch_shift(audio, sr=sr, n_steps=steps, bins_per_octave=12), {"semitones": steps}


def speed_change(audio, sr, rng, context):
    """Phase-vocoder tempo change (pitch kept), rate uniform in [0.5, 2]; tiled or cut to length."""
    import librosa

    rate = float(rng.uniform(0.5, 2.0))
    stretched = librosa.effects.time_stretch(audio, rate=rate)
    return np.tile(stretched, int(np.ceil(len(audio) / len(stretched))))[: len(audio)], {"rate": rate}


def noise(audio, sr, rng, context):
    """Gaussian noise of standard deviation 0.01 added to every non-zero sample."""
    return audio + (audio != 0) * rng.normal(0.0, 0.01, size=len(audio)), {"std": 0.01}


def mix_audio(audio, sr, rng, context):
    """Mix with another training clip of the same scene (any device), weights uniform in [0.5, 1]."""
    partners = context["same_scene"][context["scene"]]
    partner = partners[partners != context["source"]]
    chosen = str(rng.choice(partner))
    a, b = rng.uniform(0.5, 1.0, size=2)
    return a * audio + b * load_audio(chosen, context["profile"]), {"partner": Path(chosen).name,
                                                                   "weights": [float(a), float(b)]}


@dataclass(frozen=True)
class OfflineMethod:
    function: object
    device_a_only: bool  # the reference applied it to device-A training clips only
    log_mel: object = None  # (audio, context) -> the clip's features, when not taken from its waveform


OFFLINE_METHODS = {
    "spectrum_correction": OfflineMethod(spectrum_correction, True, corrected_log_mel),
    "reverb_drc": OfflineMethod(reverb_drc, True),
    "pitch_shift": OfflineMethod(pitch_shift, False),
    "speed_change": OfflineMethod(speed_change, False),
    "noise": OfflineMethod(noise, False),
    "mix_audio": OfflineMethod(mix_audio, False),
}
ONLINE_METHODS = ("mixup", "random_crop", "spec_augment")
MANIFEST = "augmentation.json"


def _sources(index: pd.DataFrame, method: str) -> pd.DataFrame:
    sources = index[index["split"] == "train"]
    if OFFLINE_METHODS[method].device_a_only:
        sources = sources[sources["device"] == "a"]
    return sources.reset_index(drop=True)


def _context(index: pd.DataFrame, profile: Profile, method: str, seed: int) -> dict:
    context = {"profile": profile}
    if method == "spectrum_correction":
        context["coefficients"] = correction_coefficients(index, profile, seed)
    elif method == "reverb_drc":
        context["rirs"] = rir_bank(profile, seed)
    elif method == "mix_audio":
        train = index[index["split"] == "train"]
        context["same_scene"] = {str(s): g["path"].to_numpy() for s, g in train.groupby("scene", observed=True)}
    return context


_WORKER_CONTEXT: dict = {}


def _set_worker_context(context: dict) -> None:
    """Worker initialiser: receive the method's shared context (coefficients, rooms) once."""
    _WORKER_CONTEXT.update(context)


def _augment_chunk(task: tuple) -> list[dict]:
    """Worker: augment a chunk of clips, write them, return their provenance rows."""
    method, folder, seed, rows = task
    context = _WORKER_CONTEXT
    profile = context["profile"]
    sr = profile.audio.sample_rate
    provenance = []
    for number, source, path, scene in rows:
        rng = np.random.default_rng([seed, 13, list(OFFLINE_METHODS).index(method), number])
        audio = load_audio(path, profile).astype(np.float64)
        out, parameters = OFFLINE_METHODS[method].function(
            audio, sr, rng, {**context, "source": path, "scene": scene})
        peak = np.abs(out).max()
        if peak > 0.99:  # features are min-max scaled per clip, so this scale changes nothing
            out = out * (0.99 / peak)
        name = f"audio/{Path(source).stem}_{method}.wav"
        sf.write(Path(folder) / name, out.astype(np.float32), sr, subtype=profile.audio.subtype)
        if OFFLINE_METHODS[method].log_mel is not None:
            carried = features.carried_file(Path(folder) / name, profile)
            carried.parent.mkdir(parents=True, exist_ok=True)
            np.save(carried, OFFLINE_METHODS[method].log_mel(audio, context))
        provenance.append({"filename": name, "source": source, "method": method,
                           "parameters": json.dumps(parameters, sort_keys=True), "seed": seed})
    return provenance


def generate_offline(index: pd.DataFrame, profile: str | Profile, method: str, seed: int = 0,
                     out_dir: str | Path | None = None, workers: int | None = None) -> Path:
    """Write `method`'s augmented copies of the training clips of `index`; reused when current."""
    if method not in OFFLINE_METHODS:
        raise ValueError(f"unknown offline augmentation {method!r}: expected one of {list(OFFLINE_METHODS)}")
    profile = get_profile(profile)
    out_dir = Path(out_dir) if out_dir is not None else paths(profile).augmented / method
    sources = _sources(index, method)
    settings = {"method": method, "seed": seed, "audio": config_hash(profile.audio),
                "augment": config_hash(profile.augment),
                "sources": config_hash(sorted(sources["filename"])), "kernels": kernels.settings(),
                "code": _code_hash()}
    if folder_is_current(out_dir, settings, MANIFEST, "asclib.augment"):
        return out_dir
    context = _context(index, profile, method, seed)
    rows = [(number, row.filename, row.path, str(row.scene)) for number, row in enumerate(sources.itertuples())]
    chunks = [rows[k:k + 25] for k in range(0, len(rows), 25)]
    with atomic_path(out_dir) as folder:
        (folder / "audio").mkdir(parents=True)
        (folder / "evaluation_setup").mkdir()
        tasks = [(method, str(folder), seed, chunk) for chunk in chunks]
        results = process_map(_augment_chunk, tasks, workers, f"{method} ({len(rows)} clips)", "chunk",
                              initializer=_set_worker_context, initargs=(context,))
        provenance = pd.DataFrame([row for chunk in results for row in chunk])
        _write_layout(folder, provenance, sources)
        provenance.to_csv(folder / "provenance.csv", index=False)
        (folder / MANIFEST).write_text(json.dumps({"settings": settings, "clips": len(provenance)}, indent=2) + "\n")
    return out_dir


def _write_layout(folder: Path, provenance: pd.DataFrame, sources: pd.DataFrame) -> None:
    """meta.csv and fold-1 files, so that asclib.data reads the folder like any data set."""
    source = sources.set_index("filename").loc[provenance["source"]]
    meta = pd.DataFrame({"filename": provenance["filename"].to_numpy(), "scene_label": source["scene"].astype(str).to_numpy(),
                         "identifier": source["location"].to_numpy(), "source_label": source["device"].astype(str).to_numpy()})
    meta.to_csv(folder / "meta.csv", sep="\t", index=False)
    meta[["filename", "scene_label"]].to_csv(folder / "evaluation_setup" / "fold1_train.csv", sep="\t", index=False)
    meta[["filename", "scene_label"]].iloc[:0].to_csv(folder / "evaluation_setup" / "fold1_evaluate.csv", sep="\t", index=False)
    meta[["filename"]].iloc[:0].to_csv(folder / "evaluation_setup" / "fold1_test.csv", sep="\t", index=False)


def _code_hash() -> str:
    import hashlib

    from asclib import compand as compand_module

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(Path(compand_module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def load_augmented(profile: str | Profile, methods, root: str | Path | None = None) -> pd.DataFrame:
    """Index rows (as `asclib.data.load_index`) of the augmented clips of `methods`, with their
    provenance columns (source, method, parameters). Each method's folder must exist."""
    profile = get_profile(profile)
    root = Path(root) if root is not None else paths(profile).augmented
    tables = []
    for method in methods:
        folder = root / method
        if not (folder / MANIFEST).is_file():
            raise FileNotFoundError(f"augmented set {folder} not found: generate it first with "
                                    f"asclib.augment.generate_offline(index, profile, {method!r}) (notebook 03)")
        rows = load_index(folder, profile)
        provenance = pd.read_csv(folder / "provenance.csv")
        tables.append(rows.merge(provenance[["filename", "source", "method", "parameters"]], on="filename"))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
