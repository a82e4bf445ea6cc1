"""``evaluate(cfg)``: full-track metrics of a checkpoint with mixture and oracle baselines."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import track as progress
from rich.table import Table

from sepkit.checkpoint import CHECKPOINT_KEY, GAN, checkpoint_kind, load_separator, read_checkpoint
from sepkit.data.sources.base import TrackInfo, TrackSource, group_targets
from sepkit.data.sources.musdb import musdb_source
from sepkit.errors import SepkitError
from sepkit.extras import available, require
from sepkit.inference import SeparationEngine
from sepkit.metrics import EVAL_METRICS, band_keys, sum_error_db, track_metrics
from sepkit.separator import Separator

log = logging.getLogger(__name__)
METHODS = ("model", "mixture", "oracle")


def ratio_masks(separator: Separator, references: torch.Tensor, encode=None) -> torch.Tensor:
    """Ideal ratio masks ``|Y_j| / sum_k |Y_k|``: ``(targets, channels, time)`` references to
    ``(1, targets, channels, freq, frames)`` masks at the separator's STFT (or ``encode``'s)."""
    magnitudes = (encode or separator.encode)(references).abs()
    return (magnitudes / magnitudes.sum(0, keepdim=True).clamp_min(1e-8))[None]


def oracle_irm(mixture: torch.Tensor, references: torch.Tensor, rate: int, separator: Separator) -> torch.Tensor:
    """Ideal ratio mask estimates ``|Y_j| / sum_k |Y_k|`` on the mixture, full band: at the song's
    rate, on the STFT grid the separator's masks meet the song on (:meth:`Separator.stft_pair_at`).

    Args:
        mixture: ``(channels, time)`` at ``rate``.
        references: ``(targets, channels, time)`` at ``rate``.
        rate: sample rate of both.
        separator: whose frame duration and bin spacing define the oracle.

    Returns:
        ``(targets, channels, time)`` estimates at ``rate``.
    """
    device = separator.stft.window.device
    encode, decode = separator.stft_pair_at(rate, device)
    mix_spec = encode(mixture.to(device)[None])  # the separator's own masking stage, with oracle masks
    masks = ratio_masks(separator, references.to(device), encode)
    return decode(separator.apply_masks(masks, mix_spec), mixture.shape[-1])[0].cpu()


class BaselineCache:
    """The mixture and oracle rows of one track: they depend on the track, the targets, the
    separator's rate and STFT and the metrics, never on its weights, so every later evaluation of
    a model of the same kind reads them from ``<cache_dir>/baselines`` instead of recomputing them."""

    def __init__(
        self,
        cache_dir: str | Path,
        source: TrackSource,
        track: TrackInfo,
        separator: Separator,
        groups: list[tuple[int, ...]],
        flags: tuple[bool, bool, tuple[float, ...]],
    ) -> None:
        from sepkit import __version__

        key = json.dumps(
            [
                __version__,
                source.cache_key(track, track.sample_rate),
                separator.targets,
                groups,
                separator.sample_rate,
                separator.n_fft,
                separator.hop_length,
                flags,
                "fullband",  # oracle at the song's rate since issue #25
            ]
        )
        self.path = Path(cache_dir) / "baselines" / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"

    def load(self) -> dict[str, list[dict[str, float]]] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def save(self, rows: dict[str, list[dict[str, float]]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(rows))
        tmp.replace(self.path)


def eval_source(cfg: DictConfig, info: dict[str, Any]) -> TrackSource:
    """The dataset to evaluate on: ``data=<source>`` if given, else the checkpoint's own source,
    at ``data.root`` if given, else where the checkpoint was trained."""
    from hydra.utils import instantiate

    run = info.get("run", {})
    stored = run.get("data") or {}
    root = cfg.data.get("root") or run.get("data_root")
    if not root:
        raise SepkitError("this checkpoint does not say which data it was trained on; pass data.root=DIR")
    if cfg.data.get("source"):
        factory = instantiate(cfg.data.source)
    elif stored.get("source"):
        factory = instantiate(stored["source"])
    else:  # checkpoints from before track sources: MUSDB-shaped data
        factory = partial(musdb_source, is_wav=cfg.data.get("is_wav", stored.get("is_wav")))
    exclude = cfg.data.get("exclude") or stored.get("exclude") or ()
    return factory(root=root, exclude=list(exclude))


def select_tracks(cfg: DictConfig, source: TrackSource, info: dict[str, Any]) -> list[TrackInfo]:
    """The tracks to evaluate: the checkpoint's test split by default (docs/evaluation.md)."""
    run = info.get("run", {})
    tracks = source.tracks()
    split = cfg.split
    same_root = run.get("data_root") and source.root.resolve() == Path(run["data_root"])
    if split is None and same_root and run.get("splits", {}).get("test"):
        names = set(run["splits"]["test"])
        chosen = [t for t in tracks if t.name in names]
    elif split in (None, "official"):
        chosen = [t for t in tracks if t.subset == "test"]
    elif split == "all":
        chosen = list(tracks)
    else:
        raise SepkitError(f"split={split!r} must be null (the checkpoint's test split), official or all")
    if cfg.eval.max_tracks is not None:
        chosen = chosen[: int(cfg.eval.max_tracks)]
    if not chosen:
        raise SepkitError(f"no tracks to evaluate in {source.root} (split={split}); split=all takes every track")
    return chosen


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt`` on full tracks; writes per-track CSV, results.json, eval.png."""
    if checkpoint_kind(read_checkpoint(cfg.ckpt)[CHECKPOINT_KEY]) == GAN:
        from sepkit.gan.evaluation import evaluate as evaluate_gan

        return evaluate_gan(cfg)
    separator = load_separator(cfg.ckpt)
    engine = SeparationEngine(separator, **OmegaConf.to_container(cfg.engine, resolve=True))
    source = eval_source(cfg, separator.info)
    tracks = select_tracks(cfg, source, separator.info)
    groups = source.stem_groups(separator.targets)
    with_museval = cfg.eval.museval
    if with_museval is None:  # default: when the musdb extra is installed
        with_museval = available("museval")
        if not with_museval:
            log.info("museval is not installed, so no SDR/SIR/SAR: pip install 'sepkit[musdb]' adds them")
    elif with_museval:
        require("museval", "eval.museval=true")
    if with_museval:
        minutes = sum(t.seconds for t in tracks) / 60
        log.info(
            "museval (BSSEval v4) is slow: it takes longer than separating (%.1f min of audio here); "
            "eval.museval=false skips SDR/SIR/SAR",
            minutes,
        )
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = separator.targets
    rows: list[dict[str, Any]] = []
    bands = tuple(float(b) for b in (cfg.eval.get("bands") or ()))
    flags = (bool(with_museval), bool(cfg.eval.get("mel", False)), bands)
    for track in progress(tracks, description="evaluating", console=Console(stderr=True)):
        stems, mixture = source.read_track(track)
        mixture = torch.from_numpy(mixture)
        references = group_targets(torch.from_numpy(stems), groups)
        length = min(mixture.shape[-1], references.shape[-1])  # stem.mp4 streams can differ by a frame
        mixture, references, rate = mixture[:, :length], references[..., :length], track.sample_rate
        try:
            model_est = engine.separate(mixture, rate)
        except SepkitError as err:
            raise SepkitError(f"track {track.name!r}: {err}: fix or remove that file") from None
        stacked = torch.stack([model_est[t] for t in targets])
        model_rows = track_metrics(stacked, references, rate, *flags)
        for row in model_rows:  # one value per track: how far the stems' sum is from the mixture
            row["sum_error_db"] = sum_error_db(stacked, mixture) if separator.covers_mixture else float("nan")
        baselines = BaselineCache(cfg.paths.cache_dir, source, track, separator, groups, flags)
        cached = baselines.load()
        if cached is None:
            oracle = oracle_irm(mixture, references, rate, separator)
            cached = {
                "mixture": track_metrics(mixture.expand(len(targets), -1, -1), references, rate, *flags),
                "oracle": track_metrics(oracle, references, rate, *flags),
            }
            for row in cached["mixture"]:
                row["sum_error_db"] = float("nan")
            for row in cached["oracle"]:
                row["sum_error_db"] = sum_error_db(oracle, mixture)
            baselines.save(cached)
        for method, per_target in {"model": model_rows, **cached}.items():
            for target, values in zip(targets, per_target, strict=True):
                rows.append({"track": track.name, "method": method, "target": target, **values})
        if cfg.eval.save_audio:
            folder = out_dir / "estimates" / track.name
            folder.mkdir(parents=True, exist_ok=True)
            for target in targets:
                sf.write(folder / f"{target}.wav", model_est[target].numpy().T, rate)
    definitions = {**EVAL_METRICS, **{k: v for b in bands for k, v in band_keys(b).items()}}
    metrics = [m for m in definitions if m in rows[0]]
    results = summarise(rows, metrics, targets)
    results.update(
        {
            "checkpoint": str(Path(cfg.ckpt).resolve()),
            "model": separator.name,
            "sample_rate": separator.sample_rate,
            "tracks": [t.name for t in tracks],
            "metric_definitions": {m: definitions[m] for m in metrics},
            "engine": OmegaConf.to_container(cfg.engine, resolve=True),
        }
    )
    write_csv(out_dir / "per_track.csv", rows)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    if available("matplotlib"):
        plot_boxes(out_dir / "eval.png", rows, metrics, targets)
    else:
        log.info("matplotlib is not installed, so no eval.png: pip install 'sepkit[plots]' adds it")
    print_table(results, metrics, targets)
    log_to_loggers(cfg, rows, results)
    log.info("wrote %s", out_dir)
    return results


def log_to_loggers(cfg: DictConfig, rows: list[dict[str, Any]], results: dict[str, Any]) -> None:
    """Send the per-track table (W&B) and the median summary (every logger) to ``cfg.logger``."""
    if not cfg.get("logger"):
        return
    from lightning.pytorch.loggers import WandbLogger

    from sepkit.training import instantiate_group

    summary = {
        f"eval/{method}/{target}/{metric}": value
        for method, per_target in results["median"].items()
        for target, per_metric in per_target.items()
        for metric, value in per_metric.items()
    }
    for logger in instantiate_group(cfg.get("logger")):
        logger.log_hyperparams({"checkpoint": results["checkpoint"], "tracks": results["tracks"]})
        if isinstance(logger, WandbLogger):
            columns = list(rows[0])
            logger.log_table("eval/per_track", columns=columns, data=[[r[c] for c in columns] for r in rows])
        logger.log_metrics(summary)
        logger.finalize("success")


def summarise(rows: list[dict[str, Any]], metrics: list[str], targets: list[str]) -> dict[str, Any]:
    """Median and mean over tracks per method, target and metric (NaN-aware)."""
    out: dict[str, Any] = {"median": {}, "mean": {}}
    with warnings.catch_warnings():  # a metric undefined on every track (NaN) stays NaN, without numpy's warning
        warnings.simplefilter("ignore", RuntimeWarning)
        for method in METHODS:
            for stat, fn in (("median", np.nanmedian), ("mean", np.nanmean)):
                out[stat][method] = {
                    t: {
                        m: float(fn([r[m] for r in rows if r["method"] == method and r["target"] == t]))
                        for m in metrics
                    }
                    for t in targets
                }
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def print_table(results: dict[str, Any], metrics: list[str], targets: list[str]) -> None:
    """Medians as one row per metric and a column per target and method (many metrics stay readable)."""
    table = Table(title=f"{results['model']}: medians over {len(results['tracks'])} track(s)")
    table.add_column("metric")
    for target in targets:
        for method in METHODS:
            table.add_column(f"{target}\n{method}", justify="right")
    for m in metrics:
        values = [results["median"][method][target][m] for target in targets for method in METHODS]
        table.add_row(m, *(f"{v:.3f}" for v in values))
    Console(width=max(150, shutil.get_terminal_size().columns)).print(table)


def plot_boxes(path: Path, rows: list[dict[str, Any]], metrics: list[str], targets: list[str]) -> None:
    """Box plots per metric: one box per target and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        data, labels = [], []
        for target in targets:
            for method in METHODS:
                values = [r[metric] for r in rows if r["target"] == target and r["method"] == method]
                data.append([v for v in values if np.isfinite(v)])
                labels.append(f"{target[:5]}\n{method}")
        ax.boxplot(data)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=6)
        ax.set_title(metric, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
