"""The realistic built-in generator (``data=synthetic_real``): tiny songs of a few seconds."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sepkit.data.generated import MANIFEST, STEMS
from sepkit.data.realistic import RealisticConfig, compose, ensure, render, tools
from sepkit.data.realistic.score import Note, Part, Score, Syllable, VocalLine
from sepkit.data.realistic.voice import analyse
from sepkit.errors import SepkitError
from tests.conftest import shared_dir

ROOT = Path(__file__).resolve().parents[1]


def _missing_system_packages() -> list[str]:
    """The Debian packages the generator's default songs use that this machine lacks."""
    missing = [] if tools.shutil.which("fluidsynth") else ["fluidsynth"]
    missing += [] if tools.SOUNDFONT.is_file() else ["fluid-soundfont-gm"]
    return missing + ([] if tools.espeak() else ["espeak-ng"])


MISSING = _missing_system_packages()
# Songs with sampled instruments and spoken phonemes need the system packages `make train` installs.
needs_sounds = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not installed: sudo apt-get install -y {' '.join(MISSING)}"
)
TINY = RealisticConfig(tracks=2, seconds=3.0, seed=5, test_every=2)
SR = TINY.sample_rate


@pytest.fixture(scope="module")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure(shared_dir(tmp_path_factory, "synthetic_real"), TINY, workers=1)  # made once per run


def _pcm(folder: Path, name: str) -> np.ndarray:
    return sf.read(folder / f"{name}.wav", dtype="int16")[0].astype(np.int32)


@needs_sounds
def test_layout_and_mixture_is_sum_of_stems(real_root: Path) -> None:
    folders = sorted(p for sub in ("train", "test") for p in (real_root / sub).iterdir())
    assert [f.name.split(" - ")[0] for f in folders] == ["Sepkit Real 001", "Sepkit Real 000"]
    for folder in folders:
        info = sf.info(folder / "mixture.wav")
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (44100, 2, "PCM_16", 3 * SR)
        stems = {name: _pcm(folder, name) for name in STEMS}
        assert np.array_equal(_pcm(folder, "mixture"), sum(stems.values()))
        score = compose(TINY.seed * 100_003 + int(folder.name[12:15]), TINY)  # the seed generate() gives it
        plays = {name: any(p.notes for p in score.stem_parts(name)) for name in STEMS}
        plays["vocals"] = any(line.notes for line in score.vocals)
        for name, pcm in stems.items():
            assert (np.abs(pcm).max() > 300) == plays[name], f"{folder.name}/{name}: plays {plays[name]}"
    assert sum(plays.values()) >= 2
    manifest = json.loads((real_root / MANIFEST).read_text())
    assert manifest["generator_version"] == "realistic-2" and manifest["phonemes"] == "espeak"


