import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.separator import MASK_EXTENSIONS, build_separator, extend_masks

PAPER = {
    "_target_": "sepkit.separator.Separator",
    "name": "unet_paper",
    "sample_rate": 8192,
    "n_fft": 1024,
    "hop_length": 768,
    "max_bins": 512,
    "patch_frames": 128,
    "mask_extension": "edge",
    "net": {"_target_": "sepkit.models.unet_paper.PaperUNet", "_partial_": True, "channels": [4, 8, 8, 8, 8, 8]},
}


@pytest.fixture
def separator():
    torch.manual_seed(0)
    return build_separator(PAPER, ["vocals", "accompaniment"]).eval()


def test_extension_rules() -> None:
    masks = torch.tensor([[0.2, 0.4], [0.6, 0.8]])  # (bins=2, frames=2)
    assert torch.equal(extend_masks(masks, 4, "edge")[2:], masks[-1:].expand(2, 2))
    assert torch.allclose(extend_masks(masks, 3, "mean")[2], torch.tensor([0.4, 0.6]))
    assert extend_masks(masks, 3, "zero")[2].abs().sum() == 0
    assert torch.equal(extend_masks(masks, 3, "one")[2], torch.ones(2))
    assert torch.equal(extend_masks(masks, 2, "edge"), masks)
    assert set(MASK_EXTENSIONS) == {"edge", "mean", "zero", "one", "learned", "banded"}


def test_forward_shapes_and_masks(separator) -> None:
    mix = torch.randn(2, 2, 8192 * 3 + 5)
    est = separator(mix)
    assert est.shape == (2, 2, 2, mix.shape[-1])
    spec = separator.encode(mix)
    masks = separator.estimate_masks(spec.abs())
    assert masks.shape == (2, 2, 2, 513, spec.shape[-1])
    assert torch.equal(masks[..., 512, :], masks[..., 511, :])  # edge rule for the Nyquist bin


def test_masks_of_one_reconstruct_the_mixture(separator) -> None:
    class Ones(torch.nn.Module):
        def forward(self, mag):
            return torch.ones(mag.shape[0], 1, *mag.shape[1:])

    separator.net = Ones()
    separator.targets = ["vocals"]
    mix = torch.randn(1, 2, 20000)
    assert torch.allclose(separator(mix)[:, 0], mix, atol=1e-5)


def test_bad_mask_extension_is_rejected() -> None:
    with pytest.raises(SepkitError, match="mask_extension"):
        build_separator({**PAPER, "mask_extension": "wrap"}, ["vocals"])


def test_training_goes_through_the_separators_mask_stage(separator) -> None:
    from sepkit.losses import SpectrogramL1
    from sepkit.system import SeparationSystem

    calls = []
    original = separator.estimate_masks

    def half_masks(mag):  # an override, as a subclass would write it
        calls.append(mag.shape)
        return 0.5 * original(mag)

    separator.estimate_masks = half_masks
    system = SeparationSystem(separator, SpectrogramL1(), torch.optim.Adam)
    mixture = torch.randn(2, 2, 8192)
    targets = torch.stack([0.3 * mixture, 0.7 * mixture], dim=1)
    system._spectral_loss(mixture, targets, None, augment=False).backward()
    assert calls and calls[0][-2] == separator.max_bins
    assert all(p.grad is not None for p in separator.net.parameters() if p.requires_grad)
