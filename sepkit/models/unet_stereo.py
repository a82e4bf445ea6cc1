"""The lightweight stereo U-Net: both channels as one 2-channel image, four masks out.

Input (batch, 2, freq, frames), normalised per frequency bin with running mean/std kept in the
model (so inference denormalises nothing and needs no dataset statistics); two downsampling levels
of [Conv 3×3, BatchNorm, ReLU] × 2 starting at ``base_channels`` (8), a bottleneck, a decoder with
skips, and a 1×1 conv to four sigmoid masks (vocals L/R, instrumental L/R). Small enough for
low-VRAM GPUs.
"""

from __future__ import annotations

import torch
from torch import nn

from sepkit.errors import SepkitError
from sepkit.models.base import DownStage, UNet, UpStage, double_conv


class FrequencyNorm(nn.Module):
    """Per-frequency-bin standardisation with running statistics (BatchNorm over the freq axis).

    The running mean/std are buffers, saved in checkpoints and used at inference.
    """

    def __init__(self, momentum: float = 0.01) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("std", torch.ones(0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # statistics are sized by the first batch; size the empty buffers before loading them
        for name in ("mean", "std"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``(batch, channels, freq, frames)`` per frequency bin."""
        if self.training:
            mean = x.mean(dim=(0, 1, 3)).detach()
            std = x.std(dim=(0, 1, 3)).detach()
            if self.mean.numel() != x.shape[2]:
                self.mean, self.std = mean, std
            else:
                self.mean.lerp_(mean, self.momentum)
                self.std.lerp_(std, self.momentum)
        if self.mean.numel() == 0:  # untrained: no statistics yet
            return x
        if self.mean.numel() != x.shape[2]:
            raise ValueError(f"FrequencyNorm saw {self.mean.numel()} bins in training, got {x.shape[2]}")
        return (x - self.mean[:, None]) / self.std[:, None].clamp_min(1e-5)


class StereoUNet(UNet):
    """Lightweight stereo U-Net with two downsampling levels.

    Args:
        n_targets: targets (2: vocals and instrumental, giving four masks with two channels).
        audio_channels: must be 2; the channels form the input image.
        base_channels: width of the first level (doubles per level).
        levels: downsampling levels.
        momentum: update rate of the running frequency statistics.
        channels_last: channels-last convolutions (see :class:`MaskNet`; a quarter less time per
            training step on CPU at these widths).
        bottleneck_dilations: dilation of the bottleneck's two 3×3 convs. ``(1, 1)`` is the
            published design; larger values let the coarsest level see wider spans of frequency
            and time (harmonic spacing, phrases) for the same cost and parameters.
    """

    def __init__(
        self,
        n_targets: int,
        audio_channels: int = 2,
        base_channels: int = 8,
        levels: int = 2,
        momentum: float = 0.01,
        channels_last: bool = True,
        bottleneck_dilations: tuple[int, int] = (1, 1),
    ) -> None:
        super().__init__(n_targets, audio_channels, False, multiple=2**levels, channels_last=channels_last)
        widths = [base_channels * 2**i for i in range(levels + 1)]
        self.input_norm = FrequencyNorm(momentum)
        self.encoder = nn.ModuleList(
            DownStage(audio_channels if i == 0 else widths[i - 1], widths[i], pool=i > 0) for i in range(levels + 1)
        )
        if len(bottleneck_dilations) != 2 or min(bottleneck_dilations) < 1:
            raise SepkitError(
                f"model.net.bottleneck_dilations={list(bottleneck_dilations)} must be two integers >= 1, e.g. [1, 1]"
            )
        self.bottleneck = double_conv(widths[-1], widths[-1], tuple(int(d) for d in bottleneck_dilations))
        self.decoder = nn.ModuleList(UpStage(widths[i + 1], widths[i], widths[i]) for i in reversed(range(levels)))
        self.head = nn.Sequential(nn.Conv2d(widths[0], self.out_channels, 1), nn.Sigmoid())

    def normalize(self, mag: torch.Tensor) -> torch.Tensor:
        return self.input_norm(torch.log1p(mag))
