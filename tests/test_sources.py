"""Track sources on tiny generated folders: each layout lists and reads, splits respect a folder's
own test set, short clips train, broken files are named before decoding, and evaluation works on
every layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sepkit.data.cache import TrackCache
from sepkit.data.datamodule import SeparationDataModule
from sepkit.data.sources.aligned import AlignedSource
from sepkit.data.sources.musdb import musdb_hq, musdb_source
from sepkit.data.sources.stereo_split import StereoSplitSource
from sepkit.data.split import SPLITS
from sepkit.errors import SepkitError
from tests.conftest import run_entry

RATE = 8000
NO_AUGMENT = {"gain": None, "channel_swap": False, "sign_flip": False, "remix": False, "freq_mask": None}


def tone(seconds: float, freq: float, seed: int, channels: int = 1) -> np.ndarray:
    """A noisy tone ``(frames, channels)``, distinct per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    mono = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def make_pairs(root: Path, layout: dict[str, list[float]], ext: str = "wav") -> Path:
    """``root/<subset>/<track>/{mixture,vocals}.<ext>``; ``layout`` maps subset → clip lengths."""
    for subset, lengths in layout.items():
        for i, seconds in enumerate(lengths):
            folder = root / subset / f"{subset}_{i:02d}"
            folder.mkdir(parents=True)
            vocals = tone(seconds, 440 + 30 * i, i)
            accompaniment = tone(seconds, 110 + 7 * i, 100 + i)
            sf.write(folder / f"vocals.{ext}", vocals, RATE)
            sf.write(folder / f"mixture.{ext}", vocals + accompaniment, RATE)
    return root


def make_stereo_split(root: Path, layout: dict[str, list[float]]) -> Path:
    """``root/<subset>/<singer>_<i>.wav`` with accompaniment left and voice right (MIR-1K)."""
    for subset, lengths in layout.items():
        (root / subset).mkdir(parents=True)
        for i, seconds in enumerate(lengths):
            pair = np.concatenate([tone(seconds, 110 + 5 * i, 200 + i), tone(seconds, 500 + 20 * i, 300 + i)], axis=1)
            sf.write(root / subset / f"{subset}singer_{i}.wav", pair, RATE)
    return root


def make_hq(root: Path, tracks: int = 2, seconds: float = 1.5) -> Path:
    """A MUSDB18-HQ-shaped folder of 16-bit stereo wavs at 44.1 kHz (as the real one)."""
    rng = np.random.default_rng(0)
    for i in range(tracks):
        folder = root / ("train" if i % 2 == 0 else "test") / f"Artist {i} - Song"
        folder.mkdir(parents=True)
        stems = {s: 0.05 * rng.standard_normal((int(seconds * 44100), 2)) for s in ("vocals", "drums", "bass", "other")}
        for name, audio in stems.items():
            sf.write(folder / f"{name}.wav", audio, 44100, subtype="PCM_16")
        sf.write(folder / "mixture.wav", sum(stems.values()), 44100, subtype="PCM_16")
    return root


def datamodule(source, cache_dir: Path, **kw) -> SeparationDataModule:
    args = {
        "source": source,
        "root": None,
        "exclude": [],
        "sample_rate": RATE,
        "targets": ["vocals", "accompaniment"],
        "channels": 1,
        "split": "folder",
        "split_seed": 1,
        "split_fractions": [0.7, 0.15, 0.15],
        "n_songs": None,
        "segment_seconds": 1.0,
        "samples_per_track": 2,
        "val_segment_seconds": 1.0,
        "val_segments_per_track": 1,
        "batch_size": 2,
        "num_workers": 0,
        "cache_dir": str(cache_dir),
        "augment": {"gain": [0.5, 1.0], "channel_swap": True, "sign_flip": True, "remix": True, "freq_mask": None},
    }
    args.update(kw)
    return SeparationDataModule(**args)


