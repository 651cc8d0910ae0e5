"""`fit` by steps: max_steps, evaluation and checkpoints at any step, steps.jsonl, the
learning-rate schedule, and resume in the middle of an epoch after a SIGKILL."""

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset, IterableDataset

from genlatent import VAE, MLPDecoder, MLPEncoder, fit
from genlatent.train.checkpoint import load_checkpoint
from genlatent.train.schedule import LRSchedule

QUIET = {"log": lambda line: None, "show_progress": False, "device": "cpu"}
SHAPE = (1, 4, 4)
TIMING = {"images_per_second", "epoch_seconds", "wall_seconds"}  # the only keys that may differ
WORKER = Path(__file__).with_name("_steps_worker.py")


def _vae() -> VAE:
    torch.manual_seed(0)
    return VAE(MLPEncoder(16, 8, 2), MLPDecoder(2, 8, 16, out_shape=SHAPE))


def _images(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8, generator=generator)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Counting(Dataset):
    """A map-style dataset of ``size`` generated images that records each index read."""

    def __init__(self, size: int) -> None:
        self.size, self.reads = size, []

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> torch.Tensor:
        self.reads.append(index)
        return torch.full(SHAPE, index % 256, dtype=torch.uint8)


class Stream(IterableDataset):
    def __init__(self, size: int) -> None:
        self.size = size

    def __iter__(self):
        for index in range(self.size):
            yield torch.full(SHAPE, index % 256, dtype=torch.uint8)


def test_a_run_by_steps_evaluates_saves_and_logs_at_its_steps(tmp_path):
    # 40 examples in batches of 8: 5 steps an epoch; 12 steps end 2 steps into epoch 3
    summary = fit(_vae(), _images(40), _images(16, 1), run_dir=tmp_path, batch_size=8,
                  lr=1e-3, max_steps=12, eval_every=5, log_every=2, **QUIET)  # fmt: skip
    metrics = _lines(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["epoch"]) for r in metrics] == [(5, 1), (10, 2), (12, 3)]
    assert [r["train_examples"] for r in metrics] == [40, 40, 16]  # since the last evaluation
    steps = _lines(tmp_path / "steps.jsonl")
    assert [r["step"] for r in steps] == list(range(2, 13, 2))
    assert [r["epoch"] for r in steps] == [math.ceil(s / 5) for s in range(2, 13, 2)]
    assert all({"loss", "kl", "lr"} <= set(r) and r["lr"] == 1e-3 for r in steps)
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert (last["steps"], last["epoch"], last["position"]) == (12, 2, 2)
    assert (summary.steps, summary.epochs) == (12, 2)


def test_epochs_and_max_steps_end_the_run_at_whichever_comes_first(tmp_path):
    one = fit(_vae(), _images(40), run_dir=tmp_path / "a", epochs=1, max_steps=100,
              batch_size=8, lr=1e-3, **QUIET)  # fmt: skip
    few = fit(_vae(), _images(40), run_dir=tmp_path / "b", epochs=100, max_steps=3,
              batch_size=8, lr=1e-3, **QUIET)  # fmt: skip
    assert (one.steps, one.epochs, few.steps, few.epochs) == (5, 1, 3, 0)
    with pytest.raises(ValueError, match=r"fit needs epochs or max_steps .* got neither"):
        fit(_vae(), _images(8), run_dir=tmp_path / "c", batch_size=8, lr=1e-3, **QUIET)


def test_ten_million_items_train_twenty_steps_by_max_steps_reading_only_those(tmp_path):
    data = Counting(10_000_000)
    summary = fit(_vae(), data, run_dir=tmp_path, max_steps=20, batch_size=32, lr=1e-3,
                  **QUIET)  # fmt: skip
    assert summary.steps == 20
    preview, trained = data.reads[:32], data.reads[32:]
    assert preview == list(range(32))
    order = torch.randperm(10_000_000, generator=torch.Generator().manual_seed(0 + 1))
    assert trained == order[: 20 * 32].tolist()  # epoch 1's order, the first 640 only


def test_an_iterable_dataset_trains_by_max_steps_over_its_epochs(tmp_path):
    # 50 items in batches of 16: 4 steps an epoch, so 10 steps end 2 into epoch 3
    summary = fit(_vae(), Stream(50), run_dir=tmp_path, max_steps=10, batch_size=16,
                  lr=1e-3, **QUIET)  # fmt: skip
    assert (summary.steps, summary.epochs) == (10, 2)
    metrics = _lines(tmp_path / "metrics.jsonl")
    assert [(r["epoch"], r["step"]) for r in metrics] == [(1, 4), (2, 8), (3, 10)]


def _expected_lr(step: int, peak: float, warmup: int, total: int) -> float:
    if step <= warmup:
        return peak * step / warmup
    return peak * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) / 2


