"""Render the instrument parts of one stem: sampled instruments through fluidsynth, or additive tones.

``fluidsynth`` renders a MIDI file written with mido (one track and channel per part, the drum kit on
channel 10) offline with its own reverb and chorus off, so every stem is dry and exact; the mixing
stage adds the room. ``additive`` is sepkit's own sine-based instruments (the ablation without samples).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from sepkit.data.realistic.score import Part
from sepkit.data.synthetic import _bandpass_noise, _note, _pan, _place, midi_to_hz
from sepkit.errors import SepkitError

TICKS = 480


def write_midi(parts: list[Part], tempo: float, path: Path) -> None:
    """A type-1 MIDI file with one track per part (program, volume, pan, then the notes)."""
    song = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    seconds_per_tick = 60.0 / tempo / TICKS
    melodic = iter(c for c in range(16) if c != 9)
    for part in parts:
        channel = 9 if part.drums else next(melodic)
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("set_tempo", tempo=round(60e6 / tempo)))
        events = [
            (0, 0, mido.Message("program_change", channel=channel, program=part.program)),
            (0, 0, mido.Message("control_change", channel=channel, control=7, value=part.level)),
            (0, 0, mido.Message("control_change", channel=channel, control=10, value=part.pan)),
        ]
        for note in part.notes:
            on = max(0, round(note.start / seconds_per_tick))
            off = max(on + 1, round((note.start + note.dur) / seconds_per_tick))
            events.append((on, 2, mido.Message("note_on", channel=channel, note=note.pitch, velocity=note.velocity)))
            events.append((off, 1, mido.Message("note_off", channel=channel, note=note.pitch, velocity=0)))
        now = 0
        for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        song.tracks.append(track)
    song.save(path)


def render_fluidsynth(parts: list[Part], tempo: float, n: int, sr: int, program: str, soundfont: Path) -> np.ndarray:
    """``(n, 2)`` float audio of the parts played by fluidsynth from the soundfont."""
    if not any(p.notes for p in parts):
        return np.zeros((n, 2))
    with tempfile.TemporaryDirectory(prefix="sepkit-fluid-") as tmp:
        midi, wav = Path(tmp) / "part.mid", Path(tmp) / "part.wav"
        write_midi(parts, tempo, midi)
        cmd = [program, "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(sr), "-O", "float", "-T", "wav"]
        done = subprocess.run([*cmd, "-F", str(wav), str(soundfont), str(midi)], capture_output=True, text=True)
        if done.returncode or not wav.exists():
            raise SepkitError(f"fluidsynth failed ({done.returncode}): {(done.stderr or done.stdout).strip()[:200]}")
        audio, rate = sf.read(wav, dtype="float64", always_2d=True)
    if rate != sr:
        raise SepkitError(f"fluidsynth wrote {rate} Hz instead of {sr} Hz")
    out = np.zeros((n, 2))
    out[: min(n, len(audio))] = audio[:n]
    return out


def _drum_hit(pitch: int, velocity: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic GM drum sound: a pitched thump for kicks and toms, band noise for the rest."""
    t = np.arange(int(0.35 * sr)) / sr
    if pitch in (35, 36, 41, 43, 45, 47, 48, 50):
        base = 50.0 if pitch <= 36 else 60.0 + 8 * (pitch - 41)
        sound = np.sin(2 * np.pi * np.cumsum(base + 2 * base * np.exp(-t / 0.03)) / sr) * np.exp(-t / 0.15)
    else:
        low, decay = (900.0, 0.08) if pitch in (37, 38, 39, 40) else (6000.0, 0.05 if pitch != 49 else 0.4)
        sound = _bandpass_noise(rng, len(t), low, min(low * 8, 0.45 * sr), sr) * np.exp(-t / decay)
    return sound * (velocity / 127) ** 2


def render_additive(parts: list[Part], n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 2)`` audio of the parts played by sepkit's harmonic tones and noise drums."""
    out = np.zeros((n, 2))
    for part in parts:
        mono = np.zeros(n)
        bright = 1.0 + (part.program % 8) / 8
        for note in part.notes:
            if part.drums:
                sound = _drum_hit(note.pitch, note.velocity, sr, rng)
            else:
                decay = 0.3 + 2.0 * (part.program in range(48, 96))
                sound = _note(float(midi_to_hz(note.pitch)), note.dur + 0.05, sr, decay, 10, bright)
                sound = sound * (note.velocity / 127) ** 2 * np.minimum(1.0, (len(sound) - np.arange(len(sound))) / 400)
            _place(mono, sound, int(note.start * sr))
        out += _pan(mono, (part.pan - 64) / 64)
    return out
