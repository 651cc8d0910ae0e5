"""Where a module lives: the one way every layer reads a module's device."""

from __future__ import annotations

import itertools

import torch

__all__ = ["module_device"]


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter, else of its first buffer.

    A module with buffers but no parameters (a frozen statistics holder) has a device
    too; a module with neither has none, and this says so.

    Raises:
        ValueError: if ``module`` has no parameter and no buffer.

    Example:
        >>> import torch
        >>> module_device(torch.nn.Linear(2, 2))
        device(type='cpu')
        >>> module_device(torch.nn.BatchNorm1d(2, affine=False))  # buffers only
        device(type='cpu')
    """
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    raise ValueError(
        f"cannot tell the device of {type(module).__name__}: it has no parameter and no "
        "buffer (pass a module that holds at least one tensor)"
    )
