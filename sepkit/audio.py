"""Audio conversion shared by training data, evaluation and inference: resampling and channels.

Resampling is torchaudio's windowed-sinc resampler. Its cost per output sample grows with
``orig / gcd(orig, new)``, which is 11025 for 44.1 kHz → 8192 Hz (the paper U-Net's rate); such
pairs go through an intermediate rate whose two steps are both cheap (44.1 kHz → 16 kHz → 8192 Hz
costs about a tenth of the direct route). Every intermediate is at least the target rate, so the
band kept is the same as the direct route's.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torchaudio

INTERMEDIATE_RATES = (16000, 24000, 32000, 48000, 22050, 44100, 96000)


def _cost(orig: int, new: int) -> int:
    """Multiply-adds per input second of torchaudio's resampler, up to a constant."""
    if orig == new:
        return 0
    g = math.gcd(orig, new)
    return new * (orig // g + 2 * math.ceil(6 * orig / min(orig, new)))


@lru_cache(maxsize=64)
def resample_route(orig: int, new: int) -> tuple[int, ...]:
    """The rates a signal passes through from ``orig`` to ``new`` (both ends included)."""
    best, route = _cost(orig, new), (orig, new)
    for mid in INTERMEDIATE_RATES:
        if mid in (orig, new) or mid < new:
            continue
        cost = _cost(orig, mid) + _cost(mid, new)
        if cost * 2 < best:  # only when clearly cheaper
            best, route = cost, (orig, mid, new)
    return route


@lru_cache(maxsize=16)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig, new)


def resample(x: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Resample ``(..., time)`` from ``orig`` to ``new`` Hz on ``x``'s device (kernels built once)."""
    route = resample_route(int(orig), int(new))
    for a, b in zip(route[:-1], route[1:], strict=True):
        x = _resampler(a, b).to(x.device)(x)
    return x


def resample_np(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """:func:`resample` for float32 numpy arrays."""
    if orig == new:
        return x
    return resample(torch.from_numpy(np.ascontiguousarray(x)), orig, new).numpy()


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """``(..., channels_in, time)`` to ``channels`` (1 or 2): mono is duplicated, stereo averaged."""
    have = x.shape[-2]
    if have == channels:
        return x
    if channels == 1:
        return x.mean(axis=-2, keepdims=True)
    if have == 1:
        return np.repeat(x, channels, axis=-2)
    raise ValueError(f"cannot convert {have} channels to {channels}")
