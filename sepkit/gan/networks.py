"""Generator and discriminator of the conditional spectrogram GAN.

Spectrograms are ``(batch, 1, mels, frames)``; labels are category indices ``(batch,)`` (one-hot
inside the networks).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sepkit.errors import SepkitError


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are looked up per category (de Vries et al. 2017; the SN-GAN and
    BigGAN generators): the label shapes every layer's features, not just the first layer's input.

    Args:
        channels: feature channels.
        n_classes: categories.
    """

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(n_classes, channels)
        self.shift = nn.Embedding(n_classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, h, w)`` and ``(batch,)`` labels to the same shape."""
        return self.norm(x) * self.scale(labels)[:, :, None, None] + self.shift(labels)[:, :, None, None]


def _transposed(c_in: int, c_out: int) -> nn.Module:
    return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)


def _nearest(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1))


UPSAMPLING = {"transposed": _transposed, "nearest": _nearest}


class Generator(nn.Module):
    """Noise concatenated with the one-hot label → Linear to ``(channels[0], mels / 2^L, frames / 2^L)``
    → BatchNorm + ReLU → ``L = len(channels)`` ConvTranspose2d (kernel 4, stride 2, padding 1) with
    BatchNorm + ReLU between, the last to one channel → ReLU. With the defaults: 256×8×32 → 128 → 64 → 32 → 1
    channels and a ``(1, 128, 512)`` spectrogram.

    Args:
        latent_dim: noise dimensions.
        n_classes: categories.
        n_mels: mel bands of the output (a multiple of ``2^L``).
        frames: frames of the output (a multiple of ``2^L``).
        channels: channels before each transposed convolution.
        output_bias: initial bias of the last layer: a positive start keeps the final ReLU open
            everywhere (a negative output gets no gradient, and the generator would be stuck
            drawing sparse spikes).
        conditional_norm: every BatchNorm's scale and shift chosen by the label
            (:class:`ConditionalBatchNorm2d`) instead of learnt once for all categories.
        upsample: how each layer doubles the size: ``"transposed"`` (ConvTranspose2d, kernel 4,
            stride 2, the DCGAN layer) or ``"nearest"`` (nearest-neighbour upsampling then a 3×3
            Conv2d, Odena et al. 2016: every output bin gets the same number of taps, so no
            checkerboard pattern is drawn over the spectrogram).
    """

    def __init__(
        self,
        latent_dim: int,
        n_classes: int,
        n_mels: int,
        frames: int,
        channels: Sequence[int] = (256, 128, 64, 32),
        output_bias: float = 0.3,
        conditional_norm: bool = False,
        upsample: str = "transposed",
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLING:
            raise SepkitError(f"model.generator.upsample={upsample!r}: choose one of {', '.join(UPSAMPLING)}")
        scale = 2 ** len(channels)
        if not channels or n_mels % scale or frames % scale:
            raise SepkitError(
                f"the generator doubles the size {len(channels)} times: model.n_mels={n_mels} and "
                f"model.max_frames={frames} must be multiples of {scale}"
            )
        self.latent_dim = latent_dim
        self.n_classes = n_classes
        self.base = (channels[0], n_mels // scale, frames // scale)
        self.project = nn.Linear(latent_dim + n_classes, channels[0] * self.base[1] * self.base[2])

        def norm(c: int) -> nn.Module:
            return ConditionalBatchNorm2d(c, n_classes) if conditional_norm else nn.BatchNorm2d(c)

        self.norms = nn.ModuleList([norm(c) for c in channels])
        self.convs = nn.ModuleList(
            [UPSAMPLING[upsample](c_in, c_out) for c_in, c_out in zip(channels, [*channels[1:], 1], strict=True)]
        )
        last = self.convs[-1]
        nn.init.constant_((last[-1] if isinstance(last, nn.Sequential) else last).bias, output_bias)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(batch, latent_dim)`` noise and ``(batch,)`` labels to ``(batch, 1, mels, frames)``."""
        onehot = nn.functional.one_hot(labels, self.n_classes).to(noise.dtype)
        h = self.project(torch.cat([noise, onehot], dim=1)).view(-1, *self.base)
        for norm, conv in zip(self.norms, self.convs, strict=True):
            h = norm(h, labels) if isinstance(norm, ConditionalBatchNorm2d) else norm(h)
            h = conv(torch.relu(h))
        return torch.relu(h)


