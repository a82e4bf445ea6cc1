"""A deterministic generator of multitrack songs in the MUSDB18-HQ folder layout.

Each song has a sung voice (pitch contour with glides, vibrato, changing vowel formants, consonant
noise, rests between phrases), harmonic accompaniment in the vocal register (chords and arpeggios),
bass and drums, each panned in stereo at a song-specific level. Files are 16-bit 44.1 kHz stereo
wav; ``mixture.wav`` is exactly the sum of the four stems. Usage::

    python -m sepkit.data.synthetic --out data/toy --tracks 20 --seconds 30
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from sepkit.data import generated
from sepkit.data.generated import Generator, write_stems

GENERATOR_VERSION = 1
# Formant frequencies (Hz) and bandwidths of five sung vowels.
VOWELS = np.array(
    [
        [800, 1150, 2800],  # a
        [400, 1900, 2600],  # e
        [300, 2300, 3000],  # i
        [450, 800, 2800],  # o
        [325, 700, 2530],  # u
    ],
    dtype=float,
)
FORMANT_BW = np.array([80.0, 90.0, 120.0])
FORMANT_GAIN = np.array([1.0, 0.6, 0.35])
MAJOR = [0, 2, 4, 5, 7, 9, 11]
MINOR = [0, 2, 3, 5, 7, 8, 10]
WORDS = ["Amber", "Night", "River", "Glass", "Echo", "Velvet", "Summer", "Static", "Paper", "Signal", "Silver", "Lanes"]


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters that fully determine a generated dataset."""

    tracks: int = 24
    seconds: float = 20.0
    sample_rate: int = 44100
    seed: int = 0
    test_every: int = 3


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69.0) / 12.0)


