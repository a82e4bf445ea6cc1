"""The inference engine behind evaluate.py, separate.py and the web page.

Two layers, each usable alone:

* :func:`tiled_apply`, a pure function on tensors: it cuts a signal into overlapping tiles, runs a
  function on batches of them and cross-fades the results back (overlap-add normalised by the summed
  weights). Its invariants: the output has the input's length; every sample lies under at least
  one tile with a positive weight; a function that returns its tile gives back the signal (up to
  float rounding); a tile never sees samples beyond the signal other than zero padding at the end.
* :class:`SeparationEngine`: a trained :class:`Separator` applied to a signal of any length and
  rate: validate (:func:`sepkit.audio.check_audio`), resample to the model's rate, tile, separate
  each batch through the separator's own stages (``encode`` ▶ ``estimate_masks`` ▶ ``apply_masks``
  or ``wiener`` ▶ ``decode``), optionally average random shifts, resample back. Output length ==
  input length, at the input's rate.

Files are streamed in blocks by :func:`sepkit.separation.stream_file`, beside separate.py's code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from sepkit.audio import check_audio, resample, to_channels_torch
from sepkit.errors import SepkitError
from sepkit.separator import Separator

WINDOWS = ("hann", "triangular")
BACKENDS = ("torch", "onnxruntime")


def crossfade_window(length: int, kind: str) -> torch.Tensor:
    """Strictly positive cross-fade weights of ``length`` samples (never zero, so the
    overlap-add normaliser never vanishes)."""
    if kind == "hann":
        window = torch.hann_window(length + 2, periodic=False, dtype=torch.float64)[1:-1]
        return window.clamp_min(1e-4).float()
    if kind == "triangular":
        ramp = torch.arange(1, length + 1, dtype=torch.float64)
        return (torch.minimum(ramp, ramp.flip(0)) / ((length + 1) / 2)).clamp_min(1e-4).float()
    raise SepkitError(f"window={kind!r} must be one of {', '.join(WINDOWS)}")


def tile_stride(chunk: int, overlap: float) -> int:
    """Samples between the starts of consecutive tiles of ``chunk`` samples sharing ``overlap``."""
    if not 0.0 <= overlap <= 0.9:
        raise SepkitError(f"overlap={overlap} must be in [0, 0.9]")
    return max(1, int(round(chunk * (1.0 - overlap))))


def chunk_starts(length: int, chunk: int, stride: int) -> list[int]:
    """Start of each tile so that tiles of ``chunk`` samples, ``stride`` apart, cover ``length``."""
    if length <= chunk:
        return [0]
    n = math.ceil((length - chunk) / stride) + 1
    return [i * stride for i in range(n)]


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    chunk: int,
    overlap: float = 0.25,
    window: str = "hann",
    batch_size: int = 4,
) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` and cross-fade the results together.

    Args:
        fn: ``(batch, channels, chunk)`` to ``(batch, *shape, chunk)`` (e.g. ``shape`` = targets ×
            channels); called with at most ``batch_size`` tiles at a time.
        x: ``(channels, time)``.
        chunk: tile length in samples (a signal shorter than that is one tile of its own length).
        overlap: fraction of a tile shared with the next, in [0, 0.9].
        window: cross-fade shape, ``hann`` or ``triangular``.
        batch_size: tiles per call of ``fn``.

    Returns:
        ``(*shape, time)``, normalised by the summed cross-fade weights.
    """
    if batch_size < 1:
        raise SepkitError(f"batch_size={batch_size} must be >= 1")
    length = x.shape[-1]
    starts = chunk_starts(length, chunk, tile_stride(chunk, overlap))
    chunk = min(chunk, length)
    padded = torch.nn.functional.pad(x, (0, starts[-1] + chunk - length))
    weight = crossfade_window(chunk, window) if len(starts) > 1 else torch.ones(chunk)
    weight = weight.to(x.device)
    out = norm = None
    for i in range(0, len(starts), batch_size):
        batch_starts = starts[i : i + batch_size]
        est = fn(torch.stack([padded[:, s : s + chunk] for s in batch_starts]))
        if out is None:
            out = torch.zeros(*est.shape[1:-1], padded.shape[-1], dtype=est.dtype, device=x.device)
            norm = torch.zeros(padded.shape[-1], device=x.device)
        for j, s in enumerate(batch_starts):
            out[..., s : s + chunk] += est[j] * weight
            norm[s : s + chunk] += weight
    assert norm[:length].min() > 0, "overlap-add weights sum to zero"
    return out[..., :length] / norm[:length]


