"""Whether this process shares its training step with other replicas (DDP under torchrun)."""

from __future__ import annotations

import torch.distributed as dist

__all__ = ["replicated"]


def replicated() -> bool:
    """True when ``torch.distributed`` is initialised with more than one process.

    The quantizers all-reduce their statistics (and broadcast their random draws) only
    then: with one process an all-reduce is the identity, so it is skipped.
    """
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
