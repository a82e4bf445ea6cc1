"""``train(cfg)``: build everything from a composed config, fit, write the run summary."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerStatus
from omegaconf import DictConfig, OmegaConf, open_dict

from sepkit.audio import resample
from sepkit.callbacks import BestMetrics, NonFiniteError, StopOnNonFinite, Throughput, further_rank
from sepkit.checkpoint import CHECKPOINT_KEY, SEPARATOR, STATE_PREFIX, read_checkpoint
from sepkit.cli import check_required
from sepkit.errors import SepkitError
from sepkit.precision import cpu_precision_guard
from sepkit.separator import build_separator
from sepkit.system import SeparationSystem

log = logging.getLogger(__name__)


def check_accelerator(trainer_cfg: DictConfig) -> None:
    """Fail with one clear line when the trainer asks for a GPU this machine lacks."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise SepkitError("trainer=gpu needs a CUDA GPU, none found; use trainer=cpu (or trainer=default)")


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry with a ``_target_`` in a callbacks/logger group."""
    if not group:
        return []
    return [instantiate(item) for item in group.values() if isinstance(item, DictConfig) and "_target_" in item]


def _scalar(value: Any) -> float | None:
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu())
    return None if value is None else float(value)


def strict_json(value: Any) -> Any:
    """``value`` with NaN and infinities as null: ``summary.json`` stays JSON that strict readers
    (JavaScript, jq) accept, where a score undefined on a tiny split is NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def resolve_resume(cfg: DictConfig, kind: str = SEPARATOR) -> str | None:
    """The checkpoint to resume from, checked to be a whole checkpoint of ``kind``: ``ckpt_path``,
    or ``resume=auto`` (newest ``last.ckpt`` of any training run) / ``resume=RUN_DIR`` (that run's
    ``last.ckpt``)."""
    path = _resume_path(cfg)
    if path is not None:
        ckpt = read_checkpoint(path, kind=kind)
        if kind == SEPARATOR:
            adopt_model(cfg, ckpt, f"resume={cfg.get('resume') or path}")
    return path


def differing_keys(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """The top-level model settings in which two models differ."""
    return sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))


def adopt_model(cfg: DictConfig, ckpt: dict[str, Any], what: str) -> None:
    """A resumed run continues the checkpoint's model: its settings become the run's; model keys given
    on the command line that differ from them stop with one line (not a traceback of size mismatches)."""
    theirs = dict(ckpt[CHECKPOINT_KEY]["model"])
    ours = OmegaConf.to_container(cfg.model, resolve=True)
    if ours == theirs:
        return
    if model_overrides():
        differ = differing_keys(ours, theirs)
        raise SepkitError(
            f"{what}: its model ({theirs.get('name')}) differs from this run's in {', '.join(differ)}; leave model "
            "settings out of the command line to continue it"
        )
    log.info("%s: model settings from the checkpoint (%s)", what, theirs.get("name"))
    with open_dict(cfg):
        cfg.model = OmegaConf.create(theirs)


