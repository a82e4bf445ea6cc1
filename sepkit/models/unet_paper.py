"""The U-Net of Jansson et al., "Singing Voice Separation with Deep U-Net Convolutional Networks",
ISMIR 2017.

Encoder: 6 × [Conv2d 5×5 stride 2, BatchNorm, LeakyReLU 0.2], 16-32-64-128-256-512 channels.
Decoder: 5 × [ConvTranspose2d 5×5 stride 2, BatchNorm, ReLU] each followed by concatenation with
the encoder output of the same resolution, dropout 0.5 on the first three; a last ConvTranspose2d
5×5 stride 2 to one mask per target with a sigmoid. The network is mono: stereo channels are
processed as separate batch items. Input magnitudes are scaled to [0, 1] per example.

Options beyond the paper (defaults keep it): ``mask_activation`` ends the head with a ReLU or
softplus instead of the sigmoid (unbounded masks).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sepkit.models.base import ConcatSkip, UNet, build_mask_activation, conv_down, conv_up


class PaperUNet(UNet):
    """Jansson et al. 2017 six-layer U-Net.

    Args:
        n_targets: masks to estimate.
        audio_channels: channels of the mixture (each processed alone).
        input_scaling: ``peak`` (the paper), ``stats`` or ``log_stats`` (see :class:`MaskNet`).
        channels: encoder widths, shallow to deep.
        kernel_size: square kernel of every (transposed) convolution.
        dropout: dropout after the first ``dropout_layers`` decoder stages.
        dropout_layers: how many decoder stages get dropout.
        mask_activation: ``sigmoid`` (the paper: masks in [0, 1]), ``relu`` or ``softplus``.
    """

    def __init__(
        self,
        n_targets: int,
        audio_channels: int = 2,
        channels: Sequence[int] = (16, 32, 64, 128, 256, 512),
        kernel_size: int = 5,
        dropout: float = 0.5,
        dropout_layers: int = 3,
        input_scaling: str = "peak",
        mask_activation: str = "sigmoid",
    ) -> None:
        channels = list(channels)
        super().__init__(n_targets, audio_channels, True, 2 ** len(channels), input_scaling)
        widths = [self.in_channels, *channels]
        self.encoder = nn.ModuleList(
            conv_down(widths[i], widths[i + 1], kernel_size, nn.LeakyReLU(0.2)) for i in range(len(channels))
        )
        self.bottleneck = nn.Identity()
        decoder = []
        in_ch = channels[-1]
        for i, skip_ch in enumerate(reversed(channels[:-1])):
            layers: list[nn.Module] = [conv_up(in_ch, skip_ch, kernel_size), nn.BatchNorm2d(skip_ch), nn.ReLU()]
            if i < dropout_layers:
                layers.append(nn.Dropout(dropout))
            decoder.append(ConcatSkip(nn.Sequential(*layers)))
            in_ch = 2 * skip_ch
        self.decoder = nn.ModuleList(decoder)
        self.head = nn.Sequential(
            conv_up(in_ch, self.out_channels, kernel_size), build_mask_activation(mask_activation)
        )
