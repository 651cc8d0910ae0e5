"""The run's optimisers: one Adam (and one gradient scaler) per parameter group.

A model that follows `genlatent.Model` trains one group of every parameter that requires
grad; one that follows `genlatent.MultiOptimizerModel` declares its groups, and each
gets its own Adam, scaler and start step (`genlatent.OptimizerGroup`). The training loop
steps them in order on every batch through `only_group`, which leaves the other groups'
parameters without gradients for that step.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genlatent._protocols import optimizer_groups

__all__ = [
    "GroupOptimizer",
    "adam",
    "build_optimizers",
    "load_optimizer_state",
    "only_group",
    "optimizer_state",
    "set_learning_rates",
]

_FUSED_DEVICES = ("cuda", "cpu")


@dataclass
class GroupOptimizer:
    """One parameter group's optimiser: what one step of the loop updates."""

    name: str | None
    """The group's name, passed to ``model.loss(x, group=name)``; ``None`` for a model
    with one optimiser (its loss is called without ``group``)."""
    parameters: list[nn.Parameter]
    """The parameters this optimiser steps (and clips)."""
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    start_step: int = 0
    """The first global step at which the group trains."""
    lr_factor: float = 1.0
    """Its learning rate as a multiple of the run's (and of the schedule's)."""

    def trains_at(self, step: int) -> bool:
        """Whether the group trains at global step ``step``."""
        return step >= self.start_step


def adam(
    parameters: Iterable[nn.Parameter],
    lr: float,
    device: torch.device,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """Adam: fused (one kernel for all parameters) on CPU and CUDA, torch's default elsewhere.

    The choice is made up front from the device. If torch still refuses fused Adam (a
    parameter dtype or device it does not support), the fallback to torch's default is
    announced with torch's reason (a `UserWarning`), never taken silently.
    """
    params = list(parameters)
    if device.type not in _FUSED_DEVICES:
        return torch.optim.Adam(params, lr=lr, betas=betas)  # foreach where torch supports it
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError) as error:
        warnings.warn(
            f"fused Adam is not available for this model on {device.type} ({error}); "
            "training with torch's default Adam instead (same updates, more kernel launches)",
            UserWarning,
            stacklevel=2,
        )
        return torch.optim.Adam(params, lr=lr, betas=betas)


def build_optimizers(
    model: nn.Module, lr: float, device: torch.device, precision: str
) -> list[GroupOptimizer]:
    """The optimisers of ``model``, in the order the loop steps them.

    One Adam over every parameter (a `Model`), or one per declared group (a
    `MultiOptimizerModel`: the group's ``lr_factor`` times ``lr``, its ``betas`` and
    ``start_step``). Each gets a gradient scaler, enabled for ``"fp16"``.
    """
    enabled = precision == "fp16"
    groups = optimizer_groups(model)
    if groups is None:
        optimizer = adam(model.parameters(), lr, device)
        parameters = [p for p in model.parameters() if p.requires_grad]
        scaler = torch.amp.GradScaler(device.type, enabled=enabled)
        return [GroupOptimizer(None, parameters, optimizer, scaler)]
    return [
        GroupOptimizer(
            name,
            list(group.parameters),
            adam(group.parameters, lr * group.lr_factor, device, group.betas),
            torch.amp.GradScaler(device.type, enabled=enabled),
            group.start_step,
            group.lr_factor,
        )
        for name, group in groups.items()
    ]


def set_learning_rates(optimizers: list[GroupOptimizer], lr: float) -> None:
    """Set each group's learning rate to ``lr`` (the schedule's, at this step) times its
    ``lr_factor``."""
    for group in optimizers:
        for settings in group.optimizer.param_groups:
            settings["lr"] = lr * group.lr_factor


@contextlib.contextmanager
def only_group(current: GroupOptimizer, optimizers: list[GroupOptimizer]) -> Iterator[None]:
    """Switch off ``requires_grad`` of the other groups' parameters meanwhile (Lightning's
    ``toggle_optimizer``): a group's backward pass computes no gradient it will not use."""
    if len(optimizers) == 1:
        yield
        return
    mine = {id(p) for p in current.parameters}
    others = [
        p
        for group in optimizers
        if group is not current
        for p in group.parameters
        if id(p) not in mine and p.requires_grad
    ]
    for parameter in others:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in others:
            parameter.requires_grad_(True)


def optimizer_state(optimizers: list[GroupOptimizer]) -> dict[str, Any]:
    """The checkpoint entries of every optimiser and scaler.

    One optimiser: ``optimizer`` and ``scaler`` (the layout of every earlier checkpoint);
    groups: ``optimizers`` and ``scalers``, by group name.
    """
    if len(optimizers) == 1 and optimizers[0].name is None:
        only = optimizers[0]
        return {"optimizer": only.optimizer.state_dict(), "scaler": only.scaler.state_dict()}
    return {
        "optimizers": {str(g.name): g.optimizer.state_dict() for g in optimizers},
        "scalers": {str(g.name): g.scaler.state_dict() for g in optimizers},
    }


def load_optimizer_state(optimizers: list[GroupOptimizer], state: dict[str, Any]) -> None:
    """Restore what `optimizer_state` saved.

    Raises:
        ValueError: if the checkpoint's groups are not the model's.
    """
    if len(optimizers) == 1 and optimizers[0].name is None:
        only = optimizers[0]
        only.optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state:
            only.scaler.load_state_dict(state["scaler"])
        return
    saved = state.get("optimizers", {})
    names = [str(g.name) for g in optimizers]
    if sorted(saved) != sorted(names):
        raise ValueError(
            f"the checkpoint holds the optimisers {sorted(saved)}, the model declares "
            f"{sorted(names)}: resume with the model the run trained"
        )
    for group in optimizers:
        group.optimizer.load_state_dict(saved[str(group.name)])
        group.scaler.load_state_dict(state["scalers"][str(group.name)])
