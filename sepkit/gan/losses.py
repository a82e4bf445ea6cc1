"""Adversarial losses and regularisers of the GAN, each a small object a config picks
(``adversarial.loss`` in ``experiment=gan``).

Logits are ``(batch,)``; spectrograms ``(batch, 1, mels, frames)``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


class NonSaturating:
    """The original GAN loss in its non-saturating form (Goodfellow et al. 2014): the discriminator
    minimises binary cross-entropy (real 1, generated 0), the generator ``-log D(G(z))``. The
    ``experiment=gan_baseline`` loss (BCE with logits, written with softplus)."""

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake).mean()


class Hinge:
    """Hinge loss (Lim & Ye 2017; used with spectral normalisation and projection discriminators by
    Miyato et al. 2018 and BigGAN): the discriminator only pushes logits to a margin of ±1, so a
    confident discriminator stops growing its logits and the generator keeps a useful gradient."""

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


def r1_penalty(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the mean squared norm of the discriminator's gradient on real
    samples; ``real`` must require grad and ``logits`` be computed from it."""
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def mode_seeking(fake: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Mode-seeking term (Mao et al. 2019, MSGAN): the batch's two halves share labels; the ratio of
    the halves' mean absolute spectrogram difference to their noise difference is maximised (this
    returns its inverse, to minimise), so different noise must give different spectrograms."""
    half = len(fake) // 2
    spec = (fake[:half] - fake[half : 2 * half]).abs().mean()
    z = (noise[:half] - noise[half : 2 * half]).abs().mean()
    return 1.0 / (spec / z + 1e-5)


def feature_matching(
    fake: torch.Tensor, real: torch.Tensor, fake_labels: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Class-conditional feature matching (Salimans et al. 2016, per category): the squared distance
    between the mean discriminator features of each category's generated and real samples, in units
    of the features' mean variance over the real batch (so the weight does not depend on how large
    the discriminator's features are at this step), averaged over features and over the categories
    present in both batches. ``(batch, features)`` features; ``real`` is a target (detach it).

    A category whose generated samples take another category's textures sits far from its own real
    mean, whatever the discriminator's one logit says, so the generator is pulled towards each
    category's own statistics; a gap of one (average) standard deviation in every feature scores 1."""
    real = real.float()
    scale = real.var(dim=0).mean() + 1e-6 if len(real) > 1 else real.new_tensor(1.0)
    terms = []
    for category in torch.unique(labels):
        ours = fake_labels == category
        if ours.any():
            gap = fake[ours].float().mean(dim=0) - real[labels == category].mean(dim=0)
            terms.append((gap.pow(2) / scale).mean())
    return torch.stack(terms).mean() if terms else fake.sum() * 0.0
