"""The simplified 4-layer U-Net.

Encoder: 4 × [Conv2d stride 2, LeakyReLU] with 1→32→64→128→256 channels. Decoder:
ConvTranspose2d + LeakyReLU with skip concatenation (256→128 +skip, 256→64 +skip, 128→32 +skip,
64→1 per target), sigmoid mask. Mono: stereo channels are processed as separate batch items.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sepkit.models.base import ConcatSkip, UNet, conv_down, conv_up


class SimpleUNet(UNet):
    """Four strided-conv levels (BatchNorm optional).

    Args:
        n_targets: masks to estimate.
        audio_channels: channels of the mixture (each processed alone).
        input_scaling: ``peak`` (the paper), ``stats`` or ``log_stats`` (see :class:`MaskNet`).
        channels: encoder widths, shallow to deep.
        kernel_size: square kernel of every (transposed) convolution.
        negative_slope: LeakyReLU slope.
        batch_norm: BatchNorm after every hidden (transposed) convolution. Not part of the
            simplified design; without it the net collapses to an all-zero vocal mask on the
            built-in data (measured: mean vocal mask 0.002 after 10 steps at lr 1e-3 and 1e-4).
    """

    def __init__(
        self,
        n_targets: int,
        audio_channels: int = 2,
        channels: Sequence[int] = (32, 64, 128, 256),
        kernel_size: int = 4,
        negative_slope: float = 0.2,
        batch_norm: bool = False,
        input_scaling: str = "peak",
    ) -> None:
        channels = list(channels)
        super().__init__(n_targets, audio_channels, True, 2 ** len(channels), input_scaling)
        widths = [self.in_channels, *channels]
        self.encoder = nn.ModuleList(
            conv_down(widths[i], widths[i + 1], kernel_size, nn.LeakyReLU(negative_slope), norm=batch_norm)
            for i in range(len(channels))
        )
        self.bottleneck = nn.Identity()
        decoder = []
        in_ch = channels[-1]
        for skip_ch in reversed(channels[:-1]):
            norm = nn.BatchNorm2d(skip_ch) if batch_norm else nn.Identity()
            decoder.append(
                ConcatSkip(nn.Sequential(conv_up(in_ch, skip_ch, kernel_size), norm, nn.LeakyReLU(negative_slope)))
            )
            in_ch = 2 * skip_ch
        self.decoder = nn.ModuleList(decoder)
        self.head = nn.Sequential(conv_up(in_ch, self.out_channels, kernel_size), nn.Sigmoid())
