"""MindFormers' warm-up learning-rate schedules as plain Python, for the PyTorch training path.

The formulas are those of ``mindformers.core.lr.lr_schedule`` (MindFormers 1.9) ``CosineWithWarmUpLR``
and ``LinearWithWarmUpLR``; ``tests/research/train/test_torch_lr_schedule.py`` compares them with MindFormers' own
cells step by step. Evaluating those cells directly costs ~75 ms a step in PyNative mode, too slow
to tabulate a long run. MindFormers feeds the schedule the optimizer's global step *before* the
update, so step ``k`` (1-based, as in ``loss.jsonl``) trains with ``lr(k - 1)``.
"""

from __future__ import annotations

import math
from typing import Callable

__all__ = ["mindformers_lr", "SUPPORTED"]

SUPPORTED = ("CosineWithWarmUpLR", "LinearWithWarmUpLR")


def _steps(steps, ratio, total_steps: int, phase: str) -> int:
    if ratio is None:
        steps = int(steps or 0)
        if steps < 0:
            raise ValueError(f"lr_schedule.{phase}_steps must be >= 0, got {steps}")
        return steps
    if not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"lr_schedule.{phase}_ratio must be in [0, 1], got {ratio}")
    return int(total_steps * float(ratio))


def mindformers_lr(lr_schedule: dict, total_steps: int) -> Callable[[int], float]:
    """The learning rate as a function of MindFormers' 0-based global step.

    Args:
        lr_schedule: the YAML's ``lr_schedule`` mapping (``type``, ``learning_rate``, ``warmup_steps``
            or ``warmup_ratio``, ``lr_end``, ``warmup_lr_init``, ``num_cycles``, ``decay_steps`` or
            ``decay_ratio``). Its ``total_steps`` is used unless it is -1/None.
        total_steps: the run's steps (epochs x steps per epoch, or ``stop_step``), used for -1.

    Returns:
        ``lr(global_step) -> float``.

    Raises:
        ValueError: an unsupported ``type`` (the message lists ``SUPPORTED``) or bad ratios.
    """
    kind = lr_schedule.get("type")
    if kind not in SUPPORTED:
        raise ValueError(f"lr_schedule.type {kind!r} is not supported by the torch path; supported: {SUPPORTED}")
    total = lr_schedule.get("total_steps")
    total = int(total_steps if total in (None, -1) else total)
    base = float(lr_schedule["learning_rate"])
    warmup_init = float(lr_schedule.get("warmup_lr_init", 0.0))
    warmup = _steps(lr_schedule.get("warmup_steps"), lr_schedule.get("warmup_ratio"), total, "warmup")

    def warming(step: int) -> float | None:
        if warmup and step < warmup:
            return warmup_init + (base - warmup_init) * step / warmup
        return None

    if kind == "LinearWithWarmUpLR":
        linear_steps = max(1, total - warmup)

        def linear(step: int) -> float:
            value = warming(step)
            return value if value is not None else base * max(0.0, (total - step) / linear_steps)

        return linear

    lr_end = float(lr_schedule.get("lr_end", 0.0))
    cycles = float(lr_schedule.get("num_cycles", 0.5))
    cosine_steps = max(1, total - warmup)
    decay = lr_schedule.get("decay_steps")
    decay = max(1, int(decay)) if decay is not None else max(1, total)
    decay = _steps(decay, lr_schedule.get("decay_ratio"), total, "decay")

    def cosine(step: int) -> float:
        if step >= decay:
            return lr_end
        value = warming(step)
        if value is not None:
            return value
        progress = (step - warmup) / cosine_steps
        return lr_end + (base - lr_end) * max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))

    return cosine
