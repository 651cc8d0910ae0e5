"""The reference trainer under torchrun: 2 CPU processes (gloo) stay identical replicas."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("_ddp_worker.py")
NONFINITE_WORKER = Path(__file__).with_name("_ddp_nonfinite_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(script: Path, *args: Path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        str(script), *map(str, args),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


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


def test_a_nan_on_one_replica_is_skipped_or_stops_on_all(tmp_path):
    _torchrun(NONFINITE_WORKER, tmp_path)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for report in reports:
        assert report["skip"] == {"skipped": 1, "examples": 3 * 8}  # 3 of 4 steps, 4 + 4 rows
        assert report["stop"]["error"].startswith("non-finite loss at epoch 1, step 2: loss")
    assert reports[0]["weights"] == reports[1]["weights"]
