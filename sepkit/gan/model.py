"""The conditional GAN as one object: features, generator and discriminator, rebuilt from a checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from sepkit.errors import SepkitError, find_user_error
from sepkit.gan.features import make_features
from sepkit.gan.networks import Discriminator, Generator


class ConditionalGAN(nn.Module):
    """Generates normalised log-mel spectrograms ``(batch, 1, n_mels, max_frames)`` of a chosen category.

    It knows nothing about Lightning or datasets (like :class:`~sepkit.separator.Separator`).

    Args:
        generator: factory ``generator(latent_dim=, n_classes=, n_mels=, frames=)`` (a ``_partial_``).
        discriminator: factory ``discriminator(n_classes=, n_mels=)``.
        categories: category names, in label order.
        sample_rate: rate audio is resampled to (mono).
        n_fft: FFT size of the mel spectrogram.
        hop_length: hop of the mel spectrogram.
        n_mels: mel bands.
        max_frames: frames of every spectrogram (longer clips are cut, shorter ones padded).
        latent_dim: noise dimensions.
        db_floor: dB of mel power that maps to 0 (see :class:`~sepkit.gan.features.LogMel`).
        db_range: dB span that maps to 1.
        griffin_lim_iters: iterations when rendering audio.
        audio_channels: channels of the rendered audio (mono).
        name: variant name, for tables and logs.
        ema_decay: keep an exponential moving average of the generator's weights (and BatchNorm
            statistics) with this decay, updated by the training loop after every generator step;
            samples, scores and audio then come from the average (``None``: no average).
        ema_warmup: the moving average's decay warms up as ``min(ema_decay, (1 + n) / (ema_warmup + n))``
            after ``n`` updates (10: TensorFlow's rule, which holds the decay below 0.983 for a 528-step
            run, an average over about 60 steps; 1: ``ema_decay`` from the first update).
        standing_stats: batches of 64 over which :meth:`refresh_statistics` recomputes the moving
            average's BatchNorm statistics before it samples in training (0: keep the averaged ones).
    """

    def __init__(
        self,
        generator: Callable[..., Generator],
        discriminator: Callable[..., Discriminator],
        categories: Sequence[str],
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        max_frames: int,
        latent_dim: int,
        db_floor: float,
        db_range: float,
        griffin_lim_iters: int,
        audio_channels: int = 1,
        name: str = "gan",
        ema_decay: float | None = None,
        ema_warmup: float = 10.0,
        standing_stats: int = 0,
    ) -> None:
        super().__init__()
        if len(categories) < 2:
            raise SepkitError(f"a conditional GAN needs at least 2 categories, got {list(categories)}")
        if audio_channels != 1:
            raise SepkitError(f"model.audio_channels={audio_channels}: the GAN works on mono audio (1)")
        self.categories = list(categories)
        self.sample_rate = sample_rate
        self.max_frames = max_frames
        self.latent_dim = latent_dim
        self.name = name
        self.encoder, self.decoder = make_features(
            sample_rate, n_fft, hop_length, n_mels, db_floor, db_range, griffin_lim_iters
        )
        self.generator = generator(latent_dim=latent_dim, n_classes=len(categories), n_mels=n_mels, frames=max_frames)
        self.discriminator = discriminator(n_classes=len(categories), n_mels=n_mels)
        self.generator_ema: AveragedModel | None = None
        if ema_decay is not None:
            if not 0 < ema_decay < 1:
                raise SepkitError(f"model.ema_decay={ema_decay} must be in (0, 1), or null for no average")
            if ema_warmup < 1:
                raise SepkitError(f"model.ema_warmup={ema_warmup} must be at least 1")
            average = warmed_ema(ema_decay, ema_warmup)
            self.generator_ema = AveragedModel(self.generator, avg_fn=average, use_buffers=True)
            self.generator_ema.requires_grad_(False)
        if standing_stats < 0:
            raise SepkitError(f"model.standing_stats={standing_stats} must be 0 (off) or a number of batches")
        self.standing_stats = standing_stats
        self.config: dict[str, Any] = {}

    @property
    def segment_samples(self) -> int:
        """Audio samples of one ``max_frames`` spectrogram."""
        return self.encoder.samples(self.max_frames)

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``(batch, time)`` audio to ``(batch, 1, n_mels, frames)`` normalised log-mel."""
        return self.encoder(wav)

    def noise(self, n: int) -> torch.Tensor:
        """``(n, latent_dim)`` standard normal noise on the model's device."""
        return torch.randn(n, self.latent_dim, device=self.generator.project.weight.device)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Spectrograms ``(batch, 1, n_mels, max_frames)`` for noise ``(batch, latent_dim)`` and labels
        ``(batch,)`` from the generator being trained."""
        return self.generator(noise, labels)

    @property
    def sampler(self) -> nn.Module:
        """The generator that samples, scores and audio come from: the moving average once it has
        been updated, else the trained generator."""
        if self.generator_ema is not None and int(self.generator_ema.n_averaged) > 0:
            return self.generator_ema.module
        return self.generator

    def update_average(self) -> None:
        """Fold the generator's current weights into the moving average (no-op without one)."""
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)

    @torch.no_grad()
    def refresh_statistics(self, batches: int | None = None, batch_size: int = 64, seed: int = 0) -> None:
        """Recompute the BatchNorm statistics of the moving average from its own activations
        ("standing statistics", Brock et al. 2019): the averaged statistics belong to the trained
        generator's recent weights, not to the averaged weights, and a generator that normalises its
        samples by statistics of other weights draws something else than it was trained to. Runs the
        average in training mode on ``batches`` batches of fixed noise with every category equally
        often, the statistics averaged over all of them. No-op without a moving average.

        Args:
            batches: batches to average over (``None``: ``standing_stats``; 0: nothing is done).
            batch_size: samples per batch (as training's batches mix categories, so do these).
            seed: of the noise and the labels' order (the same statistics from the same weights).
        """
        batches = self.standing_stats if batches is None else batches
        if self.generator_ema is None or not batches:
            return
        model = self.generator_ema.module
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        stream = torch.Generator().manual_seed(seed)
        device = self.generator.project.weight.device
        momenta = [m.momentum for m in norms]
        was_training = model.training
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
        model.train()
        try:
            for _ in range(batches):
                labels = torch.arange(batch_size) % len(self.categories)
                labels = labels[torch.randperm(batch_size, generator=stream)]
                noise = torch.randn(batch_size, self.latent_dim, generator=stream)
                model(noise.to(device), labels.to(device))
        finally:
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
            model.train(was_training)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
        """Spectrograms for ``labels`` from a fixed noise stream (same seed, same samples), in batches."""
        stream = torch.Generator().manual_seed(seed)
        device = self.generator.project.weight.device
        noise = torch.randn(len(labels), self.latent_dim, generator=stream).to(device)
        labels = labels.to(device)
        starts = range(0, len(labels), batch_size)
        parts = [self.sampler(noise[i : i + batch_size], labels[i : i + batch_size]) for i in starts]
        return torch.cat(parts).float()

    def sample_per_category(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` spectrograms of each category (category-major) and their labels ``(categories * n,)``."""
        labels = torch.arange(len(self.categories)).repeat_interleave(n)
        return self.sample(labels, seed=seed), labels

    @torch.no_grad()
    def to_audio(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, n_mels, frames)`` to ``(batch, time)`` audio by Griffin-Lim, peak-normalised to 0.9."""
        wav = self.decoder(spec)
        return 0.9 * wav / wav.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8)

    def describe(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this GAN without any config files."""
        from sepkit.checkpoint import GAN, header

        return {
            **header(GAN),
            "model": self.config,
            "categories": self.categories,
            "sample_rate": self.sample_rate,
            "name": self.name,
        }


def warmed_ema(decay: float, warmup: float = 10.0) -> Callable[..., torch.Tensor]:
    """An :class:`~torch.optim.swa_utils.AveragedModel` ``avg_fn``: an exponential moving average whose
    decay warms up as ``min(decay, (1 + n) / (warmup + n))`` after ``n`` updates, so the average follows
    the fast-changing first steps instead of holding on to the initial weights."""

    def average(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (warmup + float(n)))
        if not averaged.is_floating_point():  # BatchNorm's batch counter: follow the generator's
            return current
        return averaged * d + current * (1.0 - d)

    return average


def build_gan(model_config: dict[str, Any], categories: Sequence[str]) -> ConditionalGAN:
    """Instantiate a GAN from a model config (``conf/model/gan/*.yaml`` resolved to a dict)."""
    from hydra.utils import instantiate

    try:
        gan = instantiate(model_config, categories=list(categories), _convert_="all")
    except Exception as exc:
        err = find_user_error(exc)
        if err is None:
            raise
        raise err from None
    gan.config = dict(model_config)
    return gan
