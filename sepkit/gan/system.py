"""The Lightning system of the GAN: adversarial training (manual optimisation, two optimisers) and
the scores of each validation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from sepkit.checkpoint import CHECKPOINT_KEY
from sepkit.gan.model import ConditionalGAN
from sepkit.gan.scores import (
    COND_ACC,
    DIVERSITY,
    DIVERSITY_SPEC,
    FD,
    FD_FLOOR,
    OVERALL,
    REAL_ACC,
    Classifier,
    Embedded,
    embed,
    embed_windows,
    generated_scores,
    real_scores,
)
from sepkit.metrics import metric_key

TRAIN_D_LOSS = "train/d_loss"
TRAIN_G_LOSS = "train/g_loss"
TRAIN_D_REAL = "train/d_real"  # mean D(real) probability
TRAIN_D_FAKE = "train/d_fake"  # mean D(fake) probability
VAL_FD = f"val/{FD}"
SHOWN = (VAL_FD, f"val/{COND_ACC}", f"val/{DIVERSITY}")


def score_key(stage: str, category: str, score: str) -> str:
    """``val/fd`` for the overall score, ``val/drums/fd`` per category."""
    return f"{stage}/{score}" if category == OVERALL else metric_key(stage, category, score)


class GANSystem(L.LightningModule):
    """Trains a :class:`ConditionalGAN` on ``(audio (batch, time), labels (batch,))`` batches.

    Each step: the discriminator learns real (label) vs generated (same labels) on detached fakes,
    then the generator learns to make the (updated) discriminator call its non-detached fakes real;
    BCE with logits, one optimiser each. Each validation generates ``n_generated`` samples per
    category from a fixed noise stream and scores them against the validation windows.

    Args:
        gan: the model.
        classifier: a trained, frozen :class:`Classifier` (the scores' eye; never optimised).
        optimizer: partial optimiser, called once for the generator and once for the discriminator.
        n_generated: generated samples per category at each validation.
        sample_seed: seed of the validation noise (the same samples epoch after epoch).
    """

    def __init__(
        self,
        gan: ConditionalGAN,
        classifier: Classifier,
        optimizer: Callable[..., torch.optim.Optimizer],
        n_generated: int = 64,
        sample_seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.gan = gan
        self.classifier = classifier.eval().requires_grad_(False)
        self.optimizer_factory = optimizer
        self.n_generated = n_generated
        self.sample_seed = sample_seed
        self.bce = nn.BCEWithLogitsLoss()
        self.categories = gan.categories
        self.train_reference: Embedded | None = None
        self._val_parts: list[Embedded] = []
        # How the model was trained (data config, split lists, classifier); stored in checkpoints.
        self.run_info: dict[str, Any] = {}

    def train(self, mode: bool = True) -> GANSystem:
        """Switch modes, keeping the frozen classifier in eval mode (its BatchNorm statistics fixed)."""
        super().train(mode)
        self.classifier.eval()
        return self

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.gan(noise, labels)

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        audio, labels = batch
        opt_g, opt_d = self.optimizers()
        discriminator = self.gan.discriminator
        real = self.gan.encode(audio)
        fake = self.gan(self.gan.noise(len(labels)), labels)

        self.toggle_optimizer(opt_d)
        d_real, d_fake = discriminator(real, labels), discriminator(fake.detach(), labels)
        d_loss = self.bce(d_real, torch.ones_like(d_real)) + self.bce(d_fake, torch.zeros_like(d_fake))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)  # the discriminator's weights take no gradient on this step
        d_fooled = discriminator(fake, labels)
        g_loss = self.bce(d_fooled, torch.ones_like(d_fooled))
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        n = len(labels)
        self.log(TRAIN_D_LOSS, d_loss.detach(), prog_bar=True, batch_size=n)
        self.log(TRAIN_G_LOSS, g_loss.detach(), prog_bar=True, batch_size=n)
        self.log(TRAIN_D_REAL, torch.sigmoid(d_real.detach().float()).mean(), batch_size=n)
        self.log(TRAIN_D_FAKE, torch.sigmoid(d_fake.detach().float()).mean(), batch_size=n)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            self.optimizer_factory(params=self.gan.generator.parameters()),
            self.optimizer_factory(params=self.gan.discriminator.parameters()),
        ]

    # ---- scores ------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.trainer.datamodule is not None:
            windows = self.trainer.datamodule.windows("train")
            self.train_reference = embed_windows(self.classifier, self.gan.encode, windows)

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        audio, labels = batch
        self._val_parts.append(embed(self.classifier, self.gan.encode(audio), labels))

    def on_validation_epoch_end(self) -> None:
        if not self._val_parts or self.train_reference is None:
            self._val_parts.clear()
            return
        reference = Embedded.cat(self._val_parts)
        self._val_parts.clear()
        fake, labels = self.gan.sample_per_category(self.n_generated, self.sample_seed)
        generated = embed(self.classifier, fake, labels)
        scores = generated_scores(generated, reference, self.train_reference, self.categories)
        floors = real_scores(self.train_reference, reference, self.categories)
        for category in (OVERALL, *self.categories):
            values = {**scores[category], **floors[category]}
            for name in (COND_ACC, FD, DIVERSITY, DIVERSITY_SPEC, FD_FLOOR, REAL_ACC):
                key = score_key("val", category, name)
                self.log(key, float(values[name]), prog_bar=key in SHOWN)

    # ---- checkpoints -------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {**self.gan.describe(), "run": self.run_info}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.run_info = checkpoint.get(CHECKPOINT_KEY, {}).get("run", self.run_info)
