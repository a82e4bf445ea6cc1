"""Audio conversion shared by training data, evaluation and inference: resampling and channels.

Resampling is torchaudio's windowed-sinc resampler. It applies a dense kernel of about
``orig / gcd(orig, new)`` taps for each of ``new / gcd(orig, new)`` output phases, so its cost
explodes for awkward pairs: 44.1 kHz → 8192 Hz (the paper U-Net's rate) reduces to 11025 → 2048.
:func:`resample_route` therefore goes through intermediate rates whose steps all reduce to small
ratios (44.1 kHz → 16.8 → 17.92 → 8.192 kHz). Intermediates lie between twice the lower rate and the
higher one, so the band kept and the filter's edge are the direct route's (``python -m
bench.resample`` measures the speed and the difference to the direct route).
"""

from __future__ import annotations

import heapq
import math
from functools import lru_cache

import numpy as np
import torch
import torchaudio

LOWPASS_WIDTH = 6  # torchaudio's default lowpass_filter_width
ROLLOFF = 0.99  # torchaudio's default rolloff


def step_cost(orig: int, new: int) -> int:
    """Multiply-adds per second of audio of one torchaudio resampling step, plus a pass over memory."""
    if orig == new:
        return 0
    g = math.gcd(orig, new)
    width = math.ceil(LOWPASS_WIDTH * orig / (min(orig, new) * ROLLOFF))
    return new * (orig // g + 2 * width) + 2 * max(orig, new)


def _smooth_rates(low: int, high: int) -> list[int]:
    """Rates in ``[low, high]`` whose only prime factors are 2, 3, 5 and 7 (they share large gcds)."""
    rates = []
    p2 = 1
    while p2 <= high:
        p3 = p2
        while p3 <= high:
            p5 = p3
            while p5 <= high:
                p7 = p5
                while p7 <= high:
                    if p7 >= low:
                        rates.append(p7)
                    p7 *= 7
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return rates


@lru_cache(maxsize=64)
def resample_route(orig: int, new: int) -> tuple[int, ...]:
    """The cheapest chain of rates from ``orig`` to ``new`` (both ends included) by
    :func:`step_cost`: a shortest path over 7-smooth rates (they share large gcds)."""
    if orig == new:
        return (orig,)
    low, high = min(orig, new), max(orig, new)
    # intermediates at twice the lower rate or more: their filters' transition bands then lie
    # above the kept band, so the chain matches the direct route (within -45 dB at the band edge)
    nodes = sorted({orig, new, *_smooth_rates(2 * low, high)})
    best, previous, done = {orig: 0}, {}, set()
    queue = [(0, orig)]
    while queue:
        cost, rate = heapq.heappop(queue)
        if rate in done:
            continue
        done.add(rate)
        if rate == new:
            break
        for nxt in nodes:
            if nxt in done:
                continue
            total = cost + step_cost(rate, nxt)
            if total < best.get(nxt, math.inf):
                best[nxt], previous[nxt] = total, rate
                heapq.heappush(queue, (total, nxt))
    route = [new]
    while route[-1] != orig:
        route.append(previous[route[-1]])
    return tuple(reversed(route))


@lru_cache(maxsize=16)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig, new, lowpass_filter_width=LOWPASS_WIDTH, rolloff=ROLLOFF)


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
