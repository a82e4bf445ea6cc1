"""Callbacks of sepkit's own (everything else comes from Lightning)."""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar, WeightAveraging

from sepkit.audio import resample
from sepkit.errors import SepkitError


class NonFiniteError(SepkitError):
    """Training produced a NaN or infinite loss or validation metric: the run stopped there."""


class StopOnNonFinite(L.Callback):
    """End the run at the first non-finite training loss (checked before its backward pass, so no
    NaN reaches the weights) or validation metric, before anything is saved from it: checkpoints
    written earlier stay as they were, and nothing NaN becomes "best".

    Args:
        monitor: the validation metric checkpoints and early stopping follow.
    """

    HINT = (
        "try a lower optimizer.lr, trainer.precision=32-true, or a tighter trainer.gradient_clip_val; "
        "the checkpoints written before it are untouched"
    )

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):
            raise NonFiniteError(
                f"training stopped: the training loss is {_word(loss)} at step {trainer.global_step} "
                f"(epoch {trainer.current_epoch}); {self.HINT}"
            )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or math.isfinite(float(value)):
            return
        raise NonFiniteError(
            f"training stopped: {self.monitor} is {_word(value)} at the validation of epoch {trainer.current_epoch} "
            f"(step {trainer.global_step}); {self.HINT}"
        )


def _word(value: torch.Tensor) -> str:
    return "NaN" if bool(torch.isnan(value).any()) else "infinite"


def ema_step(
    averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor | int, *, decay: float, warmup: float
) -> torch.Tensor:
    """One step of a moving average whose decay warms up as ``min(decay, (1 + n) / (warmup + n))``
    after ``n`` updates (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``): an average
    of the last tenth or so of a short run instead of one that still holds its first weights."""
    rate = min(decay, (1.0 + float(updates)) / (warmup + float(updates)))
    return rate * averaged + (1.0 - rate) * current


class WeightEMA(WeightAveraging):
    """An exponential moving average of a separator's weights through Lightning's
    ``WeightAveraging``: validation, the checkpoints' ``state_dict`` and the end of the run hold the
    average (Lightning keeps the raw weights beside it for resume).

    The decay warms up (:func:`ema_step`): with a fixed decay of 0.999 the average of a 1,300-step
    run still holds 28 % of its first step's weights. The average is taken after the first training
    step rather than when the fit begins, once every statistic that a network sizes from its first
    batch (``unet_stereo``'s per-bin normalisation) has its size; on resume it starts from the
    checkpoint's average.

    Args:
        decay: the average's decay per step once warmed up; its horizon is ``1 / (1 - decay)`` steps.
        warmup: the warm-up's constant (10: the decay reaches 0.999 after about 9,000 steps).
    """

    def __init__(self, decay: float = 0.999, warmup: float = 10.0) -> None:
        if not 0.0 < decay < 1.0:
            raise SepkitError(f"callbacks.ema.decay must lie between 0 and 1 (got {decay}): e.g. 0.999")
        if warmup < 1.0:
            raise SepkitError(f"callbacks.ema.warmup must be at least 1 (got {warmup}): e.g. 10")
        super().__init__(avg_fn=functools.partial(ema_step, decay=decay, warmup=warmup))
        self._restored: dict[str, Any] | None = None

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not hasattr(pl_module, "separator"):
            raise SepkitError(
                "callbacks=ema averages a separator's weights; the GAN keeps its own average (model.ema_decay)"
            )

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if "current_model_state" in checkpoint and "averaging_state" in checkpoint:
            # the raw weights go on training; the average is rebuilt from the checkpoint at the first step
            self._restored = {"module." + k: v for k, v in checkpoint["state_dict"].items()}
            self._restored |= checkpoint["averaging_state"]
            pl_module.load_state_dict(checkpoint["current_model_state"])

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._average_model is None:
            super().setup(trainer, pl_module, "fit")
            if self._restored is not None:
                self._average_model.load_state_dict(self._restored)
                self._restored = None
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._average_model is not None:
            super().on_train_end(trainer, pl_module)


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar, without a nonsensical ``Epoch 25/-2`` when a run has no epoch
    limit (``trainer.max_epochs=-1``: the budgeted CPU recipes)."""

    def _get_train_description(self, current_epoch: int) -> str:
        return re.sub(r"/-\d+", "", super()._get_train_description(current_epoch))


class BestMetrics(L.Callback):
    """Remember every validation metric of the epoch where ``monitor`` was best.

    Args:
        monitor: metric key that decides "best".
        mode: ``max`` or ``min``.
    """

    def __init__(self, monitor: str, mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.best: dict[str, float] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if not math.isfinite(value):  # never "best"; StopOnNonFinite ends such a run
            return
        old = self.best.get(self.monitor)
        if old is None or (value > old if self.mode == "max" else value < old):
            self.best = {
                k: float(v)
                for k, v in trainer.callback_metrics.items()
                if isinstance(v, torch.Tensor) and v.numel() == 1
            }
            self.best["epoch"] = trainer.current_epoch
            self.best["step"] = trainer.global_step

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict.get("best", {}))


class ValidateBeforeStop(L.Callback):
    """Stop through ``trainer.should_stop`` on the step that reaches ``trainer.max_steps``.

    Lightning validates when a run is asked to stop, but not when ``max_steps`` ends it inside an
    epoch: such a run would end without validation metrics, a best checkpoint or a current
    ``last.ckpt`` (and early stopping would fail on the missing metric). Asking to stop one step
    earlier in the loop's eyes makes the last step validate like an epoch end. ``max_time`` needs
    nothing: Lightning's timer already stops this way.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


