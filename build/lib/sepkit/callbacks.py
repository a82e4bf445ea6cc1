"""Callbacks of sepkit's own (everything else comes from Lightning)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


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
        mixture = torch.stack([m for m, _ in items]).to(pl_module.device)
        references = torch.stack([t for _, t in items])
        with torch.no_grad():
            spec = sep.encode(mixture)
            masks = sep.estimate_masks(spec.abs())
            estimates = sep.decode(sep.apply_masks(masks, spec), mixture.shape[-1]).cpu()
        for i in range(len(items)):
            clips = {"mixture": mixture[i].cpu()}
            for j, target in enumerate(sep.targets):
                clips[f"{target}/estimate"] = estimates[i, j]
                clips[f"{target}/reference"] = references[i, j]
            figure = _mask_figure(spec[i, 0].abs().cpu(), masks[i, 0, 0].cpu(), sep.targets[0])
            for logger in loggers:
                _log_media(logger, f"val_media/{i}", clips, figure, sep.sample_rate, trainer.global_step)
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
