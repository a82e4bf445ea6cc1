"""Metric names (defined once here) and the SI-SDR used by training, evaluation and benchmarks."""

from __future__ import annotations

import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

TRAIN_LOSS = "train/loss"
VAL_LOSS = "val/loss"
VAL_SI_SDR = "val/si_sdr"
SI_SDR = "si_sdr"
SI_SDRI = "si_sdri"


def metric_key(stage: str, target: str, metric: str) -> str:
    """Per-target key such as ``val/vocals/si_sdr``."""
    return f"{stage}/{target}/{metric}"


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """SI-SDR in dB over the last axis (zero-mean, torchmetrics), one value per leading index."""
    return scale_invariant_signal_distortion_ratio(estimate, reference, zero_mean=True)
