"""The Lightning system of the GAN: adversarial training (manual optimisation, two optimisers) and
the scores of each validation."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F

from sepkit.checkpoint import CHECKPOINT_KEY
from sepkit.errors import SepkitError
from sepkit.gan.augment import DiffAugment
from sepkit.gan.losses import Hinge, NonSaturating, feature_matching, mode_seeking, r1_penalty
from sepkit.gan.model import ConditionalGAN
from sepkit.gan.reference import ReferenceEmbedding
from sepkit.gan.scores import (
    COND_ACC,
    COND_ACC_REF,
    COVERAGE,
    DENSITY,
    DIVERSITY,
    DIVERSITY_SPEC,
    FD,
    FD_FLOOR,
    FD_REF,
    FD_REF_FLOOR,
    OVERALL,
    PRECISION,
    REAL_ACC,
    REAL_ACC_REF,
    RECALL,
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
TRAIN_R1 = "train/r1"
TRAIN_FM = "train/feature_matching"
# The share of real samples the discriminator calls real, as a sign mean in [-1, 1] (ADA's r_t,
# Karras et al. 2020): near 1 when it has learnt the training windows by heart.
TRAIN_OVERFIT = "train/r_t"
TRAIN_STRENGTH = "train/augment_strength"
MAX_STRENGTH = 4.0
VAL_FD = f"val/{FD}"
# The mean of the last few validations' class-conditional Fréchet distance (each category's
# distance to its own real windows, averaged over categories): in the reference embedding when it
# fits the model, else in the run's classifier's; what the improved recipe's best checkpoint follows.
VAL_FD_MEAN = "val/fd_mean"
SHOWN = (VAL_FD, f"val/{COND_ACC}", f"val/{DIVERSITY}", VAL_FD_MEAN)
LOGGED = (COND_ACC, FD, DIVERSITY, DIVERSITY_SPEC, FD_FLOOR, REAL_ACC, FD_REF, FD_REF_FLOOR, PRECISION, RECALL)
LOGGED += (DENSITY, COVERAGE, COND_ACC_REF, REAL_ACC_REF)


def intra_fd(scores: dict[str, dict[str, float]], categories: Sequence[str]) -> float:
    """The mean over categories of each category's Fréchet distance to its own real windows
    ("intra-FID", Miyato & Koyama 2018), in the reference embedding when it was scored, else in the
    run classifier's. Unlike the distance over all samples pooled, it grows when a category's
    samples look like another category's. Categories without a finite distance are left out."""
    name = FD_REF if FD_REF in scores[categories[0]] else FD
    # A category with too few real windows to estimate a covariance (a debug run's single batch)
    # has no distance; with none, the pooled one (NaN too when the generator itself diverged).
    values = [float(scores[c][name]) for c in categories if math.isfinite(float(scores[c][name]))]
    return sum(values) / len(values) if values else float(scores[OVERALL][name])


def falling(step: int, total: int, share: float) -> float:
    """1 until the last ``share`` of ``total`` steps, then linearly down towards 0 (the last step at
    1 / (steps in that share)); 1 throughout when ``share`` is 0."""
    start = (1.0 - share) * total
    return 1.0 if step < start else max(0.0, (total - step) / (total - start))


def score_key(stage: str, category: str, score: str) -> str:
    """``val/fd`` for the overall score, ``val/drums/fd`` per category."""
    return f"{stage}/{score}" if category == OVERALL else metric_key(stage, category, score)


