"""Simulated recording devices: the chains that turn a scene into a device's recording (notebook 01).

In the real data set, device A is a good binaural microphone, B and C are phones that recorded
the same moments, and s1-s6 were simulated from A's audio with measured phone impulse
responses and dynamic range compression. Here every device is a `DeviceChain`: a frequency
response (band limits and resonances, as a linear-phase FIR), an optional compressor, an
optional soft saturation, an optional codec-like resampling, and a noise floor. Because
features are min-max scaled per clip, gain alone would not matter: devices differ in spectral
shape and texture. s4-s6 never appear in training.

s7-s11 stand for the DCASE 2020 evaluation set's five devices that no system heard in training:
each records through a measured microphone response of the unseen pool (`asclib.microphones`;
no training device, augmentation or feature statistic uses that pool), then band limits, a
compressor or clipping and a noise floor in amounts outside those of s1-s6. They exist in the
evaluation split only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import signal

from asclib import microphones


@dataclass(frozen=True)
class DeviceChain:
    """One device: response points (Hz, dB), band limits, compressor, saturation, codec, noise."""

    name: str
    description: str
    response: tuple[tuple[float, float], ...]  # gain in dB at these frequencies, log-interpolated
    highpass_hz: float
    lowpass_hz: float
    noise_dbfs: float  # rms of the self-noise, dBFS
    noise_slope: float = 0.0  # dB per octave of that noise
    compressor: tuple[float, float] | None = None  # (threshold dB re clip rms, ratio)
    drive: float = 0.0  # tanh saturation drive; 0 = linear
    codec_hz: int | None = None  # resampled to this rate and back (band limit and aliasing-free loss)
    microphone: str | None = None  # a measured response of `asclib.microphones`, applied first
    clip: float | None = None  # hard clipping at this fraction of the peak (an overdriven input)


DEVICE_CHAINS = {
    "a": DeviceChain("a", "reference: binaural electret microphone, nearly flat",
                     ((100, 0.0), (10_000, 0.0), (16_000, -2.0)), 20, 20_000, -80),
    "b": DeviceChain("b", "phone 1: low cut at 200 Hz, presence peak near 2.5 kHz, automatic gain control",
                     ((150, -6.0), (400, 0.0), (1_000, 0.0), (2_500, 5.0), (5_000, 1.0), (7_000, -3.0)),
                     200, 7_500, -62, -3.0, compressor=(-8.0, 3.0)),
    "c": DeviceChain("c", "phone 2: dip near 1 kHz, bright 4-6 kHz, mild saturation",
                     ((100, -3.0), (500, 0.0), (1_000, -4.0), (2_000, 0.0), (4_500, 6.0), (7_000, 2.0)),
                     120, 7_800, -66, 0.0, drive=1.5),
    "s1": DeviceChain("s1", "simulated: mid-range boost, strong compression",
                      ((200, -4.0), (800, 3.0), (1_500, 5.0), (3_000, 0.0), (6_000, -6.0)),
                      150, 7_000, -65, compressor=(-12.0, 4.0)),
    "s2": DeviceChain("s2", "simulated: thin low end, treble tilt, low-rate codec",
                      ((300, -8.0), (700, -2.0), (2_000, 0.0), (4_000, 4.0), (5_000, 3.0)),
                      300, 7_000, -60, codec_hz=11_025),
    "s3": DeviceChain("s3", "simulated: warm, resonance near 600 Hz, high cut",
                      ((120, 2.0), (600, 6.0), (1_500, 0.0), (3_000, -4.0), (5_000, -8.0)),
                      100, 6_000, -70, -3.0, compressor=(-10.0, 2.0)),
    "s4": DeviceChain("s4", "unseen: narrow band 300 Hz-6.5 kHz, two resonances, compression",
                      ((300, 0.0), (900, 6.0), (1_600, -2.0), (2_800, 5.0), (5_000, 0.0), (6_000, -4.0)),
                      300, 6_500, -58, compressor=(-10.0, 3.0)),
    "s5": DeviceChain("s5", "unseen: notch near 2 kHz, boosted bass, saturation, high cut at 5 kHz",
                      ((80, 4.0), (300, 2.0), (1_000, 0.0), (2_000, -10.0), (3_000, 0.0), (4_500, -3.0)),
                      80, 5_000, -64, drive=2.5),
    "s6": DeviceChain("s6", "unseen: rising treble, cheap noisy capsule, heavy compression",
                      ((200, -10.0), (800, -4.0), (2_000, 0.0), (4_000, 5.0), (6_000, 8.0)),
                      250, 7_200, -52, 3.0, compressor=(-15.0, 5.0)),
    # evaluation only: microphones of the unseen pool; every setting outside s1-s6's ranges
    # (band edges 80-300 Hz and 5-7.5 kHz, noise -52 to -80 dBFS, compressor ratios 2-5,
    # saturation drives 1.5-2.5, one codec at 11.025 kHz, no clipping)
    "s7": DeviceChain("s7", "unseen, evaluation only: AKG D12 (faulty), narrow band 400 Hz-4 kHz, hard clipping, noisy",
                      ((400, 0.0), (4_000, 0.0)), 400, 4_000, -47, clip=0.35, microphone=microphones.UNSEEN_DEVICES["s7"]),
    "s8": DeviceChain("s8", "unseen, evaluation only: Reslo VMC2, wide band 50 Hz-7.9 kHz, heavy compression (8:1)",
                      ((50, 0.0), (7_900, 0.0)), 50, 7_900, -84, compressor=(-22.0, 8.0),
                      microphone=microphones.UNSEEN_DEVICES["s8"]),
    "s9": DeviceChain("s9", "unseen, evaluation only: Shure 510C, strong saturation, bright hiss",
                      ((350, 0.0), (7_900, 0.0)), 350, 7_900, -57, 6.0, drive=5.0,
                      microphone=microphones.UNSEEN_DEVICES["s9"]),
    "s10": DeviceChain("s10", "unseen, evaluation only: GEC big dynamic, 8 kHz codec, high cut at 3.6 kHz",
                       ((150, 0.0), (3_600, 0.0)), 150, 3_600, -62, codec_hz=8_000,
                       microphone=microphones.UNSEEN_DEVICES["s10"]),
    "s11": DeviceChain("s11", "unseen, evaluation only: Foster DF1, low cut at 600 Hz, gentle compression, clipping",
                       ((600, 0.0), (6_800, 0.0)), 600, 6_800, -48, -6.0, compressor=(-4.0, 1.5), clip=0.5,
                       microphone=microphones.UNSEEN_DEVICES["s11"]),
}


def chains_table() -> pd.DataFrame:
    """What builds each device (notebook 01, docs): its microphone response, band, compressor,
    saturation, clipping, codec and noise floor; the training split holds a, b, c and s1-s3."""
    rows = {name: {"description": chain.description, "microphone": chain.microphone or "–",
                   "band (Hz)": f"{chain.highpass_hz:g}-{chain.lowpass_hz:g}",
                   "compressor (dB, ratio)": "–" if chain.compressor is None else "{:g}, {:g}:1".format(*chain.compressor),
                   "saturation drive": chain.drive or "–", "clipping (of peak)": chain.clip or "–",
                   "codec (Hz)": chain.codec_hz or "–", "noise (dBFS)": chain.noise_dbfs}
            for name, chain in DEVICE_CHAINS.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("device")


def magnitude_db(chain: DeviceChain, freqs: np.ndarray) -> np.ndarray:
    """The designed magnitude response (dB) of the chain's filter at `freqs` (Hz)."""
    points = np.array(chain.response)
    log_f = np.log(np.maximum(freqs, 1.0))
    gain = np.interp(log_f, np.log(points[:, 0]), points[:, 1])
    # 4th-order Butterworth-like band edges
    high = 10 * np.log10(1 / (1 + (chain.highpass_hz / np.maximum(freqs, 1.0)) ** 8))
    low = 10 * np.log10(1 / (1 + (freqs / chain.lowpass_hz) ** 8))
    return gain + high + low