class Discriminator(nn.Module):
    """Strided Conv2d (kernel 4, stride 2, padding 1) + LeakyReLU(0.2) downsampling, averaged over
    time and frequency (or time only), then one logit: ``w·h + embed(label)·h`` (projection conditioning, Miyato &
    Koyama 2018), so the label decides which features count as real.

    With ``minibatch_std`` (Karras et al. 2018) the head also sees how much the features vary
    across groups of ``minibatch_std`` samples: a batch of near-identical generated spectrograms
    looks unlike a real batch, so the generator is pushed away from collapsing onto one layout.

    Args:
        n_classes: categories.
        channels: output channels of each convolution.
        spectral_norm: spectral normalisation of every weight (keeps the discriminator Lipschitz).
        minibatch_std: group size of the minibatch standard deviation feature (0: none).
        auxiliary: also classify the input (:meth:`classify`: one logit per category, on the same
            features; the AC-GAN head of Odena et al. 2017).
        twin: a second classifier head on the same features (:meth:`classify` with ``twin=True``),
            which learns the categories of *generated* samples: TAC-GAN's twin (Gong et al. 2019),
            which the generator plays against to undo the AC-GAN's pull towards samples of one layout.
        pool: what the last feature maps are averaged over before the heads: ``"all"`` (time and
            frequency: the heads see which features occur, not where) or ``"time"`` (each of the
            ``n_mels / 2^L`` frequency rows kept: the heads see in which band each feature occurs,
            which is most of what tells a bass line from a voice on a spectrogram).
        n_mels: mel bands of the input (needed with ``pool="time"``).
    """

    def __init__(
        self,
        n_classes: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        spectral_norm: bool = True,
        minibatch_std: int = 0,
        auxiliary: bool = False,
        twin: bool = False,
        pool: str = "all",
        n_mels: int | None = None,
    ):
        super().__init__()
        if pool not in ("all", "time"):
            raise SepkitError(f"model.discriminator.pool={pool!r}: choose all or time")
        rows = 1
        if pool == "time":
            scale = 2 ** len(channels)
            if n_mels is None or n_mels % scale:
                raise SepkitError(f"model.discriminator.pool=time: model.n_mels={n_mels} must be a multiple of {scale}")
            rows = n_mels // scale
        self.pool = pool
        self.minibatch_std = minibatch_std
        norm = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            layers += [norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        width = c_in * rows
        self.head = norm(nn.Linear(width + (minibatch_std > 0), 1))
        self.embed = norm(nn.Embedding(n_classes, width))
        self.classifier = norm(nn.Linear(width, n_classes)) if auxiliary else None
        self.twin = norm(nn.Linear(width, n_classes)) if twin else None
        self._pooled: torch.Tensor | None = None

    def forward(self, spec: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, mels, frames)`` and ``(batch,)`` labels to ``(batch,)`` logits."""
        maps = self.features(spec)
        h = maps.mean(dim=(2, 3)) if self.pool == "all" else maps.mean(dim=3).flatten(1)
        self._pooled = h
        seen = torch.cat([h, group_std(maps, self.minibatch_std)], dim=1) if self.minibatch_std else h
        return self.head(seen).squeeze(1) + (self.embed(labels) * h).sum(dim=1)

    def pooled(self) -> torch.Tensor:
        """``(batch, features)``: the pooled features of the input of the last :meth:`forward` (what
        every head sees; feature matching compares them)."""
        if self._pooled is None:
            raise RuntimeError("pooled() needs a forward()")
        return self._pooled

    def classify(self, twin: bool = False) -> torch.Tensor:
        """``(batch, n_classes)`` category logits of the input of the last :meth:`forward` (the
        auxiliary head, or the twin head with ``twin``; the features are computed once for every
        answer)."""
        head = self.twin if twin else self.classifier
        if head is None or self._pooled is None:
            raise RuntimeError(f"classify(twin={twin}) needs that head (auxiliary=True or twin=True) and a forward()")
        return head(self._pooled)


def group_std(maps: torch.Tensor, group: int) -> torch.Tensor:
    """``(batch, channels, h, w)`` feature maps to ``(batch, 1)``: the standard deviation across each
    group of samples (the whole batch when it does not divide into groups of ``group``), averaged over
    features, the same value for every member of a group."""
    batch = len(maps)
    size = group if batch % group == 0 else batch
    grouped = maps.float().reshape(batch // size, size, -1)
    centred = grouped - grouped.mean(dim=1, keepdim=True)  # (Tensor.var over a middle axis is slow on CPUs)
    std = (centred.pow(2).mean(dim=1) + 1e-8).sqrt().mean(dim=1)  # (groups,)
    return std.repeat_interleave(size)[:, None].to(maps.dtype)
