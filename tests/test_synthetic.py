import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sepkit.data.generated import MANIFEST, STEMS
from sepkit.data.synthetic import Song, SyntheticConfig, ensure_dataset, main
from sepkit.errors import SepkitError


def test_layout_and_mixture_is_sum_of_stems(tiny_root) -> None:
    folders = sorted(p for sub in ("train", "test") for p in (tiny_root / sub).iterdir())
    assert len(folders) == 6
    assert all(" - " in f.name for f in folders)
    for folder in folders:
        stems = {n: sf.read(folder / f"{n}.wav", dtype="int16")[0].astype(np.int32) for n in (*STEMS, "mixture")}
        info = sf.info(folder / "mixture.wav")
        assert info.samplerate == 44100 and info.channels == 2 and info.subtype == "PCM_16"
        assert np.array_equal(stems["mixture"], sum(stems[n] for n in STEMS))
        for name in STEMS:
            assert np.abs(stems[name]).max() > 100, f"{folder.name}/{name} is silent"


def test_songs_are_deterministic_and_distinct() -> None:
    a = Song(7, 3.0, 44100).render()
    b = Song(7, 3.0, 44100).render()
    c = Song(8, 3.0, 44100).render()
    for name in STEMS:
        assert np.array_equal(a[name], b[name])
    assert not np.allclose(a["vocals"], c["vocals"])


def test_vocals_have_rests_between_phrases() -> None:
    vocals = Song(1, 12.0, 44100).vocals()[:, 0]
    frames = vocals[: len(vocals) // 2205 * 2205].reshape(-1, 2205)  # 50 ms frames
    rms = np.sqrt((frames**2).mean(axis=1))
    assert (rms < 1e-3 * rms.max()).mean() > 0.05, "no rests between phrases"
    assert (rms > 0.1 * rms.max()).mean() > 0.3, "too little singing"


def test_regenerated_when_parameters_change(tmp_path) -> None:
    root = tmp_path / "synth"
    ensure_dataset(root, SyntheticConfig(tracks=3, seconds=1.0))
    before = (root / MANIFEST).stat().st_mtime_ns
    ensure_dataset(root, SyntheticConfig(tracks=3, seconds=1.0))
    assert (root / MANIFEST).stat().st_mtime_ns == before  # reused
    ensure_dataset(root, SyntheticConfig(tracks=4, seconds=1.0))
    assert json.loads((root / MANIFEST).read_text())["tracks"] == 4
    assert sum(1 for sub in ("train", "test") for _ in (root / sub).iterdir()) == 4


def test_runs_started_together_generate_once(tmp_path, caplog) -> None:
    """A parallel sweep's first runs share the folder: one generates, the others wait and reuse it."""
    root, start = tmp_path / "synth", threading.Barrier(3)

    def run() -> Path:
        start.wait()
        return ensure_dataset(root, SyntheticConfig(tracks=3, seconds=1.0), workers=1)

    caplog.set_level(logging.INFO, logger="sepkit.data.generated")
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: run(), range(3)))
    assert results == [root] * 3
    assert sum(r.getMessage().startswith("generating") for r in caplog.records) == 1
    assert sum(1 for sub in ("train", "test") for _ in (root / sub).iterdir()) == 3


def test_foreign_folder_is_never_overwritten(tmp_path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / "precious.txt").write_text("keep me")
    with pytest.raises(SepkitError, match="not made by sepkit"):
        ensure_dataset(root, SyntheticConfig(tracks=3, seconds=1.0))
    assert (root / "precious.txt").read_text() == "keep me"


def test_cli(tmp_path, capsys) -> None:
    main(["--out", str(tmp_path / "toy"), "--tracks", "3", "--seconds", "1"])
    assert "wrote 3 tracks" in capsys.readouterr().out
    assert (tmp_path / "toy" / "train").is_dir()


def test_regeneration_refuses_when_the_user_added_files(tmp_path) -> None:
    root = tmp_path / "synth"
    ensure_dataset(root, SyntheticConfig(tracks=3, seconds=1.0))
    (root / "train" / "My Own Song").mkdir()
    with pytest.raises(SepkitError, match="did not write"):
        ensure_dataset(root, SyntheticConfig(tracks=4, seconds=1.0))
    assert (root / "train" / "My Own Song").is_dir()
