"""Mix the dry stems like a producer while keeping ``mixture == sum(stems)`` exact.

Per stem: EQ (high-pass, shelves, a bell), compression, stereo width, level automation over the
sections and a send to a shared room (convolution with a generated impulse response). On the bus a
look-ahead peak limiter computes one gain curve from the sum of the stems and applies that same
curve to every stem, so the limited stems still add up to the limited mixture.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve, sosfilt

CONTROL = 64  # samples per step of the compressor and limiter gain computers


def biquad(kind: str, freq: float, sr: int, gain_db: float = 0.0, q: float = 0.707) -> np.ndarray:
    """Second-order section ``(1, 6)`` of an RBJ-cookbook filter: highpass, lowshelf, highshelf or peak."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * freq / sr
    cos, alpha = np.cos(w), np.sin(w) / (2 * q)
    if kind == "highpass":
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        den = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "peak":
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    else:
        sign = 1 if kind == "lowshelf" else -1
        root = 2 * np.sqrt(a) * alpha
        b = [
            a * ((a + 1) - sign * (a - 1) * cos + root),
            sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
            a * ((a + 1) - sign * (a - 1) * cos - root),
        ]
        den = [
            (a + 1) + sign * (a - 1) * cos + root,
            -sign * 2 * ((a - 1) + sign * (a + 1) * cos),
            (a + 1) + sign * (a - 1) * cos - root,
        ]
    return np.array([[*b, *den]]) / den[0]


def equalise(audio: np.ndarray, sr: int, rng: np.random.Generator, highpass: float) -> np.ndarray:
    """A random but musical EQ of ``(time, channels)`` audio: high-pass, two shelves and a bell."""
    sos = np.concatenate(
        [
            biquad("highpass", highpass, sr),
            biquad("lowshelf", rng.uniform(100, 300), sr, rng.uniform(-4, 4)),
            biquad("peak", np.exp(rng.uniform(np.log(300), np.log(5000))), sr, rng.uniform(-5, 5), rng.uniform(0.7, 2)),
            biquad("highshelf", rng.uniform(3000, 9000), sr, rng.uniform(-5, 4)),
        ]
    )
    return sosfilt(sos, audio, axis=0)


def _smooth_gain(target_db: np.ndarray, attack: float, release: float) -> np.ndarray:
    """Follow a gain curve (dB, control rate): falling with ``attack``, rising with ``release`` coefficients."""
    out = np.empty_like(target_db)
    g = 0.0
    for i, t in enumerate(target_db):
        g += (t - g) * (attack if t < g else release)
        out[i] = g
    return out


def _to_samples(control: np.ndarray, n: int) -> np.ndarray:
    return np.interp(np.arange(n), np.arange(len(control)) * CONTROL + CONTROL / 2, control)


def _levels_db(audio: np.ndarray) -> np.ndarray:
    """RMS level (dB) of each control block of ``(time, channels)`` audio."""
    n = len(audio)
    padded = np.pad(audio, ((0, -n % CONTROL), (0, 0)))
    power = (padded**2).reshape(-1, CONTROL, audio.shape[1]).mean(axis=(1, 2))
    return 10 * np.log10(power + 1e-12)


