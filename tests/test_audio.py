"""The audio module: resampling routes and pieces, probing files and validating signals."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from sepkit.audio import (
    KERNEL_LIMIT,
    check_audio,
    kernel_size,
    probe,
    resample,
    resample_route,
    resample_step,
    step_cost,
)
from sepkit.errors import SepkitError


@pytest.mark.parametrize(("orig", "new"), [(44100, 8192), (8192, 44100), (48000, 16000), (22050, 44100)])
def test_route_is_cheaper_and_keeps_the_band(orig: int, new: int) -> None:
    route = resample_route(orig, new)
    assert route[0] == orig and route[-1] == new
    assert all(2 * min(orig, new) <= r <= max(orig, new) for r in route[1:-1])
    assert sum(step_cost(a, b) for a, b in zip(route[:-1], route[1:], strict=True)) <= step_cost(orig, new)


@pytest.mark.parametrize(("orig", "new"), [(11025, 8192), (8192, 11025)])
def test_a_route_above_the_higher_rate_keeps_the_kernels_small(orig: int, new: int) -> None:
    # the direct step would hold a 362 MB kernel (8192 phases of 11043 taps); torchaudio builds it in GBs
    assert kernel_size(orig, new) > KERNEL_LIMIT
    route = resample_route(orig, new)
    assert all(kernel_size(a, b) <= KERNEL_LIMIT for a, b in zip(route[:-1], route[1:], strict=True))
    assert all(r >= 2 * min(orig, new) for r in route[1:-1])


@pytest.mark.parametrize(("orig", "new"), [(44101, 16000), (8192, 96001)])
def test_a_rate_sharing_no_factor_is_refused(orig: int, new: int) -> None:
    with pytest.raises(SepkitError, match="ffmpeg"):
        resample_route(orig, new)


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


@pytest.mark.parametrize(
    ("orig", "new"), [(44100, 16800), (16800, 17920), (8192, 17920), (16800, 44100), (48000, 44100)]
)
@pytest.mark.parametrize("length", [5000, 123457])
def test_resampling_in_pieces_equals_one_piece(orig: int, new: int, length: int) -> None:
    x = torch.randn(3, length)
    whole = torchaudio.transforms.Resample(orig, new, lowpass_filter_width=6, rolloff=0.99)(x)
    for piece in (700, 4096):
        pieces = resample_step(x, orig, new, piece=piece)
        assert pieces.shape == whole.shape
        assert torch.allclose(pieces, whole, atol=1e-6)


def test_probe_and_check_audio_say_what_is_wrong(tmp_path) -> None:
    (tmp_path / "junk.wav").write_bytes(b"RIFF not audio" * 20)
    with pytest.raises(SepkitError, match="cannot read it as audio"):
        probe(tmp_path / "junk.wav")
    sf.write(tmp_path / "six.wav", np.zeros((100, 6), np.float32), 8000)
    with pytest.raises(SepkitError, match="6 channels"):
        probe(tmp_path / "six.wav")
    assert probe(tmp_path / "six.wav", downmix=True).channels == 6
    with pytest.raises(SepkitError, match="NaN"):
        check_audio(torch.full((2, 100), float("nan")), 8000)
    with pytest.raises(SepkitError, match="outside"):
        check_audio(torch.zeros(2, 100), 4000)
    with pytest.raises(SepkitError, match="shorter than one STFT window"):
        check_audio(torch.zeros(2, 100), 8000, min_samples=1024)
    assert check_audio(torch.ones(6, 100), 8000, downmix=True).shape == (1, 100)