class MediaLogger(L.Callback):
    """Every ``every_n_epochs``, log audio (mixture, estimate, reference) of the first validation
    segments and spectrogram + mask images, to W&B and TensorBoard loggers (others are skipped).

    Args:
        every_n_epochs: how often.
        n_examples: validation segments to log.
    """

    def __init__(self, every_n_epochs: int = 5, n_examples: int = 2) -> None:
        self.every_n_epochs = every_n_epochs
        self.n_examples = n_examples

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or trainer.current_epoch % self.every_n_epochs:
            return
        loggers = [lg for lg in trainer.loggers if type(lg).__name__ in ("WandbLogger", "TensorBoardLogger")]
        dataset = getattr(trainer.datamodule, "valid_set", None) if trainer.datamodule else None
        if not loggers or dataset is None or len(dataset) == 0:
            return
        sep = pl_module.separator
        items = [dataset[i] for i in range(min(self.n_examples, len(dataset)))]
        mixture = torch.stack([item[0] for item in items]).to(pl_module.device)
        references = torch.stack([item[1] for item in items])
        rate = getattr(pl_module, "sample_rate", sep.sample_rate)
        with torch.no_grad():
            spec = sep.encode(resample(mixture, rate, sep.sample_rate))  # the band the network sees
            masks = sep.estimate_masks(sep.mask_input(spec))
            estimates = sep.separate_at(mixture, rate).cpu()
        for i in range(len(items)):
            clips = {"mixture": mixture[i].cpu()}
            for j, target in enumerate(sep.targets):
                clips[f"{target}/estimate"] = estimates[i, j]
                clips[f"{target}/reference"] = references[i, j]
            figure = _mask_figure(spec[i, 0].abs().cpu(), masks[i, 0, 0].abs().cpu(), sep.targets[0])
            for logger in loggers:
                _log_media(logger, f"val_media/{i}", clips, figure, rate, trainer.global_step)
            import matplotlib.pyplot as plt

            plt.close(figure)


