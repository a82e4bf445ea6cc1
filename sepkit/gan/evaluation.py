"""``evaluate(cfg)`` for a GAN checkpoint (``python evaluate.py ckpt=...``): samples, figure, scores.

Scores are measured against the checkpoint's **test** split (never trained on), with the
real-vs-real floor of training windows vs test windows; see :mod:`sepkit.gan.scores`.
Writes ``results.json``, ``samples.png`` (a real column, then generated samples, per category)
and ``samples/<category>/<n>.wav`` (Griffin-Lim), and prints the table.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from sepkit.checkpoint import CHECKPOINT_KEY, GAN, load_weights, read_checkpoint, rebuilding
from sepkit.errors import SepkitError
from sepkit.gan.media import sample_grid
from sepkit.gan.model import ConditionalGAN, build_gan
from sepkit.gan.reference import load_reference
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
    SCORE_DEFINITIONS,
    Classifier,
    embed,
    embed_windows,
    generated_scores,
    real_scores,
)

log = logging.getLogger(__name__)
COLUMNS = (COND_ACC, REAL_ACC, FD, FD_FLOOR, DIVERSITY, DIVERSITY_SPEC, FD_REF, FD_REF_FLOOR, PRECISION, RECALL)
COLUMNS += (DENSITY, COVERAGE, COND_ACC_REF, REAL_ACC_REF)
AUDIO_PER_CATEGORY = 4
FIGURE_PER_CATEGORY = 6


def load_gan(path: str | Path) -> tuple[ConditionalGAN, Classifier, dict[str, Any]]:
    """Rebuild a GAN checkpoint's model and scores classifier (eval mode) and return its description."""
    ckpt = read_checkpoint(path, kind=GAN)
    info = ckpt[CHECKPOINT_KEY]
    with rebuilding(path):
        gan = build_gan(info["model"], info["categories"])
        classifier = instantiate(info["run"]["classifier"], n_classes=len(info["categories"]))
        load_weights(gan, ckpt, "gan.")
        load_weights(classifier, ckpt, "classifier.")
    info = {**info, "epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step")}
    return gan.eval(), classifier.eval(), info


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt``'s generator on its test split; ``cfg.eval.n_samples`` (default: as in training)
    generated per category, ``cfg.eval.seed`` picks the noise, ``cfg.data.root`` (and ``data=<option>``)
    point at the data elsewhere."""
    gan, classifier, info = load_gan(cfg.ckpt)
    if cfg.get("split") not in (None, "test"):
        raise SepkitError(f"split={cfg.split}: a GAN checkpoint is scored on its own test split; leave split unset")
    run = info["run"]
    data_cfg = {
        **run["data"],
        "root": str(cfg.data.get("root") or run["data_root"]),
        "cache_dir": str(cfg.paths.cache_dir),
        "num_workers": 0,
    }
    if cfg.data.get("source"):  # data=<option>: another layout
        data_cfg["source"] = OmegaConf.to_container(cfg.data.source, resolve=True)
    datamodule = instantiate(data_cfg)
    datamodule.prepare_data()
    stored = run.get("splits", {})
    if stored and any(stored.get(s) != [t.name for t in datamodule.tracks[s]] for s in ("train", "test")):
        log.warning("the data's train/test split differs from the one the checkpoint was trained with")
    device = torch.device("cuda" if cfg.engine.get("device", "auto") != "cpu" and torch.cuda.is_available() else "cpu")
    gan.to(device)
    classifier.to(device)
    reference = load_reference(info["model"])
    if reference is not None:
        reference.to(device)
    train_real = embed_windows(classifier, gan.encode, datamodule.windows("train"), reference=reference)
    test_windows = datamodule.windows("test")
    if len(test_windows) == 0:
        raise SepkitError(f"the test split of {datamodule.root} has no audible window to compare with")
    test_real = embed_windows(classifier, gan.encode, test_windows, reference=reference)
    n = int(cfg.eval.get("n_samples") or run["n_generated"])
    fake, labels = gan.sample_per_category(n, int(cfg.eval.get("seed") or 0))
    generated = embed(classifier, fake, labels, reference)

    categories = gan.categories
    scores = generated_scores(generated, test_real, train_real, categories)
    floors = real_scores(train_real, test_real, categories)
    table = {c: {**scores[c], **floors[c]} for c in (*categories, OVERALL)}

    def confusion(predicted: torch.Tensor) -> dict[str, dict[str, int]]:
        """What a classifier calls the generated samples of each category."""
        return {
            c: {p: int(((generated.labels == i) & (predicted == j)).sum()) for j, p in enumerate(categories)}
            for i, c in enumerate(categories)
        }

    counts = {
        "generated": n,
        "train_windows": {c: int((train_real.labels == i).sum()) for i, c in enumerate(categories)},
        "test_windows": {c: int((test_real.labels == i).sum()) for i, c in enumerate(categories)},
    }
    results = {
        "checkpoint": str(Path(cfg.ckpt).resolve()),
        "model": gan.name,
        "sampler": "moving average of the generator" if gan.sampler is not gan.generator else "generator",
        "reference_embedding": reference.info if reference is not None else None,
        "epoch": info.get("epoch"),
        "global_step": info.get("global_step"),
        "categories": categories,
        "counts": counts,
        "scores": table,
        "generated_classified_as": confusion(generated.predicted),
        "generated_classified_as_reference": None if reference is None else confusion(generated.reference_predicted),
        "score_definitions": SCORE_DEFINITIONS,
    }
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    write_samples(out_dir, gan, fake, n, test_windows)
    print_table(results)
    log_to_loggers(cfg, results)
    log.info("wrote %s", out_dir)
    return results


def write_samples(out_dir: Path, gan: ConditionalGAN, fake: torch.Tensor, n: int, test_windows) -> None:
    """``samples.png`` (first real test window, then generated, per category) and Griffin-Lim wavs."""
    import matplotlib.pyplot as plt

    categories = gan.categories
    shown = min(n, FIGURE_PER_CATEGORY)
    picks = torch.cat([fake[i * n : i * n + shown] for i in range(len(categories))])
    first_real = {}
    for i, label in enumerate(test_windows.labels.tolist()):
        first_real.setdefault(label, i)
    device = next(gan.parameters()).device
    real = torch.cat(
        [
            gan.encode(test_windows[first_real[c]][0][None].to(device)).cpu()
            if c in first_real
            else torch.zeros_like(fake[:1])
            for c in range(len(categories))
        ]
    )
    figure = sample_grid(picks, categories, title=f"{gan.name}: generated spectrograms per category", real=real)
    figure.savefig(out_dir / "samples.png", dpi=100)
    plt.close(figure)
    for i, category in enumerate(categories):
        folder = out_dir / "samples" / category
        folder.mkdir(parents=True, exist_ok=True)
        audio = gan.to_audio(fake[i * n : i * n + min(n, AUDIO_PER_CATEGORY)].to(device)).cpu()
        for j, clip in enumerate(audio):
            sf.write(folder / f"{j}.wav", clip.numpy(), gan.sample_rate)


def print_table(results: dict[str, Any]) -> None:
    counts = results["counts"]
    table = Table(
        title=f"{results['model']} (epoch {results['epoch']}): {counts['generated']} generated per category, "
        f"scored against the test split"
    )
    table.add_column("category")
    columns = [c for c in COLUMNS if c in results["scores"][OVERALL]]
    for column in columns:
        table.add_column(column, justify="right")
    for category, values in results["scores"].items():
        table.add_row(category, *(f"{values[c]:.3f}" for c in columns))
    Console(width=max(120, shutil.get_terminal_size().columns)).print(table)


def log_to_loggers(cfg: DictConfig, results: dict[str, Any]) -> None:
    """Send the scores (``eval/<category>/<score>``) to ``cfg.logger``."""
    from sepkit.training import instantiate_group

    metrics = {f"eval/{c}/{name}": v for c, values in results["scores"].items() for name, v in values.items()}
    for logger in instantiate_group(cfg.get("logger")):
        logger.log_hyperparams({"checkpoint": results["checkpoint"], "categories": results["categories"]})
        logger.log_metrics(metrics)
        logger.finalize("success")
