"""ResidualVQ under torch.distributed (gloo, 2 processes): replicas keep identical stages.

Covers EMA stages, quantize dropout (rank 0's draw), a shared codebook with dead-code
restarts, and k-means initialisation (rank 0's seeds, all-reduced Lloyd steps).
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genlatent.nn.residual import ResidualVQ

WORLD_SIZE = 2
STEPS = 4
ROWS_PER_RANK = 6


def _batches() -> torch.Tensor:
    """(STEPS, WORLD_SIZE, ROWS_PER_RANK, 3): each rank gets different data each step."""
    return torch.randn(
        STEPS, WORLD_SIZE, ROWS_PER_RANK, 3, generator=torch.Generator().manual_seed(7)
    )


def _quantizers() -> dict[str, ResidualVQ]:
    made = {
        "ema": ResidualVQ(3, 6, 3, ema=True),
        "ema_dropout": ResidualVQ(3, 6, 3, ema=True, quantize_dropout=True),
        "shared_restart": ResidualVQ(3, 6, 3, ema=True, shared_codebook=True, restart_dead_codes=1),
        # k-means seeds drawn from the global RNG, different per rank unless broadcast;
        # 16 codes for 6 rows a rank: codes no row chooses keep their (rank 0's) seeds
        "kmeans": ResidualVQ(2, 16, 3, ema=True, init="kmeans"),
    }
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for quantizer in made.values():
            for index, stage in enumerate(quantizer.stages):
                stage.codebook.copy_(torch.randn(stage.codebook.shape, generator=g) * 0.5**index)
                stage.embed_sum.copy_(stage.codebook)
    return made


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=datetime.timedelta(seconds=60),  # a mismatched collective fails, not hangs
    )
    try:
        torch.set_num_threads(1)
        torch.manual_seed(100 + rank)  # replicas draw different re-seeds unless broadcast
        quantizers = _quantizers()
        # and different stage counts, unless rank 0's draw is broadcast
        quantizers["ema_dropout"].generator = torch.Generator().manual_seed(200 + rank)
        batches = _batches()
        active = []
        for step in range(STEPS):
            for name, quantizer in quantizers.items():
                out = quantizer(batches[step, rank].clone().requires_grad_())
                if name == "ema_dropout":
                    active.append(int((out.indices[0] >= 0).sum()))
        state = {name: q.state_dict() for name, q in quantizers.items()}
        torch.save({"state": state, "active": active}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_residual_vq_replicas_keep_identical_stages(tmp_path, spawnable):
    mp.spawn(
        spawnable(_worker),
        args=(str(tmp_path / "rendezvous"), str(tmp_path)),
        nprocs=WORLD_SIZE,
        join=True,
    )
    results = [torch.load(tmp_path / f"{rank}.pt") for rank in range(WORLD_SIZE)]
    assert all(bool(v) for k, v in results[0]["state"]["kmeans"].items() if "initialized" in k)
    for name, state in results[0]["state"].items():
        assert state.keys() == results[1]["state"][name].keys()
        for key, value in state.items():
            assert torch.equal(results[1]["state"][name][key], value), (name, key)

    # quantize dropout: rank 0 drew the stage counts (its seed) and both ran them
    assert results[0]["active"] == results[1]["active"]
    rank0 = torch.Generator().manual_seed(200)
    drawn = [int(torch.randint(1, 4, (1,), generator=rank0)) for _ in range(STEPS)]
    assert results[0]["active"] == drawn
    rank1 = torch.Generator().manual_seed(201)
    assert drawn != [int(torch.randint(1, 4, (1,), generator=rank1)) for _ in range(STEPS)]

    # every stage's EMA equals one process that sees the concatenated batch
    reference = _quantizers()["ema"]
    batches = _batches()
    for step in range(STEPS):
        reference(batches[step].reshape(-1, 3).requires_grad_())
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(results[0]["state"]["ema"][key], value, msg=key)
