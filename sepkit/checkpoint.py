"""Checkpoints, written and read in one place: what a sepkit checkpoint holds, how it is saved
(atomically) and how a Separator is rebuilt from the file alone."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from sepkit.errors import SepkitError

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "sepkit"
# The model that ships with sepkit (``ckpt=bundled``, the default of separate/serve): trained by
# ``make bundled`` (experiment=bundled) on the built-in songs only; weights and description only.
BUNDLED_NAME = "bundled"
BUNDLED = Path(__file__).resolve().parent / "models" / "bundled.ckpt"


def default_onnx_path(ckpt: str | Path) -> Path:
    """Where ``export=onnx`` writes a checkpoint's network, and where ``engine.backend=onnxruntime``
    looks for it: beside the checkpoint, or ``./bundled.onnx`` for the bundled model (never inside
    the installation)."""
    if str(ckpt) == BUNDLED_NAME or Path(ckpt).resolve() == BUNDLED:
        return Path(f"{BUNDLED_NAME}.onnx")
    return Path(ckpt).with_suffix(".onnx")


STATE_PREFIX = "separator."
# Layout of the ``sepkit`` section; raised when a reader would misread an older sepkit's file.
FORMAT = 2
SEPARATOR = "separator"
GAN = "gan"
# What to do with a checkpoint of each kind, for the line that refuses it elsewhere.
USE = {
    SEPARATOR: "use it with separate.py, evaluate.py or the page",
    GAN: "score it with evaluate.py (python evaluate.py ckpt=PATH), or add experiment=gan to resume it",
}


def header(kind: str) -> dict[str, Any]:
    """The fields every checkpoint's ``sepkit`` section starts with: its kind, format and writer."""
    from sepkit import __version__

    return {"kind": kind, "format": FORMAT, "sepkit_version": __version__}


def checkpoint_kind(info: dict[str, Any]) -> str:
    """``separator`` or ``gan``; files from before ``kind`` existed are told apart by their fields."""
    return str(info.get("kind") or (GAN if "categories" in info else SEPARATOR))


def resolve_checkpoint(path: str | Path | None) -> Path:
    """``bundled`` (or None) is the model that ships with sepkit; anything else a file path."""
    if path is None or str(path) == BUNDLED_NAME:
        if not BUNDLED.is_file():
            raise SepkitError(
                "this sepkit has no bundled model: pass ckpt=PATH, a checkpoint written by train.py "
                "(or build one with `make bundled`)"
            )
        return BUNDLED
    return Path(path)


def read_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Load a sepkit checkpoint's dictionary, with one clear error for anything else.

    Args:
        path: the ``.ckpt`` file, or ``bundled`` for the model that ships with sepkit.
        kind: the kind the caller can use (``separator`` or ``gan``); None takes either.
    """
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise SepkitError(f"checkpoint {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    if path.stat().st_size == 0:
        raise SepkitError(f"checkpoint {path} is empty (0 bytes); point ckpt= at a checkpoint written by train.py")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SepkitError(
            f"checkpoint {path} is truncated, corrupt or not a PyTorch file ({type(err).__name__}); "
            "use another checkpoint, e.g. the run's last.ckpt"
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get(CHECKPOINT_KEY), dict) or "state_dict" not in ckpt:
        raise SepkitError(f"{path} is not a sepkit checkpoint (no '{CHECKPOINT_KEY}' section); train one with train.py")
    info = ckpt[CHECKPOINT_KEY]
    fmt = info.get("format", 1)
    if not isinstance(fmt, int) or fmt > FORMAT:
        from sepkit import __version__

        raise SepkitError(
            f"{path} was written by sepkit {info.get('sepkit_version', '?')} (checkpoint format {fmt}), newer than "
            f"this sepkit {__version__} (format {FORMAT}): upgrade sepkit to read it"
        )
    found = checkpoint_kind(info)
    if found not in USE:
        raise SepkitError(f"{path} holds a '{found}' model, which this sepkit does not know: upgrade sepkit")
    if kind is not None and found != kind:
        raise SepkitError(f"{path} is a {found.upper() if found == GAN else found} checkpoint: {USE[found]}")
    return ckpt


def separator_checkpoint(separator, run: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None) -> dict:
    """The dictionary a separator's checkpoint holds (``state_dict`` keys carry :data:`STATE_PREFIX`)."""
    if state_dict is None:
        state_dict = {STATE_PREFIX + k: v for k, v in separator.state_dict().items()}
    return {CHECKPOINT_KEY: {**separator.describe(), "run": run}, "state_dict": state_dict}


