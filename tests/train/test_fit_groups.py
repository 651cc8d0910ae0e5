"""`fit` with a model of several optimizers (`genlatent.MultiOptimizerModel`): the start
step, the per-group logging, exact resume from a kill between the two optimizers' steps,
two processes, and a user's own model from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import torch

from genlatent import fit
from genlatent.cli import main
from genlatent.data import load_digits
from genlatent.train.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("_groups_worker.py")
TIMING = {"images_per_second", "epoch_seconds", "wall_seconds"}
sys.path.insert(0, str(WORKER.parent))
import _groups_worker  # noqa: E402  (the worker's model, built here in-process too)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _fit(run: Path, epochs: int, *, resume: bool = False):
    train = load_digits("train")
    return fit(
        _groups_worker.build(), (train.images[:96], train.labels[:96]), train.images[96:128],
        run_dir=run, epochs=epochs, batch_size=16, lr=1e-3, device="cpu", resume=resume,
        show_progress=False, log=lambda line: None,
    )  # fmt: skip


def test_before_the_start_step_the_discriminator_is_untouched_and_after_it_both_train(tmp_path):
    # 6 steps an epoch and disc_start=3: a run of 2 steps, then one that goes on past it
    built = _groups_worker.build()
    train = load_digits("train")
    run = tmp_path / "run"
    summary = fit(
        _groups_worker.build(), train.images[:32], run_dir=run, epochs=1, batch_size=16,
        lr=1e-3, device="cpu", show_progress=False, log=lambda line: None,
    )  # fmt: skip
    for name, value in built.discriminator.state_dict().items():
        assert torch.equal(summary.model.discriminator.state_dict()[name], value), name
    assert any(
        not torch.equal(summary.model.autoencoder.state_dict()[n], v)
        for n, v in built.autoencoder.state_dict().items()
    )
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["optimizers"]["discriminator"]["state"] == {}  # never stepped
    assert state["optimizers"]["generator"]["state"] != {}
    record = _records(run)[-1]
    assert record["train_adversarial_weight"] == 0.0  # no adversarial term for the generator
    assert "train_discriminator_loss" not in record

    after = _fit(tmp_path / "after", 1)
    for part in ("discriminator", "autoencoder"):
        before = getattr(built, part).state_dict()
        now = getattr(after.model, part).state_dict()
        assert any(not torch.equal(now[n], v) for n, v in before.items()), part
    record = _records(tmp_path / "after")[-1]
    # the generator's adversarial weight is logged over all 6 steps, 4 of them playing
    assert record["train_adversarial_weight"] > 0.0
    assert "train_discriminator_loss" in record
    assert "train_discriminator_real_logits" in record


def _worker(*args: str, kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("GENLATENT_TEST_KILL_AT", None)
    if kill_at is not None:
        env["GENLATENT_TEST_KILL_AT"] = str(kill_at)
    command = [sys.executable, str(WORKER), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_a_run_killed_between_the_two_optimizers_resumes_bit_for_bit(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert _worker(str(reference), "2").returncode == 0
    # step 9 is the 3rd batch of epoch 2: killed after its generator step, resumed from
    # the checkpoint of step 8 (save_every=4)
    done = _worker(str(killed), "2", kill_at=9)
    assert done.returncode == -9, done.stderr[-2000:]
    assert [r["epoch"] for r in _records(killed)] == [1]
    assert _worker(str(killed), "2", "resume").returncode == 0
    got, want = (load_checkpoint(p / "checkpoints" / "last.pt") for p in (killed, reference))
    for name, value in want["model"].items():
        assert torch.equal(got["model"][name], value), name
    for group in ("generator", "discriminator"):
        states = (got["optimizers"][group]["state"], want["optimizers"][group]["state"])
        assert states[0].keys() == states[1].keys()
        for a, b in zip(*(s.values() for s in states), strict=True):
            assert all(torch.equal(a[k], b[k]) for k in b), group
    for r, e in zip(_records(killed), _records(reference), strict=True):
        assert {k: v for k, v in r.items() if k not in TIMING} == {
            k: v for k, v in e.items() if k not in TIMING
        }


USER_MODEL = """
from typing import NamedTuple

import torch
from torch import nn

from genlatent import OptimizerGroup


class Out(NamedTuple):
    loss: torch.Tensor


