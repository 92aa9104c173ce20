"""Measured microphone impulse responses (MicIRP, asclib/device_irs/README.md) and their split
into a training pool and an unseen pool (notebooks 01, 03, 12).

Five responses, each of a different maker, build the evaluation-only devices s7-s11
(`asclib.devices`): they are the *unseen pool*. The *training pool*, every other response, is
what device impulse response (DIR) augmentation draws from (`asclib.augment`).

The split is made by measurement, not by maker name: `distance` compares the colours of two
responses (the RMS difference of their level-removed magnitude responses in dB, over log
frequency from 100 Hz to 7.5 kHz), and `select_unseen` picks, five times over, the response
farthest from all that are left, of a maker not picked yet. Every unseen response is then
farther from every training-pool response than the median distance between two training-pool
responses (`unseen_distances`, notebook 12; tested), so DIR augmentation never hears a near
twin of an unseen device's microphone, whatever its maker. A split by maker name did not ensure
this: the Coles 4038 that built s8 before lies closer to responses of other makers (RCA PB90,
Melodium Model 12) than most responses lie to their nearest neighbour.

The result is fixed here, by name (`UNSEEN_DEVICES`): the corpus and every DIR run depend on
it, and it must not move with floating-point noise or library versions; a test checks that
`select_unseen` still returns exactly these names.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

FOLDER = Path(__file__).parent / "device_irs" / "micirp"
# the response that builds each evaluation-only device, in the order `select_unseen` picks them
UNSEEN_DEVICES = {"s7": "IR_AKG_FaultyD12", "s8": "Reslo_VMC2", "s9": "IR_Shure510C", "s10": "GEC_bigdynamic",
                  "s11": "IR_FosterDynamicDF1"}
# the band `distance` compares (Hz): up to 7.5 kHz, clear of the resampling filter's roll-off
# below 8 kHz in 16 kHz audio
BAND_HZ = (100.0, 7_500.0)
# a response's maker: the start of its name (after an optional "IR_"); a maker's successor counts
# as the same maker (Coles took over STC's ribbon microphones, the 4038 among them; Beomic is B&O's)
MAKERS = {"AKG": "AKG", "Altec": "Altec", "American": "American", "Amperite": "Amperite", "Astatic": "Astatic",
          "B&O": "B&O", "BBCmarconi": "BBC-Marconi", "Beomic": "B&O", "Beyer": "Beyer", "Coles": "STC",
          "Doremi": "Doremi", "EMI": "EMI", "EV": "Electro-Voice", "FilmIndustries": "Film Industries",
          "Foster": "Foster", "GEC": "GEC", "Gaumont": "Gaumont-Kalee", "Grampian": "Grampian", "Lomo": "Lomo",
          "Meazzi": "Meazzi", "Melodium": "Melodium", "Oktava": "Oktava", "RCA": "RCA", "Reslo": "Reslo",
          "STC": "STC", "Shure": "Shure", "Sony": "Sony", "Telefunken": "Telefunken", "Toshiba": "Toshiba"}


def names() -> tuple[str, ...]:
    """Every response's name (its file name without .wav), sorted."""
    found = tuple(sorted(path.stem for path in FOLDER.glob("*.wav")))
    if not found:
        raise FileNotFoundError(f"no microphone impulse responses in {FOLDER}: the repository ships them "
                                "(asclib/device_irs/README.md)")
    return found


def unseen_pool() -> tuple[str, ...]:
    """The responses that build s7-s11 (`UNSEEN_DEVICES`) and nothing else, sorted."""
    return tuple(sorted(UNSEEN_DEVICES.values()))


def training_pool() -> tuple[str, ...]:
    """The responses DIR augmentation draws from: all but the unseen pool."""
    unseen = set(unseen_pool())
    return tuple(name for name in names() if name not in unseen)


def maker(name: str) -> str:
    """The maker of response `name`, read from its name (`MAKERS`): `select_unseen` takes one
    response per maker."""
    stem = name.removeprefix("IR_")
    found = [prefix for prefix in MAKERS if stem.startswith(prefix)]
    if not found:
        raise ValueError(f"no maker known for microphone response {name!r}: add its prefix to MAKERS")
    return MAKERS[max(found, key=len)]


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