def slim(source: str | Path, target: str | Path) -> Path:
    """Write a separator checkpoint's weights and description only (no optimiser or trainer state),
    atomically: what ``make bundled`` ships."""
    ckpt = read_checkpoint(source, kind=SEPARATOR)
    state = {k: v for k, v in ckpt["state_dict"].items() if k.startswith(STATE_PREFIX)}
    target = Path(target)
    partial = target.with_name(f".{target.name}.partial")
    torch.save({CHECKPOINT_KEY: ckpt[CHECKPOINT_KEY], "state_dict": state}, partial)
    os.replace(partial, target)
    return target


def load_weights(module: torch.nn.Module, ckpt: dict[str, Any], prefix: str) -> None:
    """Load the entries of ``ckpt["state_dict"]`` under ``prefix`` (a Lightning module attribute) into ``module``."""
    module.load_state_dict({k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)})


@contextmanager
def rebuilding(path: Path) -> Iterator[None]:
    """Around rebuilding a checkpoint's model: any failure but a :class:`SepkitError` becomes one line
    saying this sepkit cannot rebuild it (a file from another version, weights that do not fit)."""
    try:
        yield
    except SepkitError:
        raise
    except Exception as err:
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise SepkitError(
            f"{path}: its model cannot be rebuilt by this sepkit ({type(err).__name__}: {reason}); "
            "is it from another version?"
        ) from None


def load_separator(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the separator saved in a checkpoint, in eval mode.

    Args:
        path: a ``.ckpt`` written by ``train.py``, or ``bundled`` (the model that ships with sepkit).
        device: where to put the model.

    Returns:
        The :class:`~sepkit.separator.Separator`, with the checkpoint's description in ``.info``.
    """
    from sepkit.separator import build_separator

    path = resolve_checkpoint(path)
    if path == BUNDLED:
        log.info("model: the bundled one (%s, trained on sepkit's built-in songs); ckpt=PATH takes yours", path.name)
    ckpt = read_checkpoint(path, kind=SEPARATOR)
    info = ckpt[CHECKPOINT_KEY]
    with rebuilding(path):
        separator = build_separator(info["model"], info["targets"])
        load_weights(separator, ckpt, STATE_PREFIX)
    covers = info.get("covers_mixture", info.get("run", {}).get("covers_mixture"))  # the run's, for older files
    if covers is not None:
        separator.covers_mixture = bool(covers)
    separator.info = info
    separator.checkpoint_path = str(path)
    return separator.to(device).eval()


def __getattr__(name: str) -> Any:
    # AtomicCheckpointIO is built on first use: importing Lightning here would slow every
    # ``import sepkit`` (separate.py's start) by a second.
    if name == "AtomicCheckpointIO":
        return _atomic_checkpoint_io()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=1)
def _atomic_checkpoint_io() -> type:
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Lightning's checkpoint writer, made atomic for local files: the checkpoint is written to a
        file beside its target, flushed to disk, and renamed over the target. A run killed during a save
        leaves the previous ``best.ckpt``/``last.ckpt`` whole (Lightning's own writer stages in the
        system's temporary folder and copies when that is another file system). Remote paths
        (``s3://...``) go through Lightning's writer unchanged."""

        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            if "://" in str(path):
                super().save_checkpoint(checkpoint, path, storage_options)
                return
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
            try:
                with partial.open("wb") as f:
                    torch.save(checkpoint, f)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)

    return AtomicCheckpointIO
