"""The inference engine behind evaluate.py, separate.py and the web page.

Two layers, each usable alone:

* :func:`tiled_apply`, a pure function on tensors: it cuts a signal into overlapping tiles, runs a
  function on batches of them and cross-fades the results back (overlap-add normalised by the summed
  weights). Its invariants: the output has the input's length; every sample lies under at least
  one tile with a positive weight; a function that returns its tile gives back the signal (up to
  float rounding); a tile never sees samples beyond the signal other than zero padding at the end.
* :class:`SeparationEngine`: a trained :class:`Separator` applied to a signal of any length and
  rate: validate (:func:`sepkit.audio.check_stream`, :func:`sepkit.audio.check_finite`), tile at
  the input's rate, separate each batch full-band through the separator's own stages
  (:meth:`Separator.separate_at`: the network on a model-rate copy, its masks on the song's own
  STFT), optionally average random shifts. Output length == input length, at the input's rate,
  every bin up to its Nyquist; with ``fullband=False``, the older road: resample to the model's
  rate, separate there, resample back (nothing above the model's Nyquist).

Files are streamed exactly by :func:`sepkit.separation.stream_file`, beside separate.py's code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from sepkit.audio import Resampler, check_finite, check_stream, to_channels_torch
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


class TiledStream:
    """:func:`tiled_apply` fed piece by piece: ``push`` the next ``(channels, time)`` samples of a
    signal of known ``length`` and get the outputs no later tile touches any more; the
    concatenated outputs equal :func:`tiled_apply` on the whole signal (same tiles, same batches,
    same sums in the same order). Memory holds about one batch of tiles, whatever the length."""

    def __init__(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        length: int,
        chunk: int,
        overlap: float = 0.25,
        window: str = "hann",
        batch_size: int = 4,
    ) -> None:
        if batch_size < 1:
            raise SepkitError(f"batch_size={batch_size} must be >= 1")
        self.fn, self.length, self.batch_size = fn, length, batch_size
        self.starts = chunk_starts(length, chunk, tile_stride(chunk, overlap))
        self.chunk = min(chunk, length)
        self.weight = crossfade_window(self.chunk, window) if len(self.starts) > 1 else torch.ones(self.chunk)
        self.next_tile = 0
        self.inputs: torch.Tensor | None = None  # samples from ``self.base`` on
        self.base = 0
        self.out: torch.Tensor | None = None  # overlap-add sums from ``self.done`` on
        self.norm: torch.Tensor | None = None
        self.done = 0
        self.reserve = 0

    def push(self, x: torch.Tensor) -> torch.Tensor | None:
        """Feed the next samples; returns the outputs now final (``(*shape, time)``), or None."""
        self.inputs = x if self.inputs is None else torch.cat([self.inputs, x], -1)
        have = self.base + self.inputs.shape[-1]
        if have > self.length:
            raise ValueError(f"pushed {have} samples into a stream of {self.length}")
        ready = self.next_tile
        while ready < len(self.starts) and min(self.starts[ready] + self.chunk, self.length) <= have:
            ready += 1
        self.reserve = self.starts[ready - 1] + self.chunk if ready else 0  # the outputs' end after this push
        while self.next_tile < len(self.starts):
            batch = self.starts[self.next_tile : self.next_tile + self.batch_size]
            if min(batch[-1] + self.chunk, self.length) > have:
                break
            self._run(batch)
            self.next_tile += len(batch)
        final = self.starts[self.next_tile] if self.next_tile < len(self.starts) else self.length
        keep_from = min(final, have)
        self.inputs = self.inputs[..., keep_from - self.base :]
        self.base = keep_from
        if self.out is None or final <= self.done:
            return None
        n = final - self.done
        assert self.norm[:n].min() > 0, "overlap-add weights sum to zero"
        result = self.out[..., :n] / self.norm[:n]
        self.out, self.norm, self.done = self.out[..., n:], self.norm[n:], final
        return result

    def _run(self, batch: list[int]) -> None:
        tiles = []
        for s in batch:
            tile = self.inputs[..., s - self.base : s - self.base + self.chunk]
            tiles.append(torch.nn.functional.pad(tile, (0, self.chunk - tile.shape[-1])))  # zeros past the end
        est = self.fn(torch.stack(tiles))
        weight = self.weight.to(est.device)
        end = batch[-1] + self.chunk
        if self.out is None:
            self.out = est.new_zeros(*est.shape[1:-1], 0)
            self.norm = weight.new_zeros(0)
        grow = max(end, self.reserve) - self.done - self.out.shape[-1]
        if grow > 0:  # once per push: room for every tile this push runs
            self.out = torch.cat([self.out, self.out.new_zeros(*self.out.shape[:-1], grow)], -1)
            self.norm = torch.cat([self.norm, self.norm.new_zeros(grow)])
        for j, s in enumerate(batch):
            self.out[..., s - self.done : s - self.done + self.chunk] += est[j] * weight
            self.norm[s - self.done : s - self.done + self.chunk] += weight


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
    return TiledStream(fn, x.shape[-1], chunk, overlap, window, batch_size).push(x)


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
        backend: ``torch``, or ``onnxruntime`` for the mask network exported to ONNX.
        onnx: the ``.onnx`` file of that backend (None: beside the checkpoint).
        fullband: masks applied at the song's own rate (True), or stems made at the model's rate
            and resampled back (False: nothing above its Nyquist; kept for comparison).
    """

    def __init__(
        self,
        separator: Separator,
        overlap: float = 0.25,
        window: str = "hann",
        batch_size: int = 2,
        shifts: int = 0,
        wiener_iterations: int = 0,
        device: str = "auto",
        downmix: bool = False,
        block_seconds: float = 20.0,
        backend: str = "torch",
        onnx: str | None = None,
        fullband: bool = True,
    ) -> None:
        if batch_size < 1 or shifts < 0 or wiener_iterations < 0:
            raise SepkitError("batch_size must be >= 1, shifts and wiener_iterations >= 0")
        crossfade_window(4, window)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise SepkitError("engine.device=cuda needs a CUDA GPU, none found; use engine.device=cpu")
        self.device = torch.device(device)
        self.separator = separator.to(self.device).eval()
        if self.device.type == "cpu":  # the U-Nets run 8-32 % faster on NHWC with oneDNN on a CPU
            separator.net.to(memory_format=torch.channels_last)
        self.overlap = overlap
        self.window = window
        self.batch_size = batch_size
        self.shifts = shifts
        self.wiener_iterations = wiener_iterations
        self.downmix = downmix
        self.block_seconds = block_seconds
        self.fullband = fullband
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
        from sepkit.checkpoint import BUNDLED, BUNDLED_NAME, default_onnx_path
        from sepkit.export import OnnxMasks

        ckpt = getattr(separator, "checkpoint_path", None)
        if onnx is None and ckpt is None:
            raise SepkitError("engine.backend=onnxruntime needs engine.onnx=PATH (a file from export=onnx)")
        path = Path(onnx) if onnx else default_onnx_path(ckpt)
        if not path.is_file():
            if ckpt is None:
                raise SepkitError(f"engine.onnx={path} does not exist")
            name = BUNDLED_NAME if Path(ckpt).resolve() == BUNDLED else ckpt
            raise SepkitError(
                f"{path} does not exist: write it first with `sepkit export ckpt={name}` (or engine.onnx=PATH)"
            )
        masks = OnnxMasks(path, threads=torch.get_num_threads())
        keys = ["targets", "sample_rate", "stft", "max_bins"]
        keys += ["complex_masks"] if "complex_masks" in masks.description else []  # exports since complex masks
        exported = {k: masks.description.get(k) for k in keys}
        ours = {k: separator.describe()[k] for k in exported}
        if masks.description and exported != ours:
            raise SepkitError(f"{path} was exported from another model ({exported}) than the checkpoint ({ours})")
        return masks

    @property
    def targets(self) -> list[str]:
        return self.separator.targets

    def separate(self, mixture: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        """Separate ``(channels, time)`` audio at ``sample_rate`` into ``{target: (channels, time)}``."""
        mixture = mixture.float()
        if mixture.ndim != 2:
            raise SepkitError("the audio is empty")
        stream = self.stream(sample_rate, mixture.shape[0], mixture.shape[-1])
        est = stream.push(mixture.to(self.device), last=True).cpu()
        return {t: est[i] for i, t in enumerate(self.targets)}

    def stream(self, sample_rate: int, channels: int, length: int) -> SeparationStream:
        """A :class:`SeparationStream` for a signal of ``length`` samples that arrives in pieces."""
        return SeparationStream(self, sample_rate, channels, length)

    def chunk_starts(self, length: int) -> list[int]:
        """Start of each model-rate tile of :attr:`chunk` samples covering ``length``."""
        return chunk_starts(length, self.chunk, self.stride)

    def _separate_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, time)`` to ``(batch, targets, channels, time)``."""
        sep = self.separator
        spec = sep.encode(batch)
        masks = self.estimate_masks(sep.mask_input(spec))
        if self.wiener_iterations:
            est_spec = sep.wiener(masks, spec, self.wiener_iterations)
        else:
            est_spec = sep.apply_masks(masks, spec)
        return sep.decode(est_spec, batch.shape[-1])

    def _separate_batch_at(self, batch: torch.Tensor, rate: int) -> torch.Tensor:
        """``(batch, channels, time)`` at ``rate`` to full-band ``(batch, targets, channels, time)``."""
        return self.separator.separate_at(batch, rate, self.estimate_masks, self.wiener_iterations)


@dataclass
class ShiftPass:
    """One random-shift pass of a stream: its tiles see the signal after ``shift`` zeros."""

    tiles: TiledStream
    shift: int
    zeros: int = -1  # zeros still to feed before the signal (set to ``shift`` on creation)
    skip: int = -1  # outputs of those zeros still to drop
    pending: list[torch.Tensor] = field(default_factory=list)  # outputs not yet averaged

    def __post_init__(self) -> None:
        self.zeros = self.skip = self.shift


class SeparationStream:
    """One signal separated as it arrives, equal to separating it whole: ``push`` its
    ``(channels, time)`` pieces at the input's rate (``last=True`` with the final one) and get
    ``(targets, channels, time)`` stems for the samples they complete.

    Resampling in (:class:`sepkit.audio.Resampler`), tiling (:class:`TiledStream`, one per
    random-shift pass) and resampling out all stream exactly, so memory stays bounded by a batch
    of tiles whatever the length, and pieces of any size give the same stems.
    """

    def __init__(self, engine: SeparationEngine, sample_rate: int, channels: int, length: int) -> None:
        sep = engine.separator
        min_samples = math.ceil(sep.n_fft * sample_rate / sep.sample_rate)
        check_stream(sample_rate, channels, length, min_samples, engine.downmix)
        self.channels = 1 if channels > 2 else channels
        self.model_channels = 2 if self.channels == 1 and sep.audio_channels == 2 else self.channels
        if engine.fullband:  # tiles at the song's rate; the network's copy is resampled per tile
            self.resample_in = self.resample_out = None
            work_rate, work_length = sample_rate, length
            # the longest tile whose model-rate copy still fits one patch (one sample more pads a whole
            # multiple of frames onto the network input)
            chunk = max(1, engine.chunk * sample_rate // sep.sample_rate)
            fn = partial(engine._separate_batch_at, rate=sample_rate)
        else:
            self.resample_in = Resampler(sample_rate, sep.sample_rate)
            self.resample_out = Resampler(sep.sample_rate, sample_rate)
            work_rate, work_length = sep.sample_rate, self.resample_in.output_length(length)
            chunk, fn = engine.chunk, engine._separate_batch
        shifts = [0]
        if engine.shifts:  # random-shift averaging: each pass sees the signal after `shift` zeros
            gen = torch.Generator().manual_seed(0)
            max_shift = work_rate // 2
            shifts = [int(torch.randint(0, max_shift, (1,), generator=gen)) for _ in range(engine.shifts)]
        self.passes = [
            ShiftPass(
                TiledStream(fn, work_length + shift, chunk, engine.overlap, engine.window, engine.batch_size),
                shift,
            )
            for shift in shifts
        ]
        self.length, self.emitted, self.shape = length, 0, None

    @torch.inference_mode()
    def push(self, audio: torch.Tensor, last: bool = False) -> torch.Tensor:
        check_finite(audio)
        if audio.shape[0] > 2:
            audio = audio.mean(0, keepdim=True)
        x = to_channels_torch(audio.float(), self.model_channels)
        if self.resample_in is not None:
            x = self.resample_in.push(x, last)
        est = self._tiles(x)
        if est is None:
            if not last:
                return audio.new_zeros(0, 0, 0)
            est = x.new_zeros(*self.shape, 0)
        self.shape = est.shape[:-1]
        y = to_channels_torch(est, self.channels)
        if self.resample_out is not None:
            y = self.resample_out.push(y, last)
        y = y[..., : self.length - self.emitted]
        if last and self.emitted + y.shape[-1] < self.length:
            y = torch.nn.functional.pad(y, (0, self.length - self.emitted - y.shape[-1]))
        self.emitted += y.shape[-1]
        return y

    def _tiles(self, x: torch.Tensor) -> torch.Tensor | None:
        """Model-rate stems final in every pass, averaged over the passes."""
        for p in self.passes:
            x_p = torch.cat([x.new_zeros(*x.shape[:-1], p.zeros), x], -1) if p.zeros else x
            p.zeros = 0
            out = p.tiles.push(x_p)
            if out is not None:
                drop = min(p.skip, out.shape[-1])  # outputs of the shift's zeros
                p.skip -= drop
                if out.shape[-1] > drop:
                    p.pending.append(out[..., drop:])
        ready = min(sum(o.shape[-1] for o in p.pending) for p in self.passes)
        if not ready:
            return None
        parts = []
        for p in self.passes:
            joined = torch.cat(p.pending, -1) if len(p.pending) > 1 else p.pending[0]
            parts.append(joined[..., :ready])
            p.pending = [joined[..., ready:]] if joined.shape[-1] > ready else []
        if len(parts) == 1:  # no shifts: the outputs as they are (no copies of a block)
            return parts[0]
        return sum(parts[1:], parts[0]) / len(parts)
