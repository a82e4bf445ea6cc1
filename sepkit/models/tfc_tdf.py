"""A TFC-TDF U-Net on the complex spectrogram (``model=tfc_tdf``).

The family of Choi et al. 2020 ("Investigating U-Nets with various intermediate blocks for
spectrogram-based singing voice separation": time-frequency convolutions, TFC, with a time-
distributed fully connected layer across frequency, TDF) that KUIELab's MDX-Net and MDX23C and
DTTNet build on; written here from those descriptions.

- **Input**: the mixture's complex STFT with its real and imaginary parts as image channels
  (``complex_input``: :meth:`sepkit.separator.Separator.mask_input`), 2 × audio channels, scaled by
  each example's RMS (the masks do not depend on the level).
- **Block** (:class:`TFCTDF`): norm, GELU, 3×3 conv (TFC); plus a frequency-wise fully connected
  bottleneck, bins → bins / ``bottleneck`` → bins, shared by every channel and frame (TDF: what a
  conv of a few bins cannot see, e.g. harmonics far apart); norm, GELU, 3×3 conv; a 1×1 shortcut
  around it all.
- **U-Net**: ``levels`` strided 2×2 convs halve frequency and time, each adding ``growth`` channels;
  transposed convs come back up, concatenating the encoder's output of the same level.
- **Output** (``mask``): ``magnitude``, a mask per target and audio channel on the magnitude (sigmoid
  by default), the mixture's phase kept; or ``complex``, a complex ratio mask (its real and
  imaginary parts from a linear head, unbounded) that also corrects the phase, as the published
  TFC-TDF models estimate the complex spectrogram. Either goes through the same stages as every
  model's masks: full band at the song's rate, Wiener (on the complex mask's modulus), ONNX.
"""

from __future__ import annotations

import torch
from torch import nn

from sepkit.errors import SepkitError
from sepkit.models.base import UNet, build_mask_activation

MASKS = ("magnitude", "complex")


class TDF(nn.Module):
    """Frequency-wise fully connected bottleneck on ``(batch, channels, freq, frames)``: each frame
    of each channel maps its ``n_freq`` bins to ``n_freq // bottleneck`` and back."""

    def __init__(self, channels: int, n_freq: int, bottleneck: int) -> None:
        super().__init__()
        hidden = max(n_freq // bottleneck, 4)
        self.norm1, self.norm2 = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)
        self.down = nn.Linear(n_freq, hidden, bias=False)
        self.up = nn.Linear(hidden, n_freq, bias=False)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(self.act(self.norm1(x)).transpose(-1, -2)).transpose(-1, -2)
        return self.up(self.act(self.norm2(x)).transpose(-1, -2)).transpose(-1, -2)


def tfc(in_ch: int, out_ch: int) -> nn.Sequential:
    """Time-frequency convolution: norm, GELU, 3×3 conv."""
    return nn.Sequential(nn.BatchNorm2d(in_ch), nn.GELU(), nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False))


class TFCTDF(nn.Module):
    """TFC, + TDF, TFC, with a 1×1 shortcut: ``(batch, in_ch, n_freq, frames)`` to ``out_ch`` channels."""

    def __init__(self, in_ch: int, out_ch: int, n_freq: int, bottleneck: int) -> None:
        super().__init__()
        self.tfc1 = tfc(in_ch, out_ch)
        self.tdf = TDF(out_ch, n_freq, bottleneck)
        self.tfc2 = tfc(out_ch, out_ch)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tfc1(x)
        h = h + self.tdf(h)
        return self.tfc2(h) + self.shortcut(x)


class Down(nn.Module):
    """Strided 2×2 conv (halves frequency and time), then a block."""

    def __init__(self, in_ch: int, out_ch: int, n_freq: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.BatchNorm2d(in_ch), nn.GELU(), nn.Conv2d(in_ch, out_ch, 2, stride=2, bias=False))
        self.block = TFCTDF(out_ch, out_ch, n_freq, bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.down(x))


