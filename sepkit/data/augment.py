"""Training-time augmentations.

Waveform augmentations act on each source ``(sources, channels, time)`` before the sources are
summed into targets and the mixture, so ``mixture == sum(targets)`` always holds. The frequency
mask acts on spectrograms and masks the same bands of the mixture and of every target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch
import torchaudio
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


@dataclass
class Repitch:
    """Play a source faster or slower by a random number of semitones, pitch and tempo together (as
    a tape's speed changes both, and the voice's formants with them): the singers a model meets
    in training sound higher, lower, smaller and larger than the few in the data. Demucs trains
    with a pitch shift for the same reason; this one is a resampling, cheap enough for the data
    loader on a CPU.

    The speed is ``2 ** (s / 12)`` for ``s`` uniform in ``semitones``, rounded to a fraction with a
    denominator of at most ``max_denominator`` (20: within 5 cents), so the resampling kernel stays
    small. To fill ``segment`` samples, :meth:`span` samples are read and :meth:`apply` resamples them.

    Args:
        semitones: ``[low, high]``, each within one octave.
        max_denominator: largest denominator of the speed's fraction.
    """

    semitones: Sequence[float]
    max_denominator: int = 20

    def __post_init__(self) -> None:
        if len(self.semitones) != 2 or not -12 <= self.semitones[0] <= self.semitones[1] <= 12:
            raise SepkitError(
                f"data.augment.repitch={list(self.semitones)} must be [low, high] semitones with "
                "-12 <= low <= high <= 12"
            )

    def draw(self) -> Fraction:
        """A random speed (above 1: faster and higher)."""
        low, high = self.semitones
        semitones = low + (high - low) * torch.rand(()).item()
        return Fraction(2 ** (semitones / 12)).limit_denominator(self.max_denominator)

    @staticmethod
    def span(segment: int, speed: Fraction) -> int:
        """Samples to read for ``segment`` samples at ``speed``."""
        return math.ceil(segment * speed)

    @staticmethod
    def apply(clip: torch.Tensor, speed: Fraction, segment: int) -> torch.Tensor:
        """``clip (..., span)`` played at ``speed``, cut or zero-padded to ``segment`` samples."""
        if speed != 1:
            clip = torchaudio.functional.resample(clip, speed.numerator, speed.denominator)
        clip = clip[..., :segment]
        return nn.functional.pad(clip, (0, segment - clip.shape[-1]))


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
