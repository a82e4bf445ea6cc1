import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sepkit.data.augment import FrequencyMask, Repitch, SourceAugment
from sepkit.data.cache import TrackCache
from sepkit.data.datamodule import FixedSegments, SeparationDataModule, TrainSegments, group_targets
from sepkit.data.sources.base import TrackInfo
from sepkit.data.sources.musdb import musdb_source
from sepkit.data.split import SPLITS, cap_tracks, official_split, random_split
from sepkit.errors import SepkitError

AUGMENT = {"gain": [0.25, 1.25], "channel_swap": True, "sign_flip": True, "remix": True, "freq_mask": None}


VOCALS_ACC = [(0,), (1, 2, 3)]
FOUR = [(0,), (1,), (2,), (3,)]


def make_dm(data_root, cache_dir, **kw) -> SeparationDataModule:
    args = {
        "source": musdb_source,
        "root": str(data_root),
        "exclude": [],
        "sample_rate": 8192,
        "targets": ["vocals", "accompaniment"],
        "channels": 2,
        "split": "random",
        "split_seed": 42,
        "split_fractions": [0.7, 0.15, 0.15],
        "n_songs": None,
        "segment_seconds": 2.0,
        "samples_per_track": 3,
        "val_segment_seconds": 2.0,
        "val_segments_per_track": 2,
        "batch_size": 2,
        "num_workers": 0,
        "cache_dir": str(cache_dir),
        "augment": AUGMENT,
    }
    args.update(kw)
    return SeparationDataModule(**args)


def fake_tracks(n: int) -> list[TrackInfo]:
    subsets = ["train" if i % 3 else "test" for i in range(n)]
    return [TrackInfo(f"Artist {i:02d} - Song", s, 44100, 44100, 2, (f"/x/{i}",)) for i, s in enumerate(subsets)]


def test_random_split_is_deterministic_disjoint_and_70_15_15() -> None:
    tracks = fake_tracks(40)
    a, b = random_split(tracks, seed=1), random_split(list(reversed(tracks)), seed=1)
    assert a == b
    assert [len(a[s]) for s in SPLITS] == [28, 6, 6]
    names = [t.name for s in SPLITS for t in a[s]]
    assert len(names) == len(set(names)) == 40
    assert random_split(tracks, seed=2) != a


def test_n_songs_caps_and_too_few_fails() -> None:
    assert len(cap_tracks(fake_tracks(20), 5, seed=0)) == 5
    assert cap_tracks(fake_tracks(20), 5, seed=0) == cap_tracks(fake_tracks(20), 5, seed=0)
    with pytest.raises(SepkitError, match="too few"):
        random_split(cap_tracks(fake_tracks(20), 2, seed=0), seed=0)


def test_official_split_needs_musdb_names() -> None:
    tracks = fake_tracks(9)
    split = official_split(tracks, [tracks[1].name])
    assert [t.name for t in split["valid"]] == [tracks[1].name]
    assert all(t.subset == "test" for t in split["test"])
    with pytest.raises(SepkitError, match="split=random"):
        official_split(tracks, [])


def test_source_augment_keeps_ranges() -> None:
    torch.manual_seed(0)
    src = torch.ones(4, 2, 100)
    out = SourceAugment(gain=(0.25, 1.25))(src)
    assert ((out.abs() >= 0.25 - 1e-6) & (out.abs() <= 1.25 + 1e-6)).all()
    assert (out < 0).any() and (out > 0).any()
    swapped = SourceAugment(gain=None, sign_flip=False)(
        torch.stack([torch.zeros(100), torch.ones(100)])[None].repeat(8, 1, 1)
    )
    assert (swapped[:, 0].sum(-1) > 0).any() and (swapped[:, 1].sum(-1) > 0).any()


