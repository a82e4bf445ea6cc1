"""The waveform term of the training loss (issue #14: recipes)."""

from __future__ import annotations

import functools

import torch

from sepkit.losses import SpectrogramMSE, WithWaveformSNR, soft_snr_loss
from sepkit.models.unet_stereo import StereoUNet
from sepkit.separator import Separator
from sepkit.system import SeparationSystem


def test_soft_snr_saturates_at_its_ceiling_and_stays_finite_on_silence() -> None:
    torch.manual_seed(0)
    mixture = torch.randn(2, 2, 4000)
    references = torch.stack([mixture * 0.5, mixture * 0.5], dim=1)
    perfect = soft_snr_loss(references.clone(), references, mixture, max_snr=30.0)
    # error 0: only the floor (30 dB under the mixture, 24 dB under each half) is left
    assert -24.1 < perfect.item() < -23.9
    assert soft_snr_loss(references * 0.9, references, mixture) > perfect

    silent = torch.zeros_like(references)
    estimates = (0.1 * torch.randn_like(references)).requires_grad_()
    loss = soft_snr_loss(estimates, silent, mixture)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(estimates.grad).all()
    assert loss.item() > 0  # anything sounding where the reference is silent is penalised


def test_the_waveform_term_is_the_inference_output() -> None:
    torch.manual_seed(0)
    separator = Separator(
        functools.partial(StereoUNet, bottleneck_dilations=(2, 4)),
        ["vocals", "accompaniment"],
        sample_rate=16000,
        n_fft=512,
        hop_length=256,
        max_bins=64,
        patch_frames=32,
        mask_extension="mean",
    ).eval()
    mixture = torch.randn(2, 2, 8000) * 0.1
    targets = torch.stack([mixture * 0.3, mixture * 0.7], dim=1)
    loss = WithWaveformSNR(SpectrogramMSE(), weight=2.0)
    system = SeparationSystem(separator, loss=loss, optimizer=functools.partial(torch.optim.Adam, lr=1e-3))
    spectral_only = SeparationSystem(separator, SpectrogramMSE(), functools.partial(torch.optim.Adam, lr=1e-3))
    with torch.no_grad():
        total = system._spectral_loss(mixture, targets, None, augment=False)
        spectral = spectral_only._spectral_loss(mixture, targets, None, augment=False)
        expected = 2.0 * soft_snr_loss(separator(mixture), targets, mixture)
    torch.testing.assert_close(total - spectral, expected, rtol=1e-4, atol=1e-4)
    assert abs(expected.item()) > 0.1

    # padded examples: what lies after an example's length is left out of the waveform term
    lengths = torch.tensor([8000, 5000])
    with torch.no_grad():
        padded = system._spectral_loss(mixture, targets, lengths, augment=False)
        padded_spectral = spectral_only._spectral_loss(mixture, targets, lengths, augment=False)
        estimates = separator(mixture)
        estimates[1, ..., 5000:] = 0
        expected = 2.0 * soft_snr_loss(estimates, targets, mixture)
    torch.testing.assert_close(padded - padded_spectral, expected, rtol=1e-4, atol=1e-4)
