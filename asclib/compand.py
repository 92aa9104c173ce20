"""A dynamic range compressor with SoX `compand` semantics, in Python (notebook 03).

The reference's reverberation augmentation ran `sox ... compand 0.2,0.3 6:<points> <gain> -90`.
This module reproduces that effect without SoX, following its documented behaviour:

* a level detector per sample: v moves towards |x| with the attack coefficient when |x| > v
  and with the decay coefficient otherwise, coefficient = 1 - exp(-1 / (rate * time));
* a static transfer function given by (input dB, output dB) points, joined by straight lines
  in the log-log plane, each corner rounded by a quadratic "soft knee" of `knee_db`, with a
  flat extension below the first point, a point (0 dB, 0 dB) appended, and `gain_db` added;
* the output sample is the input times the gain the transfer function gives at level v.

`tests/test_augment.py` (`test_compander_matches_sox`) compares it with the `sox` binary on the same input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

_DB = np.log(10) / 20  # natural-log units per dB


@dataclass(frozen=True)
class Compander:
    """SoX compand parameters: attack and decay (s), soft knee (dB), points, gain, initial volume."""

    points: tuple[tuple[float, float], ...]  # (input dB, output dB), input increasing, <= 0
    gain_db: float = 0.0
    attack: float = 0.2
    decay: float = 0.3
    knee_db: float = 6.0
    initial_db: float = -90.0

    def sox_arguments(self) -> list[str]:
        """The same effect as `sox` command-line arguments (used by the tests)."""
        points = ",".join(f"{x:g},{y:g}" for x, y in self.points)
        return ["compand", f"{self.attack:g},{self.decay:g}", f"{self.knee_db:g}:{points}",
                f"{self.gain_db:g}", f"{self.initial_db:g}"]


def _breakpoints(c: Compander) -> tuple[np.ndarray, ...]:
    """The piecewise-quadratic transfer function: start x, start y, a, b of each piece (log units).

    The gain in log units at log level u inside a piece starting at (x, y) is
    y + (u - x) * (a * (u - x) + b); pieces alternate straight lines and knee curves.
    """
    knee = max(c.knee_db, 0.01)
    points = [(x, y - x) for x, y in c.points]  # store gain (out - in), as SoX does
    if points[-1][0] != 0:
        points.append((0.0, 0.0))
    points.insert(0, (points[0][0] - 2 * knee, points[0][1]))  # flat tail-off below the first point
    merged = [points[0], points[1]]
    for point in points[2:]:  # drop middle points of collinear runs
        (x0, y0), (x1, y1) = merged[-2], merged[-1]
        if (y1 - y0) * (point[0] - x1) == (point[1] - y1) * (x1 - x0):
            merged[-1] = point
        else:
            merged.append(point)
    lines = [[x * _DB, (y + c.gain_db) * _DB] for x, y in merged]
    radius = knee * _DB

    pieces = []  # (x, y, a, b)
    start = lines[0]
    for k in range(1, len(lines) - 1):
        corner, after = lines[k], lines[k + 1]
        slope_in = (corner[1] - start[1]) / (corner[0] - start[0])
        theta_in = np.arctan2(corner[1] - start[1], corner[0] - start[0])
        r = min(radius, np.hypot(corner[0] - start[0], corner[1] - start[1]))
        curve_start = (corner[0] - r * np.cos(theta_in), corner[1] - r * np.sin(theta_in))
        theta_out = np.arctan2(after[1] - corner[1], after[0] - corner[0])
        r = min(radius, np.hypot(after[0] - corner[0], after[1] - corner[1]) / 2)
        curve_end = (corner[0] + r * np.cos(theta_out), corner[1] + r * np.sin(theta_out))
        centre = ((curve_start[0] + corner[0] + curve_end[0]) / 3, (curve_start[1] + corner[1] + curve_end[1]) / 3)
        in1, out1 = centre[0] - curve_start[0], centre[1] - curve_start[1]
        in2, out2 = curve_end[0] - curve_start[0], curve_end[1] - curve_start[1]
        a = (out2 / in2 - out1 / in1) / (in2 - in1)
        pieces.append((start[0], start[1], 0.0, slope_in))  # straight line up to the knee
        pieces.append((curve_start[0], curve_start[1], a, out1 / in1 - a * in1))  # the knee
        start = list(curve_end)
    last = lines[-1]
    pieces.append((start[0], start[1], 0.0, (last[1] - start[1]) / (last[0] - start[0])))
    return tuple(np.array(column) for column in zip(*pieces))


def transfer_gain(c: Compander, level: np.ndarray) -> np.ndarray:
    """Linear gain applied at detector level `level` (linear, 0..1)."""
    x, y, a, b = _breakpoints(c)
    level = np.asarray(level, dtype=np.float64)
    # the first piece is the flat tail: below the first knee the gain is the knee's start gain
    floor = level <= np.exp(x[1])
    u = np.log(np.maximum(level, 1e-300))
    piece = np.clip(np.searchsorted(x, u, side="left") - 1, 1, len(x) - 1)
    d = u - x[piece]
    gain = np.exp(y[piece] + d * (a[piece] * d + b[piece]))
    return np.where(floor, np.exp(y[1]), gain)


@njit(cache=True)
def _detector(rectified: np.ndarray, attack: float, decay: float, volume: float) -> np.ndarray:
    """The level detector (a leaky peak follower), sample by sample: compiled with numba."""
    out = np.empty_like(rectified)
    for i in range(len(rectified)):
        delta = rectified[i] - volume
        volume += delta * (attack if delta > 0 else decay)
        out[i] = volume
    return out


def compand(audio: np.ndarray, sr: int, c: Compander) -> np.ndarray:
    """Apply the compander to mono float audio in [-1, 1]; the result may exceed 1 (clip)."""
    coefficient = [1.0 - np.exp(-1.0 / (sr * t)) if t > 1.0 / sr else 1.0 for t in (c.attack, c.decay)]
    level = _detector(np.abs(np.asarray(audio, dtype=np.float64)), *coefficient, 10 ** (c.initial_db / 20))
    return audio * transfer_gain(c, level)
