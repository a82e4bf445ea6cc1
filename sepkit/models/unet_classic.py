"""The textbook U-Net (Ronneberger et al. 2015) on spectrograms.

Blocks of [Conv 3×3 (same padding), BatchNorm, ReLU] × 2; max-pool down; transposed conv up;
skip concatenation; a 1×1 conv to the masks with a sigmoid. ``features`` sets the widths per level
(64-128-256-512 by default, the bottleneck doubles the last). ``in_channels``/``out_channels`` per
target: 1/1 processes stereo channels as separate mono images, 2/2 sees both channels at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sepkit.models.base import DownStage, UNet, UpStage, double_conv


class ClassicUNet(UNet):
    """Conv-block U-Net.

    Args:
        n_targets: masks to estimate.
        audio_channels: channels of the mixture.
        features: widths of the encoder levels, shallow to deep.
        in_channels: 1 (mono, channels folded into the batch) or ``audio_channels``.
        input_scaling: ``peak``, ``stats`` or ``log_stats`` (see :class:`MaskNet`).
    """

    def __init__(
        self,
        n_targets: int,
        audio_channels: int = 2,
        features: Sequence[int] = (64, 128, 256, 512),
        in_channels: int = 1,
        input_scaling: str = "peak",
    ) -> None:
        if in_channels not in (1, audio_channels):
            raise ValueError(f"in_channels must be 1 or audio_channels={audio_channels}, got {in_channels}")
        features = list(features)
        super().__init__(n_targets, audio_channels, in_channels == 1, 2 ** len(features), input_scaling)
        self.skip_deepest = True
        self.encoder = nn.ModuleList(
            DownStage(self.in_channels if i == 0 else features[i - 1], f, pool=i > 0) for i, f in enumerate(features)
        )
        bottom = 2 * features[-1]
        self.bottleneck = nn.Sequential(nn.MaxPool2d(2), double_conv(features[-1], bottom))
        widths = [*features, bottom]
        self.decoder = nn.ModuleList(
            UpStage(widths[i + 1], widths[i], widths[i]) for i in reversed(range(len(features)))
        )
        self.head = nn.Sequential(nn.Conv2d(features[0], self.out_channels, 1), nn.Sigmoid())
