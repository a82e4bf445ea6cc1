"""Procedural songs as scores: key, tempo, progression, sections, grooves and one part per stem.

A :class:`Score` holds note lists (MIDI pitches, seconds) for drums, bass and the instruments of
``other``, and the sung lines of ``vocals`` with one lyric syllable per note. It is made from its own
random stream, so the mixing and rendering switches of an ablation never change the composition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Chord progressions as scale degrees (0 = tonic), one chord per bar or per half bar.
PROGRESSIONS = ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 4, 3), (1, 4, 0, 0), (0, 3, 0, 4), (5, 4, 3, 4))
MINOR_PROGRESSIONS = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2))

# Lyric syllables per espeak-ng language (Mandarin as tone-numbered pinyin, Japanese as kana).
LYRICS = {
    "en-us": "love night fire heart a way my you light dream stay home run fly go oh yeah know time day sky rain "
    "all me to be the hold on cold gold blue true wait here we are now",
    "cmn-latn-pinyin": "wo3 ni3 ai4 de5 shi4 xin1 tian1 kong1 meng4 xiang3 yue4 liang4 qing2 ren2 hai3 feng1 yu3 "
    "hua1 ye4 ge1 lai2 zou3 kan4 bu4 yao4 zai4 shuo1 yi1 sheng1 wang4 ji4 lei4 guang1 mei3",
    "es": "la me te co ra mi sol mar lu na cie lo tu yo vi da que ro sa a mor co ra zon no che",
    "it": "a mo re cuo vo la no te ca de ne sta mi sei cie lo so le per tu",
    "de": "lie be nacht herz mein du son ne wind ich will dich nie mehr zeit licht",
    "fr-fr": "la mour toi moi ciel nuit je tu coeur vie re ve en core ja mais sans",
    "ja": "か な み と よ る さ こ は ね あ い そ ら ゆ め き み",
}
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m6", "m7")
# General MIDI programs (0-based) per role of the ``other`` stem, and bass programs.
COMP = (0, 1, 2, 4, 5, 16, 17, 24, 25, 26, 27, 28)
PADS = (48, 49, 50, 51, 52, 88, 89, 90, 91, 94)
PLUCKS = (6, 8, 10, 11, 12, 13, 45, 46, 24, 107)
LEADS = (56, 61, 64, 65, 66, 71, 73, 40, 30, 80, 81, 22)
BASSES = (32, 33, 34, 35, 36, 38, 39)
# Drum grooves on 16 steps per bar: GM note -> pattern ('x' accent, 'o' soft, '.' rest).
KICK, SNARE, RIM, CLAP, HAT, PEDAL, OPEN, RIDE, CRASH = 36, 38, 37, 39, 42, 44, 46, 51, 49
TOMS = (50, 48, 47, 45, 43, 41)
GROOVES = {
    "rock": {KICK: "x.......x.x.....", SNARE: "....x.......x...", HAT: "x.o.x.o.x.o.x.o."},
    "four": {KICK: "x...x...x...x...", CLAP: "....x.......x...", OPEN: "..o...o...o...o.", HAT: "o.o.o.o.o.o.o.o."},
    "half": {KICK: "x.........x.....", SNARE: "........x.......", HAT: "x.o.x.o.x.o.x.o."},
    "funk": {KICK: "x..x..x...x..x..", SNARE: "....x..o.o..x...", HAT: "xoxoxoxoxoxoxoxo"},
    "ballad": {KICK: "x.......x.......", RIM: "....x.......x...", RIDE: "x...x...x...x..."},
    "pop": {KICK: "x.....x.x.......", SNARE: "....x.......x...", PEDAL: "o.o.o.o.o.o.o.o.", HAT: "..x...x...x...x."},
}
BASS_STYLES = ("roots", "root_fifth", "kick", "sustain", "octave", "walk")
COMP_STYLES = ("block", "broken", "strum", "offbeat")


@dataclass
class Note:
    """One note of an instrument part (times in seconds)."""

    start: float
    dur: float
    pitch: int
    velocity: int


@dataclass
class Part:
    """An instrument of one stem: a GM program (or the drum kit on channel 10) and its notes."""

    stem: str
    program: int
    notes: list[Note] = field(default_factory=list)
    drums: bool = False
    pan: int = 64
    level: int = 100


@dataclass
class Syllable:
    """One sung note: a lyric syllable at a (fractional) MIDI pitch."""

    start: float
    dur: float
    pitch: float
    text: str


@dataclass
class VocalLine:
    """A sung line of the vocals stem: the lead, a harmony or a double."""

    voice: str
    notes: list[Syllable] = field(default_factory=list)
    gain_db: float = 0.0
    pan: float = 0.0
    detune_cents: float = 0.0
    delay: float = 0.0
    breaths: bool = True


@dataclass
class Score:
    """A whole song: the parts of the accompaniment stems and the vocal lines."""

    seconds: float
    tempo: float
    parts: list[Part]
    vocals: list[VocalLine]
    sections: list[tuple[float, float, frozenset[str]]]

    def stem_parts(self, stem: str) -> list[Part]:
        return [p for p in self.parts if p.stem == stem]


class Composer:
    """Writes one :class:`Score` from a random stream; ``variety=False`` fixes key, tempo, sounds and grooves."""

    def __init__(self, rng: np.random.Generator, seconds: float, variety: bool = True, languages=("en-us",)) -> None:
        self.rng, self.seconds, self.variety = rng, seconds, variety
        self.languages = tuple(languages)
        self.tempo = float(rng.uniform(72, 140)) if variety else 100.0
        self.beat = 60.0 / self.tempo
        self.bar = 4 * self.beat
        self.step = self.bar / 16
        self.swing = float(rng.choice([0.0, 0.0, 0.0, 0.12, 0.2])) if variety else 0.0
        minor = bool(rng.random() < 0.4) if variety else False
        self.scale = MINOR if minor else MAJOR
        self.key = int(rng.integers(0, 12)) if variety else 0
        pool = MINOR_PROGRESSIONS if minor else PROGRESSIONS
        self.progression = pool[int(rng.integers(len(pool)))] if variety else PROGRESSIONS[0]
        self.chords_per_bar = int(rng.choice([1, 1, 1, 2])) if variety else 1
        self.n_bars = int(np.ceil(seconds / self.bar)) + 1
        self.sevenths = rng.random(len(self.progression)) < (0.25 if variety else 0.0)

    def _pick(self, options, fixed_index: int = 0):
        return options[int(self.rng.integers(len(options)))] if self.variety else options[fixed_index]

    def _time(self, bar: int, step: float) -> float:
        """Seconds of a 16th-note step in a bar, with swing on the off-beat 8ths and a little human timing."""
        swung = step + (self.swing * 2 if int(step) % 4 == 2 and step == int(step) else 0.0)
        return bar * self.bar + swung * self.step + float(self.rng.normal(0, 0.006))

    def degree_pitch(self, degree: int, base: int) -> int:
        octave, idx = divmod(degree, 7)
        return base + 12 * octave + self.key + self.scale[idx]

    def chord(self, bar: int, half: int = 0) -> list[int]:
        """Pitches (octave 0) of the chord at a bar (or half bar with 2 chords per bar)."""
        slot = (bar * self.chords_per_bar + half) % len(self.progression)
        degree = self.progression[slot]
        steps = (0, 2, 4, 6) if self.sevenths[slot] else (0, 2, 4)
        return [self.degree_pitch(degree + i, 0) for i in steps]

    def sections(self) -> list[tuple[float, float, frozenset[str]]]:
        """Sections of 2 or 4 bars, each with the stems that play in it."""
        out, bar = [], 0
        while bar < self.n_bars:
            length = int(self.rng.choice([2, 4]))
            active = {"other"} if self.rng.random() < 0.95 or not self.variety else set()
            for stem, p in (("drums", 0.8), ("bass", 0.85), ("vocals", 0.95)):
                if self.rng.random() < p or not self.variety:
                    active.add(stem)
            if not active - {"vocals"}:
                active.add("other")
            out.append((bar * self.bar, (bar + length) * self.bar, frozenset(active)))
            bar += length
        return out

    def compose(self) -> Score:
        sections = self.sections()
        parts = [self.drums(sections), self.bass(sections), *self.other(sections)]
        vocals = self.vocals(sections)
        parts.extend(self.fills(sections, vocals[0] if vocals else None))
        for part in parts:
            part.notes = [n for n in part.notes if 0 <= n.start < self.seconds]
        for line in vocals:
            line.notes = [n for n in line.notes if 0 <= n.start < self.seconds]
        return Score(self.seconds, self.tempo, parts, [v for v in vocals if v.notes], sections)

    def _bars(self, sections, stem: str):
        """``(bar index, last bar of its section)`` for every bar in which ``stem`` plays."""
        for start, end, active in sections:
            if stem in active:
                first, last = round(start / self.bar), round(end / self.bar) - 1
                for bar in range(first, last + 1):
                    yield bar, bar == last

    def drums(self, sections) -> Part:
        groove = GROOVES[self._pick(list(GROOVES))]
        kit = int(self._pick([0, 0, 8, 16, 24, 25, 32, 40]))
        part = Part("drums", kit, drums=True)
        rng = self.rng
        for bar, last in self._bars(sections, "drums"):
            if any(abs(bar * self.bar - s) < 1e-6 for s, _, _ in sections) and rng.random() < 0.6:
                part.notes.append(Note(self._time(bar, 0), 1.0, CRASH, int(rng.integers(90, 118))))
            for pitch, pattern in groove.items():
                for step, mark in enumerate(pattern):
                    if last and step >= 12 and pitch != KICK:
                        continue
                    if mark == "." and not (pitch == SNARE and rng.random() < 0.04):
                        continue
                    velocity = {"x": 105, "o": 72, ".": 40}[mark] + int(rng.integers(-12, 12))
                    part.notes.append(Note(self._time(bar, step), 0.1, pitch, int(np.clip(velocity, 20, 127))))
            if last:
                toms = TOMS if rng.random() < 0.5 else (SNARE,) * 6
                for i, step in enumerate(range(12, 16)):
                    part.notes.append(Note(self._time(bar, step), 0.1, toms[i % len(toms)], int(rng.integers(80, 120))))
        return part

    def bass(self, sections) -> Part:
        rng = self.rng
        style = self._pick(BASS_STYLES)
        part = Part("bass", int(self._pick(BASSES, 1)))
        kicks = [i for i, m in enumerate(GROOVES["rock"][KICK]) if m != "."]
        for bar, _ in self._bars(sections, "bass"):
            for half in range(self.chords_per_bar):
                root = 28 + (self.chord(bar, half)[0] % 12)
                fifth = root + 7
                span = range(half * 16 // self.chords_per_bar, (half + 1) * 16 // self.chords_per_bar)
                hits = {
                    "roots": [(s, root, 2) for s in span if s % 2 == 0],
                    "root_fifth": [(s, root if s % 8 == 0 else fifth, 4) for s in span if s % 4 == 0],
                    "kick": [(s, root, 2) for s in span if s in kicks],
                    "sustain": [(span[0], root, len(span))],
                    "octave": [(s, root + 12 * (s // 2 % 2), 2) for s in span if s % 2 == 0],
                    "walk": [
                        (s, self.degree_pitch(int(rng.integers(0, 5)), 28) if s % 8 else root, 4)
                        for s in span
                        if s % 4 == 0
                    ],
                }[style]
                for step, pitch, length in hits:
                    start = self._time(bar, step)
                    part.notes.append(Note(start, length * self.step * 0.9, pitch, int(rng.integers(85, 115))))
        return part

    def _voicing(self, tones: list[int], previous: list[int] | None, low: int = 52) -> list[int]:
        """The inversion of ``tones`` above ``low`` closest to the previous voicing."""
        options = []
        for inv in range(len(tones)):
            rotated = tones[inv:] + [t + 12 for t in tones[:inv]]
            base = low + (rotated[0] - low) % 12
            options.append([base + (t - rotated[0]) for t in rotated])
        if previous is None:
            return options[int(self.rng.integers(len(options)))]
        return min(options, key=lambda v: abs(np.mean(v) - np.mean(previous)))

    def other(self, sections) -> list[Part]:
        rng = self.rng
        roles = ["comp"] + ([r for r in ("pad", "pluck") if rng.random() < 0.55] if self.variety else ["pad"])
        parts = []
        for role in roles:
            program = int(self._pick({"comp": COMP, "pad": PADS, "pluck": PLUCKS}[role]))
            part = Part("other", program, pan=int(rng.integers(24, 104)) if self.variety else 64)
            style = self._pick(COMP_STYLES)
            previous = None
            for bar, _ in self._bars(sections, "other"):
                for half in range(self.chords_per_bar):
                    previous = voicing = self._voicing(self.chord(bar, half), previous, low=48 if role == "pad" else 55)
                    first, count = half * 16 // self.chords_per_bar, 16 // self.chords_per_bar
                    self._play_chord(part, role, style, bar, first, count, voicing)
            parts.append(part)
        return parts

    def _play_chord(
        self, part: Part, role: str, style: str, bar: int, first: int, count: int, voicing: list[int]
    ) -> None:
        rng = self.rng

        def add(step: float, length_steps: float, pitches, velocity: int, stagger: float = 0.0) -> None:
            start = self._time(bar, step)
            for i, pitch in enumerate(pitches):
                vel = int(np.clip(velocity + rng.integers(-8, 8), 20, 127))
                part.notes.append(Note(start + i * stagger, length_steps * self.step * 0.95, pitch, vel))

        if role == "pad":
            add(first, count, voicing, 60)
        elif role == "pluck":
            for i, step in enumerate(range(first, first + count, 2)):
                add(step, 3, [(voicing + [voicing[0] + 12])[i % (len(voicing) + 1)] + 12], 70)
        elif style == "block":
            for step in range(first, first + count, 8):
                add(step, 7, voicing, 80)
        elif style == "broken":
            for i, step in enumerate(range(first, first + count, 2)):
                add(step, 4, [voicing[i % len(voicing)]], 78)
        elif style == "strum":
            for step in range(first, first + count, 2):
                add(step, 2, voicing if step % 4 == 0 else voicing[::-1], 85 if step % 4 == 0 else 65, 0.012)
        else:
            for step in range(first + 2, first + count, 4):
                add(step, 1.5, voicing, 82)

    def vocals(self, sections) -> list[VocalLine]:
        """The lead line (phrases with rests, syllables from one language) and maybe a harmony and a double."""
        rng = self.rng
        female = bool(rng.random() < 0.5) if self.variety else True
        language = self._pick(self.languages)
        variants = FEMALE_VARIANTS if female else MALE_VARIANTS
        voice = f"{language}+{self._pick(variants, 2)}"
        centre = (67 if female else 57) + (int(rng.integers(-3, 4)) if self.variety else 0)
        words = LYRICS[language].split()
        lead = VocalLine(voice, pan=float(rng.uniform(-0.15, 0.15)))
        harmony = VocalLine(f"{language}+{self._pick(variants, 0)}", gain_db=float(rng.uniform(-9, -4)))
        harmony.pan, harmony.breaths = float(rng.choice([-1, 1]) * rng.uniform(0.3, 0.7)), False
        double = VocalLine(voice, gain_db=float(rng.uniform(-10, -5)), pan=-lead.pan, breaths=False)
        double.detune_cents, double.delay = float(rng.uniform(-12, 12)), float(rng.uniform(0.012, 0.035))
        degree = int(rng.integers(0, 5))
        lo, hi = centre - 7, centre + 8
        for bar, _ in self._bars(sections, "vocals"):
            if rng.random() < 0.1:  # a rest bar between phrases
                continue
            step = float(rng.choice([0, 0, 0, 1, 2]))
            end = float(rng.choice([14, 15, 16]))
            notes = []
            while step < end:
                length = float(rng.choice([1, 2, 2, 2, 3, 4, 4, 6, 8]))
                degree += int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
                pitch = self.degree_pitch(degree, 0) + 12 * ((centre - self.key) // 12)
                if pitch < lo or pitch > hi:
                    degree -= 7 * int(np.sign(pitch - centre))
                    pitch = self.degree_pitch(degree, 0) + 12 * ((centre - self.key) // 12)
                start = self._time(bar, step)
                dur = min(length, end - step) * self.step
                notes.append(Syllable(start, dur, float(pitch), words[int(rng.integers(len(words)))]))
                step += length
            lead.notes.extend(notes)
            if self.variety and rng.random() < 0.25:
                for n in notes:
                    third = self._diatonic_third(int(n.pitch))
                    harmony.notes.append(Syllable(n.start + 0.01, n.dur, float(third), n.text))
            if self.variety and rng.random() < 0.2:
                double.notes.extend(Syllable(n.start, n.dur, n.pitch, n.text) for n in notes)
        return [lead, harmony, double]

    def _diatonic_third(self, pitch: int) -> int:
        """The scale note a third above (the nearest scale tone 3 or 4 semitones up)."""
        for up in (4, 3):
            if (pitch + up - self.key) % 12 in self.scale:
                return pitch + up
        return pitch + 3

    def fills(self, sections, lead: VocalLine | None) -> list[Part]:
        """Short lead-instrument phrases in the vocal register in the gaps between sung phrases (``other``)."""
        rng = self.rng
        if not self.variety or rng.random() < 0.4:
            return []
        part = Part("other", int(self._pick(LEADS)), pan=int(rng.integers(30, 98)))
        sung = sorted((n.start, n.start + n.dur) for n in (lead.notes if lead else []))
        centre = 62 + int(rng.integers(0, 10))
        for bar, _ in self._bars(sections, "other"):
            t0, t1 = bar * self.bar, (bar + 1) * self.bar
            if any(a < t1 and b > t0 for a, b in sung) or rng.random() < 0.5:
                continue
            degree = int(rng.integers(0, 7))
            step = float(rng.choice([0, 2, 4]))
            while step < 14:
                length = float(rng.choice([1, 2, 2, 3, 4]))
                degree += int(rng.choice([-2, -1, 1, 2]))
                pitch = self.degree_pitch(degree % 7, 0) + 12 * (centre // 12)
                part.notes.append(Note(self._time(bar, step), length * self.step, pitch, int(rng.integers(70, 105))))
                step += length
        return [part] if part.notes else []
