"""The inference engine: overlap-add exactness, chunked == unchunked, streaming, channels, bad audio."""

import numpy as np
import pytest
import soundfile as sf
import torch

from sepkit.errors import SepkitError
from sepkit.inference import SeparationEngine, chunk_starts, crossfade_window, tiled_apply
from sepkit.models.base import MaskNet
from sepkit.separation import stream_file
from sepkit.separator import build_separator
from tests.test_separator import PAPER


class OneMask(MaskNet):
    """Identity "model": mask 1 for the first target, 0 for the second."""

    def __init__(self, n_targets: int, audio_channels: int = 2) -> None:
        super().__init__(n_targets, audio_channels, fold_channels=True, multiple=1)

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        masks = torch.zeros(mag.shape[0], self.n_targets, *mag.shape[1:])
        masks[:, 0] = 1.0
        return masks


def identity_separator(**overrides):
    cfg = {**PAPER, "net": {"_target_": "tests.test_inference.OneMask", "_partial_": True}, **overrides}
    return build_separator(cfg, ["vocals", "accompaniment"])


def small_separator():
    torch.manual_seed(0)
    return build_separator(PAPER, ["vocals", "accompaniment"]).eval()


@pytest.mark.parametrize("window", ["hann", "triangular"])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
@pytest.mark.parametrize(("rate", "length"), [(8192, 8192 * 40 + 77), (44100, 44100 * 13 + 5), (22050, 3001)])
def test_identity_model_returns_the_input(window: str, overlap: float, rate: int, length: int) -> None:
    engine = SeparationEngine(identity_separator(), overlap=overlap, window=window, batch_size=3)
    mix = torch.randn(2, length) * 0.3
    out = engine.separate(mix, rate)
    assert out["vocals"].shape == mix.shape
    # full band at every rate: the masks meet the song at its own rate, nothing above 4 kHz is lost
    torch.testing.assert_close(out["vocals"], mix, atol=1e-5, rtol=0)
    assert out["accompaniment"].abs().max() < 1e-5  # the mixture less the vocals: round-off only


def test_the_model_band_only_road_loses_the_upper_band() -> None:
    """``fullband=False`` keeps the older road (resample, separate, resample back) for comparison."""
    rate, length = 44100, 44100 * 5
    mix = torch.randn(2, length) * 0.3
    out = SeparationEngine(identity_separator(), fullband=False).separate(mix, rate)["vocals"]
    lowpassed = torch.from_numpy(
        np.fft.irfft(np.fft.rfft(mix.numpy()) * (np.fft.rfftfreq(length, 1 / rate) < 3800), length)
    )
    assert torch.mean((out - lowpassed.float()) ** 2) < 0.05 * torch.mean(mix**2)


def test_chunks_cover_the_signal_and_weights_are_positive() -> None:
    engine = SeparationEngine(identity_separator(), overlap=0.5)
    for length in (1, engine.chunk, engine.chunk + 1, 10 * engine.chunk + 3):
        starts = engine.chunk_starts(length)
        assert starts[0] == 0 and starts[-1] + engine.chunk >= length
    for kind in ("hann", "triangular"):
        assert crossfade_window(101, kind).min() > 0


def test_chunked_and_unchunked_agree() -> None:
    sep = small_separator()
    mix = torch.randn(2, sep.hop_length * 100) * 0.3
    engine = SeparationEngine(sep, overlap=0.5)
    engine.chunk = mix.shape[-1] * 2  # one chunk: the unchunked result
    engine.stride = engine.chunk
    whole = engine.separate(mix, sep.sample_rate)["vocals"]
    engine = SeparationEngine(sep, overlap=0.5)
    engine.chunk = sep.hop_length * 40
    engine.stride = engine.chunk // 2
    chunked = engine.separate(mix, sep.sample_rate)["vocals"]
    err = torch.mean((whole - chunked) ** 2) / torch.mean(whole**2)
    assert err < 0.05, float(err)


def test_mono_in_mono_out_stereo_in_stereo_out() -> None:
    engine = SeparationEngine(small_separator())
    assert engine.separate(torch.randn(1, 30000), 44100)["vocals"].shape == (1, 30000)
    assert engine.separate(torch.randn(2, 30000), 44100)["vocals"].shape == (2, 30000)


def test_silence_gives_silence_not_nan() -> None:
    out = SeparationEngine(small_separator()).separate(torch.zeros(2, 44100), 44100)
    for v in out.values():
        assert torch.isfinite(v).all() and v.abs().max() == 0


@pytest.mark.parametrize(
    ("audio", "rate", "match"),
    [
        (torch.randn(3, 40000), 44100, "3 channels"),
        (torch.tensor([[float("nan")] * 40000]), 44100, "NaN"),
        (torch.randn(2, 100), 44100, "shorter than one STFT window"),
        (torch.randn(2, 0), 44100, "empty"),
        (torch.randn(2, 40000), 4000, "outside"),
    ],
)
def test_bad_audio(audio: torch.Tensor, rate: int, match: str) -> None:
    with pytest.raises(SepkitError, match=match):
        SeparationEngine(small_separator()).separate(audio, rate)


