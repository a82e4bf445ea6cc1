"""OmegaConf resolvers sepkit's configs use (registered on import of ``sepkit``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import OmegaConf


def amp_precision() -> str:
    """Mixed precision for this machine: ``16-mixed`` with CUDA, ``bf16-mixed`` on a CPU whose
    oneDNN runs bf16 natively (avx512_bf16, or AMX capped to it by ``ONEDNN_MAX_CPU_ISA``), else
    ``32-true``: emulated bf16 is about 7x slower than float32 (docs/results/precision.md), and so
    are ATen's own bf16 kernels, which train bf16 on uncapped AMX CPUs
    (docs/results/precision_tfc_tdf.md)."""
    from sepkit.precision import AMX_CAPPED, AVX512_BF16, bf16_cpu_path

    if torch.cuda.is_available():
        return "16-mixed"
    return "bf16-mixed" if bf16_cpu_path() in (AVX512_BF16, AMX_CAPPED) else "32-true"


def loader_workers() -> int:
    """Default ``data.num_workers``: 0 on a CPU-only machine (the loader's work is small next to a
    CPU training step, and workers only compete for the cores; bench/data.py), else half the cores
    up to 8 (on a GPU the loader bounds the step; bench/gpu.py)."""
    if not torch.cuda.is_available():
        return 0
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def wandb_offline() -> bool:
    """Log W&B offline unless an API key is configured (env var or ~/.netrc) and mode isn't offline."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun", "disabled"):
        return True
    if os.environ.get("WANDB_API_KEY"):
        return False
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return not (netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"))


def register_resolvers() -> None:
    resolvers = (
        ("sepkit.amp", amp_precision),
        ("sepkit.wandb_offline", wandb_offline),
        ("sepkit.workers", loader_workers),
    )
    for name, fn in resolvers:
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
