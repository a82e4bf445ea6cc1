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


def _integer(low: int | None = None, high: int | None = None) -> tuple[Callable[[object], bool], str]:
    def ok(v: object) -> bool:
        if not isinstance(v, int) or isinstance(v, bool):
            return False
        return (low is None or v >= low) and (high is None or v <= high)

    what = "an integer" + (
        f" from {low} to {high}" if low is not None and high is not None else f" >= {low}" if low is not None else ""
    )
    return ok, what


def _number(positive: bool = False) -> tuple[Callable[[object], bool], str]:
    def ok(v: object) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and (not positive or v > 0)

    return ok, "a number above 0" if positive else "a number"


def _device(v: object) -> bool:
    return isinstance(v, str) and (v in ("cpu", "cuda", "auto") or (v.startswith("cuda:") and v[5:].isdigit()))


# settings a user types on the command line, checked before they reach code that would fail on them
# with a traceback: key -> (test, what it must be)
VALUE_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "seed": _integer(),
    "threads": _integer(1),
    "bit_depth": _integer(),
    "engine.overlap": _number(),
    "engine.batch_size": _integer(1),
    "engine.shifts": _integer(0),
    "engine.wiener_iterations": _integer(0),
    "engine.block_seconds": _number(positive=True),
    "engine.device": (_device, "cpu, cuda, cuda:N or auto"),
    "eval.max_tracks": _integer(1),
    "web.port": _integer(0, 65535),
    "web.max_upload_mb": _number(positive=True),
    "web.max_minutes": _number(positive=True),
    "web.keep_minutes": _number(positive=True),
    "web.concurrency": _integer(1),
    "web.queue_size": _integer(1),
    "optimizer.lr": _number(positive=True),
}


def check_values(cfg: DictConfig) -> None:
    """Fail with one clear line for a setting of the wrong type or range (``bit_depth=abc``,
    ``engine.block_seconds=0``, ``web.port=99999``); unset (null) settings are left alone."""
    for key, (ok, what) in VALUE_CHECKS.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is not None and not ok(value):
            raise SepkitError(f"{key}={value!r} must be {what}")


def run_guarded(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run ``fn``; a :class:`~sepkit.errors.SepkitError` (even one wrapped by Hydra), or an optional
    package that is not installed, prints ``error: <message>`` and exits with status 2."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        if report_user_error(exc) is None:
            raise
        raise SystemExit(2) from None


def report_user_error(exc: BaseException) -> Exception | None:
    """The user's error behind ``exc`` (a :class:`~sepkit.errors.SepkitError`, even one wrapped by
    Hydra, or an optional package's import failing: its extra), printed as its one ``error:`` line;
    None for anything else."""
    err = find_user_error(exc) or missing_extra(exc)
    if err is not None:
        log.debug("user error", exc_info=True)
        print(f"error: {err}", file=sys.stderr, flush=True)
    return err


def check_required(cfg: DictConfig) -> None:
    """Fail with one clear line for config values left as ``???`` or of the wrong type (:func:`check_values`)."""
    check_values(cfg)
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