def _resume_path(cfg: DictConfig) -> str | None:
    resume = cfg.get("resume")
    if cfg.get("ckpt_path"):
        if resume:
            raise SepkitError("give either ckpt_path=... or resume=..., not both")
        if not Path(cfg.ckpt_path).is_file():
            raise SepkitError(f"ckpt_path={cfg.ckpt_path} does not exist")
        return str(cfg.ckpt_path)
    if not resume:
        return None
    if resume == "auto":
        found = sorted(
            Path(cfg.paths.log_dir, cfg.task_name).rglob("checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime
        )
        if not found:
            raise SepkitError(f"resume=auto found no last.ckpt under {Path(cfg.paths.log_dir, cfg.task_name)}")
        return str(found[-1])
    last = Path(resume) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise SepkitError(f"resume={resume}: no checkpoints/last.ckpt in that run dir")
    return str(last)


EXTENSION_KEY = "mask_extension"


def read_init(cfg: DictConfig) -> dict[str, Any] | None:
    """``init=PATH|bundled``: the checkpoint a run starts its weights from (fine-tuning; a fresh
    optimiser and schedule, any data). Its model settings become the run's; model keys set on the
    command line must agree with the checkpoint's (``model=NAME``: the whole model), except
    ``mask_extension`` (a learnt extension then starts afresh on the checkpoint's network)."""
    if not cfg.get("init"):
        return None
    if cfg.get("ckpt_path") or cfg.get("resume"):
        raise SepkitError("init= starts a new run from a checkpoint's weights; resume= continues one: give one")
    ckpt = read_checkpoint(cfg.init, kind=SEPARATOR)
    theirs = dict(ckpt[CHECKPOINT_KEY]["model"])
    ours = OmegaConf.to_container(cfg.model, resolve=True)
    overridden = model_overrides()
    if f"model.{EXTENSION_KEY}" in overridden and ours[EXTENSION_KEY] != theirs.get(EXTENSION_KEY):
        # another rule for the band above the network's: the network's weights still fit
        log.info("init: mask_extension %s instead of %s", ours[EXTENSION_KEY], theirs.get(EXTENSION_KEY))
        theirs[EXTENSION_KEY] = ours[EXTENSION_KEY]
    given = overridden - {f"model.{EXTENSION_KEY}"}
    if "model" in given:  # model=NAME: the whole composed model must be the checkpoint's
        differ = differing_keys(ours, theirs)
    else:  # model.KEY=VALUE: each key given must be the checkpoint's
        mine, its = OmegaConf.create(ours), OmegaConf.create(theirs)
        differ = sorted(
            k.split(".", 1)[1]
            for k in given
            if OmegaConf.select(mine, k.split(".", 1)[1]) != OmegaConf.select(its, k.split(".", 1)[1])
        )
    if differ:
        raise SepkitError(
            f"init={cfg.init}: its model differs from this run's in {', '.join(differ)}; leave model settings "
            "out of the command line to fine-tune the checkpoint's own model (model.mask_extension may differ)"
        )
    with open_dict(cfg):
        cfg.model = OmegaConf.create(theirs)
    log.info("init: weights and model settings from %s (%s)", cfg.init, theirs.get("name"))
    return ckpt


def model_overrides() -> set[str]:
    """The model keys the command line set (``model`` for ``model=...``; none outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = HydraConfig.get().overrides.task
    except ValueError:
        return set()
    keys = (o.lstrip("+~").split("=", 1)[0] for o in overrides)
    return {k for k in keys if k.split(".", 1)[0] == "model"}


def start_from(separator: torch.nn.Module, ckpt: dict[str, Any], cfg: DictConfig) -> None:
    """Load ``init``'s weights; a different target list only with ``init_new_targets=true`` (the
    layers whose shapes depend on the targets then start afresh)."""
    theirs = ckpt[CHECKPOINT_KEY]["targets"]
    if list(theirs) != list(separator.targets) and not cfg.get("init_new_targets"):
        raise SepkitError(
            f"init={cfg.init} separates {', '.join(theirs)}; this run {', '.join(separator.targets)}: "
            "add init_new_targets=true to start the target-specific layers afresh"
        )
    state = {k[len(STATE_PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(STATE_PREFIX)}
    own = separator.state_dict()
    # statistics a module sizes when it first sees data start empty; their load hooks size them
    fitting = {k: v for k, v in state.items() if k in own and (own[k].shape == v.shape or own[k].numel() == 0)}
    separator.load_state_dict(fitting, strict=False)
    if len(fitting) < len(own):
        log.info("init: %d of %d tensors loaded, the rest start afresh", len(fitting), len(own))


def resume_wandb_run(cfg: DictConfig, ckpt_path: str | None) -> None:
    """When resuming, continue the W&B run the checkpoint was logged to."""
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if not ckpt_path or not wandb_cfg or wandb_cfg.get("id"):
        return
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    run_id = ckpt.get("sepkit", {}).get("run", {}).get("wandb_id")
    if run_id:
        with open_dict(cfg):
            cfg.logger.wandb.id = run_id


def check_multirun_ddp(cfg: DictConfig) -> None:
    """DDP that re-launches the script (strategy=ddp) cannot run inside Hydra's basic multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
    except ValueError:  # not under @hydra.main
        return
    strategy = str(cfg.trainer.get("strategy", "auto"))
    devices = cfg.trainer.get("devices", 1)
    multi = devices == -1 or (isinstance(devices, int) and devices > 1) or cfg.trainer.get("num_nodes", 1) > 1
    launcher = str(hydra_cfg.launcher.get("_target_", ""))
    if hydra_cfg.mode == RunMode.MULTIRUN and multi and strategy == "ddp" and "BasicLauncher" in launcher:
        raise SepkitError(
            "strategy=ddp inside a Hydra multirun (-m) re-runs the whole sweep in every process; "
            "add trainer.strategy=ddp_spawn to the sweep, or launch with hydra/launcher=slurm"
        )


