"""The TFC-TDF U-Net (model=tfc_tdf): complex input, frequency-wise fully connected layers, the zoo's stages."""

from __future__ import annotations

import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.models.tfc_tdf import TFCTDFNet
from sepkit.separator import Separator


def small(n_freq: int = 100, levels: int = 2, **kwargs) -> TFCTDFNet:
    torch.manual_seed(0)
    return TFCTDFNet(2, 2, n_freq=n_freq, channels=4, growth=4, levels=levels, bottleneck=4, **kwargs)


@pytest.mark.parametrize(("n_freq", "n_frames"), [(100, 37), (64, 64), (7, 5)])
def test_masks_for_its_bins_at_any_length(n_freq: int, n_frames: int) -> None:
    net = small(n_freq)
    masks = net(torch.randn(3, 4, n_freq, n_frames))  # real and imaginary parts of two channels
    assert masks.shape == (3, 2, 2, n_freq, n_frames)
    assert masks.min() >= 0 and masks.max() <= 1


def test_it_sees_the_phase() -> None:
    """The same magnitudes with other phases give other masks: what a magnitude network cannot tell apart."""
    net = small().eval()
    magnitude = torch.rand(1, 2, 100, 16) + 0.1
    phases = [torch.rand(1, 2, 100, 16) * 6.28 for _ in range(2)]
    masks = [net(torch.cat([magnitude * p.cos(), magnitude * p.sin()], dim=1)) for p in phases]
    assert (masks[0] - masks[1]).abs().max() > 1e-3


def test_tdf_layers_connect_distant_bins() -> None:
    """Even with one level (convolutions alone would reach a few bins), the mask of the lowest bin
    depends on the highest: the frequency-wise fully connected layers."""
    net = small(n_freq=96, levels=1).eval()
    x = torch.randn(1, 4, 96, 8, requires_grad=True)
    net(x)[..., 0, :].sum().backward()
    assert x.grad[:, :, 95].abs().sum() > 0


def test_gradients_reach_every_parameter() -> None:
    net = small()
    net(torch.randn(2, 4, 100, 32)).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrong_sizes_fail_clearly() -> None:
    with pytest.raises(SepkitError, match="n_freq=3"):
        TFCTDFNet(2, 2, n_freq=3, levels=2)
    with pytest.raises(SepkitError, match="sized for 100 bins"):
        small()(torch.randn(1, 4, 90, 16))


def test_the_separator_feeds_it_the_complex_spectrogram() -> None:
    separator = separator_of().eval()
    mixture = torch.randn(2, 2, 16000)
    spec = separator.encode(mixture)
    x = separator.mask_input(spec)
    assert x.shape == (2, 4, 128, spec.shape[-1])
    torch.testing.assert_close(torch.complex(x[:, :2], x[:, 2:]), spec)
    stems = separator(mixture)
    assert stems.shape == (2, 2, 2, 16000)
    assert torch.isfinite(stems).all()


# Complex masks (model.net.mask=complex): a complex ratio mask that turns each bin's phase as well.


def separator_of(net_kwargs: dict | None = None, mask_extension: str = "edge") -> Separator:
    torch.manual_seed(0)
    return Separator(
        lambda n_targets, audio_channels: TFCTDFNet(
            n_targets, audio_channels, n_freq=64, channels=4, growth=4, levels=2, **(net_kwargs or {})
        ),
        ["vocals", "accompaniment"],
        16000,
        254,
        64,
        64,
        32,
        mask_extension,
    )


@pytest.mark.parametrize(("n_freq", "n_frames"), [(100, 37), (7, 5)])
def test_complex_masks_at_any_length(n_freq: int, n_frames: int) -> None:
    net = small(n_freq, mask="complex")
    x = torch.randn(3, 4, n_freq, n_frames)
    masks = net(x)
    assert masks.dtype == torch.complex64 and masks.shape == (3, 2, 2, n_freq, n_frames)
    parts = net.mask_parts(x)  # the real form ONNX carries: (2, ...) real and imaginary parts
    torch.testing.assert_close(torch.complex(parts[0], parts[1]), masks)
    assert masks.imag.abs().max() > 0 and masks.real.min() < 0  # linear: not confined to [0, 1]
    net(x).abs().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_a_complex_mask_learns_a_phase_turn_a_magnitude_mask_cannot() -> None:
    """The target is the mixture turned by a quarter period in every bin (times i). A magnitude mask
    keeps the mixture's phase, so no mask in [0, 1] gets closer than the mixture's own energy; the
    complex mask learns the turn."""
    from sepkit.losses import SpectrogramMSE

    loss_fn = SpectrogramMSE()
    torch.manual_seed(1)
    spec = torch.complex(torch.randn(2, 2, 64, 16), torch.randn(2, 2, 64, 16))
    targets = torch.stack([1j * spec, -1j * spec], dim=1)
    floors = {}
    for kind in ("magnitude", "complex"):
        sep = separator_of({"mask": kind})
        optimiser = torch.optim.Adam(sep.parameters(), lr=3e-2)
        for _ in range(40):
            masks = sep.estimate_masks(sep.mask_input(spec))
            loss = loss_fn(masks, sep.loss_spectrogram(spec), sep.loss_spectrogram(targets))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            masks = sep.estimate_masks(sep.mask_input(spec))
            floors[kind] = float(SpectrogramMSE()(masks, spec, targets) / spec.abs().square().mean())
    # judged on complex spectrograms for both (what the waveforms hear): |m X - i X|^2 = (m^2 + 1) |X|^2
    assert floors["magnitude"] > 0.99  # for any real mask m; the best is m = 0, the error the mixture's energy
    assert floors["complex"] < 0.1, floors


