"""Log-mel encoder / Griffin-Lim decoder pair (torchaudio), from one factory.

The GAN works on normalised log-mel spectrograms: ``(dB - db_floor) / db_range`` clipped at 0, so
silence is 0, a loud full-band sound about 1, and a generator ending in ReLU can reach every value.
Axes: waveforms ``(batch, time)``, spectrograms ``(batch, 1, mels, frames)``.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from sepkit.errors import SepkitError


class LogMel(nn.Module):
    """Waveforms to normalised log-mel spectrograms.

    Args:
        sample_rate: rate of the audio.
        n_fft: FFT size (and window length).
        hop_length: hop between frames.
        n_mels: mel bands.
        db_floor: level (dB of mel power) that maps to 0; anything quieter is clipped to 0.
        db_range: dB span that maps to 1.
    """

    def __init__(
        self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, db_floor: float, db_range: float
    ) -> None:
        super().__init__()
        self.hop_length = hop_length
        self.db_floor = db_floor
        self.db_range = db_range
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0
        )

    def frames(self, samples: int) -> int:
        """Frames a waveform of ``samples`` gives (centred frames)."""
        return 1 + samples // self.hop_length

    def samples(self, frames: int) -> int:
        """Waveform length that gives exactly ``frames`` frames."""
        return (frames - 1) * self.hop_length

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``(batch, time)`` to ``(batch, 1, mels, frames)``, computed in float32."""
        with torch.autocast(wav.device.type, enabled=False):
            power = self.mel(wav.float())
        db = 10.0 * torch.log10(power.clamp_min(1e-10))
        return ((db - self.db_floor) / self.db_range).clamp_min(0.0).unsqueeze(1)


class LogMelInverse(nn.Module):
    """Normalised log-mel spectrograms back to waveforms: mel → linear (least squares,
    ``InverseMelScale``) → phase by Griffin-Lim. Approximate: phase and the detail the mel bands
    average away are lost.

    Args:
        sample_rate, n_fft, hop_length, n_mels, db_floor, db_range: as :class:`LogMel`.
        griffin_lim_iters: Griffin-Lim iterations.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        db_floor: float,
        db_range: float,
        griffin_lim_iters: int,
    ) -> None:
        super().__init__()
        self.db_floor = db_floor
        self.db_range = db_range
        self.inverse_mel = torchaudio.transforms.InverseMelScale(
            n_stft=n_fft // 2 + 1, n_mels=n_mels, sample_rate=sample_rate
        )
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=n_fft, hop_length=hop_length, power=2.0, n_iter=griffin_lim_iters
        )

    def mel_power(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, mels, frames)`` normalised log-mel to mel power ``(batch, mels, frames)``;
        values at 0 (the floor) become silence."""
        spec = spec.float().squeeze(1)
        power = 10.0 ** ((spec * self.db_range + self.db_floor) / 10.0)
        return torch.where(spec > 0, power, torch.zeros_like(power))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, mels, frames)`` to ``(batch, time)``."""
        with torch.autocast(spec.device.type, enabled=False):
            linear = self.inverse_mel(self.mel_power(spec))
            return self.griffin_lim(linear)


def make_features(
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    db_floor: float,
    db_range: float,
    griffin_lim_iters: int,
) -> tuple[LogMel, LogMelInverse]:
    """Build a matching encoder/decoder pair."""
    if not 0 < hop_length <= n_fft:
        raise SepkitError(f"model.hop_length={hop_length} must be in (0, n_fft={n_fft}]")
    if not 0 < n_mels <= n_fft // 2 + 1:
        raise SepkitError(f"model.n_mels={n_mels} must be in [1, {n_fft // 2 + 1}] for n_fft={n_fft}")
    if db_range <= 0:
        raise SepkitError(f"model.db_range={db_range} must be positive")
    encoder = LogMel(sample_rate, n_fft, hop_length, n_mels, db_floor, db_range)
    decoder = LogMelInverse(sample_rate, n_fft, hop_length, n_mels, db_floor, db_range, griffin_lim_iters)
    return encoder, decoder
