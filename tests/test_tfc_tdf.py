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
    separator = Separator(
        lambda n_targets, audio_channels: TFCTDFNet(
            n_targets, audio_channels, n_freq=64, channels=4, growth=4, levels=2
        ),
        ["vocals", "accompaniment"],
        16000,
        254,
        64,
        64,
        32,
        "edge",
    ).eval()
    mixture = torch.randn(2, 2, 16000)
    spec = separator.encode(mixture)
    x = separator.mask_input(spec)
    assert x.shape == (2, 4, 128, spec.shape[-1])
    torch.testing.assert_close(torch.complex(x[:, :2], x[:, 2:]), spec)
    stems = separator(mixture)
    assert stems.shape == (2, 2, 2, 16000)
    assert torch.isfinite(stems).all()
