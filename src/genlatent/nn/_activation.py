"""Activation factories shared by the building blocks."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

from torch import nn

__all__ = ["ACTIVATIONS", "ActivationSpec", "check_activation", "make_activation"]

ActivationSpec = str | nn.Module | Callable[[], nn.Module] | None

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "leaky_relu": functools.partial(nn.LeakyReLU, 0.2),
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
"""The activations a name gives: ``"leaky_relu"`` is the tutorial's ``LeakyReLU(0.2)``."""


def check_activation(activation: object) -> ActivationSpec:
    """Return ``activation`` if it is a known name, a module, a callable or ``None``.

    Raises:
        ValueError: on an unknown name.
        TypeError: on anything else.
    """
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        return activation
    if activation is None or isinstance(activation, nn.Module) or callable(activation):
        return activation
    raise TypeError(
        "activation must be an nn.Module, a callable returning one (such as an nn.Module "
        f"class), one of the names {tuple(ACTIVATIONS)}, or None, got {type(activation).__name__}"
    )


def make_activation(activation: ActivationSpec) -> nn.Module:
    """Return a fresh activation module.

    A name (one of `ACTIVATIONS`) gives its module, and ``None`` the tutorial's
    ``LeakyReLU(0.2)``; a module is copied (so each layer owns its own, as ``nn.PReLU``
    needs); anything else (an ``nn.Module`` class, a function) is called with no arguments.
    Names and classes can be saved by ``save_pretrained``; modules and functions cannot.
    """
    activation = check_activation(activation)
    if activation is None:
        activation = "leaky_relu"
    if isinstance(activation, str):
        return ACTIVATIONS[activation]()
    if isinstance(activation, nn.Module):
        return copy.deepcopy(activation)
    module = activation()
    if not isinstance(module, nn.Module):
        raise TypeError(
            "activation must be an nn.Module or a callable returning one, "
            f"got a callable returning {type(module).__name__}"
        )
    return module
