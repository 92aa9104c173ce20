"""What the synthetic scenes sound like: textures, sound events and acoustic spaces (notebook 01).

Each of the ten TAU scene classes is a `SceneRecipe`: a background made of textures (babble,
traffic bed, engine rumble, wind, ventilation...), a vocabulary of synthesised events with
per-class rates and levels, and a space (a pyroomacoustics shoebox room for halls and vehicles,
a near-dry open space outdoors). Classes of one coarse class share most of their vocabulary and
differ in proportions, so fine classes are confusable while coarse classes are easier.

A `Location` draws its own variation of the recipe (room, levels, tilt, event rates): clips from
one location resemble each other more than clips from another location of the same class, which
is why train and evaluation never share a location. `render_scene` mixes one segment and
returns the waveform with its list of events (type, onset, offset in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

# --------------------------------------------------------------------------------------------
# Small signal helpers


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-20))


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / _rms(x)


def _fade(x: np.ndarray, sr: int, attack: float, release: float) -> np.ndarray:
    """Linear fade in and exponential-ish fade out, so events have no clicks."""
    n = len(x)
    envelope = np.ones(n)
    a, r = min(n, max(1, int(attack * sr))), min(n, max(1, int(release * sr)))
    envelope[:a] *= np.linspace(0, 1, a)
    envelope[n - r:] *= np.linspace(1, 0, r) ** 2
    return x * envelope


def _band(x: np.ndarray, sr: int, low: float | None, high: float | None, order: int = 2) -> np.ndarray:
    """Butterworth band-, high- or low-pass, with the edges kept below Nyquist."""
    nyquist = sr / 2
    if high is not None and high >= 0.95 * nyquist:
        high = None
    if low and high:
        sos = signal.butter(order, [low, high], btype="bandpass", fs=sr, output="sos")
    elif low:
        sos = signal.butter(order, low, btype="highpass", fs=sr, output="sos")
    elif high:
        sos = signal.butter(order, high, btype="lowpass", fs=sr, output="sos")
    else:
        return x
    return signal.sosfilt(sos, x)


def coloured_noise(rng: np.random.Generator, n: int, sr: int, slope_db_per_octave: float) -> np.ndarray:
    """Gaussian noise whose spectrum falls by `slope` dB per octave (-3 pink, -6 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    freqs[0] = freqs[1]
    spectrum *= (freqs / 1000.0) ** (slope_db_per_octave / (20 * np.log10(2)))
    return _normalise(np.fft.irfft(spectrum, n))


def _harmonic(f0: np.ndarray, sr: int, amplitudes) -> np.ndarray:
    """A harmonic tone following the instantaneous frequency track `f0` (Hz per sample)."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = np.zeros(len(f0))
    for k, amplitude in enumerate(amplitudes, start=1):
        tone += amplitude * np.sin(k * phase) * (k * f0 < 0.45 * sr)
    return tone


def _resonator(x: np.ndarray, sr: int, freq: float, bandwidth: float) -> np.ndarray:
    """A two-pole resonance at `freq` Hz (a vocal-tract formant), unit gain at its peak."""
    radius = np.exp(-np.pi * bandwidth / sr)
    theta = 2 * np.pi * freq / sr
    return signal.lfilter([1 - radius], [1, -2 * radius * np.cos(theta), radius**2], x)


def _voice(rng: np.random.Generator, seconds: float, sr: int, f0: float) -> np.ndarray:
    """Speech-like sound: a jittered sawtooth (glottal source) through moving vowel formants."""
    n = int(seconds * sr)
    f0_track = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 5) * np.arange(n) / sr))
    source = 2 * ((np.cumsum(f0_track) / sr) % 1.0) - 1
    out = np.zeros(n)
    syllable = int(rng.uniform(0.12, 0.22) * sr)
    for start in range(0, n, syllable):
        piece = source[start:start + syllable]
        formants = (rng.uniform(300, 850), rng.uniform(900, 2300), rng.uniform(2400, 3200))
        shaped = sum(_resonator(piece, sr, f, 80 + 0.05 * f) / (i + 1) for i, f in enumerate(formants))
        out[start:start + len(piece)] = shaped * np.hanning(len(piece)) ** 0.5
    out *= (rng.uniform(size=n // syllable + 1) > 0.2).repeat(syllable)[:n]  # pauses
    return _normalise(out + 0.05 * _band(rng.standard_normal(n), sr, 2000, 6000))


# --------------------------------------------------------------------------------------------
# Sound events: each returns (samples, rms 1) for one occurrence


def _bird(rng, sr):
    chirps = []
    base = rng.uniform(2200, 5200)
    for _ in range(rng.integers(3, 9)):
        n = int(rng.uniform(0.04, 0.12) * sr)
        sweep = base * np.linspace(1, rng.uniform(0.7, 1.4), n)
        chirps += [np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.hanning(n),
                   np.zeros(int(rng.uniform(0.03, 0.1) * sr))]
    return np.concatenate(chirps)


def _car_passby(rng, sr):
    n = int(rng.uniform(2.0, 3.5) * sr)
    t = np.linspace(-1, 1, n)
    noise = coloured_noise(rng, n, sr, -4.5)
    closeness = np.exp(-(t / rng.uniform(0.25, 0.45)) ** 2)
    bright = _band(noise, sr, 400, 4000)
    engine = _harmonic(np.full(n, rng.uniform(28, 45)) * (1 + 0.1 * t), sr, [1, 0.6, 0.4, 0.3, 0.2])
    return (noise + 1.5 * bright * closeness + 0.5 * engine) * (0.15 + closeness)


def _horn(rng, sr):
    n = int(rng.uniform(0.25, 0.8) * sr)
    f0 = rng.uniform(330, 480)
    tone = _harmonic(np.full(n, f0), sr, [1, 0.8, 0.6, 0.5, 0.35, 0.25, 0.2])
    if rng.uniform() < 0.5:
        tone += _harmonic(np.full(n, f0 * 1.26), sr, [1, 0.6, 0.4, 0.3])
    return _fade(tone, sr, 0.01, 0.05)


def _engine(rng, sr):
    n = int(rng.uniform(1.5, 3.0) * sr)
    f0 = np.linspace(rng.uniform(25, 35), rng.uniform(55, 90), n)
    tone = _harmonic(f0, sr, [1, 0.7, 0.5, 0.45, 0.3, 0.25, 0.2, 0.15])
    return _fade(tone + 0.4 * _band(coloured_noise(rng, n, sr, -6), sr, None, 800), sr, 0.3, 0.4)


def _brake_squeal(rng, sr):
    n = int(rng.uniform(0.4, 1.4) * sr)
    f0 = rng.uniform(1800, 4200) * (1 + 0.01 * np.sin(2 * np.pi * rng.uniform(5, 9) * np.arange(n) / sr))
    return _fade(_harmonic(f0, sr, [1, 0.3]), sr, 0.05, 0.15)


def _footsteps(rng, sr):
    n = int(rng.uniform(1.5, 3.5) * sr)
    out = np.zeros(n)
    period, heel = rng.uniform(0.45, 0.6), rng.uniform(1500, 4000)
    for start in np.arange(rng.uniform(0, period), n / sr - 0.05, period):
        step = _band(rng.standard_normal(int(0.04 * sr)), sr, 300, heel) * np.exp(-np.arange(int(0.04 * sr)) / (0.006 * sr))
        i = int(start * sr)
        out[i:i + len(step)] += step
    return out


def _speech(rng, sr):
    return _voice(rng, rng.uniform(0.6, 2.4), sr, rng.uniform(95, 230))


def _child(rng, sr):
    return _voice(rng, rng.uniform(0.3, 1.0), sr, rng.uniform(260, 420)) * 1.5


def _chime(rng, sr):
    notes = rng.choice([523.3, 659.3, 784.0, 440.0, 587.3], size=rng.integers(2, 4), replace=False)
    pieces = []
    for f in notes:
        n = int(0.6 * sr)
        t = np.arange(n) / sr
        pieces.append((np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2 * f * t)) * np.exp(-t / 0.25))
    return np.concatenate(pieces)


def _announcement(rng, sr):
    voice = _band(_voice(rng, rng.uniform(1.2, 2.5), sr, rng.uniform(100, 200)), sr, 300, 3400, order=4)
    return np.concatenate([_normalise(_chime(rng, sr)), np.zeros(int(0.2 * sr)), _normalise(voice)])


def _rail_clatter(rng, sr):
    n = int(rng.uniform(1.5, 3.5) * sr)
    out = np.zeros(n)
    period, ring = rng.uniform(0.5, 1.1), rng.uniform(700, 1600)
    for start in np.arange(rng.uniform(0, period), n / sr - 0.2, period):
        for offset in (0.0, rng.uniform(0.08, 0.14)):
            m = int(0.08 * sr)
            t = np.arange(m) / sr
            hit = (_band(rng.standard_normal(m), sr, 60, 1200) + 0.5 * np.sin(2 * np.pi * ring * t)) * np.exp(-t / 0.02)
            i = int((start + offset) * sr)
            out[i:i + m] += hit[:n - i]
    return out


def _door_beeps(rng, sr):
    f, pieces = rng.uniform(1000, 2600), []
    for _ in range(rng.integers(3, 7)):
        n = int(0.1 * sr)
        pieces += [_fade(np.sin(2 * np.pi * f * np.arange(n) / sr), sr, 0.005, 0.01), np.zeros(int(0.12 * sr))]
    return np.concatenate(pieces)


def _music(rng, sr):
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    pieces = []
    for _ in range(rng.integers(6, 14)):
        n = int(rng.choice([0.2, 0.3, 0.4]) * sr)
        t = np.arange(n) / sr
        f = rng.choice(scale)
        note = _harmonic(np.full(n, f), sr, [1, 0.5, 0.3, 0.2]) * np.exp(-t / 0.3)
        note += 0.6 * np.sin(2 * np.pi * f / 4 * t)  # bass line
        pieces.append(note)
    return np.concatenate(pieces)


def _wheels(rng, sr):
    n = int(rng.uniform(1.5, 3.5) * sr)
    rumble = _band(rng.standard_normal(n), sr, 80, 2500)
    bumps = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * rng.uniform(6, 14) * np.arange(n) / sr))
    return _fade(rumble * (0.4 + bumps), sr, 0.2, 0.3)


def _bell(rng, sr):
    f0 = rng.uniform(1800, 3200)
    n = int(0.8 * sr)
    t = np.arange(n) / sr
    strike = sum(a * np.sin(2 * np.pi * f0 * r * t) for a, r in ((1, 1), (0.5, 2.76), (0.25, 5.4)) if f0 * r < 0.45 * sr)
    return np.tile(strike * np.exp(-t / 0.15), rng.integers(1, 3))


def _tram_bell(rng, sr):
    f0 = rng.uniform(700, 1100)
    n = int(0.7 * sr)
    t = np.arange(n) / sr
    strike = sum(a * np.sin(2 * np.pi * f0 * r * t) for a, r in ((1, 1), (0.6, 2.0), (0.3, 3.01)))
    return np.tile(strike * np.exp(-t / 0.25), rng.integers(1, 4))


def _dog(rng, sr):
    pieces = []
    for _ in range(rng.integers(1, 4)):
        n = int(rng.uniform(0.12, 0.2) * sr)
        f0 = np.linspace(rng.uniform(450, 700), rng.uniform(300, 450), n)
        bark = _harmonic(f0, sr, [1, 0.8, 0.6, 0.4, 0.3]) + 0.6 * _band(rng.standard_normal(n), sr, 500, 3000)
        pieces += [_fade(bark, sr, 0.01, 0.06), np.zeros(int(rng.uniform(0.15, 0.4) * sr))]
    return np.concatenate(pieces)


def _motor_whine(rng, sr):
    n = int(rng.uniform(2.0, 3.5) * sr)
    f0 = np.linspace(rng.uniform(250, 400), rng.uniform(900, 1600), n)
    if rng.uniform() < 0.5:
        f0 = f0[::-1]
    return _fade(_harmonic(f0, sr, [1, 0.5, 0.25]), sr, 0.4, 0.4)


def _train_arrival(rng, sr):
    n = int(rng.uniform(3.0, 4.5) * sr)
    swell = np.sin(np.linspace(0, np.pi, n)) ** 2
    rumble = _band(coloured_noise(rng, n, sr, -6), sr, 30, 1500)
    return rumble * swell + 0.3 * _pad(_rail_clatter(rng, sr), n, rng) + 0.2 * _pad(_brake_squeal(rng, sr), n, rng)


def _pad(x: np.ndarray, n: int, rng) -> np.ndarray:
    """Place `x` at a random position inside n samples (cut if longer)."""
    out = np.zeros(n)
    x = x[:n]
    start = rng.integers(0, n - len(x) + 1)
    out[start:start + len(x)] = _normalise(x)
    return out


def _hiss(rng, sr):
    n = int(rng.uniform(0.4, 1.0) * sr)
    return _fade(_band(rng.standard_normal(n), sr, 2500, 7500), sr, 0.02, 0.3)


EVENTS = {
    "bird": _bird, "car_passby": _car_passby, "horn": _horn, "engine": _engine,
    "brake_squeal": _brake_squeal, "footsteps": _footsteps, "speech": _speech, "child": _child,
    "chime": _chime, "announcement": _announcement, "rail_clatter": _rail_clatter,
    "door_beeps": _door_beeps, "music": _music, "wheels": _wheels, "bike_bell": _bell,
    "tram_bell": _tram_bell, "dog": _dog, "motor_whine": _motor_whine,
    "train_arrival": _train_arrival, "hiss": _hiss,
}

# --------------------------------------------------------------------------------------------
# Background textures: each returns n samples at rms 1


def _babble(rng, n, sr):
    voices = sum(_pad(_voice(rng, rng.uniform(1.0, n / sr), sr, rng.uniform(90, 240)), n, rng)
                 for _ in range(8))
    return voices + 0.3 * coloured_noise(rng, n, sr, -3)


def _traffic_bed(rng, n, sr):
    swell = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * np.arange(n) / sr + rng.uniform(0, 6))
    return _band(coloured_noise(rng, n, sr, -5), sr, 20, 2500) * swell


def _rumble(rng, n, sr):
    f0 = rng.uniform(30, 55) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * np.arange(n) / sr))
    tone = _harmonic(f0, sr, [1, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1])
    return _normalise(tone) + _band(coloured_noise(rng, n, sr, -6), sr, 20, 900)


def _ventilation(rng, n, sr):
    hum = _harmonic(np.full(n, rng.uniform(48, 62)), sr, [0.5, 1, 0.3, 0.2])
    return _band(coloured_noise(rng, n, sr, -2), sr, 60, 3000) + 0.3 * _normalise(hum)


def _wind(rng, n, sr):
    gusts = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * np.arange(n) / sr + rng.uniform(0, 6))
    return _band(coloured_noise(rng, n, sr, -4), sr, 20, 1200) * gusts


def _leaves(rng, n, sr):
    return _band(rng.standard_normal(n), sr, 1500, 7000) * (0.5 + rng.uniform(size=n // 800 + 1).repeat(800)[:n])


def _fountain(rng, n, sr):
    return _band(coloured_noise(rng, n, sr, -1), sr, 500, 6000)


def _rail_rumble(rng, n, sr):
    return _band(coloured_noise(rng, n, sr, -4), sr, 25, 3000) + 0.4 * _normalise(_rumble(rng, n, sr))


TEXTURES = {
    "babble": _babble, "traffic_bed": _traffic_bed, "rumble": _rumble, "ventilation": _ventilation,
    "wind": _wind, "leaves": _leaves, "fountain": _fountain, "rail_rumble": _rail_rumble,
}

# --------------------------------------------------------------------------------------------
# Scene recipes


@dataclass(frozen=True)
class SceneRecipe:
    """How one scene class sounds: textures (dB), events (per 10 s, dB re background), space."""

    textures: dict[str, float]
    events: dict[str, tuple[float, float]]
    rt60: tuple[float, float]  # seconds, range over locations
    room: tuple[tuple[float, float, float], tuple[float, float, float]] | None  # min/max size (m); None: open air
    distance: tuple[float, float] = (2.0, 8.0)  # source-microphone distance range (m)


_HALL = ((25.0, 18.0, 6.0), (60.0, 40.0, 14.0))
_CABIN = ((8.0, 2.4, 2.1), (14.0, 2.7, 2.5))
_OPEN = None

RECIPES = {
    "airport": SceneRecipe(
        {"babble": 0, "ventilation": -4},
        {"wheels": (3.0, (-4, 4)), "announcement": (0.6, (-2, 5)), "footsteps": (1.5, (-8, 0)),
         "speech": (1.5, (-6, 2)), "chime": (0.3, (-4, 2)), "music": (0.2, (-14, -6))},
        (1.2, 2.2), _HALL),
    "metro_station": SceneRecipe(
        {"babble": -3, "rail_rumble": -2, "ventilation": -6},
        {"train_arrival": (0.8, (0, 8)), "announcement": (0.7, (-2, 5)), "footsteps": (2.0, (-6, 2)),
         "brake_squeal": (0.6, (-6, 2)), "speech": (1.0, (-6, 2)), "wheels": (0.6, (-8, 0))},
        (1.5, 2.5), _HALL),
    "shopping_mall": SceneRecipe(
        {"babble": 0, "ventilation": -5},
        {"music": (1.5, (-8, 2)), "footsteps": (2.0, (-6, 2)), "child": (0.8, (-4, 4)),
         "speech": (2.0, (-6, 2)), "wheels": (1.0, (-8, 0)), "chime": (0.3, (-6, 0))},
        (0.9, 1.6), _HALL),
    "park": SceneRecipe(
        {"wind": 0, "leaves": -6, "traffic_bed": -10},
        {"bird": (4.0, (-6, 6)), "dog": (0.5, (-4, 4)), "child": (0.8, (-8, 2)),
         "footsteps": (0.8, (-10, -2)), "speech": (0.6, (-10, -2)), "car_passby": (0.3, (-18, -8))},
        (0.15, 0.4), _OPEN, (4.0, 20.0)),
    "public_square": SceneRecipe(
        {"babble": -2, "traffic_bed": -4, "fountain": -8},
        {"speech": (1.5, (-6, 2)), "footsteps": (1.5, (-8, 0)), "bird": (1.0, (-10, 0)),
         "child": (0.6, (-6, 2)), "car_passby": (0.5, (-12, -4)), "bike_bell": (0.3, (-8, 0)),
         "music": (0.3, (-14, -6))},
        (0.3, 0.7), _OPEN, (3.0, 15.0)),
    "street_pedestrian": SceneRecipe(
        {"babble": 0, "traffic_bed": -3},
        {"footsteps": (3.0, (-4, 4)), "speech": (2.0, (-4, 4)), "bike_bell": (0.4, (-6, 2)),
         "car_passby": (0.8, (-10, -2)), "child": (0.4, (-6, 2)), "music": (0.3, (-12, -4)),
         "bird": (0.4, (-12, -4))},
        (0.3, 0.7), _OPEN, (2.0, 10.0)),
    "street_traffic": SceneRecipe(
        {"traffic_bed": 0, "babble": -12},
        {"car_passby": (3.0, (0, 8)), "engine": (1.2, (-4, 4)), "horn": (0.5, (-4, 6)),
         "brake_squeal": (0.3, (-8, 0)), "footsteps": (0.4, (-12, -4)), "hiss": (0.3, (-8, 0))},
        (0.2, 0.5), _OPEN, (3.0, 15.0)),
    "bus": SceneRecipe(
        {"rumble": 0, "babble": -10},
        {"engine": (1.5, (-2, 6)), "door_beeps": (0.5, (-6, 2)), "hiss": (0.6, (-4, 4)),
         "speech": (1.0, (-6, 2)), "brake_squeal": (0.3, (-8, 0)), "announcement": (0.2, (-6, 0))},
        (0.2, 0.45), _CABIN, (1.0, 5.0)),
    "metro": SceneRecipe(
        {"rail_rumble": 0, "babble": -12},
        {"rail_clatter": (2.0, (-2, 6)), "brake_squeal": (0.8, (-4, 4)), "motor_whine": (0.8, (-6, 2)),
         "announcement": (0.5, (-4, 2)), "door_beeps": (0.4, (-6, 2)), "speech": (0.6, (-8, 0))},
        (0.3, 0.6), _CABIN, (1.0, 6.0)),
    "tram": SceneRecipe(
        {"rail_rumble": -2, "rumble": -6, "babble": -10},
        {"rail_clatter": (1.0, (-6, 2)), "motor_whine": (1.2, (-4, 4)), "tram_bell": (0.5, (-4, 4)),
         "brake_squeal": (0.5, (-6, 2)), "door_beeps": (0.4, (-6, 2)), "speech": (0.8, (-6, 2)),
         "announcement": (0.3, (-6, 0))},
        (0.25, 0.55), _CABIN, (1.0, 6.0)),
}


# --------------------------------------------------------------------------------------------
# Locations and segments


@dataclass
class Location:
    """One recording place: its room impulse responses and its variation of the class recipe."""

    scene: str
    rirs: list[np.ndarray]
    texture_db: dict[str, float]
    event_rate_scale: dict[str, float]
    tilt_db_per_octave: float
    level_dbfs: float
    rt60: float


def shoebox_rirs(dims, rt60: float, distance: tuple[float, float], sr: int, rng: np.random.Generator,
                 sources: int = 3) -> list[np.ndarray]:
    """Impulse responses of a shoebox room (pyroomacoustics image sources): one microphone,
    `sources` sources at `distance` metres around it; wall absorption set by Sabine's formula
    so that the room rings for `rt60` seconds. Also used for the reverberation augmentation."""
    import pyroomacoustics as pra

    dims = np.asarray(dims, dtype=float)
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption), max_order=min(max_order, 14))
    mic = dims * rng.uniform(0.35, 0.65, 3)
    mic[2] = min(1.6, dims[2] - 0.3)
    for _ in range(sources):
        direction = rng.normal(size=3)
        direction[2] = 0
        position = mic + direction / np.linalg.norm(direction) * rng.uniform(*distance)
        room.add_source(np.clip(position, 0.3, dims - 0.3))
    room.add_microphone(mic)
    room.compute_rir()
    return [np.asarray(room.rir[0][k], dtype=np.float64) for k in range(sources)]


def _open_air_rir(recipe: SceneRecipe, rt60: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Near-dry outdoor response: direct sound, a ground reflection, a few facade echoes and a
    weak diffuse tail decaying by 60 dB in `rt60` seconds."""
    distance = rng.uniform(*recipe.distance)
    n = int((rt60 + 0.1) * sr)
    rir = np.zeros(n)
    rir[0] = 1.0
    ground = int(sr * (np.hypot(distance, 3.2) - distance) / 343)
    rir[max(ground, 1)] += rng.uniform(0.4, 0.7)
    for _ in range(rng.integers(2, 5)):
        rir[int(rng.uniform(0.01, 0.09) * sr)] += rng.uniform(0.1, 0.35)
    t = np.arange(n) / sr
    rir += rng.uniform(0.01, 0.03) * rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * (t > 0.005)
    return rir


def make_location(scene: str, sr: int, rng: np.random.Generator) -> Location:
    """Draw a location of `scene`: a space (rt60 and size in the recipe's range) and offsets."""
    recipe = RECIPES[scene]
    rt60 = rng.uniform(*recipe.rt60)
    if recipe.room is None:
        rirs = [_open_air_rir(recipe, rt60, sr, rng) for _ in range(3)]
    else:
        rirs = shoebox_rirs(rng.uniform(recipe.room[0], recipe.room[1]), rt60, recipe.distance, sr, rng)
    return Location(
        scene=scene,
        rirs=[rir / np.abs(rir).max() for rir in rirs],
        texture_db={name: level + rng.uniform(-3, 3) for name, level in recipe.textures.items()},
        event_rate_scale={name: rng.uniform(0.5, 1.5) for name in recipe.events},
        tilt_db_per_octave=rng.uniform(-1.5, 1.5),
        level_dbfs=rng.uniform(-30, -18),
        rt60=rt60,
    )


def _tilt(x: np.ndarray, sr: int, db_per_octave: float) -> np.ndarray:
    spectrum = np.fft.rfft(x)
    freqs = np.maximum(np.fft.rfftfreq(len(x), 1 / sr), 20.0)
    spectrum *= (freqs / 1000.0) ** (db_per_octave / (20 * np.log10(2)))
    return np.fft.irfft(spectrum, len(x))


@dataclass
class Scene:
    """One rendered segment: the waveform, its events, and the part of the waveform they make."""

    audio: np.ndarray
    events: list[dict]
    foreground: np.ndarray  # the events alone, with the same filtering and gain as `audio`


def render_scene(location: Location, seconds: float, sr: int, rng: np.random.Generator) -> Scene:
    """Mix one segment at `location` (float64 waveform; events with onset/offset in seconds).

    Events are drawn as Poisson arrivals at the recipe's rate (scaled by the location), placed
    uniformly (possibly cut by the clip edges), convolved with one of the location's room
    impulse responses and added to the reverberant background. An event's offset is the end of
    its dry sound; its reverberant tail rings on after it.
    """
    recipe = RECIPES[location.scene]
    n = int(round(seconds * sr))
    background = np.zeros(n)
    for name, level in location.texture_db.items():
        background += 10 ** (level / 20) * _normalise(TEXTURES[name](rng, n, sr))
    background = signal.fftconvolve(background, location.rirs[0], mode="full")[:n] * 0.3 + 0.7 * background
    background = _normalise(background)

    events, foreground = [], np.zeros(n)
    for name, (rate, (low_db, high_db)) in recipe.events.items():
        count = rng.poisson(rate * location.event_rate_scale[name] * seconds / 10)
        for _ in range(count):
            sound = _normalise(EVENTS[name](rng, sr))
            start = int(rng.uniform(-0.3 * len(sound), n - 0.3 * len(sound)))
            rir = location.rirs[rng.integers(len(location.rirs))]
            wet = signal.fftconvolve(sound, rir, mode="full")[:len(sound) + len(rir)]
            gain = 10 ** (rng.uniform(low_db, high_db) / 20) / _rms(wet[:len(sound)])
            lo, hi = max(start, 0), min(start + len(wet), n)
            if hi <= lo:
                continue
            foreground[lo:hi] += gain * wet[lo - start:hi - start]
            onset, offset = max(start, 0) / sr, min(start + len(sound), n) / sr
            if offset > onset:
                events.append({"event_label": name, "onset": round(onset, 3), "offset": round(offset, 3)})
    background = _tilt(background, sr, location.tilt_db_per_octave)
    foreground = _tilt(foreground, sr, location.tilt_db_per_octave)
    gain = 10 ** (location.level_dbfs / 20) / _rms(background + foreground)
    events.sort(key=lambda e: (e["onset"], e["event_label"]))
    return Scene(audio=gain * (background + foreground), events=events, foreground=gain * foreground)
