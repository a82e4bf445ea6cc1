"""Masks from a network's low-band grid onto an STFT of the song at the song's own rate.

A separator's network sees ``max_bins`` bins of an STFT at its own rate ``r`` (``n_fft``, ``hop``).
The song at rate ``R`` gets an STFT with the same frame duration and bin spacing in Hz (``n_fft``
and ``hop`` scaled by ``R / r``, the FFT size rounded to an even length with small factors), and the
network's masks are placed on that grid by linear interpolation at each bin's frequency and each
frame's time: bins up to the network's highest take its masks, bins above the separator's
``mask_extension`` rule (:func:`sepkit.separator.extend_masks`), up to the song's Nyquist. Time
positions come from sample times, not frame counts, so non-integer rate ratios never drift.
"""

from __future__ import annotations

import math

import torch
from scipy.fft import next_fast_len
from torch import nn


def stft_at_rate(n_fft: int, hop_length: int, model_rate: int, rate: int) -> tuple[int, int]:
    """``(n_fft, hop)`` at ``rate`` with the model's frame duration and bin spacing (nearly: the FFT
    size is the next even length whose factors are at most 11; the masks are interpolated anyway)."""
    if rate == model_rate:
        return n_fft, hop_length
    size = 2 * next_fast_len(math.ceil(n_fft * rate / model_rate / 2))  # even, factors up to 11
    hop = max(1, min(size, round(hop_length * rate / model_rate)))
    return size, hop


