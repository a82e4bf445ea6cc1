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
    assert last_spread(metrics, "val/cond_acc_ref") != last_spread(metrics, "val/cond_acc_ref")  # NaN: a run before it
    lines = ["epoch,val/cond_acc,val/cond_acc_ref"] + [f"{i},0.5,{0.9 + i / 100}" for i in range(12)]
    metrics.write_text("\n".join(lines) + "\n")
    assert last_spread(metrics) == 0 and last_spread(metrics, "val/cond_acc_ref") == pytest.approx(0.09)


def test_rescore_evaluates_the_kept_checkpoint_again_and_keeps_the_run(tmp_path: Path, monkeypatch) -> None:
    """--rescore: evaluate.py again on a kept row's run (no training), its new scores replace the old,
    what the run was (overrides, epochs, time) stays."""
    import json
    import sys

    import bench.gan_ablation as ablation

    run = tmp_path / "elsewhere" / "gan"
    (run / "csv").mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"best_checkpoint": "best.ckpt", "epochs": 12, "wall_time_s": 600}))
    (run / "csv" / "metrics.csv").write_text("epoch,val/cond_acc\n0,0.5\n1,0.7\n")
    kept = [{"row": "gan", "overrides": ["experiment=gan", "trainer.max_epochs=12"], "run_dir": str(run)}]
    kept[0] |= {"cond_acc": 0.1, "command": "python -m bench.gan_ablation --rows gan"}
    (tmp_path / "rows.json").write_text(json.dumps(kept))
    calls = []

    def fake_run(cmd, log, env, cores):  # evaluate.py's results, with a score added since the row ran
        calls.append(cmd)
        scores = {c: {"cond_acc": 0.8, "cond_acc_ref": 0.6 if c == "drums" else 0.9} for c in ("vocals", "drums")}
        scores["all"] = {"cond_acc": 0.8, "cond_acc_ref": 0.75, "fd_ref": 20.0}
        (run / "eval").mkdir(exist_ok=True)
        (run / "eval" / "results.json").write_text(
            json.dumps({"scores": scores, "categories": ["vocals", "drums"], "epoch": 9})
        )

    written = {}
    monkeypatch.setattr(ablation, "run_logged", fake_run)
    monkeypatch.setattr(ablation, "write_results", lambda name, title, what, rows, *a: written.update(rows=rows))
    monkeypatch.setattr(sys, "argv", ["gan_ablation", "--rescore", "--rows", "gan", "--out", str(tmp_path)])
    ablation.main()
    assert len(calls) == 1 and "evaluate.py" in calls[0][1] and not any("train.py" in c for c in calls[0])
    row = json.loads((tmp_path / "rows.json").read_text())[0]
    assert row["cond_acc"] == 0.8 and row["cond_acc_ref"] == 0.75 and row["weakest_ref"] == 0.6
    assert row["overrides"] == kept[0]["overrides"] and row["run_dir"] == str(run) and row["epochs"] == 12
    assert row["spread_last10"] == pytest.approx(0.2) and written["rows"][0]["row"] == "gan"