class Task:
    """What a run trains, behind the one run skeleton :func:`train` (config group ``task``).

    The skeleton does what every run needs: the checks, resume, the seed, callbacks, loggers, the
    trainer, the fit under the precision guard, ``summary.json`` and the optimised metric. A task
    brings its own part: the checkpoint ``kind`` its runs write and resume from, the Lightning module
    and data module (:meth:`build`), and what is done with the data before fitting (:meth:`prepare`).
    """

    kind: str = SEPARATOR

    def check(self, cfg: DictConfig) -> None:
        """Task-specific checks before resume is resolved (nothing by default)."""

    def build(self, cfg: DictConfig, ckpt_path: str | None) -> tuple[L.LightningModule, L.LightningDataModule]:
        raise NotImplementedError

    def prepare(
        self, cfg: DictConfig, system: L.LightningModule, datamodule: Any, out_dir: Path, ckpt_path: str | None
    ) -> None:
        """Data ready, splits written, ``system.run_info`` (what the checkpoint records) set."""
        raise NotImplementedError


class SeparationTask(Task):
    """Separation: a :class:`~sepkit.separator.Separator` in a :class:`~sepkit.system.SeparationSystem`
    on ``cfg.data``; ``init=`` starts from another checkpoint's weights."""

    kind = SEPARATOR

    def check(self, cfg: DictConfig) -> None:
        self.init = read_init(cfg)  # init='s checks come before resume's

    def build(self, cfg: DictConfig, ckpt_path: str | None) -> tuple[L.LightningModule, L.LightningDataModule]:
        datamodule = instantiate(cfg.data)
        separator = build_separator(OmegaConf.to_container(cfg.model, resolve=True), datamodule.targets)
        if self.init is not None:
            start_from(separator, self.init, cfg)
        system = SeparationSystem(
            separator,
            loss=instantiate(cfg.loss),
            optimizer=instantiate(cfg.optimizer),
            scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
            spec_augment=datamodule.spec_augment,
            sample_rate=datamodule.sample_rate,
        )
        return system, datamodule

    def prepare(
        self, cfg: DictConfig, system: L.LightningModule, datamodule: Any, out_dir: Path, ckpt_path: str | None
    ) -> None:
        separator = system.separator
        datamodule.prepare_data()
        datamodule.write_splits(out_dir / "splits.json")
        mixtures = (resample(m, datamodule.sample_rate, separator.sample_rate) for m in datamodule.train_mixtures())
        if not ckpt_path and self.init is None and (used := separator.fit_input_statistics(mixtures)):
            log.info("input scaler of %s set from the %d training tracks", type(separator.net).__name__, used)
        separator.covers_mixture = datamodule.covers_mixture
        system.run_info = {
            "data": OmegaConf.to_container(cfg.data, resolve=True),
            "data_root": str(Path(datamodule.root).resolve()),
            "covers_mixture": datamodule.covers_mixture,
            "splits": {name: [t.name for t in tracks] for name, tracks in datamodule.tracks.items()},
            "seed": cfg.seed,
        }
        log.info("tracks: %s", {k: len(v) for k, v in datamodule.tracks.items()})


def train(cfg: DictConfig) -> float | None:
    """The run skeleton of every task (``cfg.task``, separation by default): train as ``cfg`` says
    and return the best ``cfg.optimized_metric`` (for sweepers)."""
    task: Task = instantiate(cfg.task) if cfg.get("task") else SeparationTask()
    start = time.time()
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()  # Hydra's handlers already print and file them
    check_required(cfg)
    check_accelerator(cfg.trainer)
    check_multirun_ddp(cfg)
    task.check(cfg)
    ckpt_path = resolve_resume(cfg, kind=task.kind)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    claim_run_dir(out_dir)
    L.seed_everything(cfg.seed, workers=True)

    system, datamodule = task.build(cfg, ckpt_path)
    callbacks = instantiate_group(cfg.get("callbacks"))
    resume_wandb_run(cfg, ckpt_path)
    loggers = instantiate_group(cfg.get("logger"))
    trainer = make_trainer(cfg, callbacks, loggers, cfg.optimized_metric)
    task.prepare(cfg, system, datamodule, out_dir, ckpt_path)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        if isinstance(lg, WandbLogger) and trainer.is_global_zero:
            system.run_info["wandb_id"] = lg.experiment.id
            if lg._offline:
                print(
                    f"W&B: no API key found, logging offline to {lg.experiment.dir.rsplit('/files', 1)[0]}; "
                    "upload it later with `wandb sync <that dir>`",
                    flush=True,
                )
    summary = fit(cfg, trainer, system, datamodule, ckpt_path, start)
    return summary["best"].get(cfg.optimized_metric)


RUN_MARKER = ".sepkit-run"


