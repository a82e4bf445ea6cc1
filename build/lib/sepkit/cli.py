"""Shared behaviour of the entry points: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from sepkit.errors import find_user_error

T = TypeVar("T")
log = logging.getLogger("sepkit")


def run_guarded(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run ``fn``; a :class:`~sepkit.errors.SepkitError` (even one wrapped by Hydra) prints
    ``error: <message>`` and exits with status 2."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        err = find_user_error(exc)
        if err is None:
            raise
        log.debug("user error", exc_info=True)
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
