"""Training losses on magnitude spectrograms.

Every loss takes ``masks (batch, targets, channels, freq, frames)``, the mixture magnitude
``(batch, channels, freq, frames)`` and the target magnitudes ``(batch, targets, channels, freq, frames)``,
restricted to the bins the network sees.
"""

from __future__ import annotations

import torch
from torch import nn


class SpectrogramL1(nn.Module):
    """L1(mask ⊙ X, Y) of Jansson et al. 2017, with X and Y scaled by the mixture's peak so the loss
    does not depend on the level of the example."""

    def forward(self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        scale = mix.amax(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-8)
        return torch.mean(torch.abs(masks * (mix / scale).unsqueeze(1) - targets / scale.unsqueeze(1)))


class MaskL1(nn.Module):
    """L1(mask, ideal ratio mask), the ratio mask being ``|Y| / |X|`` clipped to [0, 1]."""

    def forward(self, masks: torch.Tensor, mix: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        ideal = (targets / mix.unsqueeze(1).clamp_min(1e-8)).clamp(0.0, 1.0)
        return torch.mean(torch.abs(masks - ideal))
