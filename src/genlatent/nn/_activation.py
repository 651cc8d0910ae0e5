"""Activation factories shared by the building blocks."""

from __future__ import annotations

import copy
from collections.abc import Callable

from torch import nn

__all__ = ["ActivationSpec", "make_activation"]

ActivationSpec = nn.Module | Callable[[], nn.Module] | None


def make_activation(activation: ActivationSpec) -> nn.Module:
    """Return a fresh activation module.

    ``None`` gives the tutorial's ``LeakyReLU(0.2)``; a module is copied (so each layer owns
    its own, as ``nn.PReLU`` needs); anything else is called with no arguments.
    """
    if activation is None:
        return nn.LeakyReLU(0.2)
    if isinstance(activation, nn.Module):
        return copy.deepcopy(activation)
    if callable(activation):
        module = activation()
        if not isinstance(module, nn.Module):
            raise TypeError(
                "activation must be an nn.Module or a callable returning one, "
                f"got a callable returning {type(module).__name__}"
            )
        return module
    raise TypeError(
        f"activation must be an nn.Module, a callable returning one, or None, "
        f"got {type(activation).__name__}"
    )