def test_the_complex_losses_compare_complex_values() -> None:
    from sepkit.losses import SpectrogramL1, SpectrogramMSE

    mix = torch.complex(torch.ones(1, 1, 2, 3), torch.zeros(1, 1, 2, 3))
    targets = mix.unsqueeze(1)
    turn = torch.full((1, 1, 1, 2, 3), 1j)
    assert float(SpectrogramMSE()(turn, mix, targets)) == pytest.approx(2.0)  # |i - 1|^2
    assert float(SpectrogramL1()(turn, mix, targets)) == pytest.approx(2**0.5)
    assert float(SpectrogramMSE()(turn.abs(), mix.abs(), targets.abs())) == 0.0  # magnitudes cannot tell


def test_complex_masks_through_the_separator_stages() -> None:
    sep = separator_of({"mask": "complex"}).eval()
    mixture = torch.randn(1, 2, 16000) * 0.3
    with torch.no_grad():
        for rule in ("edge", "mean", "zero", "one"):
            sep.mask_extension = rule
            masks = sep.estimate_masks(sep.mask_input(sep.encode(mixture)))
            assert masks.is_complex() and masks.shape[-2] == 128  # all bins, 64 seen
            parts = sep.estimate_mask_parts(sep.mask_input(sep.encode(mixture)))
            torch.testing.assert_close(torch.complex(parts[0], parts[1]), masks)
            modulus = masks[..., :64, :].abs().clamp(max=1.0)  # the band above passes at most the mixture
            above = {"edge": modulus[..., -1:, :], "mean": modulus.mean(-2, keepdim=True)}
            expected = above.get(rule, torch.full_like(masks[..., 64:, :].real, float(rule == "one")))
            torch.testing.assert_close(masks[..., 64:, :], expected.expand_as(masks[..., 64:, :]).to(masks.dtype))
        # shared so that the stems add up at the song's rate: with Wiener (on the masks' modulus) every
        # stem comes from the shared masks (without it the last stem is the mixture less the others)
        song = torch.randn(1, 2, 44100) * 0.3
        for iterations in (0, 1):
            stems = sep.separate_at(song, 44100, wiener_iterations=iterations)
            assert torch.isfinite(stems).all()
            error = (stems.sum(1) - song).square().sum() / song.square().sum()
            assert 10 * torch.log10(error) < -80, (iterations, error)


def test_complex_masks_refuse_what_needs_magnitudes() -> None:
    from sepkit.losses import MaskL1, WithWaveformSNR
    from sepkit.system import SeparationSystem

    with pytest.raises(SepkitError, match="mask_extension=learned"):
        separator_of({"mask": "complex"}, mask_extension="learned")
    masks = torch.ones(1, 2, 2, 4, 3, dtype=torch.complex64)
    with pytest.raises(SepkitError, match="mask_l1"):
        MaskL1()(masks, torch.ones(1, 2, 4, 3), torch.ones(1, 2, 2, 4, 3))
    for loss in (MaskL1(), WithWaveformSNR(MaskL1())):  # refused when the run is built, before any data
        with pytest.raises(SepkitError, match="mask_l1"):
            SeparationSystem(separator_of({"mask": "complex"}), loss, torch.optim.Adam)
    with pytest.raises(SepkitError, match="model.net.mask='phase'"):
        small(mask="phase")
    with pytest.raises(SepkitError, match="mask_activation='tanh'"):
        small(mask="complex", mask_activation="tanh")


def test_the_gpu_recipe_trains_complex_masks_on_the_cpu(tmp_path, tiny_root, cache_dir) -> None:
    """experiment=tfc_tdf_gpu, shrunk: four stems at 44.1 kHz, complex masks, spectral MSE on complex
    values plus the waveform SNR; the checkpoint brings its complex masks back."""
    from sepkit.inference import SeparationEngine
    from tests.conftest import NARROW, train_shrunk_recipe

    separator = train_shrunk_recipe("tfc_tdf_gpu", NARROW["tfc_tdf"], tmp_path, tiny_root, cache_dir)
    assert separator.complex_masks and separator.targets == ["vocals", "drums", "bass", "other"]
    mix = torch.randn(2, 44100 * 2) * 0.2
    stems = SeparationEngine(separator, device="cpu").separate(mix, 44100)
    assert 10 * torch.log10(((sum(stems.values()) - mix) ** 2).sum() / (mix**2).sum()) < -80
