"""OmegaConf resolvers sepkit's configs use (registered on import of ``sepkit``)."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf


def amp_precision() -> str:
    """Mixed precision for this machine: ``16-mixed`` with CUDA, ``bf16-mixed`` on the CPU."""
    return "16-mixed" if torch.cuda.is_available() else "bf16-mixed"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("sepkit.amp"):
        OmegaConf.register_new_resolver("sepkit.amp", amp_precision)
