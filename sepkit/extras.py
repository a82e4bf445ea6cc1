"""Optional parts of sepkit and the pip extras that bring them.

A core install (``pip install sepkit``) trains, evaluates and separates. The rest comes with an
extra: ``pip install 'sepkit[musdb]'`` and so on, ``[all]`` for everything. A feature whose extra is
missing stops with one line naming the command that installs it (:func:`require`, and
:func:`missing_extra` for an import that fails deeper down, e.g. inside Lightning or Hydra).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from sepkit.errors import SepkitError

# top-level import name -> the extra that installs it (pyproject.toml [project.optional-dependencies])
EXTRAS: dict[str, str] = {
    "musdb": "musdb",
    "stempeg": "musdb",
    "museval": "musdb",
    "gradio": "web",
    "wandb": "wandb",
    "tensorboard": "tensorboard",
    "tensorboardX": "tensorboard",
    "matplotlib": "plots",
    "mido": "realistic",
    "pyworld": "realistic",
    "onnx": "onnx",
    "onnxscript": "onnx",
    "onnxruntime": "onnx",
    "optuna": "sweep",
    "hydra_plugins": "sweep",
}


class MissingExtra(SepkitError):
    """An optional package that a feature needs is not installed."""


def install_hint(module: str) -> str:
    extra = EXTRAS.get(module.split(".")[0])
    return f"pip install 'sepkit[{extra}]'" if extra else f"pip install {module.split('.')[0]}"


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, feature: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` for ``feature``, or raise :class:`MissingExtra` with the install command
    (for ``extra``, default: the one :data:`EXTRAS` names)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        if missing != module.split(".")[0] and missing not in EXTRAS:
            raise  # the module is there but one of its own imports is broken: show that
        hint = f"pip install 'sepkit[{extra}]'" if extra else install_hint(missing)
        raise MissingExtra(f"{feature} needs {missing}, which is not installed: {hint}") from None


def missing_extra(exc: BaseException | None) -> MissingExtra | None:
    """The :class:`MissingExtra` for an optional module that ``exc`` (or its cause) failed to import."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ImportError) and exc.name and exc.name.split(".")[0] in EXTRAS:
            return MissingExtra(f"{exc.name.split('.')[0]} is not installed: {install_hint(exc.name)}")
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


# a config's _target_ -> (module it needs, how a user asks for it); for classes that hide the failed import
TARGETS: dict[str, tuple[str, str]] = {
    "lightning.pytorch.loggers.WandbLogger": ("wandb", "logger=wandb"),
    "lightning.pytorch.loggers.TensorBoardLogger": ("tensorboard", "logger=tensorboard"),
}
# Hydra plugins a command line can ask for: (override key, value or None for any) -> (module, extra)
PLUGINS: dict[tuple[str, str | None], str] = {
    ("hparams_search", None): "hydra_plugins.hydra_optuna_sweeper",
    ("hydra/sweeper", "optuna"): "hydra_plugins.hydra_optuna_sweeper",
    ("hydra/launcher", "local"): "hydra_plugins.hydra_joblib_launcher",
    ("hydra/launcher", "joblib"): "hydra_plugins.hydra_joblib_launcher",
    ("hydra/launcher", "slurm"): "hydra_plugins.hydra_submitit_launcher",
    ("hydra/launcher", "submitit_slurm"): "hydra_plugins.hydra_submitit_launcher",
    ("hydra/launcher", "submitit_local"): "hydra_plugins.hydra_submitit_launcher",
}


def check_overrides(overrides: list[str]) -> None:
    """Raise :class:`MissingExtra` for a Hydra plugin that ``overrides`` ask for and is not installed
    (before Hydra composes the config and fails with its own message)."""
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        module = PLUGINS.get((key, value)) or (PLUGINS.get((key, None)) if value not in ("", "null") else None)
        if module and not available(module):
            raise MissingExtra(f"{override} needs a Hydra plugin that is not installed: pip install 'sepkit[sweep]'")


def check_config(cfg: Any) -> None:
    """Raise :class:`MissingExtra` for a ``_target_`` in ``cfg`` whose optional package is missing."""
    from omegaconf import OmegaConf

    def targets(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("_target_"), str):
                yield node["_target_"]
            for value in node.values():
                yield from targets(value)
        elif isinstance(node, list):
            for value in node:
                yield from targets(value)

    for target in targets(OmegaConf.to_container(cfg, resolve=False)):
        module, feature = TARGETS.get(target, (None, None))
        if module and not available(module) and not (module == "tensorboard" and available("tensorboardX")):
            raise MissingExtra(f"{feature} needs {module}, which is not installed: {install_hint(module)}")
