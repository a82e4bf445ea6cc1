"""Callbacks of sepkit's own (everything else comes from Lightning)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class BestMetrics(L.Callback):
    """Remember every validation metric of the epoch where ``monitor`` was best.

    Args:
        monitor: metric key that decides "best".
        mode: ``max`` or ``min``.
    """

    def __init__(self, monitor: str, mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.best: dict[str, float] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        old = self.best.get(self.monitor)
        if old is None or (value > old if self.mode == "max" else value < old):
            self.best = {
                k: float(v)
                for k, v in trainer.callback_metrics.items()
                if isinstance(v, torch.Tensor) and v.numel() == 1
            }
            self.best["epoch"] = trainer.current_epoch
            self.best["step"] = trainer.global_step

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict.get("best", {}))
