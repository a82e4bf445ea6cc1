"""Lightning's training step against a bare PyTorch loop doing the same work.

Both run the same separator, loss (``SeparationSystem._spectral_loss``), Adam, gradient clipping and
the same DataLoader of the built-in data, one after the other in this process; the time per step is
taken between step ``--warmup`` and the last step. The Lightning side runs as ``train.py`` does
(sepkit's callbacks: throughput, best metrics, learning-rate monitor, validate-before-stop; CSV
logger), minus validation and what acts on it (checkpoints, early stopping).

    python -m bench.loop [--model unet_paper] [--steps 60] [--threads 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar
from omegaconf import OmegaConf, open_dict

from sepkit.separator import build_separator
from sepkit.system import SeparationSystem
from sepkit.training import instantiate_group

CONF = Path(__file__).resolve().parents[1] / "conf"


class StepClock(L.Callback):
    """Wall time between the end of step ``warmup`` and the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.marks: dict[int, float] = {}

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        self.marks[trainer.global_step] = time.perf_counter()


def setup(model: str, tmp: Path, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    return cfg, dm


def make_system(cfg, dm) -> SeparationSystem:
    torch.manual_seed(0)
    separator = build_separator(OmegaConf.to_container(cfg.model, resolve=True), dm.targets)
    separator.fit_input_statistics(dm.train_mixtures())
    return SeparationSystem(separator, instantiate(cfg.loss), instantiate(cfg.optimizer), spec_augment=dm.spec_augment)


def lightning_seconds(cfg, dm, steps: int, warmup: int) -> float:
    system = make_system(cfg, dm)
    clock = StepClock(warmup)
    skipped = (RichProgressBar, EarlyStopping, ModelCheckpoint)  # the last two act on validation
    callbacks = [cb for cb in instantiate_group(cfg.callbacks) if not isinstance(cb, skipped)]
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        callbacks=[*callbacks, clock],
        logger=instantiate_group(cfg.logger) or False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=cfg.paths.output_dir,
    )
    trainer.fit(system, train_dataloaders=dm.train_dataloader())
    return (clock.marks[steps] - clock.marks[warmup]) / (steps - warmup)


def bare_seconds(cfg, dm, steps: int, warmup: int) -> float:
    system = make_system(cfg, dm).train()
    optimizer = system.optimizer_factory(params=system.parameters())
    clip = cfg.trainer.gradient_clip_val
    done, marks = 0, {}
    while done < steps:
        for batch in dm.train_dataloader():
            mixture, targets, lengths = system._unpack(batch)
            loss = system._spectral_loss(mixture, targets, lengths, augment=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(system.parameters(), clip)
            optimizer.step()
            done += 1
            marks[done] = time.perf_counter()
            if done == steps:
                break
    return (marks[steps] - marks[warmup]) / (steps - warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="unet_paper")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (noise estimate)")
    parser.add_argument("--overrides", nargs="*", default=[])
    parser.add_argument("--out", default="outputs/bench/loop.json")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg, dm = setup(opts.model, Path(tmp), opts.overrides)
        bare, lightning = [], []
        for _ in range(opts.rounds):
            bare.append(bare_seconds(cfg, dm, opts.steps, opts.warmup))
            lightning.append(lightning_seconds(cfg, dm, opts.steps, opts.warmup))
    result = {
        "model": opts.model,
        "threads": opts.threads,
        "steps": opts.steps,
        "bare_s_per_step": [round(v, 4) for v in bare],
        "lightning_s_per_step": [round(v, 4) for v in lightning],
        "lightning_over_bare": round(statistics.median(lightning) / statistics.median(bare), 3),
    }
    print(json.dumps(result, indent=2))
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
