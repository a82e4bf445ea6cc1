"""Training losses on magnitude spectrograms.

Every loss takes ``masks (batch, targets, channels, freq, frames)``, the mixture magnitude
``(batch, channels, freq, frames)`` and the target magnitudes ``(batch, targets, channels, freq, frames)``,
restricted to the bins the network sees, and optionally ``weight (batch, 1, 1, 1, frames)``: 1 on
real frames, 0 on the padding of clips shorter than a segment, which the mean leaves out. For
complex masks the mixture and targets are complex spectrograms
(:meth:`sepkit.separator.Separator.loss_spectrogram`) and the spectrogram losses compare complex
values (the error's modulus), so the phase is learnt too.
"""

from __future__ import annotations

import torch
from torch import nn

from sepkit.errors import SepkitError


def weighted_mean(error: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``error`` over the elements where ``weight`` (broadcast to it) is non-zero."""
    if weight is None:
        return error.mean()
    weight = weight.expand_as(error)
    return (error * weight).sum() / weight.sum().clamp_min(1.0)


def squared(error: torch.Tensor) -> torch.Tensor:
    """``|error|²`` of a real or complex tensor."""
    return torch.view_as_real(error).square().sum(-1) if error.is_complex() else error.square()


class SpectrogramL1(nn.Module):
    """L1(mask ⊙ X, Y) of Jansson et al. 2017, with X and Y scaled by the mixture's peak so the loss
    does not depend on the level of the example (magnitudes, or complex values: the error's modulus)."""

    def forward(
        self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        scale = mix.abs().amax(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-8)
        return weighted_mean(torch.abs(masks * (mix / scale).unsqueeze(1) - targets / scale.unsqueeze(1)), weight)


class MaskL1(nn.Module):
    """L1(mask, ideal ratio mask), the ratio mask being ``|Y| / |X|`` clipped to [0, 1]."""

    def forward(
        self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        if masks.is_complex():
            raise SepkitError(
                "loss=mask_l1 compares magnitude masks; for model.net.mask=complex use spec_mse or spec_l1"
            )
        ideal = (targets / mix.unsqueeze(1).clamp_min(1e-8)).clamp(0.0, 1.0)
        return weighted_mean(torch.abs(masks - ideal), weight)


class SpectrogramMSE(nn.Module):
    """Mean squared error of ``mask ⊙ X`` against ``Y`` on raw magnitudes (Open-Unmix's loss), or on
    complex values (``|mask ⊙ X - Y|²``)."""

    def forward(
        self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        return weighted_mean(squared(masks * mix.unsqueeze(1) - targets), weight)


def soft_snr(error: torch.Tensor, signal: torch.Tensor, mixture: torch.Tensor, max_snr: float) -> torch.Tensor:
    """Negative SNR in dB from energies (any matching shapes), the error floored at ``max_snr`` dB
    below the mixture's energy (Wisdom et al. 2020, "Unsupervised sound separation using mixture
    invariant training"), so a silent reference neither divides by zero nor dominates the batch."""
    floor = 10.0 ** (-max_snr / 10.0) * mixture
    return 10.0 * torch.log10(error + floor + 1e-8) - 10.0 * torch.log10(signal + floor + 1e-8)


def soft_snr_loss(
    estimates: torch.Tensor, references: torch.Tensor, mixture: torch.Tensor, max_snr: float = 30.0
) -> torch.Tensor:
    """Negative signal-to-noise ratio in dB of waveform ``estimates`` against ``references``, with
    the soft ceiling of :func:`soft_snr`.

    Args:
        estimates, references: ``(batch, targets, channels, time)``.
        mixture: ``(batch, channels, time)``, whose power sets the floor.
        max_snr: the SNR at which the loss saturates, in dB.

    Returns:
        The mean over examples, targets and channels.
    """
    error = (references - estimates).square().sum(-1)
    return soft_snr(error, references.square().sum(-1), mixture.square().sum(-1).unsqueeze(1), max_snr).mean()


class SpectrogramSNR(nn.Module):
    """Negative SNR in dB of ``mask ⊙ X`` against ``Y`` per example, target and channel, summed
    over the bins and frames the network sees (complex values for complex masks: by Parseval, the
    waveform SNR of that band without an inverse STFT), with :func:`soft_snr`'s ceiling.

    Unlike :class:`SpectrogramMSE`, every example counts the same whatever its level, as every clip
    counts the same in a median of SI-SDR.

    Args:
        max_snr: the SNR at which an example's loss saturates, in dB.
    """

    def __init__(self, max_snr: float = 30.0) -> None:
        super().__init__()
        self.max_snr = max_snr

    def forward(
        self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        frames = 1.0 if weight is None else weight
        error = (squared(masks * mix.unsqueeze(1) - targets) * frames).sum((-2, -1))
        signal = (squared(targets) * frames).sum((-2, -1))
        mixture = (squared(mix).unsqueeze(1) * frames).sum((-2, -1))
        return soft_snr(error.float(), signal.float(), mixture.float(), self.max_snr).mean()


class WithWaveformSNR(nn.Module):
    """A spectrogram loss plus ``weight`` × :func:`soft_snr_loss` of the waveforms the separator
    outputs (masks extended to every bin, on the mixture's STFT with its phase, inverse STFT), so
    training also sees the phase, the upper band and the overlap-add that the metric sees.

    Args:
        spectral: the spectrogram loss (called like every loss in this module).
        weight: scale of the waveform term (dB); 0 leaves the spectrogram loss alone.
        max_snr: ceiling of the waveform term in dB.
    """

    def __init__(self, spectral: nn.Module, weight: float = 1.0, max_snr: float = 30.0) -> None:
        super().__init__()
        self.spectral = spectral
        self.weight = weight
        self.max_snr = max_snr

    def forward(
        self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.spectral(masks, mix, targets, weight)

    def waveform(self, estimates: torch.Tensor, references: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
        """The waveform term, already scaled by ``weight``."""
        return self.weight * soft_snr_loss(estimates, references, mixture, self.max_snr)
