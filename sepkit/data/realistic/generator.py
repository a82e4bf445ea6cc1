"""``data=synthetic_real``: MUSDB18-HQ-shaped songs with sampled instruments, sung phonemes and a mix.

Each song is a procedural score (:mod:`.score`) whose drums, bass and other parts are played by
General MIDI samples through fluidsynth (:mod:`.instruments`), whose vocals are spoken syllables
re-pitched onto the melody (:mod:`.voice`), mixed with EQ, compression, width, automation, a shared
room and a bus limiter (:mod:`.mixing`). Every stem is rendered on its own, and ``mixture.wav`` is
exactly the sum of the four 16-bit stems. The same seed gives the same bytes. Usage::

    python -m sepkit.data.realistic --out data/real --tracks 20 --seconds 30
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sepkit.data import generated
from sepkit.data.generated import STEMS, Generator, write_stems
from sepkit.data.realistic.instruments import render_additive, render_fluidsynth
from sepkit.data.realistic.mixing import mix
from sepkit.data.realistic.score import LYRICS, Composer, Score
from sepkit.data.realistic.tools import require_fluidsynth, resolve_phonemes
from sepkit.data.realistic.voice import render_vocals
from sepkit.data.synthetic import track_names
from sepkit.errors import SepkitError

VERSION = "realistic-2"  # 2: singing in ~80 % of the time, as in real songs (was ~40 %)


@dataclass(frozen=True)
class RealisticConfig:
    """Parameters that fully determine a generated dataset; the switches are the ablation's ingredients.

    Args:
        instruments: ``soundfont`` (fluidsynth + FluidR3_GM) or ``additive`` (sepkit's sine tones).
        phonemes: ``espeak`` (spoken syllables, falls back to ``formant`` without espeak-ng) or ``formant``.
        reverb: scale of every stem's reverb send (0 or false: dry; 1 or true: the full sends,
            vocals 0.15-0.5 of a 0.3-2.2 s room). The default 0.3 transferred better to real
            singing than 1 (docs/studies/sim2real.md).
        compression, eq: the mixing stages (compression includes the bus limiter).
        variety: random keys, tempi, grooves, sounds, singers, harmonies and fills (false: one of each).
        languages: espeak-ng voices the lyrics are drawn from (keys of ``score.LYRICS``).
        soundfont: another General MIDI ``.sf2`` (null: Debian's FluidR3_GM).
    """

    tracks: int = 30
    seconds: float = 20.0
    sample_rate: int = 44100
    seed: int = 0
    test_every: int = 3
    instruments: str = "soundfont"
    phonemes: str = "espeak"
    reverb: float = 0.3
    compression: bool = True
    eq: bool = True
    variety: bool = True
    languages: tuple[str, ...] = ("en-us", "cmn-latn-pinyin", "es", "it", "de", "fr-fr", "ja")
    soundfont: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(self.languages))
        if not isinstance(self.reverb, int | float) or not 0 <= self.reverb <= 4:  # bools are ints
            raise SepkitError(
                f"data.source.generate.reverb={self.reverb}: a send scale from 0 (dry) to 4 (or true/false)"
            )
        object.__setattr__(self, "reverb", float(self.reverb))  # true/false as 1/0: same manifest, same songs
        unknown = sorted(set(self.languages) - set(LYRICS))
        if unknown or not self.languages:
            raise SepkitError(f"data.source.generate.languages: {unknown or 'empty'}; choose from {sorted(LYRICS)}")
        if self.instruments not in ("soundfont", "additive"):
            raise SepkitError(f"data.source.generate.instruments={self.instruments}: choose soundfont or additive")


def compose(seed: int, cfg: RealisticConfig) -> Score:
    """The score of one song (its own random stream: the switches never change it)."""
    return Composer(np.random.default_rng([seed, 0]), cfg.seconds, cfg.variety, cfg.languages).compose()


def render(score: Score, seed: int, cfg: RealisticConfig) -> dict[str, np.ndarray]:
    """The four mixed stems ``{name: (time, 2)}`` of a score; their sum is the mixture."""
    sr, n = cfg.sample_rate, int(cfg.seconds * cfg.sample_rate)
    stems = {}
    for stem in ("drums", "bass", "other"):
        parts = score.stem_parts(stem)
        if cfg.instruments == "soundfont":
            program, bank = require_fluidsynth(cfg.soundfont)
            stems[stem] = render_fluidsynth(parts, score.tempo, n, sr, program, bank)
        else:
            stems[stem] = render_additive(parts, n, sr, np.random.default_rng([seed, 3]))
    stems["vocals"] = render_vocals(score, n, sr, np.random.default_rng([seed, 1]), cfg.phonemes)
    mixed = mix(
        {name: stems[name] for name in STEMS},
        sr,
        np.random.default_rng([seed, 2]),
        score.sections,
        eq=cfg.eq,
        compression=cfg.compression,
        reverb=cfg.reverb,
    )
    return mixed


def write_track(folder: Path, seed: int, cfg: RealisticConfig) -> None:
    """Compose, render and write one song."""
    write_stems(folder, render(compose(seed, cfg), seed, cfg), cfg.sample_rate)


def names(cfg: RealisticConfig) -> list[tuple[str, str]]:
    """``(subset, "Artist - Title")`` of every track, as the synthetic set names them but by another artist."""
    return [(subset, name.replace("Sepkit Synth", "Sepkit Real", 1)) for subset, name in track_names(cfg)]


REALISTIC = Generator(write_track, names, VERSION)


def resolve(cfg: RealisticConfig) -> RealisticConfig:
    """Check the required programs; replace ``phonemes=espeak`` by ``formant`` without espeak-ng (said once)."""
    if cfg.instruments == "soundfont":
        require_fluidsynth(cfg.soundfont)
    return replace(cfg, phonemes=resolve_phonemes(cfg.phonemes))


def ensure(root: str | Path, cfg: RealisticConfig, workers: int | None = None) -> Path:
    """Generate the dataset into ``root`` unless the manifest there says it is this one already."""
    return generated.ensure_dataset(root, resolve(cfg), REALISTIC, workers)


def main(argv: list[str] | None = None) -> None:
    generated.command(argv, "Generate realistic MUSDB18-HQ-shaped songs.", RealisticConfig, ensure)
