"""bf16 on the CPU: which kernels run it, and the AMX work-around (oneDNN off for the fit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from sepkit import precision
from sepkit.precision import AMX, AMX_CAPPED, AVX512_BF16, EMULATED, bf16_cpu_path, cpu_precision_guard
from sepkit.training import train
from tests.conftest import ROOT, TINY_RUN


@pytest.mark.parametrize(
    ("flags", "isa", "expected"),
    [
        ({"amx_bf16", "amx_tile", "avx512_bf16"}, None, AMX),
        ({"amx_bf16", "amx_tile", "avx512_bf16"}, "AVX512_CORE_BF16", AMX_CAPPED),
        ({"amx_bf16", "amx_tile", "avx512_bf16"}, "AVX512_CORE_AMX", AMX),
        ({"avx512_bf16"}, None, AVX512_BF16),
        ({"avx2"}, None, EMULATED),
    ],
)
def test_bf16_path_of_a_cpu(flags, isa, expected, monkeypatch) -> None:
    for var in precision.ISA_VARS:
        monkeypatch.delenv(var, raising=False)
    if isa:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    if expected in (AMX, AMX_CAPPED) and not torch.backends.mkldnn.is_available():
        expected = AVX512_BF16
    assert bf16_cpu_path(frozenset(flags)) == expected


def test_the_guard_switches_onednn_off_only_for_bf16_on_an_amx_cpu() -> None:
    assert torch.backends.mkldnn.enabled
    cpu_bf16 = {"accelerator": "cpu", "precision": "bf16-mixed"}
    with cpu_precision_guard(cpu_bf16, path=AMX) as used:
        assert not torch.backends.mkldnn.enabled and used.startswith(AMX)
    assert torch.backends.mkldnn.enabled
    for cfg, path in ((cpu_bf16, AVX512_BF16), ({"accelerator": "cpu", "precision": "32-true"}, AMX)):
        with cpu_precision_guard(cfg, path=path):
            assert torch.backends.mkldnn.enabled


def test_bf16_training_through_the_amx_work_around(tmp_path: Path, tiny_root, cache_dir, monkeypatch) -> None:
    """On any CPU: bf16 training with oneDNN off, as an AMX CPU gets it, is finite and learns."""
    monkeypatch.setattr(precision, "bf16_cpu_path", lambda: AMX)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.root_dir={tmp_path}",
                f"paths.cache_dir={cache_dir}",
                f"data.root={tiny_root}",
                *TINY_RUN,
                "trainer.max_epochs=2",
                "trainer.precision=bf16-mixed",
                "trainer.accelerator=cpu",
                "logger=none",
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    value = train(cfg)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["bf16_cpu"] == f"{AMX} (oneDNN off for training)"
    assert value is not None and torch.isfinite(torch.tensor(value))
    assert summary["best"]["val/vocals/si_sdri"] > 0  # it separates, a little, after 8 steps
    assert torch.backends.mkldnn.enabled


def test_the_amp_resolver_takes_bf16_only_where_onednn_runs_it_natively(monkeypatch) -> None:
    from sepkit import config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cases = ((EMULATED, "32-true"), (AVX512_BF16, "bf16-mixed"), (AMX, "32-true"), (AMX_CAPPED, "bf16-mixed"))
    for path, expected in cases:
        monkeypatch.setattr(precision, "bf16_cpu_path", lambda path=path: path)
        assert config.amp_precision() == expected
