"""Run under ``torchrun``: one replica's loss turns NaN; all must skip (or stop) together."""

import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from genlatent.train import NonFiniteLossError
from genlatent.train.distributed import setup_distributed
from genlatent.train.loop import LossModule, StepSettings, train_epoch


class _Loss(NamedTuple):
    loss: torch.Tensor
    square: torch.Tensor


class _NaNOnRank(nn.Module):
    """A linear model whose loss is NaN at the second call on rank ``rank``."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.rank, self.calls = rank, 0

    def loss(self, x: torch.Tensor) -> _Loss:
        self.calls += 1
        loss = self.linear(x).pow(2).mean()
        if self.rank == 1 and self.calls == 2:
            loss = loss * float("nan")
        return _Loss(loss, loss)


def main() -> None:
    out_dir = Path(sys.argv[1])
    torch.set_num_threads(1)
    group = setup_distributed("cpu")
    torch.manual_seed(0)
    model = _NaNOnRank(group.rank)
    replica = nn.parallel.DistributedDataParallel(LossModule(model))
    batches = [(torch.randn(8, 4, generator=torch.Generator().manual_seed(i)),) for i in range(4)]

    def run(skip: bool) -> dict:
        model.calls = 0
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        settings = StepSettings(torch.device("cpu"), skip_nonfinite=skip, rank=group.rank, world=2)
        try:
            result = train_epoch(
                replica, optimizer, batches, settings, epoch=1, show_progress=False
            )
        except NonFiniteLossError as error:
            return {"error": str(error)}
        return {"skipped": result.skipped_steps, "examples": result.examples}

    report = {"skip": run(skip=True)}
    report["weights"] = [p.detach().flatten().tolist() for p in model.parameters()]
    report["stop"] = run(skip=False)
    (out_dir / f"rank{group.rank}.json").write_text(json.dumps(report))
    torch.distributed.destroy_process_group()
    # Leave without tearing down the DDP reducer: after the stopped epoch, gloo's worker
    # thread can still hold a finished all-reduce whose release needs the GIL while the
    # reducer's destructor, holding the GIL, joins that thread (a torch teardown deadlock
    # seen once in CI under load). The report is written; nothing else is left to do.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":  # pytest's doctest collection imports this file
    main()
