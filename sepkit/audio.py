"""The one audio module: reading and probing files, validating signals, resampling and channels,
shared by training data, evaluation, separate.py and the web page.

Resampling is torchaudio's windowed-sinc resampler. It applies a dense kernel of about
``orig / gcd(orig, new)`` taps for each of ``new / gcd(orig, new)`` output phases, so its cost
explodes for awkward pairs: 44.1 kHz → 8192 Hz (the paper U-Net's rate) reduces to 11025 → 2048.
:func:`resample_route` therefore goes through intermediate rates whose steps all reduce to small
ratios (44.1 kHz → 16.8 → 17.92 → 8.192 kHz). Intermediates lie between twice the lower rate and the
higher one, so the band kept and the filter's edge are the direct route's (``python -m
bench.resample`` measures the speed and the difference to the direct route). Where no such route
keeps every step's kernel under :data:`KERNEL_LIMIT` (11025 Hz ↔ 8192 Hz), intermediates up to twice
the higher rate are allowed too (11025 → 16.8 → 17.92 → 8.192 kHz); a rate that still needs a larger
kernel (one sharing no usable factor with the other, e.g. 44101 Hz: gigabytes) is refused with a
line saying how to convert the audio, instead of filling the memory.

Resampling streams: :class:`Resampler` takes a signal piece by piece and gives exactly what
torchaudio gives for the whole signal (its kernels, its zero padding at both ends), and long
signals are computed in pieces of about :data:`PIECE` input samples so the buffers stay small
enough for the CPU's caches (``python -m bench.resample`` compares the ways).
"""

from __future__ import annotations

import contextlib
import heapq
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from sepkit.errors import SepkitError

# The one list of what sepkit reads (soundfile: libsndfile decodes mp3 since 1.1), for input files,
# folders, dataset layouts and uploads, and of what it writes: format= value -> soundfile's format.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
OUTPUT_FORMATS = {"wav": "WAV", "flac": "FLAC", "mp3": "MP3"}
LOWPASS_WIDTH = 6  # torchaudio's default lowpass_filter_width
ROLLOFF = 0.99  # torchaudio's default rolloff
PIECE = 1 << 18  # input samples per piece of a long resampling step (about 6 s at 44.1 kHz)
KERNEL_LIMIT = 1 << 22  # floats in one step's kernel (16 MB; torchaudio needs about ten times that to build it)


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


def kernel_size(orig: int, new: int) -> int:
    """Floats in torchaudio's kernel for one step: ``new / g`` phases of ``orig / g + 2 * width`` taps."""
    if orig == new:
        return 0
    g = math.gcd(orig, new)
    width = math.ceil(LOWPASS_WIDTH * orig / (min(orig, new) * ROLLOFF))
    return new // g * (orig // g + 2 * width)


@lru_cache(maxsize=64)
def resample_route(orig: int, new: int) -> tuple[int, ...]:
    """The cheapest chain of rates from ``orig`` to ``new`` (both ends included) by
    :func:`step_cost`: a shortest path over 7-smooth rates (they share large gcds), every step's
    kernel within :data:`KERNEL_LIMIT` (else :class:`~sepkit.errors.SepkitError`)."""
    if orig == new:
        return (orig,)
    high = max(orig, new)
    for ceiling in (high, 2 * high):
        route = _cheapest_route(orig, new, ceiling)
        largest = max(kernel_size(a, b) for a, b in zip(route[:-1], route[1:], strict=True))
        if largest <= KERNEL_LIMIT:
            return route
    size = f"{4 * largest / 1e9:.1f} GB" if largest > 2.5e8 else f"{4 * largest / 1e6:.0f} MB"
    raise SepkitError(
        f"resampling {orig} Hz to {new} Hz would need a {size} filter (the two rates share no usable common "
        "factor); convert the audio to a standard rate first (44100 or 48000 Hz: `ffmpeg -i IN -ar 44100 OUT.wav`)"
    )


def _cheapest_route(orig: int, new: int, ceiling: int) -> tuple[int, ...]:
    """The shortest path of :func:`resample_route` over intermediates up to ``ceiling``."""
    low = min(orig, new)
    # intermediates at twice the lower rate or more: their filters' transition bands then lie
    # above the kept band, so the chain matches the direct route (within -45 dB at the band edge)
    nodes = sorted({orig, new, *_smooth_rates(2 * low, ceiling)})
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


