"""A singing voice with real phonemes: spoken syllables re-pitched onto the melody by the WORLD vocoder.

Each lyric syllable is spoken by ``espeak-ng`` (a separate program, optional: GPL-3) or, without it,
built from sepkit's formant vowels and noise consonants. WORLD splits it into pitch, spectral
envelope and aperiodicity (5 ms frames); the consonant before the vowel is kept at its spoken length
and sung ahead of the beat, the vowel is stretched to the note, and the pitch becomes the melody with
glides between notes, a scoop into each phrase, delayed vibrato and slow drift. A breath precedes
many phrases. The envelope can be warped along frequency for another vocal tract (a register).
"""

from __future__ import annotations

import io
import subprocess
from functools import lru_cache

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from sepkit.audio import resample_np
from sepkit.data.realistic.score import Score, Syllable, VocalLine
from sepkit.data.realistic.tools import espeak, pyworld
from sepkit.data.synthetic import FORMANT_BW, FORMANT_GAIN, VOWELS, _additive, _bandpass_noise, _pan, midi_to_hz
from sepkit.errors import SepkitError

WORLD_SR = 22050
FRAME_MS = 5.0
FRAME = FRAME_MS / 1000
PHRASE_GAP = 0.25  # seconds of silence that separate two phrases
VOWEL_LETTERS = "aeiou"
# Consonant letters -> (lowest Hz of their noise band, seconds), for the formant fallback.
FRICATIVES = {"s": (4000, 0.09), "x": (2500, 0.09), "c": (3000, 0.07), "z": (3500, 0.08), "f": (1500, 0.08)}
PLOSIVES = {"t": 2500, "k": 1500, "p": 600, "q": 3000, "d": 2000, "g": 1200, "b": 500, "j": 2500}


def _speak(text: str, voice: str) -> np.ndarray:
    """espeak-ng's audio of ``text`` (22050 Hz mono), leading and trailing silence removed."""
    done = subprocess.run([espeak(), "-v", voice, "-s", "120", "--stdout", text], capture_output=True)
    if done.returncode:
        raise SepkitError(f"espeak-ng -v {voice} failed: {done.stderr.decode(errors='replace').strip()[:200]}")
    audio, rate = sf.read(io.BytesIO(done.stdout), dtype="float64")
    if rate != WORLD_SR:
        audio = resample_np(audio.astype(np.float32), rate, WORLD_SR).astype(np.float64)
    loud = np.flatnonzero(np.abs(audio) > 0.01 * (np.abs(audio).max() + 1e-12))
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio


def _formant_syllable(text: str, voice: str) -> np.ndarray:
    """A sung syllable from formant vowels: letters before the first vowel make its consonant."""
    rng = np.random.default_rng(sum(map(ord, text + voice)))
    sr = WORLD_SR
    female = "+f" in voice
    vowel = next((c for c in text if c in VOWEL_LETTERS), "a")
    formants = VOWELS[VOWEL_LETTERS.index(vowel)] * (1.15 if female else 1.0)
    n = int(0.45 * sr)
    f0 = np.full(n, 210.0 if female else 125.0)
    harmonics = np.arange(1, 41)[:, None] * f0[None, :1]
    shape = sum(
        g / (1 + ((harmonics - f) / bw) ** 2) for f, bw, g in zip(formants, FORMANT_BW, FORMANT_GAIN, strict=True)
    )
    amps = np.repeat((np.arange(1, 41)[:, None] ** -0.6) * (shape + 0.02), n, axis=1)
    sung = _additive(f0, amps, sr) * np.minimum(1, np.arange(n) / (0.03 * sr))
    sung /= np.abs(sung).max() + 1e-9
    onset = text[: text.index(vowel)] if vowel in text else ""
    parts = []
    for letter in onset:
        if letter in FRICATIVES:
            low, seconds = FRICATIVES[letter]
            parts.append(
                0.3 * _bandpass_noise(rng, int(seconds * sr), low, 0.45 * sr, sr) * np.hanning(int(seconds * sr))
            )
        elif letter in PLOSIVES:
            burst = int(0.02 * sr)
            parts.append(
                np.concatenate(
                    [
                        np.zeros(int(0.03 * sr)),
                        0.5 * _bandpass_noise(rng, burst, PLOSIVES[letter], 0.45 * sr, sr) * np.hanning(burst),
                    ]
                )
            )
        elif letter.isalpha():  # m, n, l, r, w, y, h: a short voiced murmur
            murmur = int(0.06 * sr)
            parts.append(0.3 * sung[:murmur] * np.hanning(murmur))
    return np.concatenate([*parts, sung]) if parts else sung