def test_aligned_pairs_give_vocals_and_a_residual_accompaniment(tmp_path) -> None:
    root = make_pairs(tmp_path / "pairs", {"train": [1.0, 1.5]}, ext="flac")
    source = AlignedSource(root, stems={"vocals": "vocals"}, mixture="mixture", residual="accompaniment")
    tracks = source.tracks()
    assert [(t.name, t.subset, t.frames, t.sample_rate, t.channels) for t in tracks] == [
        ("train_00", "train", RATE, RATE, 1),
        ("train_01", "train", int(1.5 * RATE), RATE, 1),
    ]
    stems = source.read(tracks[1], start=100, frames=400)
    assert stems.shape == (2, 1, 400)
    mixture = source.read_mixture(tracks[1], start=100, frames=400)
    np.testing.assert_allclose(stems.sum(0), mixture, atol=1e-6)
    expected = tone(1.5, 470, 1)[100:500, 0]
    np.testing.assert_allclose(stems[0, 0], expected, atol=1e-4)  # flac is 16-bit
    assert source.covers_mixture(["vocals", "accompaniment"])
    assert not source.covers_mixture(["vocals"])
    whole_stems, whole_mixture = source.read_track(tracks[1])  # each file read once
    np.testing.assert_array_equal(whole_stems, source.read(tracks[1]))
    np.testing.assert_array_equal(whole_mixture, source.read_mixture(tracks[1]))


def test_stereo_split_reads_channels_as_mono_stems(tmp_path) -> None:
    root = make_stereo_split(tmp_path / "mir", {"train": [1.0, 2.0]})
    source = StereoSplitSource(root, channels={"accompaniment": 0, "vocals": 1})
    tracks = source.tracks()
    assert [t.name for t in tracks] == ["trainsinger_0", "trainsinger_1"] and tracks[1].channels == 1
    stems = source.read(tracks[1])
    raw, _ = sf.read(tracks[1].files[0], dtype="float32")
    np.testing.assert_array_equal(stems[:, 0], raw.T)
    assert source.target_stems == {"accompaniment": ("accompaniment",), "vocals": ("vocals",)}
    swapped = StereoSplitSource(root, channels={"vocals": 0, "accompaniment": 1})
    np.testing.assert_array_equal(swapped.read(tracks[1])[0, 0], raw[:, 0])


def test_stereo_split_skips_mono_files_by_name(tmp_path, caplog) -> None:
    root = make_stereo_split(tmp_path / "mir", {"train": [1.0]})
    sf.write(root / "train" / "lonely.wav", tone(1.0, 300, 9), RATE)
    names = [t.name for t in StereoSplitSource(root, channels={"accompaniment": 0, "vocals": 1}).tracks()]
    assert names == ["trainsinger_0"]
    assert "lonely" in caplog.text and "channel" in caplog.text


def test_fast_wav_reader_matches_the_musdb_reader(tmp_path) -> None:
    musdb = pytest.importorskip("musdb")
    root = make_hq(tmp_path / "hq")
    ours = musdb_source(root)
    assert type(ours) is AlignedSource  # detected as MUSDB18-HQ, read with soundfile
    theirs = {(t.subset, t.name): t for t in musdb.DB(root=str(root), is_wav=True, subsets=["train", "test"])}
    assert {(t.subset, t.name) for t in ours.tracks()} == set(theirs)
    for track in ours.tracks():
        reference = theirs[(track.subset, track.name)]
        stems = ours.read(track)
        for i, stem in enumerate(ours.stems):
            expected = reference.targets[stem].audio.T.astype(np.float32)
            np.testing.assert_allclose(stems[i], expected, atol=1e-6)
        np.testing.assert_allclose(ours.read_mixture(track), reference.audio.T, atol=1e-6)
        whole_stems, whole_mixture = ours.read_track(track)
        np.testing.assert_array_equal(whole_stems, stems)
        np.testing.assert_allclose(whole_mixture, reference.audio.T, atol=1e-6)


