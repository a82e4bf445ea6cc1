"""sepkit diagnose: the training log's validation metric, on training songs too, and ideal-mask swaps."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import run_sepkit_command


def test_diagnose_reproduces_the_logged_validation_metric(tiny_ckpt, tmp_path) -> None:
    run = run_sepkit_command("diagnose", f"ckpt={tiny_ckpt}", f"hydra.run.dir={tmp_path}/d", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "d" / "diagnose.json").read_text())
    logged = json.loads((tiny_ckpt.parents[1] / "summary.json").read_text())["best"]
    model = results["valid"]["model"]
    # the same segments, metric and averaging as SeparationSystem.validation_step
    assert model["vocals/si_sdri"] == pytest.approx(logged["val/vocals/si_sdri"], abs=0.01)
    assert model["vocals/si_sdr"] == pytest.approx(logged["val/vocals/si_sdr"], abs=0.01)
    assert results["segments"]["train"] > 0 and "vocals/si_sdri" in results["train"]
    # a one-epoch model is far from the ratio-mask ceiling of its own STFT
    ideal = results["valid"]["ideal everywhere"]["vocals/si_sdri"]
    assert ideal > 5.0 and ideal > model["vocals/si_sdri"] + 1.0
    assert set(results["valid"]) == {
        "model",
        "model + Wiener",
        "model below, ideal above",
        "ideal below, model rule above",
        "ideal everywhere",
    }
    assert "| ideal everywhere (" in run.stdout


def test_diagnose_names_a_checkpoint_without_its_data(tiny_ckpt, tmp_path) -> None:
    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    for section in ckpt.values():
        if isinstance(section, dict) and "run" in section:
            section["run"] = {}
    bare = tmp_path / "bare.ckpt"
    torch.save(ckpt, bare)
    run = run_sepkit_command("diagnose", f"ckpt={bare}", f"hydra.run.dir={tmp_path}/d", cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: ") and "does not store its data config" in run.stderr
    missing = run_sepkit_command("diagnose", cwd=tmp_path)
    assert missing.returncode == 2 and "pass ckpt=PATH" in missing.stderr
