"""Run under ``torchrun``: one replica's loss turns NaN; all must skip (or stop) together."""

import json
import sys
from pathlib import Path

import torch
from torch import nn

from genlatent.train import NonFiniteLossError, StepLoss, train_epoch
from genlatent.train.distributed import setup_distributed


def main() -> None:
    out_dir = Path(sys.argv[1])
    torch.set_num_threads(1)
    group = setup_distributed("cpu")
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    replica = nn.parallel.DistributedDataParallel(model)
    batches = [(torch.randn(8, 4, generator=torch.Generator().manual_seed(i)),) for i in range(4)]
    calls = {"n": 0}

    def objective(module, x, generator):
        calls["n"] += 1
        loss = module(x).pow(2).mean()
        if group.rank == 1 and calls["n"] == 2:
            loss = loss * float("nan")
        return StepLoss(loss, {"square": loss})

    def run(skip: bool) -> dict:
        calls["n"] = 0
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        kwargs = {"epoch": 1, "device": torch.device("cpu"), "rank": group.rank, "world": 2}
        try:
            result = train_epoch(
                replica, optimizer, batches, objective, skip_nonfinite=skip,
                show_progress=False, **kwargs,
            )  # fmt: skip
        except NonFiniteLossError as error:
            return {"error": str(error)}
        return {"skipped": result.skipped_steps, "examples": result.examples}

    report = {"skip": run(skip=True)}
    report["weights"] = [p.detach().flatten().tolist() for p in model.parameters()]
    report["stop"] = run(skip=False)
    (out_dir / f"rank{group.rank}.json").write_text(json.dumps(report))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":  # pytest's doctest collection imports this file
    main()
