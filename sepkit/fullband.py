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
    a, b = x.index_select(dim, low), x.index_select(dim, high)
    return a + (b - a) * frac


def masks_on_grid(
    masks: torch.Tensor,
    fill: torch.Tensor,
    model_grid: tuple[int, int, int],
    grid: tuple[int, int, int],
    n_frames: int,
) -> torch.Tensor:
    """The network's masks on another STFT grid.

    Args:
        masks: ``(..., covered_bins, model_frames)``, the bins the network saw.
        fill: ``(..., 1, model_frames)``, the extension rule's mask for bins above them.
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
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * rate / n_fft
    # bins beyond the last covered one take the fill, reached by a linear ramp over one model bin
    return interpolate(on_time, (freqs * model_fft / model_rate).clamp(max=covered), -2)
