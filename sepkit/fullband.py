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

    def forward(self, covered: torch.Tensor) -> torch.Tensor:
        """``(batch, targets, channels, covered_bins, frames)`` to ``(batch, targets, channels, bands, frames)``."""
        top = covered[..., -max(1, covered.shape[-2] // 8) :, :].mean(-2)
        feats = torch.stack([top, covered.mean(-2)], -1).clamp(1e-4, 1 - 1e-4).logit()  # (b, s, c, t, 2)
        z = torch.einsum("bsctf,skf->bsckt", feats, self.weight.to(feats.dtype))
        return torch.sigmoid(z + self.bias[None, :, None, :, None])
