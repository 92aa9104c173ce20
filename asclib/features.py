"""Log-mel features with valid deltas, as the reference computes them (notebook 02).

Recipe (spec sections 2 and 3): centred STFT frames with reflect padding, Hann window of
n_fft, power 2, HTK mel filters without area normalisation, natural log of (mel + 1e-8), one
min-max per clip over the whole matrix to [0, 1], then the valid 5-tap delta and the delta of
that delta. The three channels are time-aligned on the frames both deltas cover, so a clip of
F frames gives (3, n_mels, F - 8): 431 -> 423 for a 10 s clip of the paper profile.
"""

from __future__ import annotations

import numpy as np

from asclib.config import Profile, get_profile


def log_mel(audio: np.ndarray, profile: str | Profile = "quick") -> np.ndarray:
    """The per-clip min-max scaled log-mel spectrogram, float32 (n_mels, frames), in [0, 1]."""
    import librosa

    profile = get_profile(profile)
    config = profile.features
    mel = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float64), sr=profile.audio.sample_rate, n_fft=config.n_fft,
        hop_length=config.hop_length, win_length=config.n_fft, window="hann", center=True,
        pad_mode="reflect", power=2.0, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax,
        htk=config.htk, norm=None,
    )
    logmel = np.log(mel.astype(np.float32) + np.float32(config.log_offset))
    low, high = logmel.min(), logmel.max()
    if high <= low:  # a constant clip (silence) carries no information: all zeros, never NaN
        return np.zeros_like(logmel)
    return (logmel - low) / (high - low)


def valid_delta(x: np.ndarray) -> np.ndarray:
    """The 5-tap regression delta along the last axis without padding (2 frames lost per side)."""
    return ((x[..., 3:-1] - x[..., 1:-3]) + 2 * (x[..., 4:] - x[..., :-4])) / 10


def stack_deltas(logmel: np.ndarray) -> np.ndarray:
    """[static, delta, delta-delta] on the frames all three cover: (3, n_mels, frames - 8)."""
    delta = valid_delta(logmel)
    delta2 = valid_delta(delta)
    return np.stack([logmel[..., 4:-4], delta[..., 2:-2], delta2]).astype(np.float32)


def extract(audio: np.ndarray, profile: str | Profile = "quick") -> np.ndarray:
    """The network input of one clip: float32 (3, n_mels, frames - 8)."""
    return stack_deltas(log_mel(audio, profile))
