"""The Lightning system: loss, optimiser, scheduler and validation metrics around a Separator."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torchmetrics import MeanMetric

from sepkit.audio import resample
from sepkit.checkpoint import CHECKPOINT_KEY
from sepkit.errors import SepkitError
from sepkit.losses import MaskL1, WithWaveformSNR
from sepkit.metrics import SI_SDR, SI_SDRI, TRAIN_LOSS, VAL_LOSS, VAL_SI_SDR, metric_key, si_sdr
from sepkit.separator import Separator


class SeparationSystem(L.LightningModule):
    """Trains a :class:`Separator` on ``(mixture, targets[, lengths])`` waveform batches
    (``lengths``: real samples per example; the padding after them is left out of the loss).

    Batches at the separator's own rate train its network on the bins it sees. Batches at a higher
    ``sample_rate`` (``data.sample_rate=44100``) train full band, as inference separates: the
    network on a resampled copy, its masks on the song's own STFT (:meth:`Separator.separate_at`),
    the loss over every bin up to the song's Nyquist, so a ``learned`` mask extension learns the
    band above the network's. The spectrogram augmentation is for the first kind only.

    Args:
        separator: the model.
        loss: spectrogram loss ``loss(masks, mix, targets)`` on magnitudes (complex spectrograms for
            complex masks: :meth:`Separator.loss_spectrogram`).
        optimizer: partial optimiser, called with the parameters.
        scheduler: None or ``{"scheduler": partial, "monitor": key, "interval": "epoch"|"step"}``.
        spec_augment: training-only spectrogram augmentation ``(mix, targets) -> (mix, targets)``.
        sample_rate: the batches' rate (None: the separator's).
    """

    def __init__(
        self,
        separator: Separator,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict[str, Any] | None = None,
        spec_augment: nn.Module | None = None,
        sample_rate: int | None = None,
    ) -> None:
        super().__init__()
        if separator.complex_masks and isinstance(getattr(loss, "spectral", loss), MaskL1):
            raise SepkitError("loss=mask_l1 compares magnitude masks; with model.net.mask=complex use spec_mse")
        self.separator = separator
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_config = scheduler
        self.spec_augment = spec_augment
        self.sample_rate = sample_rate or separator.sample_rate
        self.fullband = self.sample_rate != separator.sample_rate
        self.targets = separator.targets
        self.val_si_sdr = nn.ModuleDict({t: MeanMetric() for t in self.targets})
        self.val_si_sdr_mix = nn.ModuleDict({t: MeanMetric() for t in self.targets})
        # How the model was trained (data config, split lists); stored in checkpoints for evaluate.py.
        self.run_info: dict[str, Any] = {}

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        return self.separator(mixture)

    def _spectral_loss(
        self, mixture: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor | None, augment: bool
    ) -> torch.Tensor:
        if self.fullband:
            return self._fullband_loss(mixture, targets, lengths)
        sep = self.separator
        spec = sep.encode(mixture)
        mix_spec = spec[..., : sep.max_bins, :]
        target_spec = sep.encode(targets)[..., : sep.max_bins, :]
        if augment and self.spec_augment is not None:
            mix_spec, target_spec = self.spec_augment(mix_spec, target_spec)
        masks = sep.estimate_masks(sep.mask_input(mix_spec))  # the separator's own stage: an override is what trains
        weight = self._frame_weight(lengths, mixture.shape[-1], masks.shape[-1], sep.hop_length)
        loss = self.loss(masks, sep.loss_spectrogram(mix_spec), sep.loss_spectrogram(target_spec), weight)
        if isinstance(self.loss, WithWaveformSNR) and self.loss.weight:
            # the waveforms inference would give: every bin masked, the mixture's phase, overlap-add
            full = sep.extend(masks[..., : sep.max_bins, :], spec.shape[-2], spec.abs())
            estimates = sep.decode(sep.apply_masks(full, spec), mixture.shape[-1])
            if lengths is not None:  # padding is silent in all three; keep it out of the powers
                keep = torch.arange(mixture.shape[-1], device=mixture.device)[None] < lengths[:, None]
                estimates = estimates * keep[:, None, None]
            loss = loss + self.loss.waveform(estimates, targets, mixture)
        return loss

    def _fullband_loss(
        self, mixture: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor | None
    ) -> torch.Tensor:
        """The loss over every bin of the song's own STFT, with the masks inference would apply."""
        sep = self.separator
        low = resample(mixture, self.sample_rate, sep.sample_rate)
        masks = sep.estimate_masks(sep.mask_input(sep.encode(low)))
        encode, decode = sep.stft_pair_at(self.sample_rate, mixture.device)
        spec = encode(mixture)
        full = sep.masks_at_rate(masks, self.sample_rate, spec.shape[-1], share=True, magnitude=spec.abs())
        weight = self._frame_weight(lengths, mixture.shape[-1], spec.shape[-1], encode.hop_length)
        loss = self.loss(full, sep.loss_spectrogram(spec), sep.loss_spectrogram(encode(targets)), weight)
        if isinstance(self.loss, WithWaveformSNR) and self.loss.weight:
            estimates = decode(sep.apply_masks(full, spec), mixture.shape[-1])
            if lengths is not None:
                keep = torch.arange(mixture.shape[-1], device=mixture.device)[None] < lengths[:, None]
                estimates = estimates * keep[:, None, None]
            loss = loss + self.loss.waveform(estimates, targets, mixture)
        return loss

    def _frame_weight(self, lengths: torch.Tensor | None, samples: int, frames: int, hop: int) -> torch.Tensor | None:
        """``(batch, 1, 1, 1, frames)``: 1 for frames centred on real samples, None if nothing is padded."""
        if lengths is None or bool((lengths >= samples).all()):
            return None
        centres = torch.arange(frames, device=lengths.device) * hop
        return (centres[None] < lengths[:, None]).float()[:, None, None, None]

    @staticmethod
    def _unpack(batch: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        mixture, targets, *rest = batch
        return mixture, targets, (rest[0] if rest else None)

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        mixture, targets, lengths = self._unpack(batch)
        loss = self._spectral_loss(mixture, targets, lengths, augment=True)
        self.log(TRAIN_LOSS, loss, prog_bar=True, batch_size=mixture.shape[0])
        return loss

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        mixture, targets, lengths = self._unpack(batch)
        loss = self._spectral_loss(mixture, targets, lengths, augment=False)
        self.log(VAL_LOSS, loss, prog_bar=True, batch_size=mixture.shape[0], sync_dist=True)
        estimates = self.separator.separate_at(mixture, self.sample_rate) if self.fullband else self.separator(mixture)
        for j, target in enumerate(self.targets):
            self.val_si_sdr[target].update(si_sdr(estimates[:, j], targets[:, j]))
            self.val_si_sdr_mix[target].update(si_sdr(mixture, targets[:, j]))

    def on_validation_epoch_end(self) -> None:
        values = {}
        for target in self.targets:
            est = self.val_si_sdr[target].compute()
            mix = self.val_si_sdr_mix[target].compute()
            values[metric_key("val", target, SI_SDR)] = est
            values[metric_key("val", target, SI_SDRI)] = est - mix
            self.val_si_sdr[target].reset()
            self.val_si_sdr_mix[target].reset()
        values[VAL_SI_SDR] = torch.stack([values[metric_key("val", t, SI_SDR)] for t in self.targets]).mean()
        shown = metric_key("val", self.targets[0], SI_SDRI)
        for key, value in values.items():
            self.log(key, value, prog_bar=key == shown)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if not self.scheduler_config:
            return optimizer
        scheduler = self.scheduler_config["scheduler"](optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "monitor": self.scheduler_config.get("monitor", VAL_LOSS),
                "interval": self.scheduler_config.get("interval", "epoch"),
                # false: skip the scheduler's step when its metric is missing (no validation yet)
                "strict": self.scheduler_config.get("strict", True),
            },
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {**self.separator.describe(), "run": self.run_info}
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        checkpoint["rng_states"] = {  # plain types and tensors only: loadable with weights_only=True
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the RNG streams so a resumed run draws the same samples as an unbroken one."""
        states = checkpoint.get("rng_states")
        if states:
            torch.set_rng_state(states["torch"])
            kind, keys, pos, has_gauss, gauss = states["numpy"]
            np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
            random.setstate(states["python"])
        self.run_info = checkpoint.get(CHECKPOINT_KEY, {}).get("run", self.run_info)
