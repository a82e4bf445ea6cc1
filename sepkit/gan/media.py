"""Pictures and sounds of generated spectrograms: the grid figure (one row per category) and the
callback that logs it, with Griffin-Lim audio, every epoch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch


def sample_grid(specs: torch.Tensor, categories: Sequence[str], title: str = "", real: torch.Tensor | None = None):
    """A figure of ``(categories * n, 1, mels, frames)`` spectrograms (category-major), one row per
    category; with ``real`` (one per category, ``(categories, 1, mels, frames)``) a first column of
    real examples. Returns the matplotlib figure (the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(specs) // len(categories)
    cols = n + (real is not None)
    fig, axes = plt.subplots(len(categories), cols, figsize=(2.4 * cols, 1.5 * len(categories)), squeeze=False)
    vmax = float(specs.max().clamp_min(1e-3)) if real is None else float(max(specs.max(), real.max()))
    for row, category in enumerate(categories):
        panels = [specs[row * n + i, 0] for i in range(n)]
        names = [f"generated {i + 1}" for i in range(n)]
        if real is not None:
            panels, names = [real[row, 0], *panels], ["real", *names]
        for col, (panel, name) in enumerate(zip(panels, names, strict=True)):
            ax = axes[row, col]
            ax.imshow(panel.float().cpu().numpy(), origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=8)
            if col == 0:
                ax.set_ylabel(category, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


class SampleLogger(L.Callback):
    """After every ``every_n_epochs``-th validation: a grid of ``n_per_category`` generated
    spectrograms per category (fixed noise, so epochs compare) saved as ``samples/epoch_NNN.png`` in
    the run dir and sent to TensorBoard / W&B loggers with the Griffin-Lim audio of the first sample
    of each category.

    Args:
        every_n_epochs: how often.
        n_per_category: samples per category in the grid.
        seed: noise seed.
    """

    def __init__(self, every_n_epochs: int = 1, n_per_category: int = 4, seed: int = 1) -> None:
        self.every_n_epochs = every_n_epochs
        self.n_per_category = n_per_category
        self.seed = seed

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if trainer.sanity_checking or not trainer.is_global_zero or (epoch + 1) % self.every_n_epochs:
            return
        gan = pl_module.gan
        specs, _ = gan.sample_per_category(self.n_per_category, self.seed)
        audio = gan.to_audio(specs[:: self.n_per_category]).cpu()
        figure = sample_grid(specs, gan.categories, title=f"epoch {epoch}")
        folder = Path(trainer.default_root_dir) / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        figure.savefig(folder / f"epoch_{epoch:03d}.png", dpi=80)
        clips = dict(zip(gan.categories, audio, strict=True))
        for logger in trainer.loggers:
            log_media(logger, figure, clips, gan.sample_rate, trainer.global_step)
        import matplotlib.pyplot as plt

        plt.close(figure)


def log_media(logger: Any, figure: Any, clips: dict[str, torch.Tensor], sample_rate: int, step: int) -> None:
    """Send the grid and one clip per category to a W&B or TensorBoard logger (others skip)."""
    kind = type(logger).__name__
    if kind == "WandbLogger":
        import wandb

        media = {f"samples/{k}": wandb.Audio(v.numpy(), sample_rate=sample_rate) for k, v in clips.items()}
        logger.experiment.log({**media, "samples/grid": wandb.Image(figure), "trainer/global_step": step})
    elif kind == "TensorBoardLogger":
        for k, v in clips.items():
            logger.experiment.add_audio(f"samples/{k}", v[None], step, sample_rate)
        logger.experiment.add_figure("samples/grid", figure, step, close=False)
