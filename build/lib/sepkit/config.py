"""OmegaConf resolvers sepkit's configs use (registered on import of ``sepkit``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import OmegaConf


def amp_precision() -> str:
    """Mixed precision for this machine: ``16-mixed`` with CUDA, ``bf16-mixed`` on the CPU."""
    return "16-mixed" if torch.cuda.is_available() else "bf16-mixed"


def wandb_offline() -> bool:
    """Log W&B offline unless an API key is configured (env var or ~/.netrc) and mode isn't offline."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun", "disabled"):
        return True
    if os.environ.get("WANDB_API_KEY"):
        return False
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return not (netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"))


def register_resolvers() -> None:
    for name, fn in (("sepkit.amp", amp_precision), ("sepkit.wandb_offline", wandb_offline)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
