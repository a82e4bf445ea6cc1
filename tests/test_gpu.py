"""The GPU path, run only where CUDA is present: every model variant trains with 16-mixed and
bf16-mixed precision, DDP on one device, resume, and evaluate/separate on ``cuda`` agree with the CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from sepkit.checkpoint import load_separator
from sepkit.commands import config_options
from sepkit.inference import SeparationEngine
from tests.conftest import run_entry, tiny_train_args

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

MODELS = config_options("model")  # every separator in conf/model/


def gpu_args(tmp_path, tiny_root, cache_dir, model: str = "unet_paper") -> list[str]:
    args = tiny_train_args(tmp_path, tiny_root, cache_dir)
    if model != "unet_paper":  # the tiny widths are the paper net's
        args = [a for a in args if not a.startswith("model.net.")]
    return [*args, f"model={model}", "trainer=gpu", "logger=none"]


def summary(tmp_path) -> dict:
    return json.loads((tmp_path / "run" / "summary.json").read_text())


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
@pytest.mark.parametrize("model", MODELS)
def test_each_model_trains_on_the_gpu(tmp_path, tiny_root, cache_dir, model, precision) -> None:
    result = run_entry("train.py", *gpu_args(tmp_path, tiny_root, cache_dir, model), f"trainer.precision={precision}")
    assert result.returncode == 0, result.stderr[-3000:]
    out = summary(tmp_path)
    assert np.isfinite(out["best"]["val/si_sdr"]) and np.isfinite(out["best"]["val/loss"])
    assert out["global_steps"] > 0


def test_ddp_on_one_device_and_resume(tmp_path, tiny_root, cache_dir) -> None:
    args = [*gpu_args(tmp_path, tiny_root, cache_dir), "trainer=ddp", "trainer.devices=1"]
    first = run_entry("train.py", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    steps = summary(tmp_path)["global_steps"]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    again = run_entry("train.py", *args, f"ckpt_path={last}", "trainer.max_epochs=2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary(tmp_path)["global_steps"] == 2 * steps


def test_separation_on_cuda_matches_cpu(tmp_path, tiny_root, cache_dir) -> None:
    result = run_entry("train.py", *gpu_args(tmp_path, tiny_root, cache_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    mixture = torch.randn(2, 44100 * 5) * 0.1
    cpu = SeparationEngine(load_separator(ckpt), device="cpu").separate(mixture, 44100)
    gpu = SeparationEngine(load_separator(ckpt), device="cuda").separate(mixture, 44100)
    for target, estimate in cpu.items():
        assert gpu[target].device.type == "cpu"
        assert torch.allclose(gpu[target], estimate, atol=1e-4), (target, (gpu[target] - estimate).abs().max())

    song = tmp_path / "song.wav"
    sf.write(song, mixture.T.numpy(), 44100)
    sep = run_entry("separate.py", f"ckpt={ckpt}", f"input={song}", f"output={tmp_path}/stems", "engine.device=cuda")
    assert sep.returncode == 0, sep.stderr[-3000:]
    vocals, rate = sf.read(tmp_path / "stems" / "song" / "vocals.wav", dtype="float32")
    assert rate == 44100 and np.abs(vocals.T - cpu["vocals"].numpy()).max() < 1e-3  # 16-bit file

    ev = run_entry(
        "evaluate.py", f"ckpt={ckpt}", f"hydra.run.dir={tmp_path}/eval", "engine.device=cuda", "eval.museval=false"
    )
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "vocals" in (tmp_path / "eval" / "results.json").read_text()
