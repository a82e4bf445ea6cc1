"""bench.gan_ablation: every row composes into a GAN that builds, and the spread of the last
validations is read from a run's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench.gan_ablation import ROWS, last_spread
from sepkit.gan.model import build_gan

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("name", list(ROWS))
def test_every_row_composes_into_a_gan(name: str) -> None:
    _, overrides = ROWS[name]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    gan = build_gan(OmegaConf.to_container(cfg.model, resolve=True), ["a", "b"])
    assert cfg.task._target_ == "sepkit.gan.training.GANTask" and gan.categories == ["a", "b"]
    if name != "gan" and name != "baseline":  # one piece differs from experiment=gan
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            base = compose("train", overrides=["experiment=gan"])
        assert OmegaConf.to_container(cfg, resolve=False) != OmegaConf.to_container(base, resolve=False)


def test_the_spread_of_the_last_validations(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    lines = ["epoch,train/d_loss,val/cond_acc"] + [f"{i},0.5," for i in range(3)]
    lines += [f"{i},,{v}" for i, v in enumerate([0.1, 0.5, 0.6, 0.55, 0.7, 0.65, 0.6, 0.5, 0.58, 0.62, 0.66])]
    metrics.write_text("\n".join(lines) + "\n")
    assert last_spread(metrics) == pytest.approx(0.2)  # the first value (0.1) is not among the last 10
