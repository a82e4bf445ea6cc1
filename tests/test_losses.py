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


def test_spectrogram_snr_counts_every_example_the_same() -> None:
    from sepkit.losses import SpectrogramSNR

    torch.manual_seed(0)
    mix = torch.randn(2, 1, 2, 16, 10, dtype=torch.complex64).squeeze(1)  # (batch, channels, freq, frames)
    targets = torch.stack([0.3 * mix, 0.7 * mix], dim=1)
    loss = SpectrogramSNR(max_snr=30.0)
    masks = torch.full((2, 2, 2, 16, 10), 0.5, dtype=torch.complex64)
    # 0.5 for a target that is 0.3 of the mixture: error energy 0.2² against 0.3², each plus the
    # ceiling's floor, 30 dB under the mixture's energy; 0.7: 0.2² against 0.7²
    floor = 1e-3
    expected = 10 * torch.log10(torch.tensor([(0.04 + floor) / (0.09 + floor), (0.04 + floor) / (0.49 + floor)]))
    expected = expected.mean()
    torch.testing.assert_close(loss(masks, mix, targets), expected, atol=1e-3, rtol=0)

    # an example 100 times louder weighs the same (the MSE would weigh it 10^4 times more)
    louder = mix.clone()
    louder[0] *= 100
    torch.testing.assert_close(loss(masks, louder, torch.stack([0.3 * louder, 0.7 * louder], 1)), expected)

    # perfect masks: only the floor is left as error
    perfect = torch.stack([torch.full_like(masks[:, 0], 0.3), torch.full_like(masks[:, 0], 0.7)], 1)
    ceiling = 10 * torch.log10(torch.tensor([floor / (0.09 + floor), floor / (0.49 + floor)])).mean()
    torch.testing.assert_close(loss(perfect, mix, targets), ceiling, atol=1e-3, rtol=0)

    # frames weighted 0 (padding) are left out: garbage there changes nothing
    weight = torch.ones(2, 1, 1, 1, 10)
    weight[..., 7:] = 0
    spoiled = targets.clone()
    spoiled[..., 7:] = 99.0
    torch.testing.assert_close(loss(masks, mix, spoiled, weight), loss(masks, mix, targets, weight))

    # a silent target stays finite and is penalised for anything sounding
    silent = torch.zeros_like(targets).requires_grad_()
    masks = masks.clone().requires_grad_()
    value = loss(masks, mix, silent)
    value.backward()
    assert torch.isfinite(value) and value.item() > 0 and torch.isfinite(masks.grad).all()
