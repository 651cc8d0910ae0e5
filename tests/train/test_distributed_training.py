"""The trainer under torchrun: 2 CPU processes (gloo) stay identical replicas and train
as one process on the whole batches."""

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from genlatent import VAE, fit
from genlatent.train import train

WORKER = Path(__file__).with_name("_ddp_worker.py")
NONFINITE_WORKER = Path(__file__).with_name("_ddp_nonfinite_worker.py")
ACCUMULATION_WORKER = Path(__file__).with_name("_ddp_accumulation_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(script: Path, *args: Path | str, timeout: float = 300) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        str(script), *map(str, args),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # a session of its own: a job that outlives the timeout is killed whole, workers too
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    ) as job:  # fmt: skip
        try:
            _, stderr = job.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
            job.communicate()
            raise
    assert job.returncode == 0, stderr[-3000:]


def test_two_process_training_keeps_replicas_identical(tmp_path):
    run_dir, out_dir = tmp_path / "run", tmp_path / "weights"
    out_dir.mkdir()
    _torchrun(WORKER, run_dir, out_dir)

    first = torch.load(out_dir / "rank0.pt", weights_only=True)
    second = torch.load(out_dir / "rank1.pt", weights_only=True)
    assert first.keys() == second.keys()
    assert "quantizer.codebook" in first
    assert "quantizer.cluster_size" in first
    # every weight and buffer is shared: code usage is no state, the trainer sums counts
    for name in first:
        assert torch.equal(first[name], second[name]), name
    # rank 0 wrote the run, with the whole training set seen per epoch across both ranks
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["train_examples"] == 1500  # digits: 1,797 images, the last 297 test
    # code usage is reported (from the counts the trainer all-reduces over both ranks)
    assert 0 < records[-1]["train_codes_used"] <= 1
    assert 1 <= records[-1]["train_usage_perplexity"] <= 32
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert saved.keys() == first.keys()
    for name in first:
        assert torch.equal(saved[name], first[name]), name
    # only rank 0 tracks: one writer's event file, one point per evaluation
    (events,) = (run_dir / "tensorboard").iterdir()
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert [p.value for p in accumulator.Scalars("epoch")] == [1, 2]


def test_a_nan_on_one_replica_is_skipped_or_stops_on_all_and_both_exit(tmp_path):
    """Through `fit`, one torchrun job each: skipped together, then stopped together by
    `NonFiniteLossError` on both ranks, after which the processes leave normally. A
    teardown that deadlocks (the process group destroyed while the stopped run's DDP
    reducer still holds it) would hang here: the subprocess timeout fails the test."""
    for mode in ("skip", "stop"):
        _torchrun(NONFINITE_WORKER, tmp_path, mode, timeout=120)
    skipped = [json.loads((tmp_path / f"skip{r}.json").read_text()) for r in (0, 1)]
    for report in skipped:
        # step 2 (the last of epoch 1) skipped on both ranks: 16 examples in epoch 1
        assert report["skipped"] == [1, 0]
        assert report["examples"] == [16, 32]
    assert skipped[0]["weights"] == skipped[1]["weights"]
    for rank in (0, 1):
        stopped = json.loads((tmp_path / f"stop{rank}.json").read_text())
        assert stopped["error"].startswith("non-finite loss at epoch 1, step 2: loss")


EQUIVALENCE_WORKER = Path(__file__).with_name("_ddp_equivalence_worker.py")


class _Loss(NamedTuple):
    loss: torch.Tensor


class _PerShardNoise(torch.nn.Module):
    """One process, whole batches, with each half's noise drawn as its replica draws it.

    Under DDP with 2 ranks, rank r computes the VAE loss of ``x[r::2]`` with noise from
    its own generator (seeded ``seed + 1 + r``); this loss is the mean of those two
    shard losses, drawn from the same two generators in the same order.
    """

    def __init__(self, vae: VAE, seed: int) -> None:
        super().__init__()
        self.vae = vae
        self.generators = [torch.Generator().manual_seed(seed + 1 + r) for r in range(2)]

    def loss(self, x: torch.Tensor) -> _Loss:
        shards = [self.vae.loss(x[r::2], generator=g).loss for r, g in enumerate(self.generators)]
        return _Loss((shards[0] + shards[1]) / 2)