def test_exclude_patterns_drop_tracks(tmp_path) -> None:
    root = make_stereo_split(tmp_path / "mir", {"train": [1.0, 1.0, 1.0]})
    source = StereoSplitSource(root, channels={"accompaniment": 0, "vocals": 1}, exclude=["*_1"])
    assert [t.name for t in source.tracks()] == ["trainsinger_0", "trainsinger_2"]


def test_unknown_target_and_bad_layouts_fail_clearly(tmp_path) -> None:
    root = make_pairs(tmp_path / "pairs", {"train": [1.0]})
    source = AlignedSource(root, stems={"vocals": "vocals"}, mixture="mixture", residual="accompaniment")
    with pytest.raises(SepkitError, match="offers vocals, accompaniment"):
        source.stem_groups(["drums"])
    with pytest.raises(SepkitError, match="needs data.mixture"):
        AlignedSource(root, stems={"vocals": "vocals"}, residual="accompaniment")
    with pytest.raises(SepkitError, match="no usable tracks"):
        AlignedSource(root, stems={"vocals": "voice"}).tracks()
    with pytest.raises(SepkitError, match="does not exist"):
        AlignedSource(tmp_path / "nope", stems=["vocals"]).tracks()
    with pytest.raises(SepkitError, match="channel indices"):
        StereoSplitSource(root, channels={"vocals": -1})


def test_folder_split_never_trains_on_the_test_folder(tmp_path, cache_dir) -> None:
    root = make_pairs(tmp_path / "pairs", {"train": [1.5] * 8, "test": [1.5] * 3})
    source = AlignedSource(root, stems={"vocals": "vocals"}, mixture="mixture", residual="accompaniment")
    dm = datamodule(source, cache_dir)
    dm.setup("fit")
    split = dm.tracks
    test_names = {t.name for t in split["test"]}
    assert test_names == {"test_00", "test_01", "test_02"}
    seen = {t.name for s in ("train", "valid") for t in split[s]}
    assert seen == {f"train_{i:02d}" for i in range(8)} and not seen & test_names
    assert len(split["valid"]) >= 1
    again = datamodule(source, cache_dir)
    again.setup("fit")
    assert [t.name for t in again.tracks["valid"]] == [t.name for t in split["valid"]]


def test_folder_split_uses_a_valid_folder_when_present(tmp_path, cache_dir) -> None:
    root = make_pairs(tmp_path / "pairs", {"train": [1.5] * 3, "valid": [1.5] * 2, "test": [1.5]})
    source = AlignedSource(root, stems={"vocals": "vocals"}, mixture="mixture", residual="accompaniment")
    dm = datamodule(source, cache_dir)
    dm.setup("fit")
    assert [len(dm.tracks[s]) for s in SPLITS] == [3, 2, 1]
    assert {t.subset for t in dm.tracks["valid"]} == {"valid"}


def test_a_short_clip_among_longer_ones_is_padded_and_masked(tmp_path, cache_dir, caplog) -> None:
    caplog.set_level("INFO")
    root = make_pairs(tmp_path / "pairs", {"train": [6.0, 6.0, 2.0, 6.0], "valid": [6.0], "test": [6.0]})
    source = AlignedSource(root, stems={"vocals": "vocals"}, mixture="mixture", residual="accompaniment")
    dm = datamodule(source, cache_dir, segment_seconds=4.0, val_segment_seconds=4.0, augment=NO_AUGMENT)
    dm.setup("fit")
    assert "1 of 4 train track(s) are shorter than a 4.0-s segment" in caplog.text
    items = [dm.train_set[j] for j in range(len(dm.train_set))]
    assert sorted({length for _, _, length in items}) == [2 * RATE, 4 * RATE]
    for mixture, _, length in items:
        assert mixture.shape[-1] == 4 * RATE
        assert mixture[:, length:].abs().sum() == 0 and mixture[:, :length].abs().max() > 0