def test_treble_augment_shelves_each_source_above_its_frequency_only() -> None:
    def band_db(x: torch.Tensor, y: torch.Tensor, low: float, high: float) -> torch.Tensor:
        freqs = torch.fft.rfftfreq(x.shape[-1], 1 / 44100)
        keep = (freqs >= low) & (freqs < high)
        power = [torch.fft.rfft(z, dim=-1).abs().square()[..., keep].sum((-1, -2)) for z in (x, y)]
        return 10 * torch.log10(power[1] / power[0])

    torch.manual_seed(0)
    src = torch.randn(6, 2, 44100) * 0.1
    fixed = SourceAugment(gain=None, channel_swap=False, sign_flip=False, treble=(9.0, 9.0), sample_rate=44100)
    out = fixed(src)
    assert torch.allclose(band_db(src, out, 14000, 22050), torch.full((6,), 9.0), atol=0.2)
    assert band_db(src, out, 0, 2000).abs().max() < 0.1  # the band the networks see is left alone
    drawn = SourceAugment(gain=None, sign_flip=False, treble=(-9.0, 9.0), sample_rate=44100)(src)
    drawn = band_db(src, drawn, 14000, 22050)
    assert drawn.min() < -1 and drawn.max() > 1 and drawn.abs().max() < 9.2  # one draw per source, in range
    for bad, needle in (({"treble": (3.0, -3.0)}, "low <= high"), ({"treble": (-3.0, 3.0)}, "treble_hz")):
        with pytest.raises(SepkitError, match=needle):
            SourceAugment(**bad)


def test_repitch_moves_a_tone_by_the_drawn_interval() -> None:
    rate, segment = 8000, 8000
    torch.manual_seed(0)
    repitch = Repitch((2.0, 2.0))
    speed = repitch.draw()
    assert abs(float(speed) - 2 ** (2 / 12)) < 2 ** (2 / 12) * (2 ** (5 / 1200) - 1)  # within 5 cents
    t = torch.arange(Repitch.span(segment, speed)) / rate
    out = Repitch.apply(torch.sin(2 * torch.pi * 440 * t)[None], speed, segment)
    assert out.shape == (1, segment)
    peak = torch.fft.rfft(out[0]).abs().argmax().item() * rate / segment
    assert abs(peak - 440 * float(speed)) <= 1.0  # the tone is now B4, one bin of 1 Hz
    drawn = {float(Repitch((-3.0, 3.0)).draw()) for _ in range(50)}
    assert min(drawn) < 0.95 and max(drawn) > 1.05
    assert 2 ** (-3 / 12) - 1e-2 <= min(drawn) <= max(drawn) <= 2 ** (3 / 12) + 1e-2
    for bad in ((2.0, -2.0), (-13.0, 0.0), (1.0,)):
        with pytest.raises(SepkitError, match="repitch"):
            Repitch(bad)


def test_repitched_items_are_sums_that_keep_a_song_in_time() -> None:
    rng = np.random.default_rng(0)
    same = rng.standard_normal((1, 1, 3000)).astype(np.float32)
    audio = [np.concatenate([same, same]) for _ in range(4)]  # both stems of a song the same signal
    torch.manual_seed(0)
    plain = TrainSegments(audio, [(0,), (1,)], 1000, 10, augment=None, remix=False, repitch=Repitch((-3.0, 3.0)))
    for i in range(len(plain)):
        mixture, targets, length = plain[i]
        assert targets.shape == (2, 1, 1000) and length == 1000
        torch.testing.assert_close(targets[0], targets[1])  # one speed for the song's stems
        torch.testing.assert_close(mixture, targets.sum(0))
    remixed = TrainSegments(audio, [(0,), (1,)], 1000, 10, augment=None, remix=True, repitch=Repitch((-3.0, 3.0)))
    assert any(not torch.allclose(remixed[i][1][0], remixed[i][1][1]) for i in range(len(remixed)))
    short = TrainSegments([a[..., :600] for a in audio], [(0,), (1,)], 1000, 5, None, False, Repitch((-3.0, 3.0)))
    lengths = {short[i][2] for i in range(len(short))}
    assert all(480 <= n <= 720 for n in lengths) and len(lengths) > 1  # 600 samples played faster or slower
    for i in range(len(short)):
        _, targets, n = short[i]
        assert targets[..., n + 12 :].abs().max() < 1e-3 and targets[..., n - 20 : n - 2].abs().max() > 0.05