def interpolate(x: torch.Tensor, positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Linear interpolation of ``x`` along ``dim`` at fractional indices ``positions`` (clamped to the axis)."""
    size = x.shape[dim]
    pos = positions.to(x.device, torch.float64).clamp(0, size - 1)
    low = pos.floor().long().clamp(max=size - 1)
    high = (low + 1).clamp(max=size - 1)
    frac = (pos - low).to(x.dtype)
    shape = [1] * x.ndim
    shape[dim] = -1
    frac = frac.reshape(shape)
    return torch.lerp(x.index_select(dim, low), x.index_select(dim, high), frac)


def knot_positions(freqs: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Fractional indices of ``freqs`` among ascending ``knots`` (piecewise linear, clamped to the ends)."""
    if knots.numel() == 1:
        return torch.zeros_like(freqs)
    idx = (torch.searchsorted(knots, freqs, right=True) - 1).clamp(0, knots.numel() - 2)
    frac = (freqs - knots[idx]) / (knots[idx + 1] - knots[idx])
    return (idx + frac).clamp(0, knots.numel() - 1)


def masks_on_grid(
    masks: torch.Tensor,
    fill: torch.Tensor,
    fill_hz: torch.Tensor,
    model_grid: tuple[int, int, int],
    grid: tuple[int, int, int],
    n_frames: int,
) -> torch.Tensor:
    """The network's masks on another STFT grid.

    Args:
        masks: ``(..., covered_bins, model_frames)``, the bins the network saw.
        fill: ``(..., knots, model_frames)``, the extension's masks for the band above them, at
            the frequencies ``fill_hz`` (ascending, above the covered bins): one knot for the fixed
            rules, several for a learnt extension. Above the last knot its mask holds.
        model_grid: ``(rate, n_fft, hop)`` of the network's STFT.
        grid: ``(rate, n_fft, hop)`` of the STFT the masks are applied to.
        n_frames: frames of that STFT.

    Returns:
        ``(..., n_fft // 2 + 1, n_frames)`` masks.
    """
    model_rate, model_fft, model_hop = model_grid
    rate, n_fft, hop = grid
    covered = masks.shape[-2]
    times = torch.arange(n_frames, dtype=torch.float64) * hop / rate
    on_time = interpolate(torch.cat([masks, fill], -2), times * model_rate / model_hop, -1)
    knots = torch.cat([torch.arange(covered, dtype=torch.float64) * model_rate / model_fft, fill_hz.double().cpu()])
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * rate / n_fft
    positions = knot_positions(freqs, knots)
    # above the last knot every bin takes its mask: one row expanded instead of gathered (most bins)
    varying = int((positions < knots.numel() - 1).sum())
    head = interpolate(on_time, positions[:varying], -2)
    tail = on_time[..., -1:, :].expand(*on_time.shape[:-2], freqs.numel() - varying, on_time.shape[-1])
    return torch.cat([head, tail], -2)


class LearnedExtension(nn.Module):
    """Masks for the band above the network's, learnt from the network's own masks
    (``mask_extension=learned``): per target, ``bands`` knots log-spaced from just above the covered
    band to ``high_hz``; each knot's mask per frame and channel is
    ``sigmoid(a * logit(top) + b * logit(mean) + c)`` of the mean mask over the top eighth of the
    covered bins and over all of them. It starts as the ``edge`` rule (a = 1, b = c = 0) and learns
    what the band above is like when training sees it (a full-band loss at the song's rate).

    Args:
        n_targets: targets.
        low_hz: the first knot (just above the covered band).
        high_hz: the last knot (the highest Nyquist it should serve).
        bands: knots.
    """

    def __init__(self, n_targets: int, low_hz: float, high_hz: float = 24000.0, bands: int = 8) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([1.0, 0.0]).repeat(n_targets, bands, 1))
        self.bias = nn.Parameter(torch.zeros(n_targets, bands))
        hz = torch.logspace(math.log10(low_hz), math.log10(max(high_hz, low_hz * 1.01)), bands, dtype=torch.float64)
        self.register_buffer("knots_hz", hz, persistent=False)

    @staticmethod
    def features(covered: torch.Tensor) -> torch.Tensor:
        """Logits of the mean mask over the top eighth of the covered bins and over all of them:
        ``(batch, targets, channels, covered_bins, frames)`` to ``(batch, targets, channels, frames, 2)``."""
        top = covered[..., -max(1, covered.shape[-2] // 8) :, :].mean(-2)
        return torch.stack([top, covered.mean(-2)], -1).clamp(1e-4, 1 - 1e-4).logit()

    def logits(self, covered: torch.Tensor) -> torch.Tensor:
        """The masks before the sigmoid: ``(batch, targets, channels, covered_bins, frames)`` to
        ``(batch, targets, channels, bands, frames)``."""
        feats = self.features(covered)
        z = torch.einsum("bsctf,skf->bsckt", feats, self.weight.to(feats.dtype))
        return z + self.bias[None, :, None, :, None]

    def forward(self, covered: torch.Tensor) -> torch.Tensor:
        """``(batch, targets, channels, covered_bins, frames)`` to ``(batch, targets, channels, bands, frames)``."""
        return torch.sigmoid(self.logits(covered))


class BandedExtension(nn.Module):
    """Masks for the band above the network's that see the mixture there (``mask_extension=banded``).

    The band from just above the covered bins to ``high_hz`` is cut into ``bands`` log-spaced bands;
    each gets, per target, frame and channel, a mask from the mixture's level in every band (against
    its level just below the covered band's top, so the gain of the song does not matter) and the
    network's masks (as :class:`LearnedExtension`), through a small convolution over a few frames.
    So a frame whose top holds a singer's sibilance and one whose top holds a hi-hat can get different
    masks, band by band, which one mask per frame for the whole band cannot give. It starts as the
    ``edge`` rule and learns when training sees the band above (a full-band loss at the song's rate).

    Args:
        n_targets: targets.
        low_hz: the lower edge of the first band (just above the covered band).
        high_hz: the upper edge of the last band (the highest Nyquist it should serve).
        bands: bands above the covered band.
        hidden: channels of the convolution.
        context: frames the convolution sees (odd).
    """

    def __init__(
        self,
        n_targets: int,
        low_hz: float,
        high_hz: float = 24000.0,
        bands: int = 8,
        hidden: int = 32,
        context: int = 5,
    ) -> None:
        super().__init__()
        self.bands = bands
        self.low_hz = low_hz
        self.from_masks = LearnedExtension(n_targets, low_hz, high_hz, bands)
        top = math.log10(max(high_hz, low_hz * 1.01))
        edges = torch.logspace(math.log10(low_hz), top, bands + 1, dtype=torch.float64)
        self.register_buffer("edges_hz", edges, persistent=False)
        self.register_buffer("knots_hz", (edges[:-1] * edges[1:]).sqrt(), persistent=False)
        self.mix = nn.Sequential(
            nn.Conv1d(bands + 2 * n_targets, hidden, context, padding=context // 2),
            nn.GELU(),
            nn.Conv1d(hidden, n_targets * bands, 1),
        )
        nn.init.zeros_(self.mix[-1].weight)
        nn.init.zeros_(self.mix[-1].bias)

    def band_levels(self, magnitude: torch.Tensor, bin_hz: float) -> torch.Tensor:
        """The mixture's level in each band against its level in the octave below ``low_hz``, in
        units of 30 dB (clamped to ±3): ``(batch, channels, freq, frames)`` to ``(batch, channels,
        bands, frames)``. Bands above the spectrogram's Nyquist read as silent."""
        freqs = torch.arange(magnitude.shape[-2], device=magnitude.device, dtype=torch.float64) * bin_hz
        edges = self.edges_hz.to(magnitude.device)
        member = (freqs[None] >= edges[:-1, None]) & (freqs[None] < edges[1:, None])  # (bands, freq)
        below = (freqs >= self.low_hz / 2) & (freqs < self.low_hz)
        weights = torch.cat([member, below[None]]).to(magnitude.dtype)
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(1.0)
        power = torch.einsum("kf,bcft->bckt", weights, magnitude.square())
        level = 10 * torch.log10(power + 1e-10)
        return ((level[:, :, :-1] - level[:, :, -1:]) / 30).clamp(-3.0, 3.0)

    def forward(self, covered: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """Masks of the bands above.

        Args:
            covered: the network's masks ``(batch, targets, channels, covered_bins, frames)``.
            levels: :meth:`band_levels` on the same frames, ``(batch, channels, bands, frames)``.

        Returns:
            ``(batch, targets, channels, bands, frames)``.
        """
        batch, targets, channels, _, frames = covered.shape
        feats = self.from_masks.features(covered)  # (batch, targets, channels, frames, 2)
        feats = feats.permute(0, 2, 1, 4, 3).reshape(batch * channels, 2 * targets, frames)
        x = torch.cat([levels.reshape(batch * channels, self.bands, frames).to(feats.dtype), feats], 1)
        delta = self.mix(x).reshape(batch, channels, targets, self.bands, frames).transpose(1, 2)
        return torch.sigmoid(self.from_masks.logits(covered) + delta)
