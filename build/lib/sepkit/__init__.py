"""sepkit: music source separation with U-Nets on magnitude spectrograms."""

__version__ = "0.1.0"

from sepkit.checkpoint import load_separator  # noqa: E402
from sepkit.config import register_resolvers  # noqa: E402

register_resolvers()

__all__ = ["__version__", "load_separator"]