def test_frequency_mask_masks_the_same_bands_everywhere() -> None:
    torch.manual_seed(0)
    mix = torch.rand(3, 2, 64, 10) + 0.1
    targets = torch.rand(3, 2, 2, 64, 10) + 0.1
    m_mix, m_tgt = FrequencyMask(max_width=20, count=2)(mix, targets)
    zero_mix = m_mix == 0
    assert zero_mix.any()
    for t in range(2):
        assert torch.equal(m_tgt[:, t] == 0, zero_mix)


def test_training_items_are_sums_of_augmented_sources(tiny_root, cache_dir) -> None:
    dm = make_dm(tiny_root, cache_dir)
    dm.prepare_data()
    dm.setup("fit")
    torch.manual_seed(0)
    for i in range(len(dm.train_set)):
        mixture, targets, length = dm.train_set[i]
        assert mixture.shape == (2, 2 * 8192) and targets.shape == (2, 2, 2 * 8192) and length == 2 * 8192
        torch.testing.assert_close(mixture, targets.sum(0))
    mix, tgt, lengths = next(iter(dm.train_dataloader()))
    assert mix.shape == (2, 2, 16384) and tgt.shape == (2, 2, 2, 16384) and lengths.tolist() == [16384, 16384]


def test_remix_draws_sources_from_other_tracks() -> None:
    audio = [np.full((4, 2, 1000), float(i), dtype=np.float32) for i in range(5)]
    torch.manual_seed(0)
    ds = TrainSegments(audio, FOUR, 100, 20, augment=None, remix=True)
    mixed = [len(set(ds[i][1][:, 0, 0].tolist())) > 1 for i in range(len(ds))]
    assert any(mixed)
    plain = TrainSegments(audio, FOUR, 100, 20, augment=None, remix=False)
    assert all(len(set(plain[i][1][:, 0, 0].tolist())) == 1 for i in range(len(plain)))


def test_validation_segments_are_fixed_and_audible(tiny_root, cache_dir) -> None:
    dm = make_dm(tiny_root, cache_dir)
    dm.setup("fit")
    first = [dm.valid_set[i] for i in range(len(dm.valid_set))]
    again = make_dm(tiny_root, cache_dir)
    again.setup("fit")
    for (m1, t1, _), (m2, t2, _) in zip(first, [again.valid_set[i] for i in range(len(again.valid_set))], strict=True):
        assert torch.equal(m1, m2) and torch.equal(t1, t2)
    for _, targets, _ in first:
        assert targets.pow(2).mean(dim=(1, 2)).min() > 0


def test_silent_targets_are_skipped_in_validation() -> None:
    audio = np.random.default_rng(0).standard_normal((4, 2, 400)).astype(np.float32)
    audio[0, :, :200] = 0  # vocals silent in the first half
    ds = FixedSegments([audio], VOCALS_ACC, 100, 10)
    assert [offset for _, offset in ds.index] == [200, 300]


def test_split_lists_written(tiny_root, cache_dir, tmp_path) -> None:
    dm = make_dm(tiny_root, cache_dir)
    dm.write_splits(tmp_path / "splits.json")
    text = (tmp_path / "splits.json").read_text()
    assert all(t.name in text for t in musdb_source(tiny_root).tracks())


def test_four_stem_targets(tiny_root, cache_dir) -> None:
    dm = make_dm(tiny_root, cache_dir, targets=["vocals", "drums", "bass", "other"])
    dm.setup("fit")
    mixture, targets, _ = dm.valid_set[0]
    assert targets.shape[0] == 4
    torch.testing.assert_close(mixture, targets.sum(0))