def test_a_corrupt_file_is_named_before_anything_is_decoded(tmp_path, cache_dir, caplog, monkeypatch) -> None:
    root = make_pairs(tmp_path / "pairs", {"train": [1.5] * 4, "test": [1.5]})
    (root / "train" / "train_01" / "vocals.wav").write_bytes(b"RIFF\x00\x00garbage")
    decoded = []
    monkeypatch.setattr(TrackCache, "load", lambda self, source, tracks: decoded.append(len(tracks)) or [])
    source = AlignedSource(root, stems={"vocals": "vocals"}, mixture="mixture", residual="accompaniment")
    names = [t.name for t in source.tracks()]
    assert decoded == []  # listing read headers only
    assert "train_01" not in names and len(names) == 4
    assert "train_01" in caplog.text and "vocals.wav is unreadable" in caplog.text


def test_cache_decodes_once_and_resamples(tmp_path) -> None:
    root = make_stereo_split(tmp_path / "mir", {"train": [1.0, 2.0]})
    source = StereoSplitSource(root, channels={"accompaniment": 0, "vocals": 1})
    cache = TrackCache(tmp_path / "cache", 16000, channels=1)
    first = cache.load(source, source.tracks())
    assert [a.shape for a in first] == [(2, 1, 16000), (2, 1, 32000)]
    files = sorted((tmp_path / "cache").rglob("*"))
    second = TrackCache(tmp_path / "cache", 16000, channels=1).load(source, source.tracks())
    assert sorted((tmp_path / "cache").rglob("*")) == files
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layout", ["aligned", "stereo_split"])
def test_train_then_evaluate_on_a_custom_folder(tmp_path, cache_dir, layout) -> None:
    """One command line each, as in the README: train (with a 2-s clip among 6-s ones) and evaluate."""
    subsets = {"train": [6.0, 6.0, 2.0, 6.0, 6.0, 6.0, 6.0], "test": [6.0, 6.0]}
    if layout == "aligned":
        root = make_pairs(tmp_path / "data", subsets)
    else:
        root = make_stereo_split(tmp_path / "data", subsets)
    common = [f"paths.root_dir={tmp_path}", f"paths.cache_dir={cache_dir}", f"data={layout}", f"data.root={root}"]
    train = run_entry(
        "train.py",
        *common,
        f"hydra.run.dir={tmp_path}/run",
        "model=unet_simple",
        "model.sample_rate=8000",
        "data.split=folder",
        "data.segment_seconds=4.0",
        "data.val_segment_seconds=4.0",
        "data.samples_per_track=2",
        "data.val_segments_per_track=1",
        "data.batch_size=2",
        "trainer.max_epochs=1",
        "trainer.num_sanity_val_steps=0",
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert "shorter" in train.stderr + train.stdout
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    assert ckpt.is_file()
    out = tmp_path / "eval"
    evaluate = run_entry(
        "evaluate.py", f"ckpt={ckpt}", *common, "split=official", f"hydra.run.dir={out}", "eval.museval=false"
    )
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    text = json.dumps(results)
    assert "test_00" in text or "testsinger_0" in text
    assert "train_0" not in text and "trainsinger" not in text


def test_musdb_hq_and_old_checkpoint_names_resolve(tmp_path) -> None:
    root = make_hq(tmp_path / "hq", tracks=2)
    assert [t.subset for t in musdb_hq(root).tracks()] == ["train", "test"]
    shutil.rmtree(root / "test")
    assert len(musdb_source(root).tracks()) == 1


def test_a_track_with_nan_samples_is_refused_by_name(tmp_path) -> None:
    from sepkit.data.cache import decode_track

    root = make_stereo_split(tmp_path / "mir", {"train": [1.0, 1.0]})
    bad, _ = sf.read(root / "train" / "trainsinger_1.wav", dtype="float32")
    bad[100, 1] = np.nan
    sf.write(root / "train" / "trainsinger_1.wav", bad, RATE, subtype="FLOAT")
    source = StereoSplitSource(root, channels={"accompaniment": 0, "vocals": 1})
    good, broken = source.tracks()
    assert decode_track(source, good, RATE, 1).shape[0] == 2
    with pytest.raises(SepkitError, match="'trainsinger_1'.*NaN"):
        decode_track(source, broken, RATE, 1)