def claim_run_dir(out_dir: Path) -> None:
    """Mark ``out_dir`` as this run's, or stop with one line when another run already holds it
    (``hydra.run.dir`` pointing at an earlier run, or two runs started in the same second): its
    checkpoints, summary and metrics would otherwise be overwritten without a word. The processes
    that DDP starts for the other ranks share their rank 0's folder."""
    if further_rank():
        return
    try:
        with (out_dir / RUN_MARKER).open("x") as marker:
            marker.write(f"{os.getpid()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    except FileExistsError:
        raise SepkitError(
            f"{out_dir} already holds a run, whose checkpoints and summary this one would overwrite: "
            "start it in another folder (hydra.run.dir=DIR), or continue that one with resume=" + str(out_dir)
        ) from None


def make_trainer(cfg: DictConfig, callbacks: list[L.Callback], loggers: list[Any], monitor: str) -> L.Trainer:
    """The Lightning trainer of ``cfg.trainer``, with :class:`StopOnNonFinite` always among its
    callbacks (no run may end "successfully" on NaN weights)."""
    if not loggers:  # nothing to send learning rates to
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor)]
    if not any(isinstance(cb, StopOnNonFinite) for cb in callbacks):
        callbacks = [StopOnNonFinite(monitor), *callbacks]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def fit(
    cfg: DictConfig, trainer: L.Trainer, system: L.LightningModule, datamodule: Any, ckpt_path: str | None, start: float
) -> dict[str, Any]:
    """``trainer.fit`` under the CPU precision guard, then ``summary.json``; a run stopped by a
    non-finite value writes its summary with the failure and raises it (a non-zero exit)."""
    out_dir = Path(cfg.paths.output_dir)
    extra: dict[str, Any] = {}
    try:
        with cpu_precision_guard(cfg.trainer) as bf16_path:
            if bf16_path:
                extra["bf16_cpu"] = bf16_path
            trainer.fit(system, datamodule=datamodule, ckpt_path=ckpt_path)
    except NonFiniteError as err:
        write_summary(cfg, trainer, out_dir, time.time() - start, {**extra, "failed": str(err)})
        raise
    except SystemExit as stop:  # Lightning ends an interrupted fit so: Ctrl-C exit(1), SIGTERM an exit of 0
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        if threading.current_thread() is threading.main_thread():  # Lightning ignores further Ctrl-C
            signal.signal(signal.SIGINT, signal.default_int_handler)
        how = "by SIGTERM" if trainer.received_sigterm else "by Ctrl-C"
        why = f"training interrupted {how} at step {trainer.global_step}"
        write_summary(cfg, trainer, out_dir, time.time() - start, {**extra, "failed": why, "interrupted": True})
        raise SepkitError(
            f"{why}; checkpoints/last.ckpt holds the weights of the last validation: continue with resume={out_dir}"
        ) from stop
    return write_summary(cfg, trainer, out_dir, time.time() - start, extra)


def write_summary(
    cfg: DictConfig, trainer: L.Trainer, out_dir: Path, wall_time: float, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``summary.json``: best validation metrics, checkpoint paths, steps and wall time
    (``extra``: the bf16 path taken, ``failed`` with the reason a run stopped)."""
    ckpt_cb = trainer.checkpoint_callback
    last_cb = next((cb for cb in trainer.checkpoint_callbacks if getattr(cb, "filename", None) == "last"), ckpt_cb)
    tracker = next((cb for cb in trainer.callbacks if isinstance(cb, BestMetrics)), None)
    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Throughput)), None)
    summary = {
        "model": cfg.model.get("name"),
        "optimized_metric": cfg.optimized_metric,
        "best": tracker.best if tracker else {},
        "last": {k: _scalar(v) for k, v in trainer.callback_metrics.items()},
        "best_checkpoint": getattr(ckpt_cb, "best_model_path", "") or None,
        "last_checkpoint": (getattr(last_cb, "best_model_path", "") if last_cb is not ckpt_cb else "")
        or getattr(ckpt_cb, "last_model_path", "")
        or None,
        "epochs": trainer.current_epoch,
        "global_steps": trainer.global_step,
        "wall_time_s": round(wall_time, 1),
        "throughput": timer.summary(trainer.strategy.root_device) if timer else {},
        **(extra or {}),
    }
    stopper = next((cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping) and cb.stopped_epoch), None)
    if stopper is not None:
        summary["stopped_early"] = (
            f"epoch {stopper.stopped_epoch}: {stopper.monitor} did not improve for {stopper.patience} validations"
        )
    if trainer.is_global_zero:
        (out_dir / "summary.json").write_text(json.dumps(strict_json(summary), indent=2, allow_nan=False))
        if stopper is not None:
            log.info("stopped early at %s (callbacks.early_stopping.patience)", summary["stopped_early"])
        if summary.get("failed"):
            pass  # the entry point prints the reason as its one line
        elif summary["best"]:
            log.info("best: %s", json.dumps(summary["best"]))
        else:
            log.warning(
                "no validation ran before the run ended (raise trainer.max_steps/max_time or check the "
                "valid split): there is no best checkpoint; last.ckpt holds the final weights"
            )
    return summary
