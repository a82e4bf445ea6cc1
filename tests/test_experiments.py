"""Experiment management: W&B offline media, TensorBoard media, sweeps + summary, optuna, DDP on
CPU, bf16 on CPU, debug overlays with every model."""

import csv
import json
import math
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from sepkit.commands import config_options
from sepkit.training import train
from tests.conftest import MASK_VARIANTS, ROOT, TINY_RUN, model_overrides, run_entry, tiny_train_args

TINY_MEDIA = ["callbacks.media.every_n_epochs=1", "callbacks.media.n_examples=1"]


def test_all_loggers_at_once_with_wandb_offline_and_media(tmp_path, tiny_root, cache_dir, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.netrc: no W&B credentials
    result = run_entry("train.py", *tiny_train_args(tmp_path, tiny_root, cache_dir), "logger=many", *TINY_MEDIA)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "logging offline" in result.stdout
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    media = list((runs[0] / "files" / "media").rglob("*"))
    assert any(p.suffix == ".wav" for p in media) and any(p.suffix == ".png" for p in media)
    assert (runs[0] / f"run-{runs[0].name.rsplit('-', 1)[1]}.wandb").stat().st_size > 0
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and max(e.stat().st_size for e in events) > 10_000  # audio + figures, not just scalars
    assert (tmp_path / "run" / "csv" / "metrics.csv").exists()
    assert "model" in (tmp_path / "run" / "csv" / "hparams.yaml").read_text()


def test_two_by_two_multirun_writes_a_sweep_summary(tmp_path, tiny_root, cache_dir) -> None:
    args = [a for a in tiny_train_args(tmp_path, tiny_root, cache_dir) if not a.startswith("hydra.run.dir")]
    result = run_entry(
        "train.py",
        "-m",
        *args,
        f"hydra.sweep.dir={tmp_path}/sweep",
        "logger=none",
        "optimizer.lr=1e-3,1e-4",
        "loss=spec_l1,mask_l1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with (tmp_path / "sweep" / "sweep_summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert {r["overrides"] for r in rows} == {
        f"optimizer.lr={lr} loss={loss}" for lr in ("0.001", "0.0001") for loss in ("spec_l1", "mask_l1")
    }
    assert all(Path(r["checkpoint"]).is_file() and r["val/si_sdr"] for r in rows)
    assert "sweep summary" in result.stdout


def test_three_optuna_trials(tmp_path, tiny_root, cache_dir) -> None:
    args = [a for a in tiny_train_args(tmp_path, tiny_root, cache_dir) if not a.startswith("hydra.run.dir")]
    result = run_entry(
        "train.py",
        "hparams_search=optuna",
        *args,
        f"hydra.sweep.dir={tmp_path}/opt",
        "logger=none",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best_value" in (tmp_path / "opt" / "optimization_results.yaml").read_text()
    assert len(list((tmp_path / "opt").glob("*/summary.json"))) == 3


@pytest.mark.parametrize("entry", ["train.py", "sepkit train"])
def test_ddp_on_two_cpu_processes(tmp_path, tiny_root, cache_dir, entry: str) -> None:
    args = [*tiny_train_args(tmp_path, tiny_root, cache_dir), "trainer=ddp_cpu", "logger=csv"]
    if entry == "train.py":
        result = run_entry("train.py", *args, isolated=True)
    else:  # Lightning starts the second rank again from the sepkit command's argv[0]
        from tests.test_commands import SEPKIT

        result = subprocess.run([str(SEPKIT), "train", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # 4 train tracks x 2 samples = 8 items, batch 2 per process, 2 processes: 2 steps
    assert summary["global_steps"] == 2
    assert isinstance(summary["best"]["val/si_sdr"], float)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_failed_job_is_its_rows_and_the_sweep_goes_on(tmp_path, tiny_root, cache_dir) -> None:
    args = [a for a in tiny_train_args(tmp_path, tiny_root, cache_dir) if not a.startswith("hydra.run.dir")]
    sweep = ["-m", *args, f"hydra.sweep.dir={tmp_path}/sweep", "logger=none", "optimizer=sgd", "optimizer.lr=1e30,1e-3"]
    result = run_entry("train.py", *sweep)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "NaN" in result.stderr and result.stderr.strip().splitlines()[-1].startswith("error: job(s) 0 of the sweep")
    with (tmp_path / "sweep" / "sweep_summary.csv").open() as f:
        rows = {r["job"]: r for r in csv.DictReader(f)}
    assert "NaN" in rows["0"]["failed"] and not rows["1"]["failed"] and Path(rows["1"]["checkpoint"]).is_file()


def test_ddp_inside_multirun_fails_clearly(tmp_path, tiny_root, cache_dir) -> None:
    args = [a for a in tiny_train_args(tmp_path, tiny_root, cache_dir) if not a.startswith("hydra.run.dir")]
    result = run_entry("train.py", "-m", *args, f"hydra.sweep.dir={tmp_path}/s", "trainer=ddp_cpu", "seed=1,2")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "ddp_spawn" in result.stderr


def test_bf16_mixed_on_cpu(tmp_path, tiny_root, cache_dir) -> None:
    """Whichever bf16 kernels this CPU has (AMX: the work-around; avx512_bf16; none), training is finite."""
    from sepkit.precision import AMX, bf16_cpu_path

    result = run_entry("train.py", *tiny_train_args(tmp_path, tiny_root, cache_dir), "trainer.precision=bf16-mixed")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    path = bf16_cpu_path()
    print(f"bf16 on this CPU ran through: {summary['bf16_cpu']}")
    assert summary["bf16_cpu"].startswith(path) and (path != AMX or "oneDNN off" in summary["bf16_cpu"])
    for key in ("val/loss", "val/si_sdr", "val/vocals/si_sdri"):
        assert math.isfinite(summary["best"][key]), key


@pytest.mark.parametrize("model", [*config_options("model"), *MASK_VARIANTS])
def test_debug_fdr_runs_with_each_model(model, tmp_path, tiny_root, cache_dir) -> None:
    overrides = [o for o in TINY_RUN if not o.startswith("model.net")]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                *model_overrides(model),
                "debug=fdr",
                f"paths.root_dir={tmp_path}",
                f"paths.cache_dir={cache_dir}",
                f"data.root={tiny_root}",
                *overrides,
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    assert cfg.trainer.accelerator == "cpu" and not cfg.logger and cfg.data.num_workers == 0
    train(cfg)
    assert (tmp_path / "run" / "summary.json").exists()
