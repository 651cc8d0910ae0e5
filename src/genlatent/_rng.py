"""Every device's global random state, saved and restored together (exact resume).

A checkpoint that holds only ``torch.get_rng_state()`` resumes a CPU run exactly, but
on CUDA (or MPS) the draws a model makes from the device's own global generator, such as
dead-code restarts with no generator of their own, would start again from wherever the
new process seeded them. `rng_states` records the CPU state and the state of each
accelerator that is present; `restore_rng_states` sets back those it finds, and leaves a
device alone whose state the checkpoint lacks (a run moved from a CPU to a GPU).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["restore_rng_states", "rng_states"]


def _cuda() -> Any:
    """``torch.cuda`` where a GPU is present, else ``None``."""
    return torch.cuda if torch.cuda.is_available() else None


def _mps() -> Any:
    """``torch.mps`` where Apple's GPU is present, else ``None``."""
    backend = getattr(torch.backends, "mps", None)
    if backend is None or not backend.is_available():
        return None
    return getattr(torch, "mps", None)


def rng_states() -> dict[str, Any]:
    """``{"cpu": state, "cuda": [state per GPU], "mps": state}``, each where present.

    Example:
        >>> sorted(rng_states())  # on a machine with no accelerator
        ['cpu']
    """
    states: dict[str, Any] = {"cpu": torch.get_rng_state()}
    cuda = _cuda()
    if cuda is not None:
        states["cuda"] = cuda.get_rng_state_all()
    mps = _mps()
    if mps is not None:
        states["mps"] = mps.get_rng_state()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set back what `rng_states` recorded, for each device present here.

    Example:
        >>> saved = rng_states()
        >>> first = torch.rand(2)
        >>> restore_rng_states(saved)
        >>> torch.equal(torch.rand(2), first)
        True
    """
    torch.set_rng_state(states["cpu"].cpu())
    cuda, saved = _cuda(), states.get("cuda")
    if saved is not None and cuda is not None:  # as many GPUs as both runs have
        cuda.set_rng_state_all([state.cpu() for state in saved[: cuda.device_count()]])
    mps = _mps()
    if states.get("mps") is not None and mps is not None:
        mps.set_rng_state(states["mps"].cpu())
