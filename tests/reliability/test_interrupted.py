"""Interrupted runs: SIGKILL mid-epoch, a crash between two files, a corrupt checkpoint.

Each time, resuming finishes with exactly the weights and metrics of an uninterrupted run.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genlatent.cli import main
from genlatent.train import TrainConfig, train
from genlatent.train.checkpoint import load_checkpoint

# the module, not the function genlatent.train re-exports under the same name
trainer = importlib.import_module("genlatent.train.fit")
QUIET = {"show_progress": False, "log": lambda line: None}
TIMING = {"images_per_second", "epoch_seconds", "wall_seconds"}  # the only keys that may differ
CLI_RUN = [
    "train", "vae", "--dataset", "digits", "--epochs", "3", "--batch-size", "10",
    "--train-limit", "600", "--test-limit", "100", "--latent-dim", "4", "--seed", "3",
    "--device", "cpu", "--no-progress",
]  # fmt: skip
# EMA codebook, and more codes than an epoch uses, each restarted after one unused step:
# every step draws restart seeds from the global torch RNG, which resume must restore
CLI_VQ_RUN = [
    "train", "vqvae", "--dataset", "digits", "--epochs", "3", "--batch-size", "10",
    "--train-limit", "600", "--test-limit", "100", "--hidden-channels", "8",
    "--codebook-size", "256", "--embedding-dim", "4", "--ema", "--restart-dead-codes", "1",
    "--seed", "3", "--device", "cpu", "--no-progress",
]  # fmt: skip
SMALL = TrainConfig(
    model="vae", epochs=3, batch_size=20, latent_dim=4, device="cpu", train_limit=300,
    test_limit=50, seed=1,
)  # fmt: skip


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _assert_same_run(run: Path, reference: Path, epochs: int) -> None:
    """Equal weights, optimizer state and metrics, and exactly one metrics line per epoch."""
    got, want = (load_checkpoint(p / "checkpoints" / "last.pt") for p in (run, reference))
    assert got["epoch"] == want["epoch"] == epochs
    assert got["model"].keys() == want["model"].keys()
    for name, value in want["model"].items():
        assert torch.equal(got["model"][name], value), name
    optimizer_states = (got["optimizer"]["state"], want["optimizer"]["state"])
    for a, b in zip(*(s.values() for s in optimizer_states), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in b)
    for name in ("torch_rng", "noise_rng", "order_rng"):  # where the next epoch would start
        assert torch.equal(got[name], want[name]), name
    records, expected = _records(run), _records(reference)
    assert [r["epoch"] for r in records] == list(range(1, epochs + 1))
    for r, e in zip(records, expected, strict=True):
        assert {k: v for k, v in r.items() if k not in TIMING} == {
            k: v for k, v in e.items() if k not in TIMING
        }


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "error"}
    return subprocess.Popen(
        [sys.executable, "-m", "genlatent", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    "command", [CLI_RUN, CLI_VQ_RUN], ids=["vae-sampling-noise", "vqvae-ema-restarts"]
)
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path, command):
    run = tmp_path / "killed"
    process = _cli(*command, "--out", str(run))
    # samples.png is the last file an epoch writes: once it exists, epoch 2 has begun
    first_epoch_done = run / "samples.png"
    deadline = time.monotonic() + 240
    while not first_epoch_done.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "epoch 1 did not finish within 240 s"
        time.sleep(0.002)
    time.sleep(0.05)  # into epoch 2: 60 steps of a few milliseconds each
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    done = load_checkpoint(run / "checkpoints" / "last.pt")["epoch"]
    assert done < 3  # killed before the end (in epoch 2 unless this machine stalled)
    assert [r["epoch"] for r in _records(run)] == list(range(1, done + 1))

    # resume through the CLI in this process (one thread, as the subprocess: conftest.py)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    train(config, tmp_path / "reference", **QUIET)
    _assert_same_run(run, tmp_path / "reference", epochs=3)
    if "--restart-dead-codes" in command:  # some code unused in every epoch, so every step
        assert all(r["train_codes_used"] < 1 for r in _records(run))
    for name in ("config.json", "reconstructions.png", "samples.png", "checkpoints/best.pt"):
        assert (run / name).is_file(), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "run"
    threads = torch.get_num_threads()  # module scope: set it here too (see conftest.py)
    torch.set_num_threads(1)
    try:
        train(SMALL, path, **QUIET)
    finally:
        torch.set_num_threads(threads)
    return path


class _Crash(BaseException):
    """Stands for the process dying (a BaseException: nothing catches it on the way out)."""


def test_crash_between_metrics_and_checkpoint_resumes_exactly(monkeypatch, tmp_path, reference):
    saves = []

    def dying_save(state, path, **kwargs):
        if state["epoch"] == 2:  # epoch 2's metrics line is written, its checkpoint is not
            raise _Crash
        saves.append(Path(path).name)
        trainer.atomic_save.__wrapped__(state, path, **kwargs)  # type: ignore[attr-defined]

    dying_save.__wrapped__ = trainer.atomic_save  # type: ignore[attr-defined]
    monkeypatch.setattr(trainer, "atomic_save", dying_save)
    run = tmp_path / "run"
    with pytest.raises(_Crash):
        train(SMALL, run, **QUIET)
    assert [r["epoch"] for r in _records(run)] == [1, 2]  # a line without its checkpoint
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    monkeypatch.undo()
    train(None, run, resume=True, **QUIET)
    _assert_same_run(run, reference, epochs=3)


def test_corrupt_checkpoint_resume_falls_back_to_previous(tmp_path, reference):
    run = tmp_path / "run"
    logged: list[str] = []
    train(SMALL.replace(epochs=2), run, **QUIET)
    last = run / "checkpoints" / "last.pt"
    torn = last.read_bytes()[:1000]  # as a disk or copy error leaves it
    last.write_bytes(torn)
    train(SMALL, run, resume=True, show_progress=False, log=logged.append)
    assert logged[0] == f"resuming {run} with epochs: 2 -> 3"
    assert logged[1] == f"resuming {run} from last.prev.pt at epoch 1"
    assert "could not be read; kept as last.pt.corrupt" in logged[2]
    _assert_same_run(run, reference, epochs=3)
    # the torn file left the rotation: last.prev.pt is the good epoch 2, not the torn one
    assert load_checkpoint(run / "checkpoints" / "last.prev.pt")["epoch"] == 2
    assert (run / "checkpoints" / "last.pt.corrupt").read_bytes() == torn
