"""The inference engine behind evaluate.py, separate.py and the web page.

``SeparationEngine.separate(mixture, sample_rate)`` separates a signal of any length: it resamples
to the model's rate, cuts the signal into the model's patches with overlap, separates the chunks in
batches, cross-fades them back together (overlap-add normalised by the summed weights), optionally
refines with a multichannel Wiener filter (``openunmix.filtering.wiener``) and random-shift
averaging, and resamples back. Output length == input length, at the input's rate.
``separate_file`` streams a file through in blocks so memory does not grow with its length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sepkit.audio import resample
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


def covers_mixture(separator: Separator) -> bool:
    """Whether the separator's targets add up to the mixture, as its training data said; checkpoints
    from before that was recorded were trained on MUSDB-shaped data, where vocals + accompaniment or
    the four stems do."""
    run = (getattr(separator, "info", None) or {}).get("run", {})
    if "covers_mixture" in run:
        return bool(run["covers_mixture"])
    targets = set(separator.targets)
    return {"vocals", "accompaniment"} <= targets or {"vocals", "drums", "bass", "other"} <= targets


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
        block_seconds: block length of :meth:`separate_file` streaming.
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
        if not 0.0 <= overlap <= 0.9:
            raise SepkitError(f"overlap={overlap} must be in [0, 0.9]")
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
        sep = separator
        self.covers_mixture = covers_mixture(sep)
        self.chunk = (sep.patch_frames - 1) * sep.hop_length  # model-rate samples giving patch_frames frames
        self.stride = max(1, int(round(self.chunk * (1.0 - overlap))))

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
        if audio.ndim != 2 or audio.shape[-1] == 0:
            raise SepkitError("the audio is empty")
        if not 8000 <= sample_rate <= 192000:
            raise SepkitError(f"sample rate {sample_rate} Hz is outside 8-192 kHz")
        if not torch.isfinite(audio).all():
            raise SepkitError("the audio contains NaN or infinite samples")
        if audio.shape[0] > 2:
            if not self.downmix:
                raise SepkitError(
                    f"the audio has {audio.shape[0]} channels; sepkit takes mono or stereo (or downmix=true)"
                )
            audio = audio.mean(0, keepdim=True)
        min_len = math.ceil(self.separator.n_fft * sample_rate / self.separator.sample_rate)
        if audio.shape[-1] < min_len:
            raise SepkitError(
                f"the audio is {audio.shape[-1]} samples long, shorter than one STFT window ({min_len} samples here)"
            )
        return audio

    @torch.no_grad()
    def separate(self, mixture: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        """Separate ``(channels, time)`` audio at ``sample_rate`` into ``{target: (channels, time)}``."""
        mixture = self.check_audio(mixture.float(), sample_rate)
        channels, length = mixture.shape
        sep = self.separator
        x = mixture.to(self.device)
        x = resample(x, sample_rate, sep.sample_rate)
        if channels == 1 and sep.audio_channels == 2:
            x = x.expand(2, -1)
        est = self._separate_shifted(x)
        if channels == 1 and sep.audio_channels == 2:
            est = est.mean(dim=1, keepdim=True)
        est = resample(est, sep.sample_rate, sample_rate)
        est = torch.nn.functional.pad(est, (0, max(0, length - est.shape[-1])))[..., :length].cpu()
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
        """Start of each chunk so that chunks of :attr:`chunk` samples cover ``length``."""
        if length <= self.chunk:
            return [0]
        n = math.ceil((length - self.chunk) / self.stride) + 1
        return [i * self.stride for i in range(n)]

    def _separate_chunked(self, x: torch.Tensor) -> torch.Tensor:
        """``(channels, time)`` at the model rate to ``(targets, channels, time)`` by overlap-add."""
        channels, length = x.shape
        starts = self.chunk_starts(length)
        chunk = self.chunk if length > self.chunk else length
        padded = torch.nn.functional.pad(x, (0, starts[-1] + chunk - length))
        weight = crossfade_window(chunk, self.window) if len(starts) > 1 else torch.ones(chunk)
        weight = weight.to(x.device)
        out = torch.zeros(len(self.targets), channels, padded.shape[-1], device=x.device)
        norm = torch.zeros(padded.shape[-1], device=x.device)
        for i in range(0, len(starts), self.batch_size):
            batch_starts = starts[i : i + self.batch_size]
            batch = torch.stack([padded[:, s : s + chunk] for s in batch_starts])
            est = self._separate_batch(batch)
            for j, s in enumerate(batch_starts):
                out[..., s : s + chunk] += est[j] * weight
                norm[s : s + chunk] += weight
        assert norm[:length].min() > 0, "overlap-add weights sum to zero"
        return out[..., :length] / norm[:length]

    def _separate_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, time)`` to ``(batch, targets, channels, time)``."""
        sep = self.separator
        spec = sep.encode(batch)
        masks = self.estimate_masks(spec.abs())
        if self.wiener_iterations:
            est_spec = self._wiener(masks * spec.abs().unsqueeze(1), spec)
        else:
            est_spec = sep.apply_masks(masks, spec)
        return sep.decode(est_spec, batch.shape[-1])

    def _wiener(self, magnitudes: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """Multichannel Wiener refinement of ``(batch, targets, channels, freq, frames)`` magnitudes."""
        from openunmix.filtering import wiener

        out = []
        for mags, mix in zip(magnitudes, spec, strict=True):
            targets = mags.permute(3, 2, 1, 0).double()  # (frames, freq, channels, targets)
            mix_ri = torch.view_as_real(mix.permute(2, 1, 0)).double()  # (frames, freq, channels, 2)
            # a residual source absorbs what the targets leave out (e.g. targets=[vocals])
            y = wiener(targets, mix_ri, iterations=self.wiener_iterations, residual=not self.covers_mixture)
            y = y[..., : mags.shape[0]]  # (frames, freq, channels, 2, targets)
            out.append(torch.view_as_complex(y.permute(4, 2, 1, 0, 3).contiguous()).to(spec.dtype))
        return torch.stack(out)

    def separate_file(self, path: str | Path) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Stream a file: yield ``(sample_rate, {target: (time, channels)})`` blocks in order.

        Each block of ``block_seconds`` is separated together with up to 4 s of context on both
        sides; the first ``context`` samples of a block are cross-faded with the previous block's
        estimate of them, so there is no seam and memory stays bounded whatever the file's length.
        """
        try:
            f = sf.SoundFile(str(path))
        except Exception as err:
            raise SepkitError(f"cannot read {path}: {err}") from None
        with f:
            rate, total = f.samplerate, f.frames
            if total <= 0:
                raise SepkitError(f"{path} is empty")
            block = max(int(self.block_seconds * rate), 1)
            context = min(block // 4, int(4.0 * rate))
            carry: dict[str, np.ndarray] | None = None
            for pos in range(0, total, block):
                start, end = max(0, pos - context), min(total, pos + block + context)
                f.seek(start)
                audio = torch.from_numpy(np.ascontiguousarray(f.read(end - start, dtype="float32", always_2d=True).T))
                est = {t: v.numpy().T for t, v in self.separate(audio, rate).items()}
                own = {t: v[pos - start : min(pos + block, total) - start].copy() for t, v in est.items()}
                if carry is not None:
                    for t, prev in carry.items():
                        n = min(len(prev), len(own[t]))
                        fade = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
                        own[t][:n] = prev[:n] * (1.0 - fade) + own[t][:n] * fade
                nxt = pos + block
                carry = {t: v[nxt - start : end - start].copy() for t, v in est.items()} if nxt < total else None
                yield rate, own
