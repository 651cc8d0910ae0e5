"""Multi-process training under ``torchrun`` with DistributedDataParallel."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["ProcessGroup", "setup_distributed"]


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the job: ``rank`` of ``world`` (1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run directory."""
        return self.rank == 0


def setup_distributed(device_type: str) -> ProcessGroup:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    gloo on CPU, NCCL on CUDA. Without ``WORLD_SIZE`` > 1 this does nothing.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return ProcessGroup()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    return ProcessGroup(dist.get_rank(), dist.get_world_size(), local_rank)
