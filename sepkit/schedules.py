"""Learning-rate schedules that follow a run's budget.

A run bounded by ``trainer.max_time`` does not know its number of steps in advance, so a cosine
schedule over steps cannot be set up front. :class:`BudgetCosine` measures progress as the larger
of the step fraction (``trainer.max_steps``) and the wall-clock fraction (``trainer.max_time``),
and anneals over whichever budget ends first.
"""

from __future__ import annotations

import math
import time

import torch

from sepkit.errors import SepkitError


def parse_duration(value: str | dict | None) -> float | None:
    """Seconds of a Lightning ``max_time`` (``"DD:HH:MM:SS"`` or a timedelta dict); None if unset."""
    if value in (None, "", "null"):
        return None
    if isinstance(value, dict):
        keys = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
        return float(sum(keys[k] * float(v) for k, v in value.items()))
    parts = str(value).split(":")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise SepkitError(f"trainer.max_time={value!r} must be DD:HH:MM:SS")
    days, hours, minutes, seconds = (int(p) for p in parts)
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


class BudgetCosine(torch.optim.lr_scheduler.LambdaLR):
    """Linear warm-up, then cosine decay to ``final`` × the base rate, over the run's budget.

    Args:
        optimizer: the optimiser.
        max_steps: the run's step budget (``trainer.max_steps``; -1 or None: none).
        max_time: the run's time budget (``trainer.max_time``; None: none).
        warmup: share of the budget spent warming up.
        final: last learning rate as a fraction of the base rate.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_steps: int | None = None,
        max_time: str | dict | None = None,
        warmup: float = 0.05,
        final: float = 0.05,
    ) -> None:
        self.total_steps = max_steps if max_steps and max_steps > 0 else None
        self.total_seconds = parse_duration(max_time)
        if self.total_steps is None and self.total_seconds is None:
            raise SepkitError(
                "scheduler=budget_cosine needs a budget: set trainer.max_steps=N or trainer.max_time=DD:HH:MM:SS"
            )
        if not 0.0 <= warmup < 1.0 or not 0.0 <= final <= 1.0:
            raise SepkitError(f"budget_cosine: warmup={warmup} must be in [0, 1) and final={final} in [0, 1]")
        self.warmup = warmup
        self.final = final
        self.start = time.monotonic()
        super().__init__(optimizer, self.factor)

    def progress(self, step: int) -> float:
        """Share of the budget used, in [0, 1]."""
        shares = []
        if self.total_steps:
            shares.append(step / self.total_steps)
        if self.total_seconds:
            shares.append((time.monotonic() - self.start) / self.total_seconds)
        return min(1.0, max(shares))

    def factor(self, step: int) -> float:
        done = self.progress(step)
        if done < self.warmup:
            return max(done / self.warmup, 1e-3)
        rest = (done - self.warmup) / (1.0 - self.warmup)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * rest))
