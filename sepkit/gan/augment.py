"""Differentiable augmentation of spectrograms for the discriminator (DiffAugment, Zhao et al. 2020).

The discriminator sees real and generated spectrograms through the same random, differentiable
transforms, so on small data it cannot memorise the real windows, and the generator still gets
gradients through them. Only transforms that keep a spectrogram a plausible spectrogram of the same
category: a level change (an offset in dB), a circular shift in time and a silenced span of frames.
No shift in frequency (that would change pitch and timbre, which the label is about).
"""

from __future__ import annotations

import torch

# The largest size of each transform, whatever the strength: ±50 dB, half the frames, three quarters silenced.
LIMITS = {"level": 0.5, "shift": 0.5, "cutout": 0.75}


class DiffAugment:
    """Random per-sample level offset, time shift and time cutout of ``(batch, 1, mels, frames)``
    normalised log-mel spectrograms (0 is silence, 1 spans ``db_range`` dB).

    Args:
        level: largest level offset, in normalised units (0.1 with a 100 dB range: ±10 dB), on
            the sounding bins only (silence stays silence), clipped at 0.
        shift: largest circular time shift, as a share of the frames.
        cutout: length of the silenced span of frames, as a share of the frames (0: none).

    :attr:`strength` (1 to start with) scales all three, each up to :data:`LIMITS`: what an adaptive
    schedule (``adversarial.adaptive`` of the GAN's system) turns.
    """

    def __init__(self, level: float = 0.1, shift: float = 0.125, cutout: float = 0.25) -> None:
        self.level = level
        self.shift = shift
        self.cutout = cutout
        self.strength = 1.0

    def scaled(self, name: str) -> float:
        """A transform's size at the current strength, at most its limit."""
        return min(getattr(self, name) * self.strength, LIMITS[name])

    def __call__(self, spec: torch.Tensor) -> torch.Tensor:
        batch, frames = len(spec), spec.shape[-1]
        device = spec.device
        level, shift, cutout = self.scaled("level"), self.scaled("shift"), self.scaled("cutout")
        if level:
            offset = (torch.rand(batch, 1, 1, 1, device=device) * 2 - 1) * level
            spec = torch.where(spec > 0, (spec + offset.to(spec.dtype)).clamp_min(0.0), spec)
        time = torch.arange(frames, device=device)
        if shift:
            most = max(1, int(shift * frames))
            shifts = torch.randint(-most, most + 1, (batch, 1), device=device)
            index = (time[None] - shifts) % frames  # (batch, frames)
            spec = spec.gather(-1, index[:, None, None, :].expand_as(spec))
        if cutout:
            length = max(1, int(cutout * frames))
            starts = torch.randint(0, frames - length + 1, (batch, 1), device=device)
            keep = (time[None] < starts) | (time[None] >= starts + length)
            spec = spec * keep[:, None, None, :].to(spec.dtype)
        return spec