@pytest.mark.parametrize("bound", ["max_steps", "epochs"])
def test_steps_jsonl_shows_the_warm_up_and_cosine_learning_rate(tmp_path, bound):
    # max_steps=15, or 3 epochs of 5 steps: the cosine reaches 0 at step 15 either way
    length = {"max_steps": 15} if bound == "max_steps" else {"epochs": 3}
    fit(_vae(), _images(40), run_dir=tmp_path, batch_size=8, lr=2e-3, log_every=1,
        lr_schedule="cosine", lr_warmup_steps=4, **length, **QUIET)  # fmt: skip
    logged = [(r["step"], r["lr"]) for r in _lines(tmp_path / "steps.jsonl")]
    assert [step for step, _ in logged] == list(range(1, 16))
    for step, lr in logged:
        assert lr == pytest.approx(_expected_lr(step, 2e-3, 4, 15), rel=1e-12, abs=1e-18)
    assert logged[-1][1] == pytest.approx(0.0, abs=1e-18)


def test_the_scheduled_rate_is_the_one_adam_steps_with(tmp_path):
    # Adam's first update is lr * g / (|g| + eps): about lr * sign(g) where g is not tiny
    model = _vae()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fit(model, _images(8), run_dir=tmp_path, batch_size=8, lr=1e-2, max_steps=1,
        lr_warmup_steps=4, **QUIET)  # fmt: skip
    moved = torch.cat([(p.detach() - before[n]).abs().flatten()
                       for n, p in model.named_parameters()])  # fmt: skip
    assert moved.max().item() == pytest.approx(1e-2 / 4, rel=1e-3)


def test_a_cosine_schedule_needs_a_last_step():
    with pytest.raises(ValueError, match=r"lr_schedule='cosine' decays to 0 .* got a run of None"):
        LRSchedule(1e-3, "cosine", warmup_steps=0, total_steps=None)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        LRSchedule(1e-3, "linear")


def _worker():
    spec = importlib.util.spec_from_file_location("_steps_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_same_run(run: Path, reference: Path) -> None:
    """Equal weights, optimizer state, RNG states and every line of both logs."""
    got, want = (load_checkpoint(p / "checkpoints" / "last.pt") for p in (run, reference))
    assert got["steps"] == want["steps"]
    for name, value in want["model"].items():
        assert torch.equal(got["model"][name], value), name
    states = (got["optimizer"]["state"], want["optimizer"]["state"])
    for a, b in zip(*(s.values() for s in states), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in b)
    for name in ("torch_rng", "noise_rng", "order_rng"):
        assert torch.equal(got[name], want[name]), name
    assert _lines(run / "steps.jsonl") == _lines(reference / "steps.jsonl")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert strip(_lines(run / "metrics.jsonl")) == strip(_lines(reference / "metrics.jsonl"))


@pytest.mark.parametrize(
    ("kind", "kill_at"), [("memory", 8), ("stream", 12), ("folder", 8)],
    ids=["in-memory-binarized", "streamed-workers-cosine", "folder-workers-augmented-cosine"],
)  # fmt: skip
def test_sigkill_mid_epoch_then_resume_equals_the_uninterrupted_run(tmp_path, kind, kill_at):
    worker = _worker()
    run = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "error"}
    process = subprocess.run(
        [sys.executable, str(WORKER), kind, str(run), str(kill_at)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert process.returncode == -signal.SIGKILL, process.stderr
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    # the last save before the kill: every SAVE_EVERY steps and at each evaluation
    saves = (worker.SAVE_EVERY, worker.EVAL_EVERY)
    step = max(s for s in range(1, kill_at) if any(s % every == 0 for every in saves))
    per_epoch = worker.TRAIN // worker.BATCH
    assert (saved["steps"], saved["position"]) == (step, step % per_epoch)
    assert saved["position"] > 0  # in the middle of an epoch
    assert len(_lines(run / "steps.jsonl")) == kill_at - 1  # lines past the checkpoint too

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the killed process
    try:
        worker.run(kind, run, resume=True)
        worker.run(kind, tmp_path / "reference")
    finally:
        torch.set_num_threads(threads)
    _assert_same_run(run, tmp_path / "reference")
    assert [r["step"] for r in _lines(run / "steps.jsonl")] == list(range(1, worker.MAX_STEPS + 1))


def test_resume_grows_max_steps_refuses_fewer_and_takes_old_checkpoints(tmp_path):
    common = {"batch_size": 8, "lr": 1e-3, **QUIET}
    fit(_vae(), _images(40), run_dir=tmp_path / "whole", epochs=2, **common)
    parts = tmp_path / "parts"
    fit(_vae(), _images(40), run_dir=parts, max_steps=5, **common)
    last = parts / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    for key in ("steps", "position", "evaluated_step", "interval"):  # as an older version
        del state[key]
    torch.save(state, last)
    with pytest.raises(ValueError, match="--max-steps 3 is fewer than the 5 steps the run has"):
        fit(_vae(), _images(40), run_dir=parts, max_steps=3, resume=True, **common)
    fit(_vae(), _images(40), run_dir=parts, max_steps=10, resume=True, **common)
    got = load_checkpoint(last)
    want = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    for name, value in want["model"].items():
        assert torch.equal(got["model"][name], value), name
    assert (got["steps"], got["epoch"]) == (10, 2)
