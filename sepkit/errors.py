"""User-facing errors: the entry points print their message as one line and exit non-zero."""

from __future__ import annotations


class SepkitError(Exception):
    """A problem the user can fix (bad input, bad config value, missing dataset)."""


def find_user_error(exc: BaseException) -> SepkitError | None:
    """The :class:`SepkitError` behind ``exc`` (Hydra's instantiate wraps errors), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SepkitError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
