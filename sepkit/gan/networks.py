"""Generator and discriminator of the conditional spectrogram GAN.

Spectrograms are ``(batch, 1, mels, frames)``; labels are category indices ``(batch,)`` (one-hot
inside the networks).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sepkit.errors import SepkitError


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
    """

    def __init__(
        self,
        latent_dim: int,
        n_classes: int,
        n_mels: int,
        frames: int,
        channels: Sequence[int] = (256, 128, 64, 32),
        output_bias: float = 0.3,
    ) -> None:
        super().__init__()
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
        layers: list[nn.Module] = [nn.BatchNorm2d(channels[0]), nn.ReLU()]
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        last = nn.ConvTranspose2d(channels[-1], 1, 4, 2, 1)
        nn.init.constant_(last.bias, output_bias)
        self.upsample = nn.Sequential(*layers, last, nn.ReLU())

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(batch, latent_dim)`` noise and ``(batch,)`` labels to ``(batch, 1, mels, frames)``."""
        onehot = nn.functional.one_hot(labels, self.n_classes).to(noise.dtype)
        h = self.project(torch.cat([noise, onehot], dim=1))
        return self.upsample(h.view(-1, *self.base))


class Discriminator(nn.Module):
    """Strided Conv2d (kernel 4, stride 2, padding 1) + LeakyReLU(0.2) downsampling, summed over
    time and frequency, then one logit: ``w·h + embed(label)·h`` (projection conditioning, Miyato &
    Koyama 2018), so the label decides which features count as real.

    Args:
        n_classes: categories.
        channels: output channels of each convolution.
        spectral_norm: spectral normalisation of every weight (keeps the discriminator Lipschitz).
    """

    def __init__(self, n_classes: int, channels: Sequence[int] = (16, 32, 64, 128), spectral_norm: bool = True):
        super().__init__()
        norm = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            layers += [norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = norm(nn.Linear(c_in, 1))
        self.embed = norm(nn.Embedding(n_classes, c_in))

    def forward(self, spec: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, mels, frames)`` and ``(batch,)`` labels to ``(batch,)`` logits."""
        h = self.features(spec).mean(dim=(2, 3))
        return self.head(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)