@lru_cache(maxsize=8)
def _grid(sample_rate: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The FFT length (the power of two that holds the longest response: no response is cut), the
    FFT bins inside `BAND_HZ` and their weights (1/f, summing to 1: each octave weighs the same)."""
    n_fft = 1 << int(np.ceil(np.log2(max(len(response(name, sample_rate)) for name in names()))))
    hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    bins = np.flatnonzero((hz >= BAND_HZ[0]) & (hz <= BAND_HZ[1]))
    weights = 1.0 / hz[bins]
    return n_fft, bins, weights / weights.sum()


def _level_removed_db(impulse: np.ndarray, sample_rate: int) -> np.ndarray:
    """The magnitude response of `impulse` in dB on `_grid`'s bins, less its mean over the band."""
    n_fft, bins, weights = _grid(sample_rate)
    if len(impulse) > n_fft:
        raise ValueError(f"an impulse response of {len(impulse)} samples is longer than the {n_fft}-point FFT")
    db = 20 * np.log10(np.maximum(np.abs(np.fft.rfft(impulse, n_fft)[bins]), 1e-12))
    return db - weights @ db


@lru_cache(maxsize=512)
def _named_db(name: str, sample_rate: int) -> np.ndarray:
    db = _level_removed_db(response(name, sample_rate), sample_rate)
    db.setflags(write=False)
    return db


def distance(a: str | np.ndarray, b: str | np.ndarray, sample_rate: int = 16_000) -> float:
    """How differently two microphones colour a sound, in dB: the RMS over log frequency of the
    difference of their level-removed magnitude responses.

    `a` and `b` are response names or impulse responses at `sample_rate`. Each response's
    magnitude is taken in dB from one zero-padded FFT (8192 points at 16 kHz: longer than every
    response, no smoothing), on the bins from 100 Hz to 7.5 kHz (`BAND_HZ`); its mean over the
    band is removed (a gain is not a colour), and the RMS of the difference weighs each bin by
    1/f, so each octave counts the same, as it does to the ear and to log-mel features (an
    even weight would give 3.75-7.5 kHz half the say). 0 for a response with itself or with
    itself at another level; symmetric. `select_unseen` splits the pools with it; notebook 12
    shows it (`unseen_distances`).
    """
    _, _, weights = _grid(sample_rate)
    spectra = [_named_db(x, sample_rate) if isinstance(x, str) else _level_removed_db(np.asarray(x, float), sample_rate)
               for x in (a, b)]
    return float(np.sqrt(weights @ (spectra[0] - spectra[1]) ** 2))


@lru_cache(maxsize=16)
def _distance_matrix(chosen: tuple[str, ...], sample_rate: int) -> np.ndarray:
    _, _, weights = _grid(sample_rate)
    spectra = np.stack([_named_db(name, sample_rate) for name in chosen])
    matrix = np.stack([np.sqrt((spectra - row) ** 2 @ weights) for row in spectra])  # as `distance`, row by row
    matrix = np.triu(matrix) + np.triu(matrix, k=1).T  # symmetric to the last bit, whatever the summation order
    matrix.setflags(write=False)
    return matrix


def distances(chosen: tuple[str, ...] | list[str] | None = None, sample_rate: int = 16_000) -> pd.DataFrame:
    """`distance` between every two of the responses `chosen` (all by default): a symmetric
    DataFrame, named rows and columns, zero on the diagonal. Cached: well under a second for all
    of them (notebook 12, `select_unseen`)."""
    import pandas as pd

    chosen = names() if chosen is None else tuple(chosen)
    return pd.DataFrame(_distance_matrix(chosen, sample_rate), index=list(chosen), columns=list(chosen))


def select_unseen(count: int = 5, sample_rate: int = 16_000) -> tuple[str, ...]:
    """The procedure that chose `UNSEEN_DEVICES`, rerun: `count` times, of the responses not yet
    picked whose maker has none picked, pick the one whose nearest other unpicked response is
    farthest (`distance`); a tie goes to the name first in order. Returns the picks in order (s7,
    s8, ...). The responses left are the training pool, so each pick is measured against the
    pool it must stay away from."""
    table = distances(names(), sample_rate)
    picked: list[str] = []
    for _ in range(count):
        left = [name for name in table.index if name not in picked]
        taken = {maker(name) for name in picked}
        candidates = [name for name in left if maker(name) not in taken]
        if not candidates:
            raise ValueError(f"fewer than {count} makers among the microphone responses")
        among = table.loc[left, left].to_numpy(copy=True)
        np.fill_diagonal(among, np.inf)
        nearest = dict(zip(left, among.min(axis=1)))
        picked.append(max(candidates, key=nearest.__getitem__))  # the first of equals: names are sorted
    return tuple(picked)


def pool_spread(sample_rate: int = 16_000) -> tuple[float, float]:
    """The minimum and median `distance` between two different training-pool responses."""
    table = distances(training_pool(), sample_rate).to_numpy()
    pairs = table[np.triu_indices(len(table), k=1)]
    return float(pairs.min()), float(np.median(pairs))


def unseen_distances(sample_rate: int = 16_000) -> pd.DataFrame:
    """How far each unseen microphone lies from the training pool (notebook 12): one row per
    device s7-s11, with its microphone, maker, nearest training-pool microphone and that
    `distance` (dB), and, for reference, the minimum and median distance between two
    training-pool microphones. The split's criterion: every nearest distance exceeds the median."""
    import pandas as pd

    pool = training_pool()
    table = distances(names(), sample_rate).loc[list(unseen_pool()), list(pool)]
    low, median = pool_spread(sample_rate)
    rows = {device: {"microphone": name, "maker": maker(name), "nearest training microphone": table.loc[name].idxmin(),
                     "distance (dB)": table.loc[name].min(), "training pool: min (dB)": low,
                     "training pool: median (dB)": median}
            for device, name in UNSEEN_DEVICES.items()}
    result = pd.DataFrame.from_dict(rows, orient="index")
    result.index.name = "device"
    result["farther than the median"] = result["distance (dB)"] > result["training pool: median (dB)"]
    return result
