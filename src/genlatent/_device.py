"""Where a module lives, and where its generators live: one rule for every layer."""

from __future__ import annotations

import itertools

import torch

__all__ = ["module_device", "seeded_generator"]


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


def seeded_generator(device: torch.device | str, seed: int) -> torch.Generator:
    """A generator seeded ``seed`` on ``device``: the one rule for where generators live.

    A generator lives on the device of the tensors it draws (PyTorch refuses a CPU
    generator for a draw on CUDA): a model's noise, sampling and a quantizer's dead-code
    restarts all draw on the model's device, so their generators are made there.

    Example:
        >>> seeded_generator("cpu", 0).device
        device(type='cpu')
    """
    return torch.Generator(device=device).manual_seed(seed)