def _last(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


def _assert_same_training(got: dict, want: dict) -> None:
    """Weights, buffers (the EMA codebook and statistics) and Adam's moments agree.

    Adam's update is almost invariant to the scale of the gradient, but its moments are
    not: exp_avg and exp_avg_sq would be 2x and 4x if the replicas' gradients were summed
    instead of averaged. The tolerance covers float32 summation order only (DDP sums two
    half-batch gradients; one process sums the whole batch at once) over 20-30 steps.
    """
    assert got["model"].keys() == want["model"].keys()
    for name, value in want["model"].items():
        if value.is_floating_point():
            torch.testing.assert_close(got["model"][name], value, rtol=1e-4, atol=1e-5, msg=name)
        else:
            assert torch.equal(got["model"][name], value), name
    states = (got["optimizer"]["state"], want["optimizer"]["state"])
    assert states[0].keys() == states[1].keys()
    for index in states[1]:
        # near-zero moments differ relatively most: an absolute floor well below typical
        # values (a 2x gradient shows in every element above it)
        for key, atol in (("exp_avg", 1e-7), ("exp_avg_sq", 1e-12)):
            torch.testing.assert_close(
                states[0][index][key], states[1][index][key], rtol=1e-3, atol=atol,
                msg=f"optimizer state {index} {key}",
            )  # fmt: skip


def test_two_processes_train_as_one_on_the_whole_batches(tmp_path):
    """Two gloo replicas, each on ``images[rank::2]`` of every global batch, end where one
    process training on the whole batches ends, to float tolerance.

    Why it is exact in maths: every global batch of B examples splits into two shards of
    B/2 (the batch sizes and example counts are chosen so; with an odd batch, the mean of
    two unequal shards' per-example means would weight the examples unequally). Each
    replica's loss is a per-example mean over its shard, and DDP averages the gradients:
    (grad L_0 + grad L_1) / 2 = grad of the mean over all B examples. The EMA codebook
    sums counts and per-code sums over the replicas (all-reduce SUM), which are the whole
    batch's counts and sums.

    - The EMA VQ-VAE (no sampling noise, no dead-code restarts: a restart draws seeds
      from rank 0's rows, not the whole batch's) is compared with an ordinary
      one-process `train` of the same config.
    - The VAE samples noise, and each replica draws it from its own generator (seed + 1 +
      rank), so an ordinary one-process run (one generator) sees different noise and is
      not comparable exactly. It is compared with one process training on the whole
      batches whose loss is the mean of the two shards' losses with the replicas' two
      noise generators (`_PerShardNoise`): the same function of the weights as DDP's
      averaged objective. No test set, so no evaluation draws from the noise between
      epochs.
    """
    sys.path.insert(0, str(EQUIVALENCE_WORKER.parent))
    try:
        worker = importlib.import_module("_ddp_equivalence_worker")
    finally:
        sys.path.remove(str(EQUIVALENCE_WORKER.parent))
    _torchrun(EQUIVALENCE_WORKER, tmp_path / "ddp", timeout=120)
    quiet = {"show_progress": False, "log": lambda line: None}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(
            _PerShardNoise(worker.small_vae(), seed=worker.VAE_RUN["seed"]), worker.digits(),
            run_dir=tmp_path / "one" / "vae", **worker.VAE_RUN, **quiet,
        )  # fmt: skip
        train(worker.VQ_CONFIG, tmp_path / "one" / "vqvae", **quiet)
    finally:
        torch.set_num_threads(threads)

    vae_one = _last(tmp_path / "one" / "vae")
    vae_one["model"] = {k.removeprefix("vae."): v for k, v in vae_one["model"].items()}
    _assert_same_training(_last(tmp_path / "ddp" / "vae"), vae_one)
    vq_ddp, vq_one = _last(tmp_path / "ddp" / "vqvae"), _last(tmp_path / "one" / "vqvae")
    assert {"quantizer.codebook", "quantizer.cluster_size", "quantizer.embed_sum"} <= set(
        vq_one["model"]
    )
    _assert_same_training(vq_ddp, vq_one)
    # both saw every example of each epoch: 2 x 500 and 2 x 160 per replica
    for run, examples in [("vae", 1000), ("vqvae", 320)]:
        lines = (tmp_path / "ddp" / run / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["train_examples"] for line in lines] == [examples] * 2


FOLDER_WORKER = Path(__file__).with_name("_ddp_folder_worker.py")


def test_two_processes_read_disjoint_shards_of_a_folder_that_covers_the_data(tmp_path):
    """21 JPEGs, a global batch of 4 (2 per rank): each epoch's order is
    ``randperm(21)`` seeded ``seed + epoch``, padded by its first item to 22, and rank r
    reads positions ``r, r + 2, ...``: the two shards share only the padded item and
    together read every image."""
    images, out_dir = tmp_path / "images", tmp_path / "reads"
    images.mkdir()
    out_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(21):
        pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i:02d}.jpg")
    _torchrun(FOLDER_WORKER, images, tmp_path / "run", out_dir, timeout=300)

    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["train_examples"] for line in lines] == [22, 22]  # 11 per rank
    reads = {}
    for rank in (0, 1):
        pairs = [line.split() for line in (out_dir / f"reads{rank}.txt").read_text().splitlines()]
        reads[rank] = {(int(e), int(i)) for e, i in pairs if int(e) >= 0}
    for epoch in (1, 2):
        shards = [sorted(i for e, i in reads[rank] if e == epoch) for rank in (0, 1)]
        order = torch.randperm(21, generator=torch.Generator().manual_seed(epoch)).tolist()
        padded = [*order, order[0]]
        assert shards == [sorted(set(padded[0::2])), sorted(set(padded[1::2]))]
        assert set(shards[0]) & set(shards[1]) == {order[0]}  # only the padded item
        assert set(shards[0]) | set(shards[1]) == set(range(21))


def test_gradient_accumulation_under_two_processes_trains_as_one(tmp_path):
    # each rank holds half of every batch of 16, and two batches make a step: the
    # all-reduced mean gradient is one process's gradient of the same 32 examples
    sys.path.insert(0, str(ACCUMULATION_WORKER.parent))
    try:
        worker = importlib.import_module("_ddp_accumulation_worker")
    finally:
        sys.path.remove(str(ACCUMULATION_WORKER.parent))
    run_dir, out_dir = tmp_path / "run", tmp_path / "weights"
    out_dir.mkdir()
    _torchrun(ACCUMULATION_WORKER, run_dir, out_dir)
    first, second = (torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    model = worker.Autoencoder()
    fit(model, worker.images(), run_dir=tmp_path / "one", show_progress=False,
        log=lambda line: None, **worker.RUN)  # fmt: skip
    for name, value in model.state_dict().items():
        assert torch.equal(first[name], second[name]), name
        if value.is_floating_point():  # sums of halves in another order: float32 tolerance
            torch.testing.assert_close(first[name], value, rtol=1e-5, atol=1e-6)
