"""Run under ``torchrun``: one replica's loss turns NaN; all must skip (or stop) together,
and the processes must then exit normally (no teardown deadlock)."""

import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from genlatent import fit
from genlatent.train import NonFiniteLossError


class _Loss(NamedTuple):
    loss: torch.Tensor
    square: torch.Tensor


class _NaNOnRank(nn.Module):
    """A linear model whose training loss is NaN at global step 2 on rank 1."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.rank = rank

    def loss(self, x: torch.Tensor, step: int | None = None) -> _Loss:
        loss = self.linear(x.flatten(1)).pow(2).mean()
        if self.training and self.rank == 1 and step == 2:
            loss = loss * float("nan")
        return _Loss(loss, loss)


def main() -> None:
    out_dir = Path(sys.argv[1])  # argv[2]: "skip" or "stop"
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    images = torch.rand(32, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    quiet = {"show_progress": False, "log": lambda line: None, "device": "cpu"}

    def run(name: str, skip: bool) -> dict:
        torch.manual_seed(0)
        model = _NaNOnRank(rank)
        try:  # 2 steps of 16 (8 a process) per epoch
            fit(
                model, images, run_dir=out_dir / name, epochs=2, batch_size=16, lr=0.1,
                skip_nonfinite=skip, **quiet,
            )  # fmt: skip
        except NonFiniteLossError as error:
            return {"error": str(error)}
        lines = (out_dir / name / "metrics.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        return {
            "skipped": [r["skipped_steps"] for r in records],
            "examples": [r["train_examples"] for r in records],
            "weights": [p.detach().flatten().tolist() for p in model.parameters()],
        }

    # one run a job: fit joins the process group torchrun describes and leaves it
    mode = sys.argv[2]
    report = run(mode, skip=mode == "skip")
    (out_dir / f"{mode}{rank}.json").write_text(json.dumps(report))
    # and leave as any script does: fit has torn the process group down itself


if __name__ == "__main__":  # pytest's doctest collection imports this file
    main()
