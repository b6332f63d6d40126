"""Hyperparameter schedules as functions of training progress in [0, 1]."""
from __future__ import annotations

SCHEDULES = ("constant", "linear")


def scheduled(initial: float, kind: str, progress: float, final: float = 0.0) -> float:
    """``constant``: initial. ``linear``: initial -> final as progress goes 0 -> 1."""
    if kind == "constant":
        return initial
    if kind == "linear":
        p = min(max(progress, 0.0), 1.0)
        return initial + (final - initial) * p
    raise ValueError(f"unknown schedule {kind!r}; valid: {', '.join(SCHEDULES)}")


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
