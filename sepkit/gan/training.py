"""``train(cfg)`` for ``experiment=gan``: data, scores classifier, GAN, fit, run summary.

Reached from :func:`sepkit.training.train` through the config's ``train_fn``; shares its checks,
resume rules, loggers, callbacks and ``summary.json``.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from sepkit.checkpoint import GAN
from sepkit.gan.data import SpectrogramDataModule
from sepkit.gan.model import build_gan
from sepkit.gan.scores import fit_classifier
from sepkit.gan.system import GANSystem
from sepkit.training import (
    check_accelerator,
    check_multirun_ddp,
    check_required,
    fit,
    instantiate_group,
    make_trainer,
    resolve_resume,
    resume_wandb_run,
)

log = logging.getLogger(__name__)


def scores_device(trainer_cfg: DictConfig) -> torch.device:
    """Where the classifier trains: the GPU when the trainer uses one."""
    use_gpu = str(trainer_cfg.get("accelerator", "auto")) in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return torch.device("cuda" if use_gpu else "cpu")


def train(cfg: DictConfig) -> float | None:
    """Train the conditional GAN as ``cfg`` says and return the best ``cfg.gan_metric`` (for sweepers)."""
    start = time.time()
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()
    check_required(cfg)
    check_accelerator(cfg.trainer)
    check_multirun_ddp(cfg)
    ckpt_path = resolve_resume(cfg, kind=GAN)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True)

    datamodule: SpectrogramDataModule = instantiate(cfg.spectrograms)
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.write_splits(out_dir / "splits.json")
    gan = build_gan(OmegaConf.to_container(cfg.model, resolve=True), datamodule.categories)
    classifier_cfg = OmegaConf.to_container(cfg.scores.classifier, resolve=True)
    classifier = instantiate(classifier_cfg, n_classes=len(datamodule.categories))
    if ckpt_path is None:  # a resumed run gets the classifier back from the checkpoint
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
    system = GANSystem(gan, classifier, optimizer=instantiate(cfg.optimizer), n_generated=cfg.scores.n_generated)
    system.run_info = {
        "data": OmegaConf.to_container(cfg.spectrograms, resolve=True),
        "data_root": str(Path(datamodule.root).resolve()),
        "splits": {name: [t.name for t in tracks] for name, tracks in datamodule.tracks.items()},
        "classifier": classifier_cfg,
        "n_generated": cfg.scores.n_generated,
        "seed": cfg.seed,
    }

    callbacks = instantiate_group(cfg.get("callbacks"))
    resume_wandb_run(cfg, ckpt_path)
    loggers = instantiate_group(cfg.get("logger"))
    trainer = make_trainer(cfg, callbacks, loggers, cfg.gan_metric)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        if isinstance(lg, WandbLogger) and trainer.is_global_zero:
            system.run_info["wandb_id"] = lg.experiment.id
    log.info("categories: %s; clips: %s", datamodule.categories, {k: len(v) for k, v in datamodule.clips.items()})
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")  # the frozen classifier
    with open_dict(cfg):
        cfg.optimized_metric = cfg.gan_metric  # what summary.json names as optimised
    summary = fit(cfg, trainer, system, datamodule, ckpt_path, start)
    return summary["best"].get(cfg.gan_metric)
