"""STFT encoder / iSTFT decoder pair.

Both modules come from one factory, :func:`make_stft_pair`, so analysis and synthesis always share
the same window, FFT size and hop. Axes: waveforms are ``(..., time)``, spectrograms
``(..., freq, frames)``.
"""

from __future__ import annotations

import torch
from torch import nn


class STFT(nn.Module):
    """Complex short-time Fourier transform.

    Args:
        n_fft: FFT size (and window length).
        hop_length: hop between frames in samples.
    """

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Transform ``(..., time)`` into a complex ``(..., freq, frames)`` spectrogram.

        The signal is zero-padded at the end to a multiple of the hop, so every sample lies under
        the full overlap of windows and :class:`ISTFT` reconstructs all of it (without the padding,
        a tail longer than half a window would sit under near-zero window weights).
        """
        shape = wav.shape
        wav = torch.nn.functional.pad(wav, (0, -shape[-1] % self.hop_length))
        spec = torch.stft(
            wav.reshape(-1, wav.shape[-1]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect" if wav.shape[-1] > self.n_fft // 2 else "constant",
            return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:])


class ISTFT(nn.Module):
    """Inverse of :class:`STFT` (overlap-add with window-square normalisation)."""

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Transform a complex ``(..., freq, frames)`` spectrogram back to ``(..., length)``."""
        shape = spec.shape
        wav = torch.istft(
            spec.reshape(-1, *shape[-2:]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            length=length,
        )
        return wav.reshape(*shape[:-2], length)


def make_stft_pair(n_fft: int, hop_length: int) -> tuple[STFT, ISTFT]:
    """Build a matching encoder/decoder pair."""
    if n_fft <= 0 or hop_length <= 0 or hop_length > n_fft:
        raise ValueError(f"need 0 < hop_length <= n_fft, got n_fft={n_fft}, hop_length={hop_length}")
    return STFT(n_fft, hop_length), ISTFT(n_fft, hop_length)


def num_frames(length: int, hop_length: int) -> int:
    """Frames :class:`STFT` gives for ``length`` samples (after padding to a multiple of the hop)."""
    return 1 + -(-length // hop_length)
