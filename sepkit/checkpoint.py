"""Rebuilding a Separator from a checkpoint file alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sepkit.errors import SepkitError

CHECKPOINT_KEY = "sepkit"
STATE_PREFIX = "separator."


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a sepkit checkpoint's dictionary, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise SepkitError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SepkitError(f"checkpoint {path} is corrupt or not a PyTorch file ({type(err).__name__})") from None
    if not isinstance(ckpt, dict) or CHECKPOINT_KEY not in ckpt or "state_dict" not in ckpt:
        raise SepkitError(f"{path} is not a sepkit checkpoint (no '{CHECKPOINT_KEY}' section); train one with train.py")
    return ckpt


def load_separator(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the separator saved in a checkpoint, in eval mode.

    Args:
        path: a ``.ckpt`` written by ``train.py``.
        device: where to put the model.

    Returns:
        The :class:`~sepkit.separator.Separator`, with the checkpoint's description in ``.info``.
    """
    from sepkit.separator import build_separator

    ckpt = read_checkpoint(path)
    info = ckpt[CHECKPOINT_KEY]
    separator = build_separator(info["model"], info["targets"])
    state = {k[len(STATE_PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(STATE_PREFIX)}
    separator.load_state_dict(state)
    covers = info.get("covers_mixture", info.get("run", {}).get("covers_mixture"))  # the run's, for older files
    if covers is not None:
        separator.covers_mixture = bool(covers)
    separator.info = info
    separator.checkpoint_path = str(path)
    return separator.to(device).eval()
