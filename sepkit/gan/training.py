"""The GAN task (``experiment=gan``): data, scores classifier, GAN.

The GAN's part of a run (``task=gan``, set by ``experiment=gan``); the run skeleton, with its checks,
resume rules, loggers, callbacks and ``summary.json``, is :func:`sepkit.training.train`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sepkit.checkpoint import GAN
from sepkit.gan.data import SpectrogramDataModule
from sepkit.gan.model import build_gan
from sepkit.gan.reference import load_reference
from sepkit.gan.scores import fit_classifier
from sepkit.gan.system import GANSystem
from sepkit.training import Task

log = logging.getLogger(__name__)


def scores_device(trainer_cfg: DictConfig) -> torch.device:
    """Where the classifier trains: the GPU when the trainer uses one."""
    use_gpu = str(trainer_cfg.get("accelerator", "auto")) in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return torch.device("cuda" if use_gpu else "cpu")


class GANTask(Task):
    """The class-conditional spectrogram GAN (``experiment=gan``): its data module over ``${data}``'s
    track source, a scores classifier trained first (a resumed run gets it from the checkpoint), and
    the :class:`GANSystem`."""

    kind = GAN

    def build(self, cfg: DictConfig, ckpt_path: str | None) -> tuple[L.LightningModule, L.LightningDataModule]:
        datamodule: SpectrogramDataModule = instantiate(cfg.spectrograms)
        datamodule.prepare_data()
        datamodule.setup("fit")
        gan = build_gan(OmegaConf.to_container(cfg.model, resolve=True), datamodule.categories)
        classifier_cfg = OmegaConf.to_container(cfg.scores.classifier, resolve=True)
        classifier = instantiate(classifier_cfg, n_classes=len(datamodule.categories))
        if ckpt_path is None:
            device = scores_device(cfg.trainer)
            accuracy = fit_classifier(
                classifier,
                datamodule.loader(datamodule.train_set, shuffle=True),
                gan.encoder.to(device),
                steps=cfg.scores.steps,
                lr=cfg.scores.lr,
                device=device,
            )
            gan.encoder.cpu()
            classifier.cpu()
            log.info("scores classifier: training accuracy %.3f after %d steps", accuracy, cfg.scores.steps)
        system = GANSystem(
            gan,
            classifier,
            optimizer=instantiate(cfg.optimizer),
            n_generated=cfg.scores.n_generated,
            reference=load_reference(gan.config),
            **instantiate(cfg.get("adversarial") or {}),
        )
        return system, datamodule

    def prepare(
        self, cfg: DictConfig, system: L.LightningModule, datamodule: Any, out_dir: Path, ckpt_path: str | None
    ) -> None:
        datamodule.write_splits(out_dir / "splits.json")
        system.run_info = {
            "data": OmegaConf.to_container(cfg.spectrograms, resolve=True),
            "data_root": str(Path(datamodule.root).resolve()),
            "splits": {name: [t.name for t in tracks] for name, tracks in datamodule.tracks.items()},
            "classifier": OmegaConf.to_container(cfg.scores.classifier, resolve=True),
            "adversarial": OmegaConf.to_container(cfg.get("adversarial") or {}, resolve=True),
            "n_generated": cfg.scores.n_generated,
            "seed": cfg.seed,
        }
        log.info("categories: %s; clips: %s", datamodule.categories, {k: len(v) for k, v in datamodule.clips.items()})
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")  # the frozen classifier
