"""The learning-rate schedule: a pure function of the global step, set before each step.

The rate of step $s$ (the optimizer's $s$-th step, counted from 1) depends on $s$ alone,
so a resumed run takes up the schedule from its checkpoint's step count, with nothing else
to save; a run with several optimizers sets each to this rate times its group's
``lr_factor`` (`genlatent.train.optimizers.set_learning_rates`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genlatent._validation import check_choice, check_positive_float

__all__ = ["LR_SCHEDULES", "LRSchedule"]

LR_SCHEDULES = ("constant", "cosine")
"""The schedules `LRSchedule` knows."""


@dataclass(frozen=True)
class LRSchedule:
    """A linear warm-up, then a constant rate or a cosine decay to zero at ``total_steps``.

    For step $s \\ge 1$, warm-up $W$, total $T$ and base rate $\\eta$:

    $$\\eta_s = \\eta \\frac{s}{W} \\quad (s \\le W), \\qquad
      \\eta_s = \\eta \\cdot \\tfrac{1}{2}\\left(1 + \\cos \\pi \\frac{s - W}{T - W}\\right)
      \\quad (s > W, \\text{cosine})$$

    and $\\eta_s = \\eta$ after the warm-up with ``"constant"``. The cosine reaches 0 at
    $s = T$, the run's last step (Loshchilov and Hutter 2017, SGDR, without restarts), and
    stays at 0 beyond it.

    Args:
        lr: the base rate $\\eta$.
        kind: ``"constant"`` or ``"cosine"``.
        warmup_steps: $W$, steps of linear warm-up (0: none).
        total_steps: $T$, the run's last step; needed by ``"cosine"`` only.

    Raises:
        ValueError: on an unknown ``kind``, a negative ``warmup_steps``, or a cosine
            schedule whose ``total_steps`` is missing or not above ``warmup_steps``.

    Example:
        >>> schedule = LRSchedule(1.0, "cosine", warmup_steps=2, total_steps=4)
        >>> [schedule.lr_at(s) for s in (1, 2, 3, 4)]
        [0.5, 1.0, 0.5, 0.0]
    """

    lr: float
    kind: str = "constant"
    warmup_steps: int = 0
    total_steps: int | None = None

    def __post_init__(self) -> None:
        check_positive_float("lr", self.lr)
        check_choice("lr_schedule", self.kind, LR_SCHEDULES)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int):
            raise TypeError(
                f"lr_warmup_steps must be an int, got {type(self.warmup_steps).__name__}"
            )
        if self.warmup_steps < 0:
            raise ValueError(f"lr_warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.kind == "cosine" and (
            self.total_steps is None or self.total_steps <= self.warmup_steps
        ):
            raise ValueError(
                f"lr_schedule='cosine' decays to 0 at the run's last step, which must come after "
                f"the {self.warmup_steps} warm-up steps; got a run of {self.total_steps} steps "
                "(give max_steps, or epochs of data with a length)"
            )

    def lr_at(self, step: int) -> float:
        """The rate of step ``step`` (1 for the first step)."""
        if step <= self.warmup_steps:
            return self.lr * step / self.warmup_steps
        if self.kind == "constant":
            return self.lr
        total = self.total_steps if self.total_steps is not None else step
        progress = min((step - self.warmup_steps) / (total - self.warmup_steps), 1.0)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