def test_downmix_accepts_many_channels() -> None:
    out = SeparationEngine(small_separator(), downmix=True).separate(torch.randn(6, 40000), 44100)
    assert out["vocals"].shape == (1, 40000)


@pytest.mark.parametrize("shifts", [0, 2])
def test_streaming_equals_in_memory(tmp_path, shifts: int) -> None:
    sep = small_separator()
    rate = 22050
    audio = (np.random.default_rng(0).standard_normal((rate * 25, 2)) * 0.2).astype(np.float32)
    path = tmp_path / "song.wav"
    sf.write(path, audio, rate, subtype="FLOAT")
    engine = SeparationEngine(sep, block_seconds=3.0, batch_size=1, shifts=shifts)
    blocks = list(stream_file(engine, path))
    assert len(blocks) > 1  # stems come out while the file is still being read
    streamed = np.concatenate([b["vocals"] for b in blocks])
    assert streamed.shape == audio.shape
    whole = engine.separate(torch.from_numpy(audio.T.copy()), rate)["vocals"].numpy().T
    assert np.abs(streamed - whole).max() < 1e-5  # exact: no block seams


def test_stream_pieces_of_any_size_give_the_same_stems() -> None:
    engine = SeparationEngine(small_separator(), batch_size=2)
    audio = torch.randn(1, 44100 * 30) * 0.1
    whole = engine.separate(audio, 44100)["accompaniment"]
    stream = engine.stream(44100, 1, audio.shape[-1])
    rng = np.random.default_rng(1)
    pieces, pos = [], 0
    while pos < audio.shape[-1]:
        size = int(rng.integers(1, 200000))
        pieces.append(stream.push(audio[:, pos : pos + size], last=pos + size >= audio.shape[-1]))
        pos += size
    streamed = torch.cat([p for p in pieces if p.numel()], -1)
    assert streamed.shape == (2, 1, audio.shape[-1])
    assert torch.allclose(streamed[1], whole, atol=1e-6)


def test_wiener_and_shifts_keep_shapes_and_the_sum() -> None:
    pytest.importorskip("openunmix")
    engine = SeparationEngine(small_separator(), wiener_iterations=1, shifts=2)
    mix = torch.randn(2, 20000) * 0.1
    out = engine.separate(mix, 16000)
    assert out["vocals"].shape == (2, 20000) and torch.isfinite(out["vocals"]).all()
    # Wiener filtering keeps the estimates summing to the mixture (the targets cover it)
    error = out["vocals"] + out["accompaniment"] - mix
    assert float(error.pow(2).mean() / mix.pow(2).mean()) < 1e-6
    plain = SeparationEngine(small_separator()).separate(mix, 16000)
    assert plain["vocals"].shape == out["vocals"].shape
    assert (plain["vocals"] - out["vocals"]).abs().max() > 1e-4  # the filter changed the estimate


def test_wiener_with_a_single_target_does_not_return_the_mixture() -> None:
    pytest.importorskip("openunmix")
    torch.manual_seed(0)
    sep = build_separator(PAPER, ["vocals"]).eval()
    mix = torch.randn(2, 20000) * 0.1
    out = SeparationEngine(sep, wiener_iterations=2).separate(mix, 8192)["vocals"]
    assert torch.mean((out - mix) ** 2) > 0.01 * torch.mean(mix**2)


@pytest.mark.parametrize(
    ("length", "chunk", "overlap", "batch_size"), [(1000, 128, 0.25, 3), (77, 128, 0.5, 1), (5000, 999, 0.0, 4)]
)
def test_tiled_apply_invariants(length: int, chunk: int, overlap: float, batch_size: int) -> None:
    x = torch.randn(2, length)
    seen: list[torch.Tensor] = []

    def fn(tiles: torch.Tensor) -> torch.Tensor:
        assert tiles.shape[0] <= batch_size and tiles.shape[1:] == (2, min(chunk, length))
        seen.extend(tiles)
        return torch.stack([tiles, 2 * tiles], dim=1)  # (batch, 2 "targets", channels, chunk)

    out = tiled_apply(fn, x, chunk, overlap, "hann", batch_size)
    assert out.shape == (2, 2, length)  # the input's length, whatever the tiling
    assert torch.allclose(out[0], x, atol=1e-5) and torch.allclose(out[1], 2 * x, atol=1e-5)
    starts = chunk_starts(length, chunk, max(1, round(chunk * (1 - overlap))))
    assert len(seen) == len(starts)
    padded = torch.nn.functional.pad(x, (0, chunk))
    for tile, start in zip(seen, starts, strict=True):  # each tile is the signal there, zeros after its end
        assert torch.equal(tile, padded[:, start : start + tile.shape[-1]])
