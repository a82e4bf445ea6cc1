"""Shared behaviour of the entry points: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig, OmegaConf

from sepkit.errors import SepkitError, find_user_error
from sepkit.extras import missing_extra

T = TypeVar("T")
log = logging.getLogger("sepkit")


def run_guarded(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run ``fn``; a :class:`~sepkit.errors.SepkitError` (even one wrapped by Hydra), or an optional
    package that is not installed, prints ``error: <message>`` and exits with status 2."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        err = find_user_error(exc) or missing_extra(exc)  # an optional package's import failing: its extra
        if err is None:
            raise
        log.debug("user error", exc_info=True)
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def check_required(cfg: DictConfig) -> None:
    """Fail with one clear line for config values left as ``???``."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if "data.root" in missing:
        from sepkit.data.sources.musdb import MUSDB_HINT

        hint = MUSDB_HINT if "musdb" in str(cfg.data.get("source", {}).get("_target_", "")) else ""
        raise SepkitError(f"data.root is not set: pass data.root=DIR, the dataset folder. {hint}".strip())
    if "ckpt" in missing:
        raise SepkitError(
            "pass ckpt=PATH, a checkpoint written by train.py (outputs/train/<run>/checkpoints/best.ckpt)"
        )
    if missing:
        raise SepkitError(f"set {', '.join(missing)} on the command line (e.g. {missing[0]}=VALUE)")