class ResampleStep:
    """One torchaudio resampling step fed piece by piece, giving exactly what torchaudio gives for
    the whole signal at once.

    torchaudio pads the signal with ``width`` zeros before and ``width + o`` after and convolves it
    with ``n`` phase kernels at stride ``o`` (``o``/``n``: the reduced rates): output frame ``m``
    (``n`` samples) reads inputs ``[m*o - width, m*o + width + o)``. This class keeps the inputs
    that later frames still read, computes each frame once all its inputs have arrived (or at the
    end, with torchaudio's zeros), in pieces of at most ``piece`` input samples.
    """

    def __init__(self, orig: int, new: int, piece: int = PIECE) -> None:
        resampler = _resampler(orig, new)
        self.identity = orig == new
        self.kernel, self.width = resampler.kernel, resampler.width
        self.o, self.n = orig // resampler.gcd, new // resampler.gcd
        self.piece_frames = max(1, piece // self.o)
        self.buffer: torch.Tensor | None = None  # inputs from the next frame's first one on
        self.received = self.emitted = 0

    def output_length(self, length: int) -> int:
        return length if self.identity else math.ceil(self.n * length / self.o)

    def push(self, x: torch.Tensor, last: bool = False) -> torch.Tensor:
        """Feed the next ``(..., time)`` samples; returns the outputs they complete (all at ``last``)."""
        if self.identity:
            return x
        lead, rows = x.shape[:-1], math.prod(x.shape[:-1])
        if self.buffer is None:
            self.buffer = x.new_zeros(rows, 1, self.width)
        self.received += x.shape[-1]
        # the inputs still to read: buffer | x | (torchaudio's trailing zeros at the end), never
        # concatenated whole: only the pieces that straddle two parts are copied
        parts = [self.buffer, x.reshape(rows, 1, -1)]
        if last:
            parts.append(x.new_zeros(rows, 1, self.width + self.o))
        bounds = [0]
        for part in parts:
            bounds.append(bounds[-1] + part.shape[-1])

        def span(a: int, b: int) -> torch.Tensor:
            pieces = [
                part[..., max(a, lo) - lo : min(b, hi) - lo]
                for part, lo, hi in zip(parts, bounds[:-1], bounds[1:], strict=True)
                if max(a, lo) < min(b, hi)
            ]
            return pieces[0] if len(pieces) == 1 else torch.cat(pieces, -1)

        reach = 2 * self.width + self.o
        frames = max(0, (bounds[-1] - reach) // self.o + 1)
        kernel = self.kernel.to(x.device, x.dtype)
        out = x.new_empty(rows, frames, self.n)
        for m in range(0, frames, self.piece_frames):
            k = min(self.piece_frames, frames - m)
            y = torch.nn.functional.conv1d(span(m * self.o, (m + k - 1) * self.o + reach), kernel, stride=self.o)
            out[:, m : m + k] = y.transpose(1, 2)
        self.buffer = (
            span(frames * self.o, bounds[2]).clone() if bounds[2] > frames * self.o else x.new_zeros(rows, 1, 0)
        )
        out = out.reshape(rows, frames * self.n)
        if last:
            out = out[..., : self.output_length(self.received) - self.emitted]
        self.emitted += out.shape[-1]
        return out.reshape(*lead, out.shape[-1])


class Resampler:
    """Streaming resampling along :func:`resample_route`: ``push`` consecutive pieces of
    ``(..., time)`` (``last=True`` with the final one) and get the output they complete; the
    concatenated outputs equal :func:`resample` of the whole signal."""

    def __init__(self, orig: int, new: int, piece: int = PIECE) -> None:
        route = resample_route(int(orig), int(new))
        self.steps = [ResampleStep(a, b, piece) for a, b in zip(route[:-1], route[1:], strict=True)]

    def output_length(self, length: int) -> int:
        """Samples the whole resampled signal has for ``length`` input samples."""
        for step in self.steps:
            length = step.output_length(length)
        return length

    def push(self, x: torch.Tensor, last: bool = False) -> torch.Tensor:
        for step in self.steps:
            x = step.push(x, last)
        return x


def resample_step(x: torch.Tensor, orig: int, new: int, piece: int = PIECE) -> torch.Tensor:
    """One torchaudio resampling step over ``(..., time)``, computed in pieces (:class:`ResampleStep`)."""
    return ResampleStep(orig, new, piece).push(x, last=True)


def resample(x: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Resample ``(..., time)`` from ``orig`` to ``new`` Hz on ``x``'s device (kernels built once)."""
    return Resampler(orig, new).push(x, last=True)


def resample_np(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """:func:`resample` for float32 numpy arrays."""
    if orig == new:
        return x
    return resample(torch.from_numpy(np.ascontiguousarray(x)), orig, new).numpy()


def to_channels_torch(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``(..., channels_in, time)`` to ``channels`` (1 or 2): stereo is averaged, mono expanded (not copied)."""
    have = x.shape[-2]
    if have == channels:
        return x
    if channels == 1:
        return x.mean(dim=-2, keepdim=True)
    if have == 1:
        return x.expand(*x.shape[:-2], channels, x.shape[-1])
    raise ValueError(f"cannot convert {have} channels to {channels}")


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """:func:`to_channels_torch` for numpy arrays (mono is duplicated into a new array)."""
    if x.shape[-2] == channels:
        return x
    return to_channels_torch(torch.from_numpy(x), channels).contiguous().numpy()


def probe(path: str | Path, downmix: bool = False) -> sf._SoundFileInfo:
    """The header of an audio file to separate: one clear error if it is unreadable, empty, or has
    more than two channels (unless ``downmix``)."""
    with contextlib.suppress(OSError):  # a missing or unreadable file is the reader's to report
        if Path(path).is_file() and Path(path).stat().st_size == 0:
            raise SepkitError("it is empty (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SepkitError(f"cannot read it as audio ({reason}); use wav, flac, ogg or mp3") from None
    if info.frames <= 0:
        raise SepkitError("it is empty (no samples)")
    if info.channels > 2 and not downmix:
        raise SepkitError(f"it has {info.channels} channels; sepkit takes mono or stereo (or engine.downmix=true)")
    return info


def read(path: str | Path, start: int = 0, frames: int = -1) -> tuple[torch.Tensor, int]:
    """``frames`` samples (all with -1) of a file from ``start``: ``((channels, time) float32, rate)``."""
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(start)
            audio = f.read(frames, dtype="float32", always_2d=True)
            rate = f.samplerate
    except sf.LibsndfileError as err:
        raise SepkitError(f"cannot read {Path(path).name} ({str(err).splitlines()[0]})") from None
    return torch.from_numpy(np.ascontiguousarray(audio.T)), rate


def check_stream(rate: int, channels: int, length: int, min_samples: int = 1, downmix: bool = False) -> None:
    """Validate what a signal to separate declares: its rate, channels and length.

    Args:
        rate: its sample rate.
        channels: its channel count (more than two only with ``downmix``).
        length: its samples per channel.
        min_samples: shortest length accepted (one STFT window of the model, at ``rate``).
        downmix: accept more than two channels (they are averaged to mono).
    """
    if length <= 0 or channels <= 0:
        raise SepkitError("the audio is empty")
    if not 8000 <= rate <= 192000:
        raise SepkitError(f"sample rate {rate} Hz is outside 8-192 kHz")
    if channels > 2 and not downmix:
        raise SepkitError(f"the audio has {channels} channels; sepkit takes mono or stereo (or engine.downmix=true)")
    if length < min_samples:
        raise SepkitError(
            f"the audio is {length} samples long, shorter than one STFT window ({min_samples} samples here)"
        )


def check_finite(audio: torch.Tensor) -> None:
    if not torch.isfinite(audio.sum()) and not torch.isfinite(audio).all():  # a finite sum is the fast path
        raise SepkitError("the audio contains NaN or infinite samples")


def check_audio(audio: torch.Tensor, rate: int, min_samples: int = 1, downmix: bool = False) -> torch.Tensor:
    """Validate a ``(channels, time)`` signal to separate (:func:`check_stream`, finite samples);
    returns it, averaged to mono when it has more than two channels and ``downmix`` allows it."""
    if audio.ndim != 2:
        raise SepkitError("the audio is empty")
    check_stream(rate, audio.shape[0], audio.shape[-1], min_samples, downmix)
    check_finite(audio)
    return audio.mean(0, keepdim=True) if audio.shape[0] > 2 else audio
