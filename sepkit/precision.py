"""Mixed precision on the CPU: which bf16 kernels this machine runs, and the work-around for the
one family that trains to NaN.

On CPUs with AMX (Intel Sapphire Rapids and later), PyTorch's oneDNN runs bf16 convolutions through
AMX kernels, and sepkit's U-Net training under ``bf16-mixed`` gives a NaN loss from its first
logged steps (sepkit issue #30): deterministic, finite as soon as oneDNN is capped below AMX
(``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16``) or switched off, and sensitive to memory layout, the mark
of a kernel reading memory it did not write. On such a CPU sepkit trains bf16 with oneDNN switched
off for the fit (ATen's own bf16 kernels: slower, correct), unless the user has capped oneDNN's
ISA below AMX, which keeps oneDNN's AVX-512 bf16 kernels. A run that still goes non-finite is
stopped by :class:`sepkit.callbacks.StopOnNonFinite`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import torch

log = logging.getLogger(__name__)

ISA_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# bf16 on the CPU: what runs it on this machine.
AMX = "amx"  # oneDNN's AMX kernels (the NaN family): trained with oneDNN off
AMX_CAPPED = "avx512_bf16 (AMX capped by ONEDNN_MAX_CPU_ISA)"
AVX512_BF16 = "avx512_bf16"
EMULATED = "no native bf16 (converted in software)"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def amx_capped() -> bool:
    """True when the environment caps oneDNN below AMX (read by oneDNN when it first runs)."""
    isa = next((os.environ[v] for v in ISA_VARS if os.environ.get(v)), "").upper()
    return bool(isa) and isa != "ALL" and "AMX" not in isa


def bf16_cpu_path(flags: frozenset[str] | None = None) -> str:
    """Which kernels run bf16 on this CPU: :data:`AMX`, :data:`AMX_CAPPED`, :data:`AVX512_BF16` or :data:`EMULATED`."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags and torch.backends.mkldnn.is_available():
        return AMX_CAPPED if amx_capped() else AMX
    return AVX512_BF16 if "avx512_bf16" in flags else EMULATED


def on_cpu(trainer_cfg) -> bool:
    """Whether a trainer config trains on the CPU."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


@contextlib.contextmanager
def cpu_precision_guard(trainer_cfg, path: str | None = None) -> Iterator[str | None]:
    """Around a fit: on a CPU whose bf16 runs through oneDNN's AMX kernels, switch oneDNN off for
    a ``bf16-mixed`` run. Yields the bf16 path in use (None when the run is not bf16 on the CPU)."""
    if "bf16" not in str(trainer_cfg.get("precision", "")) or not on_cpu(trainer_cfg):
        yield None
        return
    path = bf16_cpu_path() if path is None else path
    if path != AMX:
        log.info("bf16 on the CPU through %s", path)
        yield path
        return
    log.warning(
        "bf16 on this CPU: oneDNN's AMX bf16 kernels train to NaN (sepkit issue #30), so this fit runs with "
        "oneDNN off (correct, slower). Start with ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 to keep oneDNN without "
        "AMX, or use trainer.precision=32-true"
    )
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield f"{AMX} (oneDNN off for training)"
    finally:
        torch.backends.mkldnn.enabled = before
