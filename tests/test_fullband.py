"""Full-band stems: the masks meet the song at its own rate, so nothing above the network's band is
lost and the stems of covering targets add up to the input at any rate."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sepkit.fullband import (
    BandedExtension,
    LearnedExtension,
    interpolate,
    knot_positions,
    masks_on_grid,
    stft_at_rate,
)
from sepkit.inference import SeparationEngine
from sepkit.separation import stream_file
from sepkit.separator import build_separator
from tests.conftest import MASK_VARIANTS, ROOT, model_overrides
from tests.test_inference import identity_separator, small_separator

ZOO = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml")) + list(MASK_VARIANTS)
RATES = [22050, 44100, 48000]


def zoo_separator(name: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=model_overrides(name))
    torch.manual_seed(0)
    return build_separator(OmegaConf.to_container(cfg.model, resolve=True), ["vocals", "accompaniment"]).eval()


def band_energy(x: np.ndarray, rate: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / rate)
    return float(spectrum[..., (freqs >= low) & (freqs < high)].sum())


@pytest.mark.parametrize("model", ZOO)
def test_stems_sum_to_the_input_for_every_covering_model(model: str) -> None:
    engine = SeparationEngine(zoo_separator(model), device="cpu")
    assert engine.separator.covers_mixture
    rng = np.random.default_rng(0)
    for rate in RATES:
        for channels in (1, 2):
            mix = torch.from_numpy(rng.standard_normal((channels, int(rate * 3.3))).astype(np.float32) * 0.2)
            stems = engine.separate(mix, rate)
            total = sum(stems.values())
            assert total.shape == mix.shape
            error = float(((total - mix) ** 2).sum() / (mix**2).sum())
            assert 10 * np.log10(error) < -80, (model, rate, channels, 10 * np.log10(error))


@pytest.mark.parametrize(("rate", "tone"), [(22050, 10000), (44100, 12000), (48000, 12000)])
def test_a_12_khz_tone_reaches_the_stems(rate: int, tone: int) -> None:
    """Far above the paper U-Net's 4 kHz band, up to the song's Nyquist."""
    t = np.arange(int(rate * 4.0)) / rate
    mix = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * tone * t)
    mix = torch.from_numpy(np.stack([mix, mix]).astype(np.float32))
    # the identity model passes everything to vocals: the whole band must arrive there
    vocals = SeparationEngine(identity_separator(), device="cpu").separate(mix, rate)["vocals"].numpy()
    assert band_energy(vocals, rate, tone - 500, tone + 500) > 0.999 * band_energy(
        mix.numpy(), rate, tone - 500, tone + 500
    )
    # a real network: the 12 kHz tone lands in the stems (their sum keeps all of it)
    stems = SeparationEngine(small_separator(), device="cpu").separate(mix, rate)
    upper = [band_energy(s.numpy(), rate, tone - 500, tone + 500) for s in stems.values()]
    assert max(upper) > 0.05 * band_energy(mix.numpy(), rate, tone - 500, tone + 500)
    error = sum(s.numpy() for s in stems.values()) - mix.numpy()
    assert band_energy(error, rate, tone - 500, tone + 500) < 1e-8 * band_energy(
        mix.numpy(), rate, tone - 500, tone + 500
    )


@pytest.mark.parametrize("shifts", [0, 2])
def test_streamed_equals_whole_file_at_44_1_khz(tmp_path, shifts: int) -> None:
    rate = 44100
    audio = (np.random.default_rng(0).standard_normal((rate * 14, 2)) * 0.2).astype(np.float32)
    path = tmp_path / "song.wav"
    sf.write(path, audio, rate, subtype="FLOAT")
    engine = SeparationEngine(small_separator(), block_seconds=3.0, batch_size=1, shifts=shifts)
    blocks = list(stream_file(engine, path))
    assert len(blocks) > 1
    streamed = np.concatenate([b["accompaniment"] for b in blocks])
    whole = engine.separate(torch.from_numpy(audio.T.copy()), rate)["accompaniment"].numpy().T
    assert streamed.shape == audio.shape and np.abs(streamed - whole).max() < 1e-5


def test_the_model_rate_is_the_old_road() -> None:
    """At the network's own rate the full-band grid is its grid: the stems are the separator's."""
    sep = small_separator()
    mix = torch.randn(2, sep.hop_length * 60) * 0.3
    engine = SeparationEngine(sep, device="cpu")
    engine.chunk = engine.stride = mix.shape[-1] * 2  # one tile
    stems = engine.separate(mix, sep.sample_rate)
    with torch.no_grad():
        spec = sep.encode(mix[None])
        masks = sep.estimate_masks(spec.abs())
        masks = masks / masks.sum(1, keepdim=True).clamp_min(1e-8)
        expected = sep.decode(sep.apply_masks(masks, spec), mix.shape[-1])[0]
    torch.testing.assert_close(stems["vocals"], expected[0], atol=1e-5, rtol=0)


def test_stft_at_rate_keeps_frame_duration_and_bin_spacing() -> None:
    assert stft_at_rate(1024, 768, 8192, 8192) == (1024, 768)
    for model, rate in ((8192, 44100), (16000, 44100), (16000, 48000), (8192, 22050)):
        n_fft, hop = stft_at_rate(1024, 768, model, rate)
        assert n_fft % 2 == 0 and hop <= n_fft
        assert 0.97 < (rate / n_fft) / (model / 1024) <= 1  # Hz per bin: as fine as the model's, or finer
        assert abs(hop / rate - 768 / model) < 0.5 / rate  # seconds per frame


def test_masks_on_grid_interpolate_in_frequency_and_time() -> None:
    model_grid, grid = (8000, 1000, 500), (16000, 2000, 1000)  # same Hz per bin and frame duration
    freqs = torch.arange(101, dtype=torch.float64) * 8.0  # covered bins: 0..800 Hz
    frames = torch.arange(7, dtype=torch.float64)
    masks = (freqs[:, None] / 1000 + frames[None] / 100).float()[None]  # linear in both
    fill = torch.full((1, 1, 7), 0.25)
    fill_hz = torch.tensor([101 * 8.0])  # one knot just above the covered band: a fixed rule
    out = masks_on_grid(masks, fill, fill_hz, model_grid, grid, 7)
    assert out.shape == (1, 1001, 7)
    torch.testing.assert_close(out[0, :101], masks[0], atol=1e-6, rtol=0)
    assert (out[0, 101:] == 0.25).all()  # above the covered band: the extension rule's mask
    half_hop = masks_on_grid(masks, fill, fill_hz, model_grid, (16000, 2000, 500), 13)
    torch.testing.assert_close(half_hop[0, 10, 1::2], (masks[0, 10, :-1] + masks[0, 10, 1:]) / 2)
    assert interpolate(torch.tensor([0.0, 1.0]), torch.tensor([-3.0, 0.5, 9.0]), 0).tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("rate", [16000, 44100])
def test_wiener_stems_add_up_too(rate: int) -> None:
    engine = SeparationEngine(small_separator(), device="cpu", wiener_iterations=1, shifts=1)
    mix = torch.randn(2, int(rate * 3.1)) * 0.2
    total = sum(engine.separate(mix, rate).values())
    assert 10 * torch.log10(((total - mix) ** 2).sum() / (mix**2).sum()) < -80


def test_knots_above_the_covered_band() -> None:
    knots = torch.tensor([0.0, 10.0, 20.0, 40.0], dtype=torch.float64)
    freqs = torch.tensor([-5.0, 0.0, 5.0, 20.0, 30.0, 90.0], dtype=torch.float64)
    assert knot_positions(freqs, knots).tolist() == [0.0, 0.0, 0.5, 2.0, 2.5, 3.0]
    masks = torch.zeros(1, 4, 3)  # 4 covered bins at 0, 1000, 2000, 3000 Hz (model: 8000 Hz, n_fft 8)
    fill = torch.stack([torch.full((3,), 0.2), torch.full((3,), 0.6)], -2)[None]  # knots at 6 and 10 kHz
    out = masks_on_grid(masks, fill, torch.tensor([6000.0, 10000.0]), (8000, 8, 4), (32000, 32, 16), 3)
    bins = dict(zip((torch.arange(17) * 1000).tolist(), out[0, :, 0].tolist(), strict=True))
    assert bins[3000] == 0 and bins[6000] == pytest.approx(0.2) and bins[8000] == pytest.approx(0.4)
    assert bins[10000] == pytest.approx(0.6) and bins[16000] == pytest.approx(0.6)


def test_learned_extension_starts_as_the_edge_rule_and_learns() -> None:
    ext = LearnedExtension(n_targets=2, low_hz=4000.0, high_hz=22050.0, bands=5)
    covered = torch.rand(3, 2, 2, 64, 9) * 0.98 + 0.01
    top = covered[..., -8:, :].mean(-2, keepdim=True)
    torch.testing.assert_close(ext(covered), top.expand(-1, -1, -1, 5, -1), atol=1e-5, rtol=0)
    assert float(ext.knots_hz[0]) == pytest.approx(4000.0) and float(ext.knots_hz[-1]) == pytest.approx(22050.0)
    target = torch.full((3, 2, 2, 5, 9), 0.9)
    optimizer = torch.optim.Adam(ext.parameters(), lr=0.1)
    first = None
    for _ in range(50):
        loss = (ext(covered) - target).abs().mean()
        first = first if first is not None else float(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < 0.2 * first


def test_a_learned_extension_is_saved_and_reloaded(tmp_path) -> None:
    from sepkit.checkpoint import load_separator, separator_checkpoint
    from tests.test_separator import PAPER

    torch.manual_seed(0)
    sep = build_separator({**PAPER, "mask_extension": "learned"}, ["vocals", "accompaniment"]).eval()
    with torch.no_grad():
        sep.extender.bias.add_(torch.randn_like(sep.extender.bias))
    torch.save(separator_checkpoint(sep, {}), tmp_path / "m.ckpt")
    again = load_separator(tmp_path / "m.ckpt")
    mix = torch.randn(2, 44100 * 3) * 0.2
    one, two = (SeparationEngine(s, device="cpu").separate(mix, 44100) for s in (sep, again))
    assert torch.equal(one["vocals"], two["vocals"])
    assert 10 * torch.log10(((one["vocals"] + one["accompaniment"] - mix) ** 2).sum() / (mix**2).sum()) < -80


def tone_magnitude(hz: float, rate: int = 44100, n_fft: int = 2048, gain: float = 1.0) -> torch.Tensor:
    """``(1, 1, freq, frames)`` magnitude of a tone at ``hz`` over quiet noise."""
    torch.manual_seed(0)
    t = torch.arange(rate) / rate
    wav = gain * (torch.sin(2 * torch.pi * hz * t) + 0.001 * torch.randn_like(t))
    window = torch.hann_window(n_fft)
    return torch.stft(wav, n_fft, n_fft // 4, window=window, return_complex=True).abs()[None, None]


def test_banded_extension_reads_the_mixtures_upper_band() -> None:
    ext = BandedExtension(n_targets=2, low_hz=4000.0, high_hz=24000.0, bands=6)
    levels = ext.band_levels(tone_magnitude(12000.0), 44100 / 2048)  # (1, 1, bands, frames)
    loud = int(((ext.edges_hz[:-1] <= 12000) & (ext.edges_hz[1:] > 12000)).nonzero())
    others = [k for k in range(6) if k != loud]
    assert float(levels[0, 0, loud].mean()) > float(levels[0, 0, others].max()) + 1.0  # 30 dB and more above
    louder = ext.band_levels(tone_magnitude(12000.0, gain=10.0), 44100 / 2048)
    torch.testing.assert_close(louder, levels, atol=1e-3, rtol=0)  # the song's gain does not matter
    # bands above a spectrogram's Nyquist read as silent: the lowest level there is
    low_rate = ext.band_levels(tone_magnitude(3000.0, rate=16000, n_fft=1024), 16000 / 1024)
    assert float(low_rate[0, 0, -1].max()) == -3.0


def test_banded_extension_starts_as_the_edge_rule_and_learns_from_the_band_levels() -> None:
    """Masks that follow the mixture's upper band, frame by frame: a mask-only extension cannot learn them."""
    torch.manual_seed(0)
    ext = BandedExtension(n_targets=1, low_hz=4000.0, high_hz=22050.0, bands=4)
    covered = torch.full((4, 1, 1, 32, 40), 0.5)
    levels = torch.rand(4, 1, 4, 40) * 2 - 1
    torch.testing.assert_close(ext(covered, levels), torch.full((4, 1, 1, 4, 40), 0.5), atol=1e-6, rtol=0)
    target = (levels[:, None] > 0).float() * 0.8 + 0.1  # loud band: 0.9, quiet: 0.1
    optimizer = torch.optim.Adam(ext.parameters(), lr=0.02)
    first = None
    for _ in range(150):
        loss = (ext(covered, levels) - target).abs().mean()
        first = first if first is not None else float(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first == pytest.approx(0.4, abs=0.01) and float(loss) < 0.1


@pytest.mark.parametrize("rate", RATES)
def test_a_banded_extension_keeps_the_sums_and_reloads(tmp_path, rate: int) -> None:
    from sepkit.checkpoint import load_separator, separator_checkpoint
    from tests.test_separator import PAPER

    torch.manual_seed(0)
    sep = build_separator({**PAPER, "mask_extension": "banded"}, ["vocals", "accompaniment"]).eval()
    with torch.no_grad():
        for p in sep.extender.mix.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    torch.save(separator_checkpoint(sep, {}), tmp_path / "m.ckpt")
    again = load_separator(tmp_path / "m.ckpt")
    mix = torch.randn(2, rate * 3) * 0.2
    one, two = (SeparationEngine(s, device="cpu").separate(mix, rate) for s in (sep, again))
    assert torch.equal(one["vocals"], two["vocals"])
    assert 10 * torch.log10(((one["vocals"] + one["accompaniment"] - mix) ** 2).sum() / (mix**2).sum()) < -80
    # its masks above the network's band differ from a mask-only extension's: it reads the mixture
    edge = build_separator({**PAPER, "mask_extension": "edge"}, ["vocals", "accompaniment"]).eval()
    edge.load_state_dict({k: v for k, v in sep.state_dict().items() if not k.startswith("extender")})
    plain = SeparationEngine(edge, device="cpu").separate(mix, rate)
    assert band_energy((one["vocals"] - plain["vocals"]).numpy(), rate, 6000, rate / 2) > 1e-3 * band_energy(
        mix.numpy(), rate, 6000, rate / 2
    )


def test_full_band_training_learns_the_band_above(tmp_path, tiny_root, cache_dir) -> None:
    """data.sample_rate=44100: the network sees 8192 Hz, the loss every bin up to 22.05 kHz."""
    import json

    from omegaconf import open_dict

    from sepkit.checkpoint import load_separator
    from sepkit.training import train
    from tests.conftest import TINY_RUN

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.root_dir={tmp_path}",
                f"paths.cache_dir={cache_dir}",
                f"data.root={tiny_root}",
                *TINY_RUN,
                "data.sample_rate=44100",
                "model.mask_extension=learned",
                "logger=none",
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    assert train(cfg) is not None
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["global_steps"] == 4 and np.isfinite(summary["best"]["val/si_sdr"])
    separator = load_separator(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert separator.sample_rate == 8192 and separator.extender.bias.abs().sum() > 0  # it moved: it learnt
    mix = torch.randn(2, 44100 * 3) * 0.2
    stems = SeparationEngine(separator, device="cpu").separate(mix, 44100)
    assert 10 * torch.log10(((sum(stems.values()) - mix) ** 2).sum() / (mix**2).sum()) < -80


def test_the_full_band_gpu_recipe_runs_on_the_cpu(tmp_path, tiny_root, cache_dir) -> None:
    """experiment=fullband_gpu, shrunk: four stems at 44.1 kHz, stereo, the extension learnt."""
    from tests.conftest import train_shrunk_recipe

    narrow = ["model.net.base_channels=4", "model.net.levels=2"]
    separator = train_shrunk_recipe("fullband_gpu", narrow, tmp_path, tiny_root, cache_dir)
    assert separator.targets == ["vocals", "drums", "bass", "other"] and separator.mask_extension == "banded"
    mix = torch.randn(2, 44100 * 2) * 0.2
    stems = SeparationEngine(separator, device="cpu").separate(mix, 44100)
    assert 10 * torch.log10(((sum(stems.values()) - mix) ** 2).sum() / (mix**2).sum()) < -80