class Critic(nn.Module):
    def __init__(self, pixels):
        super().__init__()
        self.autoencoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, 8), nn.ReLU(),
                                         nn.Linear(8, pixels))
        self.critic = nn.Linear(pixels, 1)

    def optimizer_groups(self):
        return {"autoencoder": OptimizerGroup(self.autoencoder.parameters()),
                "critic": OptimizerGroup(self.critic.parameters(), lr_factor=0.5)}

    def loss(self, x, *, group="autoencoder"):
        fake = self.autoencoder(x)
        if group == "critic":
            return Out(self.critic(fake.detach()).mean() - self.critic(x.flatten(1)).mean())
        return Out((fake - x.flatten(1)).square().mean() - 0.01 * self.critic(fake).mean())


def build(image_shape):
    return Critic(image_shape[0] * image_shape[1] * image_shape[2])
"""


def test_a_users_two_optimizer_model_trains_from_the_command_line(tmp_path, capsys):
    source = tmp_path / "critic.py"
    source.write_text(textwrap.dedent(USER_MODEL))
    run = tmp_path / "run"
    argv = ["train", "--model", f"{source}:build", "--dataset", "digits", "--epochs", "1",
            "--train-limit", "64", "--test-limit", "32", "--batch-size", "16", "--lr", "1e-3",
            "--no-progress", "--device", "cpu", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert set(state["optimizers"]) == {"autoencoder", "critic"}
    assert state["optimizers"]["critic"]["state"] != {}  # stepped: 4 times
    assert state["optimizers"]["critic"]["param_groups"][0]["lr"] == 5e-4  # lr_factor 0.5
    record = _records(run)[-1]
    assert {"train_loss", "train_critic_loss", "test_loss"} <= set(record)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert [r["epoch"] for r in _records(run)] == [1, 2]


def test_two_processes_keep_both_groups_identical(tmp_path):
    from test_distributed_training import _torchrun

    run = tmp_path / "ddp" / "run"
    run.parent.mkdir()
    _torchrun(WORKER, run, Path("1"), timeout=240)
    first, second = (torch.load(run.parent / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert any(name.startswith("discriminator.") for name in first)
    assert "train_discriminator_loss" in _records(run)[-1]


def test_bf16_with_clipping_and_skipping_trains_both_groups(tmp_path):
    # every per-group path at once: autocast, clip_grad_norm_ over each group's parameters,
    # the finiteness check of each group's terms and gradient norm
    built = _groups_worker.build()
    train = load_digits("train")
    summary = fit(
        _groups_worker.build(), train.images[:64], run_dir=tmp_path / "run", epochs=1,
        batch_size=16, lr=1e-3, device="cpu", precision="bf16", grad_clip=0.5,
        skip_nonfinite=True, show_progress=False, log=lambda line: None,
    )  # fmt: skip
    record = _records(tmp_path / "run")[-1]
    assert record["skipped_steps"] == 0
    assert all(torch.isfinite(torch.tensor(v)) for k, v in record.items() if "loss" in k)
    now = summary.model.discriminator.state_dict()
    assert any(not torch.equal(now[n], v) for n, v in built.discriminator.state_dict().items())


class _Loss(NamedTuple):
    loss: torch.Tensor


class _RisingTestLoss(torch.nn.Module):
    """A model whose test loss grows at every evaluation (the count of evaluated batches)."""

    def __init__(self, best_by_test_loss: bool) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.best_by_test_loss = best_by_test_loss
        self.register_buffer("evaluated", torch.zeros(()))

    def loss(self, x: torch.Tensor) -> _Loss:
        if self.training:
            return _Loss((self.weight - x.mean()).square())
        self.evaluated += 1
        return _Loss(self.weight.detach() * 0 + self.evaluated)


def test_best_pt_is_the_last_evaluation_for_a_model_not_ranked_by_its_test_loss(tmp_path):
    data = torch.rand(64, 4)
    best_epochs = {}
    for ranked in (True, False):
        run = tmp_path / str(ranked)
        fit(_RisingTestLoss(ranked), data[:48], data[48:], run_dir=run, epochs=3, batch_size=16,
            lr=1e-2, device="cpu", show_progress=False, log=lambda line: None)  # fmt: skip
        losses = [record["test_loss"] for record in _records(run)]
        assert losses == sorted(losses)  # the test loss rose
        assert losses[0] < losses[-1]
        best_epochs[ranked] = load_checkpoint(run / "checkpoints" / "best.pt")["epoch"]
    assert best_epochs == {True: 1, False: 3}
    # the tokenizer declares it: its test loss leaves out the adversarial game it trains for
    assert _groups_worker.build().best_by_test_loss is False