def _mask_figure(mag: torch.Tensor, mask: torch.Tensor, target: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    axes[0].imshow(torch.log10(mag + 1e-6).numpy(), origin="lower", aspect="auto", cmap="magma")
    axes[0].set_title("mixture log-magnitude")
    axes[1].imshow(mask.numpy(), origin="lower", aspect="auto", vmin=0, vmax=1, cmap="magma")
    axes[1].set_title(f"{target} mask")
    fig.tight_layout()
    return fig


def _log_media(logger: Any, prefix: str, clips: dict, figure: Any, sample_rate: int, step: int) -> None:
    if type(logger).__name__ == "WandbLogger":
        import wandb

        media = {f"{prefix}/{k}": wandb.Audio(v.mean(0).numpy(), sample_rate=sample_rate) for k, v in clips.items()}
        media[f"{prefix}/spectrogram_mask"] = wandb.Image(figure)
        logger.experiment.log({**media, "trainer/global_step": step})
    else:
        for k, v in clips.items():
            peak = float(v.abs().max().clamp_min(1e-8))
            logger.experiment.add_audio(f"{prefix}/{k}", (v.mean(0) / max(peak, 1.0))[None], step, sample_rate)
        logger.experiment.add_figure(f"{prefix}/spectrogram_mask", figure, step, close=False)


class Throughput(L.Callback):
    """Time training steps and the data loader's share of them; logged as ``perf/*`` each epoch
    and kept in ``summary.json`` (see :meth:`summary`).

    The wait for a batch is the time from the end of one step to the start of the next; a step is
    its forward, backward and optimiser update, synchronised with the GPU when there is one. The
    first ``skip`` steps (warm-up, cuDNN autotuning) are left out.

    Args:
        skip: steps left out at the start of training.
    """

    def __init__(self, skip: int = 5) -> None:
        self.skip = skip
        self._reset()

    def _reset(self) -> None:
        self.steps = self.samples = 0
        self.step_s = self.wait_s = 0.0
        self._seen = 0
        self._t_end: float | None = None
        self._t_start = 0.0

    @staticmethod
    def _now(pl_module: L.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t_end = None  # validation and epoch ends are not loader waits

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int):
        self._t_start = self._now(pl_module)
        if self._t_end is not None and self._seen >= self.skip:
            self.wait_s += self._t_start - self._t_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch: Any, batch_idx: int) -> None:
        self._t_end = self._now(pl_module)
        self._seen += 1
        if self._seen > self.skip:
            self.steps += 1
            self.samples += len(batch[0])
            self.step_s += self._t_end - self._t_start

    def summary(self, device: torch.device | None = None) -> dict[str, float]:
        """Steps/s and samples/s over step plus wait time, the loader's share, peak GPU memory."""
        busy = self.step_s + self.wait_s
        if not self.steps or busy <= 0:
            return {}
        out = {
            "steps_per_s": round(self.steps / busy, 2),
            "samples_per_s": round(self.samples / busy, 1),
            "loader_wait_share": round(self.wait_s / busy, 3),
            "timed_steps": self.steps,
        }
        if device is not None and device.type == "cuda":
            out["gpu_peak_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        return out

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for key, value in self.summary(pl_module.device).items():
            if key != "timed_steps":
                pl_module.log(f"perf/{key}", float(value), rank_zero_only=True)


def further_rank() -> bool:
    """Whether this process is a further rank of a distributed run (the launcher's environment), which
    shares its rank 0's run folder."""
    return any(os.environ.get(k, "0") != "0" for k in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"))


class BestCheckpoint(ModelCheckpoint):
    """Lightning's :class:`ModelCheckpoint` that keeps the best across a resume into a new folder.

    ``resume=RUN`` continues in a new run folder; Lightning then forgets the best score (it only
    reloads it into the same ``dirpath``), so the first validation after the resume wrote
    ``best.ckpt`` whatever its score. Here the earlier best file is copied into the new folder and
    its score kept, so ``best.ckpt`` stays the best of the whole training.
    """

    def _generate_state_key(self, **kwargs: Any) -> str:
        return f"ModelCheckpoint{kwargs!r}"  # Lightning's key: checkpoints of either class resume

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_path, score = state_dict.get("best_model_path"), state_dict.get("best_model_score")
        old_dir = state_dict.get("dirpath", self.dirpath)
        if old_dir == self.dirpath or not old_path or score is None or not Path(old_path).is_file():
            super().load_state_dict(state_dict)
            return
        new_path = str(Path(self.dirpath) / Path(old_path).name)
        if not further_rank():
            Path(self.dirpath).mkdir(parents=True, exist_ok=True)
            shutil.copy2(old_path, new_path)
        self.best_model_score = score
        self.best_model_path = self.kth_best_model_path = new_path
        self.kth_value = score
        self.best_k_models = {new_path: score}