def _pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan of ``(time,)`` to ``(time, 2)``; position in [-1, 1]."""
    angle = (position + 1.0) * np.pi / 4.0
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=1)


def _bandpass_noise(rng: np.random.Generator, n: int, low: float, high: float, sr: int) -> np.ndarray:
    noise = rng.standard_normal(n)
    spec = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(freqs < low) | (freqs > high)] = 0.0
    out = np.fft.irfft(spec, n)
    return out / (np.abs(out).max() + 1e-9)


def _additive(freq: np.ndarray, amps: np.ndarray, sr: int, phase0: float = 0.0) -> np.ndarray:
    """Sum of harmonics ``k * freq(t)`` with amplitudes ``amps[k-1, t]`` (zeroed above Nyquist)."""
    phase = np.mod(2.0 * np.pi * np.cumsum(freq) / sr + phase0, 2.0 * np.pi)
    out = np.zeros(len(freq), dtype=np.float32)
    for k in range(1, amps.shape[0] + 1):
        audible = k * freq < 0.45 * sr
        if not audible.any():
            break
        out += (np.where(audible, amps[k - 1], 0.0) * np.sin(k * phase)).astype(np.float32)
    return out


@lru_cache(maxsize=512)
def _note(freq: float, dur: float, sr: int, decay: float, n_harm: int, bright: float) -> np.ndarray:
    """A plucked / struck harmonic note with per-harmonic exponential decay."""
    n = int(dur * sr)
    t = np.arange(n) / sr
    amps = np.stack([(k**-bright) * np.exp(-t * k / decay) for k in range(1, n_harm + 1)])
    env = np.minimum(1.0, t / 0.004)
    return env * _additive(np.full(n, freq), amps, sr)


def _place(track: np.ndarray, sound: np.ndarray, start: int) -> None:
    end = min(len(track), start + len(sound))
    if start < end:
        track[start:end] += sound[: end - start]


class Song:
    """One generated song; :meth:`render` returns its four stems."""

    def __init__(self, seed: int, seconds: float, sr: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.sr = sr
        self.n = int(seconds * sr)
        rng = self.rng
        self.beat = 60.0 / rng.uniform(84, 132)
        self.root = int(rng.integers(55, 64))
        self.scale = MAJOR if rng.random() < 0.6 else MINOR
        progressions = [[0, 4, 5, 3], [0, 5, 3, 4], [5, 3, 0, 4], [0, 3, 4, 4]]
        self.progression = progressions[int(rng.integers(len(progressions)))]

    def _scale_note(self, degree: int) -> int:
        octave, step = divmod(degree, 7)
        return self.root + 12 * octave + self.scale[step]

    def _chord(self, bar: int) -> list[int]:
        deg = self.progression[bar % len(self.progression)]
        return [self._scale_note(deg + i) for i in (0, 2, 4)]

    def vocals(self) -> np.ndarray:
        rng, sr, n = self.rng, self.sr, self.n
        f0 = np.zeros(n)
        gain = np.zeros(n)
        vowel_idx = np.zeros(n, dtype=int)
        consonants = np.zeros(n)
        t = rng.uniform(0.0, 2.0) * self.beat
        degree = int(rng.integers(0, 7))
        prev_hz = None
        while t < n / sr:
            phrase_notes = int(rng.integers(3, 9))
            phrase_gain = 10 ** (rng.uniform(-4, 2) / 20)
            for _ in range(phrase_notes):
                dur = self.beat * rng.choice([0.5, 1.0, 1.0, 1.5, 2.0])
                degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3]), -2, 9))
                hz = float(midi_to_hz(self._scale_note(degree) + (12 if self.root < 57 else 0)))
                a, b = int(t * sr), min(n, int((t + dur) * sr))
                if a >= n:
                    break
                m = b - a
                tt = np.arange(m) / sr
                glide = rng.uniform(0.04, 0.12)
                start_hz = prev_hz if prev_hz is not None else hz * 2 ** (rng.uniform(-1, 1) / 12)
                contour = hz + (start_hz - hz) * np.exp(-tt / (glide / 3))
                vib_depth = rng.uniform(0.2, 0.6) * np.clip((tt - 0.15) / 0.2, 0, 1)
                vib = 2 ** (vib_depth * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * tt + rng.uniform(0, 6.3)) / 12)
                f0[a:b] = contour * vib
                env = np.minimum(1, tt / rng.uniform(0.02, 0.06)) * np.minimum(1, (dur - tt) / 0.08).clip(0)
                gain[a:b] = phrase_gain * env * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * tt))
                vowel_idx[a:b] = int(rng.integers(len(VOWELS)))
                if rng.random() < 0.6:
                    burst_len = int(rng.uniform(0.03, 0.09) * sr)
                    low = rng.choice([2500.0, 3500.0, 5000.0])
                    burst = _bandpass_noise(rng, burst_len, low, min(low * 2.2, 0.45 * sr), sr)
                    burst *= np.hanning(burst_len) * phrase_gain * rng.uniform(0.15, 0.4)
                    _place(consonants, burst, a)
                prev_hz = hz
                t += dur
            prev_hz = None
            t += self.beat * rng.uniform(1.0, 4.0)
        # Smooth vowel transitions: formant tracks at a 200 Hz control rate, 50 ms glide.
        hop = sr // 200
        formants = VOWELS[vowel_idx[::hop]]
        kernel = np.hanning(11) / np.hanning(11).sum()
        formants = np.stack([np.convolve(formants[:, i], kernel, mode="same") for i in range(3)], axis=1)
        f0_ctrl = np.maximum(f0[::hop], 1.0)
        n_harm = 30
        harm = np.arange(1, n_harm + 1)[:, None] * f0_ctrl[None, :]
        response = np.zeros_like(harm)
        for i in range(3):
            response += FORMANT_GAIN[i] / (1 + ((harm - formants[None, :, i]) / FORMANT_BW[i]) ** 2)
        amps_ctrl = (np.arange(1, n_harm + 1)[:, None] ** -0.7) * (response + 0.02)
        t_ctrl = np.arange(len(f0_ctrl)) * hop
        amps = np.stack([np.interp(np.arange(n), t_ctrl, a) for a in amps_ctrl])
        voice = _additive(np.where(f0 > 0, f0, 1.0), amps, sr) * gain
        voice = voice / (np.abs(voice).max() + 1e-9) + consonants
        return _pan(voice, rng.uniform(-0.25, 0.25))

    def other(self) -> np.ndarray:
        rng, sr, n = self.rng, self.sr, self.n
        bar = 4 * self.beat
        pad = np.zeros(n)
        arp = np.zeros(n)
        pad_decay = rng.uniform(0.4, 1.2)
        arp_step = self.beat * rng.choice([0.5, 0.25])
        for b in range(int(n / sr / bar) + 1):
            chord = self._chord(b)
            start = int(b * bar * sr)
            for midi in chord:
                for hit in range(int(rng.choice([1, 2, 4]))):
                    hit_len = bar / max(1, hit + 1)
                    note = _note(float(midi_to_hz(midi)), hit_len + 0.3, sr, pad_decay, 12, 1.2)
                    _place(pad, note * 0.4, start + int(hit * bar / 4 * sr))
            pattern = [chord[i % 3] + 12 * (i // 3 % 2) for i in rng.permutation(6)]
            for i in range(int(bar / arp_step)):
                note = _note(float(midi_to_hz(pattern[i % len(pattern)])), arp_step * 1.5, sr, 0.25, 8, 1.6)
                _place(arp, note * 0.3, start + int(i * arp_step * sr))
        return _pan(pad, rng.uniform(-0.7, -0.1)) + _pan(arp, rng.uniform(0.1, 0.7))

    def bass(self) -> np.ndarray:
        rng, sr, n = self.rng, self.sr, self.n
        bar = 4 * self.beat
        out = np.zeros(n)
        step = self.beat * rng.choice([1.0, 0.5, 2.0])
        for b in range(int(n / sr / bar) + 1):
            root = self._chord(b)[0]
            while root > 45:
                root -= 12
            for i in range(int(bar / step)):
                midi = root + (7 if rng.random() < 0.2 else 0)
                note = _note(float(midi_to_hz(midi)), step * 1.1, sr, 0.5, 6, 1.5)
                _place(out, note, int((b * bar + i * step) * sr))
        return _pan(out, rng.uniform(-0.1, 0.1))

    def drums(self) -> np.ndarray:
        rng, sr, n = self.rng, self.sr, self.n
        t = np.arange(int(0.4 * sr)) / sr
        kick = np.sin(2 * np.pi * np.cumsum(45 + 90 * np.exp(-t / 0.04)) / sr) * np.exp(-t / 0.12)
        ts = t[: int(0.2 * sr)]
        snare = _bandpass_noise(rng, len(ts), 1000, 9000, sr) * np.exp(-ts / 0.06)
        snare += 0.5 * np.sin(2 * np.pi * 190 * ts) * np.exp(-ts / 0.05)
        th = t[: int(0.08 * sr)]
        hat = _bandpass_noise(rng, len(th), 7000, 16000, sr) * np.exp(-th / 0.02)
        left, right = np.zeros(n), np.zeros(n)
        hat_pan = rng.uniform(-0.6, 0.6)
        eighth = self.beat / 2
        for i in range(int(n / sr / eighth) + 1):
            pos = int(i * eighth * sr)
            beat_in_bar = i % 8
            hits = []
            if beat_in_bar in (0, 4) or (beat_in_bar == 5 and rng.random() < 0.3):
                hits.append((kick, 0.0, 1.0))
            if beat_in_bar in (2, 6):
                hits.append((snare, 0.1, 0.6))
            if rng.random() < 0.9:
                hits.append((hat, hat_pan, rng.uniform(0.1, 0.25)))
            for sound, pan, level in hits:
                stereo = _pan(sound * level, pan)
                _place(left, stereo[:, 0], pos)
                _place(right, stereo[:, 1], pos)
        return np.stack([left, right], axis=1)

    def render(self) -> dict[str, np.ndarray]:
        """Return the stems ``{name: (time, 2)}`` at song-specific levels."""
        stems = {"vocals": self.vocals(), "drums": self.drums(), "bass": self.bass(), "other": self.other()}
        levels_db = {"vocals": (-3, 3), "drums": (-9, -3), "bass": (-8, -2), "other": (-6, 0)}
        for name, audio in stems.items():
            rms = np.sqrt(np.mean(audio**2)) + 1e-9
            stems[name] = audio / rms * 10 ** (self.rng.uniform(*levels_db[name]) / 20)
        return stems


def track_names(cfg: SyntheticConfig) -> list[tuple[str, str]]:
    """``(subset, "Artist - Title")`` of every track, in generation order."""
    names = []
    for i in range(cfg.tracks):
        rng = np.random.default_rng([cfg.seed, i, 1])
        title = " ".join(rng.choice(WORDS, size=2, replace=False))
        subset = "test" if i % cfg.test_every == cfg.test_every - 1 else "train"
        names.append((subset, f"Sepkit Synth {i:03d} - {title}"))
    return names


def write_track(folder: Path, seed: int, cfg: SyntheticConfig) -> None:
    """Render one song and write its stems and mixture as 16-bit wav."""
    write_stems(folder, Song(seed, cfg.seconds, cfg.sample_rate).render(), cfg.sample_rate)


SYNTHETIC = Generator(write_track, track_names, GENERATOR_VERSION)


def ensure_dataset(root: str | Path, cfg: SyntheticConfig, workers: int | None = None) -> Path:
    """Generate these songs into ``root`` unless its manifest says they are there (:mod:`sepkit.data.generated`)."""
    return generated.ensure_dataset(root, cfg, SYNTHETIC, workers)


def main(argv: list[str] | None = None) -> None:
    generated.command(argv, "Generate a toy MUSDB18-HQ-shaped dataset.", SyntheticConfig, ensure_dataset)


if __name__ == "__main__":
    main()
