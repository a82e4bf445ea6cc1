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
    """Random gain, treble, channel swap and sign flip, drawn independently per source.

    Args:
        gain: ``[low, high]`` linear gain range, or None to disable.
        channel_swap: swap left/right with probability 0.5.
        sign_flip: multiply by -1 with probability 0.5.
        treble: ``[low, high]`` dB range of a high shelf (:func:`high_shelf` at ``treble_hz``) per
            source, or None to disable: how bright each source is varies, so a
            model does not learn one song collection's balance of the band above a few kHz.
        treble_hz: the shelf's centre frequency.
        sample_rate: the sources' rate (needed with ``treble``).
    """

    gain: Sequence[float] | None = (0.25, 1.25)
    channel_swap: bool = True
    sign_flip: bool = True
    treble: Sequence[float] | None = None
    treble_hz: float = 6000.0
    sample_rate: int | None = None

    def __post_init__(self) -> None:
        if self.gain is not None and (len(self.gain) != 2 or not 0 <= self.gain[0] <= self.gain[1]):
            raise SepkitError(f"data.augment.gain={list(self.gain)} must be [low, high] with 0 <= low <= high")
        if self.treble is not None and (len(self.treble) != 2 or not self.treble[0] <= self.treble[1]):
            raise SepkitError(f"data.augment.treble={list(self.treble)} must be [low, high] dB with low <= high")
        if self.treble is not None and (self.sample_rate is None or not 0 < self.treble_hz < self.sample_rate / 2):
            raise SepkitError(
                f"data.augment.treble_hz={self.treble_hz} must lie between 0 and half the data's rate "
                f"({self.sample_rate})"
            )

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
        if self.treble is not None:
            low, high = self.treble
            out = high_shelf(out, self.sample_rate, self.treble_hz, low + (high - low) * torch.rand(n, 1, 1))
        return out


def high_shelf(x: torch.Tensor, sample_rate: int, hz: float, db: torch.Tensor) -> torch.Tensor:
    """A zero-phase high shelf of ``db`` (broadcast against ``x``'s leading axes, ending in ``(..., 1)``)
    on ``(..., time)``: half its gain at ``hz``, most of it an octave above, none an octave below."""
    spectrum = torch.fft.rfft(x, dim=-1)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1 / sample_rate, dtype=x.dtype)
    shape = 0.5 * (1 + torch.tanh(2 * torch.log2(freqs.clamp_min(1.0) / hz)))
    return torch.fft.irfft(spectrum * 10 ** (db * shape / 20), n=x.shape[-1], dim=-1)


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
