"""VectorQuantizer under torch.distributed: replicas keep identical codebooks."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genlatent.nn.quantize import VectorQuantizer

WORLD_SIZE = 2
STEPS = 3
ROWS_PER_RANK = 6
FAR = torch.full((4, 3), 100.0) + torch.arange(4.0)[:, None]


def _batches() -> torch.Tensor:
    """(STEPS, WORLD_SIZE, ROWS_PER_RANK, 3): each rank gets different data each step."""
    return torch.randn(
        STEPS, WORLD_SIZE, ROWS_PER_RANK, 3, generator=torch.Generator().manual_seed(7)
    )


def _quantizers() -> dict[str, VectorQuantizer]:
    start = torch.cat([torch.randn(4, 3, generator=torch.Generator().manual_seed(3)), FAR])
    made = {
        "ema": VectorQuantizer(8, 3, ema=True),
        "ema_corrected": VectorQuantizer(8, 3, ema=True, bias_correction=True),
        "ema_restart": VectorQuantizer(8, 3, ema=True, restart_dead_codes=1),
        "learnable_restart": VectorQuantizer(8, 3, restart_dead_codes=1),
    }
    with torch.no_grad():
        for quantizer in made.values():
            quantizer.codebook.copy_(start)
            if quantizer.ema and not quantizer.bias_correction:
                quantizer.embed_sum.copy_(start)
    return made


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        torch.set_num_threads(1)
        torch.manual_seed(100 + rank)  # replicas draw different re-seeds unless broadcast
        quantizers = _quantizers()
        batches = _batches()
        first_restart = {}
        for step in range(STEPS):
            for name, quantizer in quantizers.items():
                quantizer(batches[step, rank])
                if step == 0:
                    first_restart[name] = quantizer.codebook.detach().clone()
        state = {name: q.state_dict() for name, q in quantizers.items()}
        torch.save({"state": state, "first": first_restart}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_replicas_keep_identical_codebooks(tmp_path, spawnable):
    mp.spawn(
        spawnable(_worker),
        args=(str(tmp_path / "rendezvous"), str(tmp_path)),
        nprocs=WORLD_SIZE,
        join=True,
    )
    results = [torch.load(tmp_path / f"{rank}.pt") for rank in range(WORLD_SIZE)]
    for name in results[0]["state"]:
        for key, value in results[0]["state"][name].items():
            if key == "usage_counts":  # per process by design
                continue
            assert torch.equal(results[1]["state"][name][key], value), (name, key)

    # the EMA replicas equal one process that sees the concatenated batch
    reference = _quantizers()
    batches = _batches()
    for step in range(STEPS):
        for name in ("ema", "ema_corrected"):
            reference[name](batches[step].reshape(-1, 3))
    for name in ("ema", "ema_corrected"):
        for key in ("codebook", "cluster_size", "embed_sum"):
            torch.testing.assert_close(
                results[0]["state"][name][key], reference[name].state_dict()[key]
            )

    # dead codes were re-seeded from rank 0's batch, broadcast to rank 1
    for name in ("ema_restart", "learnable_restart"):
        revived = results[0]["first"][name][4:]
        on_rank0 = (revived[:, None, :] == batches[0, 0][None]).all(dim=2).any(dim=1)
        assert on_rank0.all(), name
        assert torch.equal(results[1]["first"][name], results[0]["first"][name])
