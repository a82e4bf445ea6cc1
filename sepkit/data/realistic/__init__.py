"""The realistic built-in dataset (``data=synthetic_real``); see :mod:`sepkit.data.realistic.generator`."""

from sepkit.data.realistic.generator import RealisticConfig, compose, ensure, render

__all__ = ["RealisticConfig", "compose", "ensure", "render"]