class GANSystem(L.LightningModule):
    """Trains a :class:`ConditionalGAN` on ``(audio (batch, time), labels (batch,))`` batches.

    Each step: the discriminator learns real (label) vs generated (same labels) on detached fakes,
    then the generator learns to make the (updated) discriminator call its non-detached fakes real;
    one optimiser each; the generator's moving average (when the model keeps one) follows after the
    generator's step. Each validation generates ``n_generated`` samples per category from a fixed
    noise stream (from the moving average when there is one) and scores them against the validation
    windows, in the run's classifier and in the fixed reference embedding.

    The defaults are the baseline (``experiment=gan_baseline``); ``experiment=gan`` sets the rest
    (docs/gan.md says why each).

    Args:
        gan: the model.
        classifier: a trained, frozen :class:`Classifier` (the scores' eye; never optimised).
        optimizer: partial optimiser, called once for the generator and once for the discriminator.
        n_generated: generated samples per category at each validation.
        sample_seed: seed of the validation noise (the same samples epoch after epoch).
        loss: the adversarial loss (:class:`~sepkit.gan.losses.NonSaturating` when ``None``).
        d_lr: the discriminator's learning rate when it differs from the generator's (two time-scale
            update rule, Heusel et al. 2017); ``None``: the optimiser's for both.
        augment: differentiable augmentation of everything the discriminator sees (``None``: none).
        r1_gamma: weight of the R1 penalty on real samples (0: none).
        r1_every: apply R1 every this many steps, scaled up to match (lazy regularisation).
        mode_seeking: weight of the mode-seeking term (0: none).
        feature_matching: weight of the generator's class-conditional feature matching term
            (:func:`~sepkit.gan.losses.feature_matching`, 0: none): each category's generated samples
            are pulled towards the mean discriminator features of that category's real samples in
            the same batch (as the discriminator saw them on its step), a per-category signal richer
            than the one logit.
        auxiliary: weight of the auxiliary classification losses (AC-GAN; needs a discriminator with
            ``auxiliary=True``): the discriminator's head learns the categories of real samples, the
            generator is pushed to make samples it classifies as asked (0: none).
        auxiliary_generator: weight of the generator's auxiliary term when it differs from the
            discriminator's (``None``: ``auxiliary``). A strong pull towards samples the head classifies
            surely also pulls each category's samples together (the AC-GAN's known loss of
            diversity, Shu et al. 2017); a weaker one keeps the categories and more of the variety.
        twin: weight, against the generator's auxiliary term, of the twin classifier's term (TAC-GAN,
            Gong et al. 2019; needs a discriminator with ``twin=True``; 0: none). The twin head learns
            the categories of generated samples (at ``auxiliary``'s weight); the generator is pushed
            to make its samples *hard* for the twin to name while easy for the real-data head. The
            AC-GAN's generator term alone also lowers the generated samples' own conditional
            entropy, so each category's samples draw together; subtracting the twin's term cancels
            that part (1: the paper's exact balance).
        lr_decay: share of the training steps, at the end, over which both learning rates fall
            linearly towards zero (0: constant rates). Fast rates find the categories early; falling
            ones stop the late drift that otherwise trades variety for sharpness epoch after epoch.
        auxiliary_decay: share of the training steps, at the end, over which the generator's
            auxiliary weight falls linearly towards zero (0: constant): the pull sets the categories
            early and lets go of the samples' variety late.
        score_average: validations averaged into ``val/fd_mean``.
        adaptive: target of ``r_t`` (the mean sign of the discriminator's outputs on real samples)
            for an adaptive augmentation strength (ADA's rule, Karras et al. 2020, turning the
            strength of ``augment`` instead of a probability): after each step the strength rises by
            ``adaptive_speed`` when ``r_t`` is above the target (the discriminator is learning the
            training windows by heart), falls when below, between 0 and 4. ``None``: fixed strength.
        adaptive_speed: the strength's change per step.
        reference: the fixed reference embedding (its scores are left out without one).
    """

    def __init__(
        self,
        gan: ConditionalGAN,
        classifier: Classifier,
        optimizer: Callable[..., torch.optim.Optimizer],
        n_generated: int = 64,
        sample_seed: int = 0,
        loss: NonSaturating | Hinge | None = None,
        d_lr: float | None = None,
        augment: DiffAugment | None = None,
        r1_gamma: float = 0.0,
        r1_every: int = 1,
        mode_seeking: float = 0.0,
        feature_matching: float = 0.0,
        auxiliary: float = 0.0,
        auxiliary_generator: float | None = None,
        twin: float = 0.0,
        lr_decay: float = 0.0,
        auxiliary_decay: float = 0.0,
        score_average: int = 1,
        adaptive: float | None = None,
        adaptive_speed: float = 0.01,
        reference: ReferenceEmbedding | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.gan = gan
        self.classifier = classifier.eval().requires_grad_(False)
        self.optimizer_factory = optimizer
        self.n_generated = n_generated
        self.sample_seed = sample_seed
        self.loss = loss or NonSaturating()
        self.d_lr = d_lr
        self.augment = augment or (lambda spec: spec)
        self.r1_gamma = r1_gamma
        self.r1_every = r1_every
        self.mode_seeking = mode_seeking
        if feature_matching < 0:
            raise SepkitError(f"adversarial.feature_matching={feature_matching} must be 0 (off) or a positive weight")
        self.feature_matching = feature_matching
        self.auxiliary = auxiliary
        self.auxiliary_generator = auxiliary if auxiliary_generator is None else auxiliary_generator
        if twin and (not auxiliary or gan.discriminator.twin is None):
            raise SepkitError(
                f"adversarial.twin={twin} needs the auxiliary classifier (adversarial.auxiliary > 0, "
                "model.discriminator.auxiliary=true) and its twin head (model.discriminator.twin=true)"
            )
        self.twin = twin
        if not 0.0 <= lr_decay <= 1.0:
            raise SepkitError(f"adversarial.lr_decay={lr_decay} must be a share of the run, from 0 to 1")
        self.lr_decay = lr_decay
        if not 0.0 <= auxiliary_decay <= 1.0:
            raise SepkitError(f"adversarial.auxiliary_decay={auxiliary_decay} must be a share of the run, from 0 to 1")
        self.auxiliary_decay = auxiliary_decay
        if adaptive is not None and (augment is None or not -1.0 < adaptive < 1.0 or adaptive_speed <= 0):
            raise SepkitError(
                f"adversarial.adaptive={adaptive} needs adversarial.augment, a target between -1 and 1 (ADA: 0.6) "
                f"and adversarial.adaptive_speed > 0 (got {adaptive_speed})"
            )
        self.adaptive = adaptive
        self.adaptive_speed = adaptive_speed
        self.recent_fd: deque[float] = deque(maxlen=score_average)
        # Not a submodule: the reference's weights stay out of this system's checkpoints and optimisers.
        self._reference = [reference] if reference is not None else []
        self.categories = gan.categories
        self.train_reference: Embedded | None = None
        self._val_parts: list[Embedded] = []
        # How the model was trained (data config, split lists, classifier); stored in checkpoints.
        self.run_info: dict[str, Any] = {}

    @property
    def reference(self) -> ReferenceEmbedding | None:
        return self._reference[0] if self._reference else None

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
        fake_labels = labels
        if self.mode_seeking:  # two noise draws per label: the batch's halves share labels
            half = len(labels) // 2
            fake_labels = torch.cat([labels[:half], labels[:half], labels[2 * half :]])
        noise = self.gan.noise(len(fake_labels))
        fake = self.gan(noise, fake_labels)

        self.toggle_optimizer(opt_d)
        lazy_r1 = self.r1_gamma > 0 and self.global_step // 2 % self.r1_every == 0
        if lazy_r1:
            real.requires_grad_(True)
        d_real = discriminator(self.augment(real), labels)
        real_features = discriminator.pooled().detach() if self.feature_matching else None
        total = 0.0
        if self.auxiliary:  # the head learns real samples' categories only
            total = self.auxiliary * F.cross_entropy(discriminator.classify(), labels)
        d_fake = discriminator(self.augment(fake.detach()), fake_labels)
        if self.twin:  # the twin head learns the generated samples' categories
            total = total + self.auxiliary * F.cross_entropy(discriminator.classify(twin=True), fake_labels)
        d_loss = self.loss.discriminator(d_real, d_fake)
        total = total + d_loss
        if lazy_r1:
            r1 = r1_penalty(d_real, real)
            total = total + 0.5 * self.r1_gamma * self.r1_every * r1
            self.log(TRAIN_R1, r1.detach(), batch_size=len(labels))
        opt_d.zero_grad()
        self.manual_backward(total)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)  # the discriminator's weights take no gradient on this step
        d_fooled = discriminator(self.augment(fake), fake_labels)
        g_loss = self.loss.generator(d_fooled)
        if self.auxiliary and self.auxiliary_generator:
            weight = self.auxiliary_generator * self.generator_auxiliary_factor(batch_idx)
            g_loss = g_loss + weight * F.cross_entropy(discriminator.classify(), fake_labels)
            if self.twin:
                g_loss = g_loss - self.twin * weight * F.cross_entropy(discriminator.classify(twin=True), fake_labels)
        if real_features is not None:
            matching = feature_matching(discriminator.pooled(), real_features, fake_labels, labels)
            g_loss = g_loss + self.feature_matching * matching
            self.log(TRAIN_FM, matching.detach(), batch_size=len(labels))
        if self.mode_seeking:
            g_loss = g_loss + self.mode_seeking * mode_seeking(fake, noise)
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.gan.update_average()
        if self.lr_decay:
            for scheduler in self.lr_schedulers():
                scheduler.step()

        n = len(labels)
        self.log(TRAIN_D_LOSS, d_loss.detach(), prog_bar=True, batch_size=n)
        self.log(TRAIN_G_LOSS, g_loss.detach(), prog_bar=True, batch_size=n)
        self.log(TRAIN_D_REAL, torch.sigmoid(d_real.detach().float()).mean(), batch_size=n)
        self.log(TRAIN_D_FAKE, torch.sigmoid(d_fake.detach().float()).mean(), batch_size=n)
        r_t = float(torch.sign(d_real.detach().float()).mean())
        self.log(TRAIN_OVERFIT, r_t, batch_size=n)
        if self.adaptive is not None:
            self.adapt(r_t)
            self.log(TRAIN_STRENGTH, self.augment.strength, batch_size=n)

    def adapt(self, r_t: float) -> None:
        """One step of the adaptive strength: up by ``adaptive_speed`` when ``r_t`` is above the target,
        else down, within 0 and :data:`MAX_STRENGTH`."""
        step = self.adaptive_speed if r_t > self.adaptive else -self.adaptive_speed
        self.augment.strength = min(MAX_STRENGTH, max(0.0, self.augment.strength + step))

    def generator_auxiliary_factor(self, batch_idx: int) -> float:
        """The share of ``auxiliary_generator`` the generator's step ``batch_idx`` of this epoch gets."""
        if not self.auxiliary_decay:
            return 1.0
        total = max(1, int(self.trainer.estimated_stepping_batches))
        step = self.current_epoch * int(self.trainer.num_training_batches) + batch_idx
        return falling(step, total, self.auxiliary_decay)

    def configure_optimizers(self) -> Any:
        d_lr = {} if self.d_lr is None else {"lr": self.d_lr}
        optimizers = [
            self.optimizer_factory(params=self.gan.generator.parameters()),
            self.optimizer_factory(params=self.gan.discriminator.parameters(), **d_lr),
        ]
        if not self.lr_decay:
            return optimizers
        total = max(1, int(self.trainer.estimated_stepping_batches))

        def factor(step: int) -> float:
            return falling(step, total, self.lr_decay)

        return optimizers, [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in optimizers]

    # ---- scores ------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.reference is not None:
            self.reference.to(self.device)
        if self.trainer.datamodule is not None:
            windows = self.trainer.datamodule.windows("train")
            self.train_reference = embed_windows(self.classifier, self.gan.encode, windows, reference=self.reference)

    def on_fit_end(self) -> None:
        self.train_reference = None

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        audio, labels = batch
        self._val_parts.append(embed(self.classifier, self.gan.encode(audio), labels, self.reference))

    def on_validation_epoch_end(self) -> None:
        if not self._val_parts or self.train_reference is None:
            self._val_parts.clear()
            return
        reference = Embedded.cat(self._val_parts)
        self._val_parts.clear()
        self.gan.refresh_statistics()  # the moving average's own BatchNorm statistics (when asked for)
        fake, labels = self.gan.sample_per_category(self.n_generated, self.sample_seed)
        generated = embed(self.classifier, fake, labels, self.reference)
        scores = generated_scores(generated, reference, self.train_reference, self.categories)
        floors = real_scores(self.train_reference, reference, self.categories)
        for category in (OVERALL, *self.categories):
            values = {**scores[category], **floors[category]}
            for name in LOGGED:
                if name in values:
                    key = score_key("val", category, name)
                    self.log(key, float(values[name]), prog_bar=key in SHOWN)
        if not self.trainer.sanity_checking:
            self.recent_fd.append(intra_fd(scores, self.categories))
        if self.recent_fd:
            self.log(VAL_FD_MEAN, sum(self.recent_fd) / len(self.recent_fd), prog_bar=True)

    # ---- checkpoints -------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {**self.gan.describe(), "run": self.run_info, "recent_fd": list(self.recent_fd)}
        if self.adaptive is not None:
            checkpoint[CHECKPOINT_KEY]["augment_strength"] = self.augment.strength

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get(CHECKPOINT_KEY, {})
        self.run_info = info.get("run", self.run_info)
        self.recent_fd.extend(info.get("recent_fd", []))
        if self.adaptive is not None and "augment_strength" in info:  # a resumed run goes on from it
            self.augment.strength = info["augment_strength"]