class Up(nn.Module):
    """Transposed 2×2 conv (doubles frequency and time), concatenate the skip, then a block."""

    def __init__(self, in_ch: int, out_ch: int, n_freq: int, bottleneck: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.BatchNorm2d(in_ch), nn.GELU(), nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2, bias=False)
        )
        self.block = TFCTDF(2 * out_ch, out_ch, n_freq, bottleneck)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


class TFCTDFNet(UNet):
    """TFC-TDF U-Net mask network on the complex spectrogram.

    Args:
        n_targets: targets (a mask each, per audio channel).
        audio_channels: channels of the mixture (its real and imaginary parts make twice as many inputs).
        n_freq: bins the network sees (the separator's ``max_bins``; the TDF layers are sized by it).
        channels: width of the first level.
        growth: channels added per level.
        levels: downsampling levels (frequency and frames are padded to a multiple of ``2 ** levels``).
        bottleneck: the TDF layers' reduction of the frequency axis.
        mask_activation: ``sigmoid`` (masks in [0, 1]), ``relu`` or ``softplus``; for magnitude masks.
        mask: ``magnitude`` (real masks through ``mask_activation``) or ``complex`` (complex masks,
            linear: train them with a loss on complex spectrograms, which every spectrogram loss
            here becomes for them).
    """

    complex_input = True

    def __init__(
        self,
        n_targets: int,
        audio_channels: int = 2,
        n_freq: int = 2048,
        channels: int = 32,
        growth: int = 32,
        levels: int = 4,
        bottleneck: int = 8,
        mask_activation: str = "sigmoid",
        mask: str = "magnitude",
    ) -> None:
        super().__init__(n_targets, audio_channels, False, multiple=2**levels)
        if mask not in MASKS:
            raise SepkitError(f"model.net.mask={mask!r} must be one of {', '.join(MASKS)}")
        self.complex_mask = mask == "complex"
        if min(channels, growth, levels, bottleneck) < 1 or n_freq < 2**levels:
            raise SepkitError(
                f"model.net: channels={channels}, growth={growth}, levels={levels} and bottleneck={bottleneck} "
                f"must be >= 1, and n_freq={n_freq} >= 2 ** levels"
            )
        self.n_freq = n_freq
        n_freq = -(-n_freq // self.multiple) * self.multiple  # padded as forward pads it
        widths = [channels + growth * i for i in range(levels + 1)]
        first = nn.Sequential(
            nn.Conv2d(2 * audio_channels, channels, 1, bias=False),
            TFCTDF(channels, channels, n_freq, bottleneck),
        )
        self.encoder = nn.ModuleList(
            [first, *(Down(widths[i - 1], widths[i], n_freq >> i, bottleneck) for i in range(1, levels + 1))]
        )
        self.bottleneck = TFCTDF(widths[-1], widths[-1], n_freq >> levels, bottleneck)
        self.decoder = nn.ModuleList(
            Up(widths[i + 1], widths[i], n_freq >> i, bottleneck) for i in reversed(range(levels))
        )
        head = [nn.BatchNorm2d(widths[0]), nn.GELU()]
        activation = build_mask_activation(mask_activation)  # checked either way
        if self.complex_mask:  # real parts, then imaginary parts (MaskNet.forward pairs them)
            head.append(nn.Conv2d(widths[0], 2 * self.out_channels, 1))
        else:
            head += [nn.Conv2d(widths[0], self.out_channels, 1), activation]
        self.head = nn.Sequential(*head)

    @property
    def in_channels(self) -> int:
        return 2 * self.audio_channels

    @property
    def out_channels(self) -> int:
        return self.n_targets * self.audio_channels

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Real and imaginary parts divided by each example's RMS."""
        if x.shape[-2] != self.n_freq:
            raise SepkitError(
                f"this TFC-TDF network is sized for {self.n_freq} bins (model.max_bins), got {x.shape[-2]}"
            )
        return x / x.square().mean(dim=(-3, -2, -1), keepdim=True).sqrt().clamp_min(1e-8)