def compress(audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Feed-forward RMS compressor, threshold relative to the stem's loud passages, with make-up gain."""
    level = _levels_db(audio)
    loud = level[level > level.max() - 40]
    threshold = np.percentile(loud, rng.uniform(40, 75)) if len(loud) else 0.0
    ratio = rng.uniform(2, 6)
    over = np.maximum(level - threshold, 0)
    step = CONTROL / sr
    attack, release = 1 - np.exp(-step / rng.uniform(0.003, 0.03)), 1 - np.exp(-step / rng.uniform(0.05, 0.3))
    gain_db = _smooth_gain(-over * (1 - 1 / ratio), attack, release)
    gain_db += -np.percentile(gain_db, 50) * rng.uniform(0.3, 0.8)
    return audio * _to_samples(10 ** (gain_db / 20), len(audio))[:, None]


def room(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A stereo impulse response ``(time, 2)``: pre-delay, early reflections, a decaying tail darker with time."""
    rt60 = rng.uniform(0.3, 2.2)
    n = int(min(rt60, 2.5) * sr)
    t = np.arange(n) / sr
    ir = np.zeros((n, 2))
    for ch in range(2):
        tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60)
        dark = fftconvolve(tail, np.exp(-np.arange(64) / rng.uniform(2, 12)))[:n]
        fade = np.clip(np.arange(n)[::-1] / (0.1 * sr), 0, 1)  # reaches exactly zero: the room ends
        ir[:, ch] = (tail * 0.5 + dark * 0.1) * fade
        for _ in range(8):
            ir[int(rng.uniform(0.002, 0.04) * sr), ch] += rng.uniform(-0.8, 0.8)
    predelay = int(rng.uniform(0.005, 0.04) * sr)
    ir = np.concatenate([np.zeros((predelay, 2)), ir])[:n]
    return ir / np.sqrt((ir**2).sum(axis=0).mean())


def add_room(audio: np.ndarray, ir: np.ndarray, send: float) -> np.ndarray:
    """Dry signal plus ``send`` of the room: each channel feeds its own side of the response."""
    wet = np.stack([fftconvolve(audio[:, ch], ir[:, ch])[: len(audio)] for ch in range(audio.shape[1])], axis=1)
    return audio + send * wet


def widen(audio: np.ndarray, width: float) -> np.ndarray:
    """Mid/side width: 0 mono, 1 unchanged, >1 wider."""
    mid, side = (audio[:, 0] + audio[:, 1]) / 2, (audio[:, 0] - audio[:, 1]) / 2 * width
    return np.stack([mid + side, mid - side], axis=1)


def automation(n: int, sr: int, rng: np.random.Generator, sections: list[tuple[float, float, frozenset]]) -> np.ndarray:
    """``(n,)`` gain: a level per section (±3 dB) with smooth moves and a slow ride (±1.5 dB)."""
    points_t, points_db = [0.0], [0.0]
    for start, _, _ in sections:
        points_t.append(start * sr)
        points_db.append(rng.uniform(-3, 3))
    steps = np.interp(np.arange(0, n, CONTROL), points_t, points_db)
    ride = np.cumsum(rng.standard_normal(len(steps)))
    ride = 1.5 * (ride - ride.mean()) / (np.abs(ride - ride.mean()).max() + 1e-9)
    return _to_samples(10 ** ((steps + ride) / 20), n)


def active_rms(audio: np.ndarray) -> float:
    """RMS over the control blocks where the stem plays (within 40 dB of its loudest)."""
    level = _levels_db(audio)
    loud = level > level.max() - 40
    return float(np.sqrt(np.mean(10 ** (level[loud] / 10)))) if loud.any() else 0.0


def bus_limit(stems: dict[str, np.ndarray], sr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Limit the peaks of the sum to ``crest`` above its RMS with one gain curve applied to every stem."""
    total = sum(stems.values())
    n = len(total)
    peak = np.abs(np.pad(total, ((0, -n % CONTROL), (0, 0)))).reshape(-1, CONTROL * total.shape[1]).max(axis=1)
    ceiling = np.sqrt(np.mean(total**2)) * 10 ** (rng.uniform(9, 14) / 20)
    need_db = 20 * np.log10(np.minimum(1.0, ceiling / np.maximum(peak, 1e-12)))
    ahead = max(1, int(0.005 * sr / CONTROL))
    need_db = np.min(np.stack([np.roll(need_db, -k) for k in range(ahead + 1)]), axis=0)  # look-ahead
    gain = _to_samples(10 ** (_smooth_gain(need_db, 1.0, 1 - np.exp(-CONTROL / sr / 0.1)) / 20), n)
    return {name: audio * gain[:, None] for name, audio in stems.items()}


def mix(
    stems: dict[str, np.ndarray],
    sr: int,
    rng: np.random.Generator,
    sections: list[tuple[float, float, frozenset]],
    *,
    eq: bool = True,
    compression: bool = True,
    reverb: float = 1.0,
) -> dict[str, np.ndarray]:
    """Process every ``(time, 2)`` stem and the bus; returns the stems whose sum is the mixture."""
    ir = room(sr, rng)
    highpass = {"vocals": 90.0, "drums": 30.0, "bass": 25.0, "other": 80.0}
    sends = {"vocals": (0.15, 0.5), "drums": (0.03, 0.2), "bass": (0.0, 0.05), "other": (0.1, 0.4)}
    levels = {"vocals": (-4.0, 4.0), "drums": (-8.0, -2.0), "bass": (-8.0, -2.0), "other": (-6.0, 0.0)}
    out = {}
    for name, audio in stems.items():
        base = int(rng.integers(2**32))
        eq_rng, comp_rng, stem_rng = (np.random.default_rng([base, k]) for k in range(3))
        if eq:
            audio = equalise(audio, sr, eq_rng, highpass[name] * eq_rng.uniform(0.8, 1.5))
        if compression:
            audio = compress(audio, sr, comp_rng)
        audio = widen(audio, stem_rng.uniform(0.6, 1.3) if name != "bass" else stem_rng.uniform(0.0, 0.4))
        audio = audio * automation(len(audio), sr, stem_rng, sections)[:, None]
        send = stem_rng.uniform(*sends[name])
        if reverb > 0:
            audio = add_room(audio, ir, send * reverb)
        rms = active_rms(audio)
        out[name] = audio / rms * 10 ** (stem_rng.uniform(*levels[name]) / 20) if rms > 0 else audio
    return bus_limit(out, sr, rng) if compression else out
