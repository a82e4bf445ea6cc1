"""sepkit's callbacks: a non-finite run stops with one line and leaves its checkpoints alone, NaN is
never "best", and the progress bar of a run without an epoch limit reads sensibly."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import torch

from sepkit.callbacks import BestMetrics, ProgressBar
from sepkit.checkpoint import SEPARATOR, read_checkpoint
from tests.conftest import run_entry, tiny_train_args


class PoisonAt(L.Callback):
    """Turns every weight into NaN before training step ``step``: a run that diverges there."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


def test_a_nan_loss_stops_the_run_and_leaves_the_last_good_checkpoints(tmp_path, tiny_root, cache_dir) -> None:
    result = run_entry(
        "train.py",
        *tiny_train_args(tmp_path, tiny_root, cache_dir),
        "trainer.max_epochs=3",
        "+callbacks.poison._target_=tests.test_callbacks.PoisonAt",
        "+callbacks.poison.step=5",  # inside the second epoch (4 steps each)
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "training loss is NaN at step 5" in errors[0], result.stderr[-2000:]
    assert "32-true" in errors[0]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert "NaN at step 5" in summary["failed"] and summary["global_steps"] == 5
    assert summary["best"]["step"] == 4
    for name in ("best.ckpt", "last.ckpt"):
        ckpt = read_checkpoint(run / "checkpoints" / name, kind=SEPARATOR)
        assert ckpt["global_step"] == 4, name
        assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values()), name


def fake_trainer(**metrics: float) -> SimpleNamespace:
    values = {k: torch.tensor(v) for k, v in metrics.items()}
    return SimpleNamespace(sanity_checking=False, callback_metrics=values, current_epoch=0, global_step=0)


def test_a_nan_metric_is_never_best() -> None:
    best = BestMetrics("val/si_sdr", mode="max")
    best.on_validation_end(fake_trainer(**{"val/si_sdr": float("nan")}), None)
    assert best.best == {}
    best.on_validation_end(fake_trainer(**{"val/si_sdr": 3.0}), None)
    best.on_validation_end(fake_trainer(**{"val/si_sdr": float("nan")}), None)
    best.on_validation_end(fake_trainer(**{"val/si_sdr": float("inf")}), None)
    assert best.best["val/si_sdr"] == 3.0


def test_progress_bar_without_an_epoch_limit() -> None:
    bar = ProgressBar()
    for max_epochs, expected in ((-1, "Epoch 25"), (30, "Epoch 25/29")):
        bar._trainer = SimpleNamespace(max_epochs=max_epochs)
        assert bar._get_train_description(25).strip() == expected


def test_budgeted_run_prints_no_negative_epoch_count(tmp_path: Path, tiny_root, cache_dir) -> None:
    args = [a for a in tiny_train_args(tmp_path, tiny_root, cache_dir) if not a.startswith("trainer.max_epochs")]
    result = run_entry("train.py", *args, "trainer.max_epochs=-1", "++trainer.max_steps=2", "logger=none")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 0" in result.stdout + result.stderr and "/-" not in result.stdout + result.stderr


def test_the_best_checkpoint_survives_a_resume_into_a_new_folder(tmp_path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from sepkit.callbacks import BestCheckpoint

    old = tmp_path / "old" / "checkpoints"
    old.mkdir(parents=True)
    (old / "best.ckpt").write_bytes(b"the best weights")
    before = ModelCheckpoint(dirpath=old, filename="best", monitor="val/si_sdr", mode="max")
    after = BestCheckpoint(dirpath=tmp_path / "new" / "checkpoints", filename="best", monitor="val/si_sdr", mode="max")
    assert after.state_key == before.state_key  # checkpoints written by Lightning's class resume into ours
    score = torch.tensor(7.5)
    after.load_state_dict({"dirpath": str(old), "best_model_path": str(old / "best.ckpt"), "best_model_score": score})
    copied = tmp_path / "new" / "checkpoints" / "best.ckpt"
    assert copied.read_bytes() == b"the best weights" and after.best_model_path == str(copied)
    assert after.best_model_score == score and after.best_k_models == {str(copied): score}