def _fir(chain: DeviceChain, sr: int, taps: int = 511) -> np.ndarray:
    freqs = np.linspace(0, sr / 2, 513)
    gains = 10 ** (magnitude_db(chain, freqs) / 20)
    gains[0] = 0.0
    return signal.firwin2(taps, freqs, gains, fs=sr)


def _compress(x: np.ndarray, sr: int, threshold_db: float, ratio: float) -> np.ndarray:
    """Feed-forward compressor: 10 ms rms detector, threshold relative to the clip's rms."""
    window = max(1, int(0.01 * sr))
    power = np.convolve(x**2, np.ones(window) / window, mode="same")
    level = 10 * np.log10(power + 1e-12) - 10 * np.log10(np.mean(x**2) + 1e-12)
    gain_db = -np.maximum(level - threshold_db, 0.0) * (1 - 1 / ratio)
    smooth = signal.lfilter([0.002], [1, -0.998], gain_db - gain_db[0]) + gain_db[0]  # ~30 ms at 16 kHz
    return x * 10 ** (smooth / 20)


def record(audio: np.ndarray, sr: int, chain: DeviceChain, rng: np.random.Generator) -> np.ndarray:
    """What `chain` records of the sound field `audio` (float64 in, float64 out, same length)."""
    if chain.microphone:
        audio = microphones.convolve(audio, microphones.response(chain.microphone, sr))
    x = signal.fftconvolve(audio, _fir(chain, sr), mode="same")
    if chain.compressor:
        x = _compress(x, sr, *chain.compressor)
    if chain.drive:
        peak = np.abs(x).max() + 1e-12
        x = np.tanh(chain.drive * x / peak) * peak / chain.drive
    if chain.clip:
        limit = chain.clip * np.abs(x).max()
        x = np.clip(x, -limit, limit)
    if chain.codec_hz and chain.codec_hz < sr:
        from math import gcd

        g = gcd(chain.codec_hz, sr)
        x = signal.resample_poly(signal.resample_poly(x, chain.codec_hz // g, sr // g), sr // g,
                                 chain.codec_hz // g)[: len(audio)]
    noise = rng.standard_normal(len(x))
    if chain.noise_slope:
        spectrum = np.fft.rfft(noise)
        freqs = np.maximum(np.fft.rfftfreq(len(x), 1 / sr), 20.0)
        noise = np.fft.irfft(spectrum * (freqs / 1000) ** (chain.noise_slope / 6.02), len(x))
        noise /= noise.std()
    return x + noise * 10 ** (chain.noise_dbfs / 20)


def measured_response(chain: DeviceChain, sr: int, seconds: float = 8.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(freqs, dB): the chain's whole-chain response, measured with white noise (Welch PSD ratio)."""
    noise = np.random.default_rng(seed).standard_normal(int(seconds * sr)) * 0.05
    recorded = record(noise, sr, chain, np.random.default_rng(seed + 1))
    freqs, reference = signal.welch(noise, sr, nperseg=1024)
    _, power = signal.welch(recorded, sr, nperseg=1024)
    return freqs, 10 * np.log10(power / reference)


def relative_responses(sr: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every device's designed chain, measured (`measured_response`) and given relative to
    device A's: (freqs, dB) by device (notebooks 01 and 12)."""
    measured = {name: measured_response(chain, sr) for name, chain in DEVICE_CHAINS.items()}
    return {name: (freqs, db - measured["a"][1]) for name, (freqs, db) in measured.items()}


def response_panels(index, profile) -> tuple[dict, dict | None, list[str]]:
    """The response of every device relative to device A from parallel recordings
    (`parallel_response`), in two panels (`plots.line_panels`): the development devices, and
    the evaluation-only s7-s11; the designed chains as dashed references (`relative_responses`)
    on the synthetic corpus (None on the real data); and why any device has no curve
    (notebooks 01 and 12)."""
    from asclib.data import DEVICES, GROUP_OF

    panels, missing = {"b, c, s1-s6": {}, "s7-s11 (evaluation only)": {}}, []
    for device in DEVICES[1:]:
        try:
            panels[list(panels)[GROUP_OF[device] == "s7-s11"]][device] = parallel_response(index, device, profile)
        except ValueError as reason:
            missing.append(str(reason))
    designed = relative_responses(profile.audio.sample_rate) if profile.name == "quick" else None
    return {title: curves for title, curves in panels.items() if curves}, designed, missing


def parallel_response(index, device: str, profile, max_pairs: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(freqs, dB): mean power spectrum of `device`'s clips over that of their device-A twins.

    Parallel recordings share the file stem up to the device suffix. This works on the real data
    set and on the synthetic corpus alike; it is how the data reveal a device's response.
    """
    from asclib.data import load_audio, parallel_pairs

    pairs = parallel_pairs(index, device).head(max_pairs)
    if pairs.empty:
        raise ValueError(f"no parallel recordings of devices a and {device!r} in this index")
    sr, n_fft = profile.audio.sample_rate, profile.features.n_fft
    spectra = {}
    for column in ("a", device):
        spectra[column] = np.mean([signal.welch(load_audio(path, profile), sr, nperseg=n_fft)[1]
                                   for path in pairs[column]], axis=0)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    return freqs, 10 * np.log10((spectra[device] + 1e-20) / (spectra["a"] + 1e-20))
