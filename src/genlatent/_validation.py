"""Argument checks shared by every layer.

Each check raises ``TypeError`` or ``ValueError`` with the argument's name, what was
expected and what came, so a bad call fails at the public boundary rather than deep
inside a matmul.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "REDUCTIONS",
    "check_floating",
    "check_in_open_interval",
    "check_ndim",
    "check_positive_int",
    "check_reduction",
    "check_same_shape",
    "check_tensor",
]

REDUCTIONS = ("none", "sum", "mean")


def check_tensor(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a tensor, else raise ``TypeError`` naming ``name``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_floating(name: str, value: object) -> torch.Tensor:
    """Require a real floating-point tensor (float16, bfloat16, float32, float64)."""
    tensor = check_tensor(name, value)
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {tensor.dtype}")
    return tensor


def check_ndim(name: str, tensor: torch.Tensor, allowed: Sequence[int], layout: str) -> None:
    """Require ``tensor.ndim`` to be one of ``allowed``; ``layout`` names the expected axes."""
    if tensor.ndim not in allowed:
        raise ValueError(
            f"{name} must have shape {layout} ({' or '.join(map(str, allowed))} dims), "
            f"got shape {tuple(tensor.shape)}"
        )


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Require two tensors of one shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_reduction(reduction: object) -> str:
    """Require one of ``"none"``, ``"sum"``, ``"mean"``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_positive_int(name: str, value: object) -> int:
    """Require an ``int`` (not ``bool``) that is at least 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_in_open_interval(name: str, value: object, low: float, high: float) -> float:
    """Require a real number strictly between ``low`` and ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not low < value < high:
        raise ValueError(f"{name} must be in ({low}, {high}), got {value}")
    return float(value)