@needs_sounds
def test_same_seed_same_bytes(real_root: Path, tmp_path: Path) -> None:
    again = ensure(tmp_path / "again", TINY, workers=1)
    files = sorted(p.relative_to(real_root) for p in real_root.rglob("*.wav"))
    assert len(files) == 10
    for rel in files:
        assert (real_root / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = render(compose(TINY.seed + 1, TINY), TINY.seed + 1, TINY)
    assert not np.allclose(other["vocals"][: 3 * SR], sf.read(real_root / files[-1].parent / "vocals.wav")[0])


def _frames_rms(audio: np.ndarray, t0: float, t1: float) -> float:
    return float(np.sqrt(np.mean(audio[int(t0 * SR) : int(t1 * SR)] ** 2)))


def _quantised(stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stems as the 16-bit files would hold them (the scale write_stems uses)."""
    scale = 0.89 * 32767 / np.abs(sum(stems.values())).max()
    return {name: np.round(audio * scale) for name, audio in stems.items()}


def _score(seconds: float = 6.0) -> Score:
    """Drums play 0-1.5 s, piano 2.5-3.5 s, the singer 0.5-1.5 s, no bass."""
    drums = Part("drums", 0, [Note(t, 0.1, p, 110) for t in np.arange(0, 1.5, 0.25) for p in (36, 42)], drums=True)
    piano = Part("other", 0, [Note(2.5, 1.0, p, 100) for p in (60, 64, 67)])
    sung = [Syllable(0.5 + 0.25 * i, 0.25, 64.0 + i, text) for i, text in enumerate(["la", "love", "night", "oh"])]
    return Score(seconds, 120.0, [drums, piano], [VocalLine("en-us+f2", sung)], [(0.0, seconds, frozenset(STEMS))])


@needs_sounds
@pytest.mark.parametrize("reverb", [False, True])
def test_each_stem_sounds_only_where_its_part_plays(reverb: bool) -> None:
    """Every stem follows its notes (see ``_score``), plus the room's tail when there is one."""
    seconds = 6.0
    stems = _quantised(render(_score(seconds), 0, replace(TINY, seconds=seconds, reverb=reverb)))
    tail = 2.6 if reverb else 0.6  # room (up to 2.5 s) or note release + filters
    assert np.abs(stems["bass"]).max() == 0
    assert _frames_rms(stems["drums"], 0.0, 1.5) > 300 and np.abs(stems["drums"][int((1.6 + tail) * SR) :]).max() == 0
    assert np.abs(stems["other"][: int(2.5 * SR)]).max() == 0 and _frames_rms(stems["other"], 2.5, 3.5) > 300
    assert np.abs(stems["vocals"][: int(0.1 * SR)]).max() == 0 and _frames_rms(stems["vocals"], 0.6, 1.5) > 300
    assert np.abs(stems["vocals"][int((1.6 + tail) * SR) :]).max() == 0


@needs_sounds
def test_reverb_is_a_send_scale() -> None:
    """true/false are the full sends and none (the same datasets as before); between them, less room."""
    assert RealisticConfig(reverb=True).reverb == 1.0 and RealisticConfig(reverb=False).reverb == 0.0
    for bad in (-0.5, 10, "lots"):
        with pytest.raises(SepkitError, match="data.source.generate.reverb"):
            RealisticConfig(reverb=bad)
    tails = {}
    for amount in (0.0, 0.3, 1.0):
        vocals = render(_score(), 0, replace(TINY, seconds=6.0, reverb=amount, compression=False))["vocals"]
        tails[amount] = _frames_rms(vocals, 1.6, 1.8) / _frames_rms(vocals, 0.6, 1.5)  # tail against the singing
    assert tails[0.0] < 1e-12 and 1e-3 < tails[0.3] < 0.6 * tails[1.0]


@needs_sounds
@pytest.mark.parametrize(
    "switches",
    [{"instruments": "additive"}, {"phonemes": "formant"}, {"reverb": False, "compression": False, "eq": False}],
    ids=["additive", "formant", "dry"],
)
def test_every_ingredient_switch_renders(switches: dict) -> None:
    cfg = replace(TINY, seconds=2.0, **switches)
    stems = _quantised(render(compose(3, cfg), 3, cfg))
    assert all(np.abs(stems[name]).max() > 100 for name in STEMS), {n: np.abs(s).max() for n, s in stems.items()}


def test_switches_do_not_change_the_song_and_variety_fixes_it() -> None:
    assert compose(4, TINY) == compose(4, replace(TINY, reverb=False, instruments="additive"))
    plain = [compose(seed, replace(TINY, variety=False)) for seed in (1, 2)]
    assert plain[0].tempo == plain[1].tempo == 100.0
    assert [p.program for p in plain[0].parts] == [p.program for p in plain[1].parts]
    assert len({compose(seed, TINY).tempo for seed in range(4)}) == 4


@needs_sounds
def test_espeak_phonemes_are_real_speech() -> None:
    assert tools.espeak(), "espeak-ng is not installed: sudo apt-get install -y espeak-ng (make test installs it)"
    spoken = analyse("love", "en-us+f2", "espeak")
    built = analyse("love", "en-us+f2", "formant")
    assert (spoken[0] > 0).mean() > 0.4 and not np.array_equal(spoken[1][:5], built[1][:5])
    assert analyse("shi4", "cmn-latn-pinyin+m1", "espeak")[1].shape[1] == spoken[1].shape[1]


@needs_sounds
def test_without_espeak_the_formant_voice_is_used(monkeypatch, caplog, tmp_path: Path) -> None:
    real_which = tools.shutil.which
    monkeypatch.setattr(tools.shutil, "which", lambda name: None if name == "espeak-ng" else real_which(name))
    cfg = replace(TINY, tracks=1, seconds=2.0)
    with caplog.at_level(logging.WARNING):
        root = ensure(tmp_path / "no_espeak", cfg, workers=1)
        ensure(tmp_path / "no_espeak_again", cfg, workers=1)
    assert json.loads((root / MANIFEST).read_text())["phonemes"] == "formant"
    assert sum("espeak-ng is not installed" in r.message for r in caplog.records) <= 1
    vocals = _pcm(next((root / "train").iterdir()), "vocals")
    assert np.abs(vocals).max() > 300


@pytest.mark.parametrize("missing", ["fluidsynth", "fluid-soundfont-gm"])
def test_missing_required_package_is_one_clear_error(missing: str, monkeypatch, tmp_path: Path) -> None:
    cfg = TINY
    if missing == "fluidsynth":
        real_which = tools.shutil.which
        monkeypatch.setattr(tools.shutil, "which", lambda name: None if name == "fluidsynth" else real_which(name))
    else:
        monkeypatch.setattr(tools, "SOUNDFONT", tmp_path / "absent.sf2")
    with pytest.raises(SepkitError, match=f"needs {missing}: sudo apt-get install -y fluidsynth fluid-soundfont-gm"):
        ensure(tmp_path / "data", cfg, workers=1)
    assert not (tmp_path / "data").exists()


def test_missing_fluidsynth_from_the_command_line(tmp_path: Path) -> None:
    """The generator's command with no fluidsynth on the PATH: one line, no traceback."""
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "sepkit.data.realistic", "--out", str(tmp_path / "d"), "--tracks", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: data=synthetic_real needs fluidsynth: sudo apt-get install -y fluidsynth fluid-soundfont-gm "
        "(or data.source.generate.instruments=additive for sepkit's own instruments)"
    ]


@cache
def _debian_copyright(package: str) -> str:
    path = Path("/usr/share/doc") / package / "copyright"
    assert path.is_file(), f"{package} is not installed: sudo apt-get install -y {package} (make test installs it)"
    return path.read_text(errors="replace")


@needs_sounds
def test_licenses_listed_and_clean() -> None:
    """Every part the generator uses is listed; required ones are permissive; the Debian files agree."""
    used = {"fluidsynth", "fluid-soundfont-gm", "espeak-ng", "pyworld", "mido", "scipy"}
    assert set(tools.LICENSES) == used
    for name, entry in tools.LICENSES.items():
        if entry["required"]:
            assert str(entry["license"]).startswith(tools.PERMISSIVE), name
    assert "GPL" in str(tools.LICENSES["espeak-ng"]["license"]) and not tools.LICENSES["espeak-ng"]["required"]
    assert "I hereby release Fluid under the MIT license" in _debian_copyright("fluid-soundfont-gm")
    assert "License: LGPL-2.1+" in _debian_copyright("fluidsynth")
    assert "GPL" in _debian_copyright("espeak-ng") and "version 3" in _debian_copyright("espeak-ng")
    assert tools.SOUNDFONT.name == "FluidR3_GM.sf2"  # not default-GM.sf2, which may be GPL-2 TimGM6mb
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    realistic = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["realistic"]
    assert any("pyworld" in d for d in realistic) and any("mido" in d for d in realistic)
    assert "espeak" not in (ROOT / "pyproject.toml").read_text()


def test_generation_workers_run_after_the_parent_used_torch_threads(tmp_path: Path) -> None:
    """train.py prepares data after torch has started its threads; forked workers must not hang."""
    script = f"""
import torch
from sepkit.data.realistic import RealisticConfig, ensure
torch.set_num_threads(2)
torch.nn.functional.conv1d(torch.randn(4, 64, 20000), torch.randn(64, 64, 9))  # starts the thread pool
cfg = RealisticConfig(tracks=2, seconds=3.0, seed=5, instruments="additive", phonemes="formant")
ensure({str(tmp_path / "songs")!r}, cfg, workers=2)
print("generated")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "generated" in done.stdout, done.stderr[-2000:]
    assert len(list((tmp_path / "songs").glob("*/*/mixture.wav"))) == 2
