"""FSQ, LFQ and their compositions under DDP (gloo, 2 processes) equal one process.

Each rank trains a DDP replica on its half of every global batch; one process trains the
same model on the whole batches. FSQ has no state and a per-element loss; LFQ's entropy
term depends on the batch's mean code distribution, which it all-reduces in training,
so both replicas must end with the single process's weights (to float tolerance). A
`ResidualQuantizer` of FSQ stages with quantize dropout (rank 0's draws broadcast, the
same seed as the single process) and a `GroupedQuantizer` of LFQ groups follow suit.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from genlatent.nn.fsq import FSQ
from genlatent.nn.grouped import GroupedQuantizer
from genlatent.nn.lfq import LFQ
from genlatent.nn.residual_quantizer import ResidualQuantizer

WORLD_SIZE = 2
STEPS = 3
ROWS_PER_RANK = 8
DIM = 6


def _batches() -> torch.Tensor:
    """(STEPS, WORLD_SIZE * ROWS_PER_RANK, DIM): the global batches."""
    g = torch.Generator().manual_seed(11)
    return torch.randn(STEPS, WORLD_SIZE * ROWS_PER_RANK, DIM, generator=g)


def _quantizers() -> dict[str, nn.Module]:
    torch.manual_seed(5)
    quantizers: dict[str, nn.Module] = {
        "fsq": FSQ([5, 4, 3], dim=DIM, channel_last=True),
        # a high entropy weight and a soft temperature: the batch term dominates the step
        "lfq": LFQ(16, dim=DIM, entropy_weight=1.0, temperature=1.0, channel_last=True),
        "residual_fsq": ResidualQuantizer(
            [FSQ([5, 4, 3], dim=DIM, channel_last=True) for _ in range(3)], quantize_dropout=0.5
        ),
        "grouped_lfq": GroupedQuantizer(
            [
                LFQ(16, dim=3, entropy_weight=1.0, temperature=1.0, channel_last=True)
                for _ in range(2)
            ]
        ),
    }
    quantizers["residual_fsq"].generator = torch.Generator().manual_seed(3)
    return quantizers


def _train(quantizer: nn.Module, batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    optimizer = torch.optim.SGD(quantizer.parameters(), lr=0.5)
    for x in batches:
        out = quantizer(x)
        loss = out.loss + out.quantized.square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module = (
        quantizer.module
        if isinstance(quantizer, nn.parallel.DistributedDataParallel)
        else quantizer
    )
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE,
        timeout=datetime.timedelta(seconds=60),
    )  # fmt: skip
    try:
        torch.set_num_threads(1)
        shards = [batch[rank::WORLD_SIZE] for batch in _batches()]
        states = {
            name: _train(nn.parallel.DistributedDataParallel(quantizer), shards)
            for name, quantizer in _quantizers().items()
        }
        torch.save(states, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_fsq_and_lfq_replicas_train_as_one_process_on_the_whole_batches(tmp_path, spawnable):
    mp.spawn(
        spawnable(_worker), args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=WORLD_SIZE,
        join=True,
    )  # fmt: skip
    replicas = [torch.load(tmp_path / f"{rank}.pt") for rank in range(WORLD_SIZE)]
    whole = {name: _train(q, list(_batches())) for name, q in _quantizers().items()}
    initial = _quantizers()
    for name, reference in whole.items():
        for key, value in reference.items():
            assert torch.equal(replicas[0][name][key], replicas[1][name][key]), (name, key)
            torch.testing.assert_close(replicas[0][name][key], value, msg=f"{name} {key}")
            # the steps moved the weights, so the comparison says something
            assert not torch.allclose(value, initial[name].state_dict()[key]), (name, key)


def test_lfq_with_a_local_batch_entropy_would_differ_from_one_process():
    """The all-reduce matters: the mean of per-shard entropy losses is not the whole batch's."""
    lfq = _quantizers()["lfq"]
    x = _batches()[0]
    whole = lfq(x).terms["entropy"]
    halves = (lfq(x[0::2]).terms["entropy"] + lfq(x[1::2]).terms["entropy"]) / 2
    assert not torch.allclose(whole, halves, rtol=1e-3)
