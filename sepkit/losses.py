"""Training losses on magnitude spectrograms.

Every loss takes ``masks (batch, targets, channels, freq, frames)``, the mixture magnitude
``(batch, channels, freq, frames)`` and the target magnitudes ``(batch, targets, channels, freq, frames)``,
restricted to the bins the network sees, and optionally ``weight (batch, 1, 1, 1, frames)``: 1 on
real frames, 0 on the padding of clips shorter than a segment, which the mean leaves out.
"""

from __future__ import annotations

import torch
from torch import nn


def weighted_mean(error: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``error`` over the elements where ``weight`` (broadcast to it) is non-zero."""
    if weight is None:
        return error.mean()
    weight = weight.expand_as(error)
    return (error * weight).sum() / weight.sum().clamp_min(1.0)


class SpectrogramL1(nn.Module):
    """L1(mask ⊙ X, Y) of Jansson et al. 2017, with X and Y scaled by the mixture's peak so the loss
    does not depend on the level of the example."""

    def forward(
        self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        scale = mix.amax(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-8)
        return weighted_mean(torch.abs(masks * (mix / scale).unsqueeze(1) - targets / scale.unsqueeze(1)), weight)


class MaskL1(nn.Module):
    """L1(mask, ideal ratio mask), the ratio mask being ``|Y| / |X|`` clipped to [0, 1]."""

    def forward(
        self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        ideal = (targets / mix.unsqueeze(1).clamp_min(1e-8)).clamp(0.0, 1.0)
        return weighted_mean(torch.abs(masks - ideal), weight)


class SpectrogramMSE(nn.Module):
    """Mean squared error of ``mask ⊙ X`` against ``Y`` on raw magnitudes (Open-Unmix's loss)."""

    def forward(
        self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        return weighted_mean(torch.square(masks * mix.unsqueeze(1) - targets), weight)