class SeparationEngine:
    """Chunked, batched, streaming separation with a trained :class:`Separator`.

    Args:
        separator: the model (from :func:`sepkit.load_separator`).
        overlap: fraction of each chunk shared with the next, in [0, 0.9].
        window: cross-fade shape, ``hann`` or ``triangular``.
        batch_size: chunks separated at once.
        shifts: random-shift averaging passes (0 = off).
        wiener_iterations: multichannel Wiener EM iterations (0 = off, plain masking).
        device: ``cpu``, ``cuda`` or ``auto``.
        downmix: accept more than two channels by averaging them to mono.
        block_seconds: block length when files are streamed (:func:`sepkit.separation.stream_file`).
    """

    def __init__(
        self,
        separator: Separator,
        overlap: float = 0.25,
        window: str = "hann",
        batch_size: int = 4,
        shifts: int = 0,
        wiener_iterations: int = 0,
        device: str = "auto",
        downmix: bool = False,
        block_seconds: float = 60.0,
        backend: str = "torch",
        onnx: str | None = None,
    ) -> None:
        if batch_size < 1 or shifts < 0 or wiener_iterations < 0:
            raise SepkitError("batch_size must be >= 1, shifts and wiener_iterations >= 0")
        crossfade_window(4, window)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise SepkitError("device=cuda needs a CUDA GPU, none found; use device=cpu")
        self.device = torch.device(device)
        self.separator = separator.to(self.device).eval()
        self.overlap = overlap
        self.window = window
        self.batch_size = batch_size
        self.shifts = shifts
        self.wiener_iterations = wiener_iterations
        self.downmix = downmix
        self.block_seconds = block_seconds
        self.estimate_masks = self._mask_stage(separator, backend, onnx)
        self.chunk = (separator.patch_frames - 1) * separator.hop_length  # model-rate samples: patch_frames frames
        self.stride = tile_stride(self.chunk, overlap)

    def _mask_stage(self, separator: Separator, backend: str, onnx: str | None):
        """``separator.estimate_masks``, or the same network exported to ONNX run by onnxruntime."""
        if backend not in BACKENDS:
            raise SepkitError(f"engine.backend={backend!r} must be one of {', '.join(BACKENDS)}")
        if backend == "torch":
            return separator.estimate_masks
        if self.device.type != "cpu":
            raise SepkitError("engine.backend=onnxruntime runs on the CPU here; add engine.device=cpu")
        from sepkit.export import OnnxMasks

        ckpt = getattr(separator, "checkpoint_path", None)
        if onnx is None and ckpt is None:
            raise SepkitError("engine.backend=onnxruntime needs engine.onnx=PATH (a file from export=onnx)")
        path = Path(onnx) if onnx else Path(ckpt).with_suffix(".onnx")
        if not path.is_file():
            raise SepkitError(f"{path} does not exist: write it first with separate.py ckpt={ckpt} export=onnx")
        masks = OnnxMasks(path, threads=torch.get_num_threads())
        exported = {k: masks.description.get(k) for k in ("targets", "sample_rate", "stft", "max_bins")}
        ours = {k: separator.describe()[k] for k in exported}
        if masks.description and exported != ours:
            raise SepkitError(f"{path} was exported from another model ({exported}) than the checkpoint ({ours})")
        return masks

    @property
    def targets(self) -> list[str]:
        return self.separator.targets

    def check_audio(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Validate ``(channels, time)`` audio; returns it (downmixed if allowed and needed)."""
        min_samples = math.ceil(self.separator.n_fft * sample_rate / self.separator.sample_rate)
        return check_audio(audio, sample_rate, min_samples, self.downmix)

    @torch.inference_mode()
    def separate(self, mixture: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        """Separate ``(channels, time)`` audio at ``sample_rate`` into ``{target: (channels, time)}``."""
        mixture = self.check_audio(mixture.float(), sample_rate)
        channels, length = mixture.shape
        sep = self.separator
        model_channels = 2 if channels == 1 and sep.audio_channels == 2 else channels  # mono into a stereo model
        x = resample(mixture.to(self.device), sample_rate, sep.sample_rate)
        est = self._separate_shifted(to_channels_torch(x, model_channels))
        est = resample(to_channels_torch(est, channels), sep.sample_rate, sample_rate)
        if est.shape[-1] < length:
            est = torch.nn.functional.pad(est, (0, length - est.shape[-1]))
        est = est[..., :length].cpu()
        return {t: est[i] for i, t in enumerate(self.targets)}

    def _separate_shifted(self, x: torch.Tensor) -> torch.Tensor:
        if not self.shifts:
            return self._separate_chunked(x)
        max_shift = self.separator.sample_rate // 2
        gen = torch.Generator().manual_seed(0)
        total = 0
        for _ in range(self.shifts):
            shift = int(torch.randint(0, max_shift, (1,), generator=gen))
            padded = torch.nn.functional.pad(x, (shift, 0))
            total = total + self._separate_chunked(padded)[..., shift:]
        return total / self.shifts

    def chunk_starts(self, length: int) -> list[int]:
        """Start of each model-rate tile of :attr:`chunk` samples covering ``length``."""
        return chunk_starts(length, self.chunk, self.stride)

    def _separate_chunked(self, x: torch.Tensor) -> torch.Tensor:
        """``(channels, time)`` at the model rate to ``(targets, channels, time)`` by overlap-add."""
        return tiled_apply(self._separate_batch, x, self.chunk, self.overlap, self.window, self.batch_size)

    def _separate_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, time)`` to ``(batch, targets, channels, time)``."""
        sep = self.separator
        spec = sep.encode(batch)
        masks = self.estimate_masks(spec.abs())
        if self.wiener_iterations:
            est_spec = sep.wiener(masks, spec, self.wiener_iterations)
        else:
            est_spec = sep.apply_masks(masks, spec)
        return sep.decode(est_spec, batch.shape[-1])