def test_other_sample_rates_are_resampled(tmp_path, tiny_root, cache_dir) -> None:
    src = next((tiny_root / "train").iterdir())
    root = tmp_path / "musdb22k"
    for sub in ("train", "test"):
        dst = root / sub / f"Low Rate - {sub}"
        dst.mkdir(parents=True)
        for f in src.glob("*.wav"):
            audio, rate = sf.read(f)
            sf.write(dst / f.name, audio[::2], rate // 2)
    source = musdb_source(root)
    (track,) = [t for t in source.tracks() if t.subset == "train"]
    (audio,) = TrackCache(cache_dir, 8192).load(source, [track])
    assert audio.shape[0] == 4 and audio.shape[1] == 2
    assert abs(audio.shape[-1] - 8 * 8192) <= 2


def test_stem_mp4_is_read_through_musdb(tmp_path, cache_dir) -> None:
    stempeg = pytest.importorskip("stempeg")
    example = Path(stempeg.example_stem_path())
    root = tmp_path / "musdb18"
    for sub in ("train", "test"):
        (root / sub).mkdir(parents=True)
        shutil.copy(example, root / sub / example.name)
    source = musdb_source(root)
    assert type(source).__name__ == "MusdbStemSource"
    tracks = source.tracks()
    assert [t.subset for t in tracks] == ["train", "test"]
    (audio,) = TrackCache(cache_dir, 8192).load(source, tracks[:1])
    assert audio.shape[:2] == (4, 2) and audio.shape[-1] > 8192
    assert np.abs(audio).max() > 0.01
    stems, mixture = source.read_track(tracks[0])  # one ffmpeg call for mixture and stems
    np.testing.assert_allclose(stems, source.read(tracks[0]), atol=1e-6)
    np.testing.assert_allclose(mixture, source.read_mixture(tracks[0]), atol=1e-6)


def test_mismatched_stems_are_skipped_with_a_warning(tmp_path, tiny_root, caplog) -> None:
    root = tmp_path / "broken"
    shutil.copytree(tiny_root / "train", root / "train")
    bad = next((root / "train").iterdir())
    audio, rate = sf.read(bad / "vocals.wav")
    sf.write(bad / "vocals.wav", audio[:-100], rate)
    names = [t.name for t in musdb_source(root).tracks()]
    assert bad.name not in names and len(names) >= 1
    assert bad.name in caplog.text and "differ in length" in caplog.text


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"split": "bogus"}, "data.split"),
        ({"targets": ["voice"]}, "data.targets"),
        ({"channels": 3}, "data.channels"),
        ({"num_workers": -1}, "data.num_workers"),
        ({"segment_seconds": 0}, "segment_seconds"),
        ({"batch_size": 0}, "batch_size"),
        ({"root": None}, "data.root"),
    ],
)
def test_bad_values_fail_clearly(tiny_root, tmp_path, kw, match) -> None:
    with pytest.raises(SepkitError, match=match):
        make_dm(tiny_root, tmp_path, **kw)


def test_missing_and_non_musdb_roots(tmp_path, cache_dir) -> None:
    with pytest.raises(SepkitError, match="does not exist"):
        make_dm(tmp_path / "nope", cache_dir).prepare_data()
    (tmp_path / "junk").mkdir()
    with pytest.raises(SepkitError, match="neither train/ nor test/"):
        make_dm(tmp_path / "junk", cache_dir).prepare_data()
    (tmp_path / "junk" / "train").mkdir()
    with pytest.raises(SepkitError, match="no tracks"):
        make_dm(tmp_path / "junk", cache_dir).prepare_data()


def test_segments_longer_than_tracks_are_padded_and_flagged(tiny_root, cache_dir, caplog) -> None:
    caplog.set_level("INFO")
    dm = make_dm(tiny_root, cache_dir, segment_seconds=10.0, val_segment_seconds=10.0)
    dm.setup("fit")
    assert "shorter than a 10.0-s segment" in caplog.text
    mixture, targets, length = dm.train_set[0]
    assert mixture.shape[-1] == 10 * 8192 and length == 8 * 8192
    assert mixture[:, length:].abs().max() == 0 and mixture[:, :length].abs().max() > 0
    _, _, val_length = dm.valid_set[0]
    assert val_length == 8 * 8192


def test_group_targets() -> None:
    src = torch.arange(4.0).view(4, 1, 1).expand(4, 2, 3)
    out = group_targets(src, VOCALS_ACC)
    assert out[0, 0, 0] == 0 and out[1, 0, 0] == 1 + 2 + 3
