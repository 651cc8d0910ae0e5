"""Gradient accumulation and the weight EMA of `fit`, against the large batch and an
average computed here from the trained weights of every step."""

import json
from typing import NamedTuple

import pytest
import torch
from torch import nn

from genlatent import fit, load_run
from genlatent.train.checkpoint import load_checkpoint
from genlatent.train.ema import WeightEMA

QUIET = {"log": lambda line: None, "show_progress": False, "device": "cpu"}


class Out(NamedTuple):
    loss: torch.Tensor


class Autoencoder(nn.Module):
    """A deterministic linear autoencoder (mean squared error) that records what it sees:
    each training batch, and its weights at each training step."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder, self.decoder = nn.Linear(16, 3), nn.Linear(3, 16)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.seen: list[torch.Tensor] = []
        self.weights: list[dict[str, torch.Tensor]] = []

    def loss(self, x: torch.Tensor, step: int | None = None) -> Out:
        flat = x.flatten(1)
        if self.training:
            self.seen.append(flat.detach().clone())
            if len(self.weights) < step:  # the weights before step `step`
                self.weights.append({k: v.clone() for k, v in self.state_dict().items()})
            self.calls += 1
        return Out(((self.decoder(self.encoder(flat)) - flat) ** 2).sum(1).mean())


def images() -> torch.Tensor:
    return torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(1))


def test_four_batches_of_eight_step_as_one_batch_of_thirty_two(tmp_path):
    small, large = Autoencoder(), Autoencoder()
    fit(small, images(), run_dir=tmp_path / "small", batch_size=8, grad_accumulation=4,
        lr=1e-2, max_steps=6, log_every=1, **QUIET)  # fmt: skip
    fit(large, images(), run_dir=tmp_path / "large", batch_size=32, lr=1e-2, max_steps=6,
        log_every=1, **QUIET)  # fmt: skip
    # the same examples in the same order: 4 micro-batches are one large batch, cut in 4
    assert len(small.seen) == 4 * len(large.seen) == 4 * 6
    for index, batch in enumerate(large.seen):
        assert torch.equal(torch.cat(small.seen[4 * index : 4 * index + 4]), batch)
    for name, value in large.state_dict().items():
        if value.is_floating_point():  # float sums in another order: float32 tolerance
            torch.testing.assert_close(small.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    # each logged step's loss is the large batch's mean loss
    lines = [
        [json.loads(line) for line in (tmp_path / run / "steps.jsonl").read_text().splitlines()]
        for run in ("small", "large")
    ]
    assert [r["step"] for r in lines[0]] == list(range(1, 7))
    for got, want in zip(*lines, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)


def test_the_last_step_of_an_epoch_takes_the_batches_left(tmp_path):
    # 64 examples in batches of 8 make 8 batches: steps of 3, 3 and 2 batches an epoch
    model = Autoencoder()
    summary = fit(model, images(), run_dir=tmp_path, batch_size=8, grad_accumulation=3,
                  lr=1e-2, epochs=2, **QUIET)  # fmt: skip
    assert (summary.steps, len(model.seen)) == (6, 16)


def test_best_pt_holds_the_average_of_the_trained_weights_of_every_step(tmp_path):
    model, decay, steps = Autoencoder(), 0.7, 5  # 5 steps of the 8 an epoch has
    fit(model, images(), run_dir=tmp_path, batch_size=8, lr=1e-2, max_steps=steps,
        ema_decay=decay, **QUIET)  # fmt: skip
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    trained = [*model.weights[1:], last["trained_model"]]  # after steps 1..5
    average = {k: v.clone() for k, v in model.weights[0].items()}  # the starting weights
    for weights in trained:
        for name, value in weights.items():
            if value.is_floating_point():
                average[name] = decay * average[name] + (1 - decay) * value
            else:
                average[name] = value.clone()  # buffers: copied
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")["model"]
    for name, value in average.items():
        torch.testing.assert_close(best[name], value, rtol=1e-6, atol=1e-7)
    assert int(best["calls"]) == steps  # a buffer copied, not averaged
    loaded = load_run(tmp_path, model=Autoencoder()).model.state_dict()
    for name, value in best.items():
        assert torch.equal(loaded[name], value), name
    assert not torch.equal(best["encoder.weight"], last["trained_model"]["encoder.weight"])


def test_a_resumed_run_with_an_average_equals_the_uninterrupted_one(tmp_path):
    common = {"batch_size": 8, "lr": 1e-2, "ema_decay": 0.9, "save_every": 1, **QUIET}
    fit(Autoencoder(), images(), run_dir=tmp_path / "whole", max_steps=12, **common)
    fit(Autoencoder(), images(), run_dir=tmp_path / "parts", max_steps=5, **common)
    fit(Autoencoder(), images(), run_dir=tmp_path / "parts", max_steps=12, resume=True,
        **common)  # fmt: skip
    got, want = (load_checkpoint(tmp_path / run / "checkpoints" / "last.pt")
                 for run in ("parts", "whole"))  # fmt: skip
    for key in ("model", "trained_model"):
        for name, value in want[key].items():
            assert torch.equal(got[key][name], value), (key, name)


def test_the_weight_average_refuses_a_decay_outside_the_unit_interval():
    with pytest.raises(ValueError, match=r"ema_decay must be in \(0.0, 1.0\), got 1.0"):
        WeightEMA(nn.Linear(1, 1), decay=1.0)
