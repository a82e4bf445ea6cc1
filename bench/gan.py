"""Benchmark the conditional spectrogram GAN (experiment=gan) on this machine's CPU.

Parameters and multiply-accumulates per spectrogram of the generator and the discriminator (torch's
FLOP counter / 2), the time of one adversarial training step (a batch of ``data.batch_size`` real
clips: log-mel, discriminator step, generator step, through Lightning as ``train.py`` runs it),
generation speed and the Griffin-Lim rendering time of one spectrogram.

    python -m bench.gan [--threads 2] [--steps 6] [overrides ...] [--out outputs/bench/gan.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from sepkit.callbacks import Throughput
from sepkit.gan.model import build_gan
from sepkit.gan.system import GANSystem

CONF = Path(__file__).resolve().parents[1] / "conf"
CATEGORIES = ["vocals", "drums", "bass", "other"]


def load_config(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=["experiment=gan", *overrides])  # experiment=gan_baseline overrides it


def gmacs(fn) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops() / 2 / 1e9


def train_step_time(system: GANSystem, batch_size: int, steps: int) -> float:
    """Seconds per adversarial step (median-free: Throughput's mean after one warm-up step)."""
    audio = torch.randn(batch_size * (steps + 1), system.gan.segment_samples) * 0.1
    labels = torch.arange(len(audio)) % len(system.categories)
    loader = torch.utils.data.DataLoader(list(zip(audio, labels, strict=True)), batch_size=batch_size)
    timer = Throughput(skip=1)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(system, train_dataloaders=loader)
    return 1.0 / timer.summary()["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", default="outputs/bench/gan.json")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.batch_size=8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config(args.overrides)
    gan = build_gan(OmegaConf.to_container(cfg.model, resolve=True), CATEGORIES)
    classifier = instantiate(cfg.scores.classifier, n_classes=len(CATEGORIES))
    system = GANSystem(gan, classifier, optimizer=instantiate(cfg.optimizer), **instantiate(cfg.adversarial))
    labels = torch.arange(len(CATEGORIES))
    spec = gan(gan.noise(len(labels)), labels).detach()
    row = {
        "spectrogram": list(spec.shape[1:]),
        "generator_params_M": sum(p.numel() for p in gan.generator.parameters()) / 1e6,
        "discriminator_params_M": sum(p.numel() for p in gan.discriminator.parameters()) / 1e6,
        "generator_GMACs_per_spectrogram": gmacs(lambda: gan(gan.noise(1), labels[:1])),
        "discriminator_GMACs_per_spectrogram": gmacs(lambda: gan.discriminator(spec[:1], labels[:1])),
        "batch_size": cfg.data.batch_size,
        "train_step_s": train_step_time(system, cfg.data.batch_size, args.steps),
    }
    gan.eval()
    start = time.perf_counter()
    gan.sample_per_category(16)
    row["generated_per_s"] = 16 * len(CATEGORIES) / (time.perf_counter() - start)
    start = time.perf_counter()
    gan.to_audio(spec[:1])
    row["griffin_lim_s_per_spectrogram"] = time.perf_counter() - start
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "device": "cpu", "overrides": args.overrides, **row}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
