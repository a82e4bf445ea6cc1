"""Training-time augmentations.

Waveform augmentations act on each source ``(sources, channels, time)`` before the sources are
summed into targets and the mixture, so ``mixture == sum(targets)`` always holds. The frequency
mask acts on spectrograms and masks the same bands of the mixture and of every target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sepkit.errors import SepkitError


@dataclass
class SourceAugment:
    """Random gain, channel swap and sign flip, drawn independently per source.

    Args:
        gain: ``[low, high]`` linear gain range, or None to disable.
        channel_swap: swap left/right with probability 0.5.
        sign_flip: multiply by -1 with probability 0.5.
    """

    gain: Sequence[float] | None = (0.25, 1.25)
    channel_swap: bool = True
    sign_flip: bool = True

    def __post_init__(self) -> None:
        if self.gain is not None and (len(self.gain) != 2 or not 0 <= self.gain[0] <= self.gain[1]):
            raise SepkitError(f"data.augment.gain={list(self.gain)} must be [low, high] with 0 <= low <= high")

    def __call__(self, sources: torch.Tensor) -> torch.Tensor:
        """Augment ``(sources, channels, time)``; returns a new tensor."""
        n = sources.shape[0]
        out = sources.clone()
        if self.gain is not None:
            low, high = self.gain
            out = out * (low + (high - low) * torch.rand(n, 1, 1))
        if self.channel_swap and out.shape[1] == 2:
            swap = torch.rand(n) < 0.5
            out[swap] = out[swap].flip(1)
        if self.sign_flip:
            out = out * torch.where(torch.rand(n, 1, 1) < 0.5, -1.0, 1.0)
        return out


class FrequencyMask(nn.Module):
    """Zero ``count`` random frequency bands of up to ``max_width`` bins, the same bands for the
    mixture and all targets of one example (SpecAugment-style, training only).

    Args:
        max_width: widest band in bins.
        count: bands per example.
    """

    def __init__(self, max_width: int = 16, count: int = 1) -> None:
        super().__init__()
        if max_width < 1 or count < 1:
            raise SepkitError(f"data.augment.freq_mask needs max_width >= 1 and count >= 1, got {max_width}, {count}")
        self.max_width = max_width
        self.count = count

    def forward(self, mix: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask ``mix (batch, channels, freq, frames)`` and ``targets (batch, targets, channels, freq, frames)``."""
        batch, n_freq = mix.shape[0], mix.shape[-2]
        bins = torch.arange(n_freq, device=mix.device)
        keep = torch.ones(batch, n_freq, dtype=torch.bool, device=mix.device)
        for _ in range(self.count):
            width = torch.randint(0, self.max_width + 1, (batch, 1), device=mix.device)
            start = (torch.rand(batch, 1, device=mix.device) * (n_freq - width + 1)).long()
            keep &= ~((bins >= start) & (bins < start + width))
        keep = keep.to(mix.dtype)[:, None, :, None]
        return mix * keep, targets * keep[:, None]
