"""Resampling through intermediate rates matches torchaudio's direct route."""

import math

import pytest
import torch
import torchaudio

from sepkit.audio import resample, resample_route, step_cost


@pytest.mark.parametrize(("orig", "new"), [(44100, 8192), (8192, 44100), (48000, 16000), (22050, 44100)])
def test_route_is_cheaper_and_keeps_the_band(orig: int, new: int) -> None:
    route = resample_route(orig, new)
    assert route[0] == orig and route[-1] == new
    assert all(2 * min(orig, new) <= r <= max(orig, new) for r in route[1:-1])
    assert sum(step_cost(a, b) for a, b in zip(route[:-1], route[1:], strict=True)) <= step_cost(orig, new)


@pytest.mark.parametrize(("orig", "new"), [(44100, 8192), (8192, 44100)])
def test_chained_resampling_equals_the_direct_route(orig: int, new: int) -> None:
    assert len(resample_route(orig, new)) > 2  # the chain is what is tested here
    t = torch.arange(3 * orig) / orig
    for freq in (100.0, 1000.0, 3000.0, 3900.0):
        tone = torch.sin(2 * math.pi * freq * t)[None]
        ours, direct = resample(tone, orig, new), torchaudio.functional.resample(tone, orig, new)
        assert ours.shape == direct.shape
        inner = slice(new // 4, -new // 4)  # the edges depend on the padding of each step
        error = (ours[..., inner] - direct[..., inner]).pow(2).sum() / direct[..., inner].pow(2).sum()
        assert 10 * math.log10(error) < -40, freq
