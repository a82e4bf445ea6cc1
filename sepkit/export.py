"""ONNX export of a separator's mask network, and the onnxruntime stage that runs it.

Only the mask estimation goes into the graph: magnitude ``(batch, channels, freq, frames)`` in,
masks ``(batch, targets, channels, freq, frames)`` out (complex masks as their real and imaginary
parts on a last axis of 2), with the batch and frames axes dynamic.
The STFT, iSTFT, resampling and overlap-add stay in the engine, so the torch and onnxruntime
backends share everything else. A JSON sidecar beside the ``.onnx`` file carries the separator's
description (rate, STFT, targets, the model config and training run).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sepkit.errors import SepkitError
from sepkit.separator import Separator, extend_masks

log = logging.getLogger(__name__)
OPSET = 18
INPUT, OUTPUT = "magnitude", "masks"
MAX_FRAMES = 1 << 15


class MaskStage(nn.Module):
    """The separator's :meth:`~sepkit.separator.Separator.estimate_masks` as a module of its own."""

    def __init__(self, separator: Separator) -> None:
        super().__init__()
        self.separator = separator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sep = self.separator
        if sep.extender is not None:
            # a learnt extension is the engine's, on the song's own grid (Separator.masks_at_rate):
            # it reads only the covered bins' masks, so the bins above take the edge rule here
            return extend_masks(sep.net(x[..., : sep.max_bins, :]), x.shape[-2], "edge")
        masks = sep.estimate_mask_parts(x)
        return masks.movedim(0, -1) if self.separator.complex_masks else masks  # (..., 2): real, imaginary


def sidecar_path(onnx_path: str | Path) -> Path:
    return Path(onnx_path).with_suffix(".json")


def export_onnx(separator: Separator, path: str | Path, overwrite: bool = False) -> Path:
    """Write the mask network of ``separator`` to ``path`` (ONNX, opset :data:`OPSET`) and its
    description to the JSON sidecar; refuses to replace existing files unless ``overwrite``."""
    path = Path(path)
    if reason := getattr(separator.net, "onnx_unsupported", None):
        raise SepkitError(
            f"{type(separator.net).__name__} cannot be exported to ONNX: {reason}; "
            "separate with the checkpoint itself (engine.backend=torch)"
        )
    sidecar = sidecar_path(path)
    existing = [p for p in (path, sidecar) if p.exists()]
    if existing and not overwrite:
        raise SepkitError(f"{existing[0]} already exists; pass overwrite=true to replace it")
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise SepkitError("ONNX export needs onnx and onnxscript: pip install 'sepkit[onnx]'") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = MaskStage(separator).eval().cpu()
    # the mask stage's own input (Separator.mask_input: magnitudes, or real and imaginary parts as
    # channels) for a batch of 2: torch.export would specialise an axis of size 1
    bins = separator.n_fft // 2 + 1
    spec = torch.randn(2, separator.audio_channels, bins, separator.patch_frames, dtype=torch.cfloat)
    example = separator.mask_input(spec)
    name = "spectrogram" if getattr(separator.net, "complex_input", False) else INPUT
    batch = torch.export.Dim("batch", min=1, max=1024)
    frames = torch.export.Dim("frames", min=2, max=MAX_FRAMES)
    tmp = path.with_name(f".{path.name}.partial")
    with torch.no_grad():
        torch.onnx.export(
            stage,
            (example,),
            str(tmp),
            dynamo=True,
            opset_version=OPSET,
            input_names=[name],
            output_names=[OUTPUT],
            dynamic_shapes={"x": {0: batch, 3: frames}},
            external_data=False,
            verbose=False,
        )
    description = {**separator.describe(), "run": (getattr(separator, "info", None) or {}).get("run", {})}
    description["onnx"] = {"opset": OPSET, "input": name, "output": OUTPUT, "dynamic_axes": ["batch", "frames"]}
    sidecar.write_text(json.dumps(description, indent=2, default=str))
    tmp.replace(path)
    log.info("wrote %s and %s", path, sidecar)
    return path


class OnnxMasks:
    """Masks from an exported network through onnxruntime, called like ``estimate_masks``.

    Args:
        path: the ``.onnx`` file written by :func:`export_onnx`.
        threads: intra-op threads (None: onnxruntime's default, one per core).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise SepkitError("engine.backend=onnxruntime needs onnxruntime: pip install 'sepkit[onnx]'") from None
        path = Path(path)
        if not path.is_file():
            raise SepkitError(f"{path} does not exist; write it with separate.py ckpt=... export=onnx")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise SepkitError(f"{path} is not a loadable ONNX model ({str(err).splitlines()[0][:200]})") from None
        self.input = self.session.get_inputs()[0].name  # magnitude, or spectrogram (Separator.mask_input)
        self.description: dict[str, Any] = {}
        if sidecar_path(path).is_file():
            self.description = json.loads(sidecar_path(path).read_text())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feed = {self.input: np.ascontiguousarray(x.detach().cpu().numpy())}
        masks = torch.from_numpy(self.session.run([OUTPUT], feed)[0])
        if masks.ndim == 6:  # complex masks: (..., 2) real and imaginary parts
            masks = torch.view_as_complex(masks.float().contiguous())
        return masks.to(x.device)
