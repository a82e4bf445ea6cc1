"""sepkit: music source separation with U-Nets on magnitude spectrograms."""

__version__ = "0.1.0"

from sepkit.checkpoint import load_separator  # noqa: E402

__all__ = ["__version__", "load_separator"]
