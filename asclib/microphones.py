"""Measured microphone impulse responses (MicIRP, asclib/device_irs/README.md) and their split
into a training pool and an unseen pool (notebooks 01, 03, 12).

The unseen pool holds every response of five makers; one response of each builds one of the
evaluation-only devices s7-s11 (`asclib.devices`). The training pool, the other responses, is
what device impulse response (DIR) augmentation draws from (`asclib.augment`). A maker is never
in both pools, so no sibling of an unseen device's microphone (Altec 670A and 670B, say) is heard
in training. The split is fixed here, by name, once: changing it changes the corpus and every
DIR run.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).parent / "device_irs" / "micirp"
UNSEEN_MAKERS = ("Altec", "Coles", "Sony", "Telefunken", "Toshiba")
# the response that builds each evaluation-only device (one maker each)
UNSEEN_DEVICES = {"s7": "Altec_670A", "s8": "Coles_4038", "s9": "Sony_C37Fet", "s10": "Telefunken_M201",
                  "s11": "Toshiba_TypeG"}


def names() -> tuple[str, ...]:
    """Every response's name (its file name without .wav), sorted."""
    found = tuple(sorted(path.stem for path in FOLDER.glob("*.wav")))
    if not found:
        raise FileNotFoundError(f"no microphone impulse responses in {FOLDER}: the repository ships them "
                                "(asclib/device_irs/README.md)")
    return found


def unseen_pool() -> tuple[str, ...]:
    """The responses of the unseen makers (a name starts with the maker, after an optional
    "IR_"): they build s7-s11 and nothing else."""
    return tuple(name for name in names()
                 if name.removeprefix("IR_").lower().startswith(tuple(m.lower() for m in UNSEEN_MAKERS)))


def training_pool() -> tuple[str, ...]:
    """The responses DIR augmentation draws from: all but the unseen pool."""
    unseen = set(unseen_pool())
    return tuple(name for name in names() if name not in unseen)


@lru_cache(maxsize=256)
def response(name: str, sample_rate: int) -> np.ndarray:
    """The impulse response `name` at `sample_rate` (float64, polyphase resampling), scaled to
    unit energy: its colour without its gain. A read-only array, cached."""
    import soundfile as sf
    from math import gcd

    from scipy import signal

    path = FOLDER / f"{name}.wav"
    if not path.is_file():
        raise ValueError(f"unknown microphone response {name!r}: expected one of {names()}")
    audio, rate = sf.read(path, dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != sample_rate:
        g = gcd(rate, sample_rate)
        audio = signal.resample_poly(audio, sample_rate // g, rate // g)
    audio = audio / np.sqrt(np.sum(audio**2))
    audio.setflags(write=False)
    return audio


def convolve(audio: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """`audio` through `impulse`: the convolution cut to the input's length (the response's
    delay kept, as a recording through that microphone would) and scaled back to the input's rms."""
    from scipy import signal

    out = signal.fftconvolve(audio, impulse)[: len(audio)]
    level, new = np.sqrt(np.mean(audio**2)), np.sqrt(np.mean(out**2))
    return out * (level / new) if new > 0 else out
