"""bench.finetune's data handling: MIR-1K split by singer, a small folder drawn from the training clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.finetune import prepare, subsample


def _wavfile(tmp_path: Path) -> Path:
    wavfile = tmp_path / "Wavfile"
    wavfile.mkdir()
    for singer in ("abjones", "amy", "Ani", "stool", "geniusturtle", "yifen"):
        for n in range(3):
            (wavfile / f"{singer}_1_{n:02d}.wav").write_bytes(b"")
    return wavfile


def test_prepare_splits_by_singer_and_never_links_the_reserved_singers(tmp_path):
    data = tmp_path / "mir1k"
    prepare(_wavfile(tmp_path), data)
    singers = {sub: {p.name.split("_")[0] for p in (data / sub).iterdir()} for sub in ("train", "valid", "test")}
    assert singers == {"train": {"geniusturtle", "yifen"}, "valid": {"stool"}, "test": {"Ani"}}


def test_subsample_draws_training_clips_and_keeps_valid_and_test_whole(tmp_path):
    data = tmp_path / "mir1k"
    prepare(_wavfile(tmp_path), data)
    small = subsample(data, 4, tmp_path / "work")
    train = sorted(p.name for p in (small / "train").iterdir())
    assert len(train) == 4 and set(train) <= {p.name for p in (data / "train").iterdir()}
    assert sorted(p.name for p in (small / "test").iterdir()) == sorted(p.name for p in (data / "test").iterdir())
    assert train == sorted(p.name for p in (subsample(data, 4, tmp_path / "again") / "train").iterdir())
    with pytest.raises(SystemExit, match="holds 6 clips"):
        subsample(data, 7, tmp_path / "work")