@lru_cache(maxsize=256)
def analyse(text: str, voice: str, phonemes: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WORLD parameters of a spoken syllable: f0 ``(frames,)``, envelope and aperiodicity ``(frames, bins)``."""
    world = pyworld()
    audio = _speak(text, voice) if phonemes == "espeak" else _formant_syllable(text, voice)
    audio = np.ascontiguousarray(audio, dtype=np.float64)
    f0, times = world.dio(audio, WORLD_SR, frame_period=FRAME_MS, f0_floor=60.0, f0_ceil=500.0)
    f0 = world.stonemask(audio, f0, times, WORLD_SR)
    sp = world.cheaptrick(audio, f0, times, WORLD_SR)
    ap = world.d4c(audio, f0, times, WORLD_SR)
    return f0, sp, ap


def _syllable_frames(syl: tuple, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Voiced flags, envelope and aperiodicity of a syllable fitted to ``frames`` note frames.

    Returns the onset length too: those frames go before the note's start.
    """
    f0, sp, ap = syl
    voiced = np.flatnonzero(f0 > 0)
    first, last = (voiced[0], voiced[-1] + 1) if len(voiced) else (0, len(f0))
    onset = min(first, frames // 2)
    coda = min(len(f0) - last, frames // 3)
    body = max(1, frames - coda)
    natural = min(8, last - first)  # the consonant-to-vowel transition keeps its speed
    pos = np.concatenate(
        [first + np.arange(min(natural, body)), np.linspace(first + natural, last - 1, max(0, body - natural))]
    )
    pos = np.clip(pos, first, max(first, last - 1))
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(f0) - 1)
    w = (pos - lo)[:, None]
    index = np.concatenate([np.arange(first - onset, first), np.arange(last, last + coda)])
    flags = np.concatenate([f0[first - onset : first] > 0, np.ones(body, bool), f0[last : last + coda] > 0])
    env = np.concatenate([sp[index[:onset]], sp[lo] * (1 - w) + sp[hi] * w, sp[index[onset:]]])
    aper = np.concatenate([ap[index[:onset]], ap[lo] * (1 - w) + ap[hi] * w, ap[index[onset:]]])
    return flags, env, aper, onset


def _pitch_curve(notes: list[Syllable], frames: int, t0: float, rng: np.random.Generator, detune: float) -> np.ndarray:
    """MIDI pitch per frame: note targets smoothed into glides, a scoop in, vibrato and drift."""
    target = np.full(frames, notes[0].pitch)
    vibrato = np.zeros(frames)
    for note in notes:
        a = max(0, int((note.start - t0) / FRAME))
        b = min(frames, int((note.start + note.dur - t0) / FRAME) + 1)
        target[a:] = note.pitch
        if note.dur > 0.35 and rng.random() < 0.8:
            t = np.arange(b - a) * FRAME
            depth = rng.uniform(0.2, 0.6) * np.clip((t - rng.uniform(0.15, 0.35)) / 0.25, 0, 1)
            vibrato[a:b] = depth * np.sin(2 * np.pi * rng.uniform(4.8, 6.5) * t + rng.uniform(0, 2 * np.pi))
    target[0] -= rng.uniform(0.5, 2.5)  # scoop into the phrase
    alpha = FRAME / rng.uniform(0.03, 0.07)
    glide = lfilter([alpha], [1, alpha - 1], target, zi=[target[0] * (1 - alpha)])[0]
    drift = lfilter([0.02], [1, -0.98], rng.standard_normal(frames)) * 0.3
    return glide + vibrato + drift + detune / 100


def _warp(envelope: np.ndarray, factor: float) -> np.ndarray:
    """Stretch a spectral envelope ``(frames, bins)`` along frequency (>1: a shorter vocal tract)."""
    bins = envelope.shape[1]
    source = np.arange(bins) / factor
    lo = np.clip(np.floor(source).astype(int), 0, bins - 1)
    hi = np.clip(lo + 1, 0, bins - 1)
    w = np.clip(source - lo, 0, 1)
    return envelope[:, lo] * (1 - w) + envelope[:, hi] * w


def phrases(notes: list[Syllable]) -> list[list[Syllable]]:
    """Consecutive notes separated by less than :data:`PHRASE_GAP` seconds."""
    out: list[list[Syllable]] = []
    for note in sorted(notes, key=lambda s: s.start):
        if out and note.start - (out[-1][-1].start + out[-1][-1].dur) < PHRASE_GAP:
            out[-1].append(note)
        else:
            out.append([note])
    return out


def sing(line: VocalLine, n: int, sr: int, rng: np.random.Generator, phonemes: str) -> np.ndarray:
    """``(n,)`` mono audio of one vocal line at ``sr``."""
    world = pyworld()
    out = np.zeros(n)
    tract = rng.uniform(0.94, 1.1)
    for phrase in phrases([Syllable(s.start + line.delay, s.dur, s.pitch, s.text) for s in line.notes]):
        fitted = [_syllable_frames(analyse(s.text, line.voice, phonemes), max(4, round(s.dur / FRAME))) for s in phrase]
        lead_in = fitted[0][3] * FRAME
        t0 = phrase[0].start - lead_in
        total = round((phrase[-1].start + phrase[-1].dur - t0) / FRAME) + 8
        bins = fitted[0][1].shape[1]
        voiced = np.zeros(total, bool)
        env = np.full((total, bins), 1e-12)
        aper = np.ones((total, bins))
        gain = np.zeros(total)
        for note, (flags, sp, ap, onset) in zip(phrase, fitted, strict=True):
            a = round((note.start - t0) / FRAME) - onset
            a0, b = max(0, a), min(total, a + len(flags))
            if b <= a0:
                continue
            voiced[a0:b], env[a0:b], aper[a0:b] = flags[a0 - a : b - a], sp[a0 - a : b - a], ap[a0 - a : b - a]
            t = np.arange(b - a0) * FRAME
            gain[a0:b] = rng.uniform(0.7, 1.0) * (1 + rng.uniform(-0.2, 0.2) * t / max(t[-1], FRAME))
        pitch = _pitch_curve(phrase, total, t0, rng, line.detune_cents)
        f0 = np.where(voiced, midi_to_hz(pitch), 0.0)
        env = np.maximum(_warp(env, tract) * (gain**2)[:, None], 1e-16)
        audio = world.synthesize(f0, np.ascontiguousarray(env), np.ascontiguousarray(aper), WORLD_SR, FRAME_MS)
        audio = resample_np(audio.astype(np.float32), WORLD_SR, sr) if sr != WORLD_SR else audio
        start = round(t0 * sr)
        if line.breaths and rng.random() < 0.6:
            length = int(rng.uniform(0.15, 0.35) * sr)
            breath = _bandpass_noise(rng, length, 400, 6000, sr) * np.hanning(length) * rng.uniform(0.02, 0.06)
            begin = start - length - int(0.05 * sr)
            if begin >= 0 and begin + length <= n:
                out[begin : begin + length] += breath
        end = min(n, start + len(audio))
        if end > max(start, 0):
            out[max(start, 0) : end] += audio[max(0, -start) : end - start]
    return out


def render_vocals(score: Score, n: int, sr: int, rng: np.random.Generator, phonemes: str) -> np.ndarray:
    """``(n, 2)``: every vocal line of the score, at its level and pan; the lead sets the loudness."""
    out = np.zeros((n, 2))
    for line in score.vocals:
        mono = sing(line, n, sr, rng, phonemes)
        peak = np.abs(mono).max()
        if peak > 0:
            out += _pan(mono / peak * 10 ** (line.gain_db / 20), line.pan)
    return out
