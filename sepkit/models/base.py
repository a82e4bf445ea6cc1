"""The interface every mask network implements, and the U-Net wiring they share.

A mask network maps a mixture magnitude ``(batch, channels, freq, frames)`` to non-negative masks
``(batch, targets, channels, freq, frames)``, in [0, 1] with the default sigmoid head, or, for a
network with ``complex_mask``, to complex masks that also turn each bin's phase. The base
class takes care of what all variants have in common: input normalisation, folding stereo channels
into the batch for mono networks, padding freq × frames up to the network's multiple and cropping
back, and splitting the output into targets × channels. A variant only supplies :meth:`MaskNet.body`.

Input scaling (``input_scaling``): ``peak`` divides each example by its maximum (Jansson et al.
2017); ``stats`` standardises each frequency bin of the magnitude with the mean and deviation of
the training mixtures, as learnable parameters (Open-Unmix's input scaler); ``log_stats`` does the
same on the log magnitude. The statistics come from :meth:`sepkit.separator.Separator.fit_input_statistics`,
called by ``train.py`` on the training tracks before fitting; checkpoints keep them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sepkit.errors import SepkitError

INPUT_SCALINGS = ("peak", "stats", "log_stats")
# Last layer of a mask head: sigmoid masks lie in [0, 1]; relu and softplus masks are non-negative
# and unbounded, so a target may get more than the mixture's magnitude in a bin (Open-Unmix's output).
MASK_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "softplus": nn.Softplus}
LOG_FLOOR = 1e-4  # added to magnitudes before the log (-80 dB of a full-scale bin at n_fft 1024)


def build_mask_activation(name: str) -> nn.Module:
    """The module that ends a mask head, by its name in :data:`MASK_ACTIVATIONS`."""
    if name not in MASK_ACTIVATIONS:
        raise SepkitError(f"model.net.mask_activation={name!r} must be one of {', '.join(MASK_ACTIVATIONS)}")
    return MASK_ACTIVATIONS[name]()


class MaskNet(nn.Module):
    """Base class of all mask networks.

    Args:
        n_targets: number of targets (one mask each).
        audio_channels: channels of the mixture the network is fed (1 mono, 2 stereo).
        fold_channels: treat each audio channel as its own batch item (mono networks).
        multiple: freq and frames are padded up to a multiple of this (``2 ** depth``).
        input_scaling: ``peak``, ``stats`` or ``log_stats`` (see the module's description).
        channels_last: feed :meth:`body` a channels-last tensor. oneDNN's CPU convolutions with few
            channels on large images run much faster that way (the stereo U-Net's step: -25 %),
            wider networks slower; the math is the same.
    """

    # None: exports to ONNX with dynamic batch and frames axes; else why it cannot (sepkit/export.py)
    onnx_unsupported: str | None = None
    # True: fed the real and imaginary parts of the STFT as channels (Separator.mask_input), not magnitudes
    complex_input = False
    # True: body returns the masks' real parts, then their imaginary parts, as twice out_channels
    # channels; forward makes complex masks of them (a complex ratio mask, Williamson et al. 2016)
    complex_mask = False

    def __init__(
        self,
        n_targets: int,
        audio_channels: int,
        fold_channels: bool,
        multiple: int,
        input_scaling: str = "peak",
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if input_scaling not in INPUT_SCALINGS:
            raise SepkitError(f"model.net.input_scaling={input_scaling!r} must be one of {', '.join(INPUT_SCALINGS)}")
        self.n_targets = n_targets
        self.audio_channels = audio_channels
        self.fold_channels = fold_channels
        self.multiple = multiple
        self.input_scaling = input_scaling
        self.channels_last = channels_last
        if input_scaling != "peak":  # sized by set_input_statistics (or by the checkpoint loaded)
            self.input_shift = nn.Parameter(torch.zeros(0))
            self.input_scale = nn.Parameter(torch.ones(0))

    @property
    def uses_input_statistics(self) -> bool:
        """Whether :meth:`set_input_statistics` must be called before training."""
        return self.input_scaling != "peak"

    def input_features(self, mag: torch.Tensor) -> torch.Tensor:
        """What the input statistics are taken of: the magnitude, or its log for ``log_stats``."""
        return torch.log(mag + LOG_FLOOR) if self.input_scaling == "log_stats" else mag

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Start the per-bin shift and scale from the training data's ``(freq,)`` mean and deviation."""
        floor = 1e-4 * float(std.max()) + 1e-8  # silent bins (e.g. above a band limit) stay finite
        self.input_shift.data = -mean.float()
        self.input_scale.data = 1.0 / std.float().clamp_min(floor)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        for name in ("input_shift", "input_scale"):
            if hasattr(self, name) and prefix + name in state_dict:
                getattr(self, name).data = torch.empty_like(state_dict[prefix + name])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def in_channels(self) -> int:
        """Image channels of the tensor :meth:`body` receives."""
        return 1 if self.fold_channels else self.audio_channels

    @property
    def out_channels(self) -> int:
        """Image channels :meth:`body` must return (targets × audio channels it handles)."""
        return self.n_targets * self.in_channels

    def normalize(self, mag: torch.Tensor) -> torch.Tensor:
        """Scale the magnitude as ``input_scaling`` says."""
        if self.input_scaling == "peak":
            peak = mag.amax(dim=(-3, -2, -1), keepdim=True)
            return mag / peak.clamp_min(1e-8)
        if self.input_shift.numel() != mag.shape[-2]:
            raise SepkitError(
                f"input_scaling={self.input_scaling} has statistics of {self.input_shift.numel()} bins, the input "
                f"has {mag.shape[-2]}: train.py sets them from the training tracks"
            )
        return (self.input_features(mag) + self.input_shift[:, None]) * self.input_scale[:, None]

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch', in_channels, freq, frames)`` to masks ``(batch', out_channels, freq, frames)``
        (``2 * out_channels`` with ``complex_mask``: the real parts, then the imaginary parts)."""
        raise NotImplementedError

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        """Estimate masks.

        Args:
            mag: mixture magnitude ``(batch, channels, freq, frames)`` (with ``complex_input``: the real
                parts, then the imaginary parts, ``(batch, 2 * channels, freq, frames)``).

        Returns:
            Non-negative masks ``(batch, targets, channels, freq, frames)`` (in [0, 1] with a sigmoid head),
            complex with ``complex_mask``.
        """
        masks = self.mask_parts(mag)
        return torch.complex(masks[0], masks[1]) if self.complex_mask else masks

    def mask_parts(self, mag: torch.Tensor) -> torch.Tensor:
        """:meth:`forward`'s masks as a real tensor: the same, or with ``complex_mask`` their real and
        imaginary parts stacked first, ``(2, batch, targets, channels, freq, frames)`` (what an ONNX
        graph can carry)."""
        batch, channels, n_freq, n_frames = mag.shape
        if self.complex_input:
            channels //= 2
        if not self.fold_channels and channels != self.audio_channels:
            raise ValueError(f"{type(self).__name__} expects {self.audio_channels} channels, got {channels}")
        x = self.normalize(mag)
        if self.fold_channels:
            x = x.reshape(batch * channels, 1, n_freq, n_frames)
        pad_f = -n_freq % self.multiple
        pad_t = -n_frames % self.multiple
        x = F.pad(x, (0, pad_t, 0, pad_f))
        if self.channels_last and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            x = x.contiguous(memory_format=torch.channels_last)
        masks = self.body(x)[..., :n_freq, :n_frames]
        lead: tuple[int, ...] = ()
        if self.complex_mask:  # (batch', 2 * out, ...) to (2, batch', out, ...)
            masks = masks.float().unflatten(1, (2, -1)).transpose(0, 1)
            lead = (2,)
        if self.fold_channels:
            masks = masks.reshape(*lead, batch, channels, self.n_targets, n_freq, n_frames).transpose(-3, -4)
        else:
            masks = masks.reshape(*lead, batch, self.n_targets, channels, n_freq, n_frames)
        return masks


class UNet(MaskNet):
    """Encoder stages, an optional bottleneck, decoder stages fed with skips, and a mask head.

    Subclasses build ``encoder`` (each stage halves freq and frames, or keeps them for the first
    stage of a classic U-Net), ``decoder`` (stage ``i`` receives the running tensor and the skip of
    the matching encoder stage), ``bottleneck`` and ``head``. With ``skip_deepest`` the deepest
    encoder output is also a skip (the bottleneck then downsamples itself, as in the classic U-Net);
    otherwise it only feeds the bottleneck.
    """

    skip_deepest = False

    encoder: nn.ModuleList
    decoder: nn.ModuleList
    bottleneck: nn.Module
    head: nn.Module

    def body(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        if not self.skip_deepest:
            skips.pop()
        x = self.bottleneck(x)
        for stage in self.decoder:
            x = stage(x, skips.pop())
        return self.head(x)


class ConcatSkip(nn.Module):
    """Decoder stage that runs ``block`` on the input and concatenates the skip after it."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.block(x), skip], dim=1)


def conv_down(in_ch: int, out_ch: int, kernel: int, activation: nn.Module, norm: bool = True) -> nn.Sequential:
    """Strided conv (halves freq and frames) + optional BatchNorm + activation."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, stride=2, padding=(kernel - 1) // 2)]
    if norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(activation)
    return nn.Sequential(*layers)


def conv_up(in_ch: int, out_ch: int, kernel: int) -> nn.ConvTranspose2d:
    """Transposed conv that exactly doubles freq and frames."""
    pad = (kernel - 1) // 2
    return nn.ConvTranspose2d(in_ch, out_ch, kernel, stride=2, padding=pad, output_padding=2 * pad + 2 - kernel)


def double_conv(in_ch: int, out_ch: int, dilations: tuple[int, int] = (1, 1)) -> nn.Sequential:
    """[Conv 3×3 (same padding), BatchNorm, ReLU] × 2; ``dilations`` spread each conv's taps.

    A dilation ``d`` widens a conv's field to ``2d + 1`` pixels at the same cost and parameters.
    """
    layers = []
    for i, d in enumerate(dilations):
        layers += [
            nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, padding=d, dilation=d, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class DownStage(nn.Module):
    """Max-pool (skipped for the first stage) then a double conv."""

    def __init__(self, in_ch: int, out_ch: int, pool: bool) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.conv = double_conv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class UpStage(nn.Module):
    """Transposed conv ×2 up, concatenate the skip, double conv."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        self.conv = double_conv(out_ch + skip_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))
