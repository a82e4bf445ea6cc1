"""User-facing errors: the entry points print their message as one line and exit non-zero."""


class SepkitError(Exception):
    """A problem the user can fix (bad input, bad config value, missing dataset)."""
