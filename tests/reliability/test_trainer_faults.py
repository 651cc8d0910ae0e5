"""The trainer under numerical faults: it stops (or skips) by name and never saves NaN."""

from __future__ import annotations

import functools
import json
import math
from typing import NamedTuple

import pytest
import torch
from torch import nn

from genlatent import VAE, VQVAE, ConvDecoder, ConvEncoder, VectorQuantizer, mnist_vae
from genlatent._protocols import loss_parts
from genlatent.train import NonFiniteLossError, TrainConfig, train
from genlatent.train.checkpoint import load_checkpoint
from genlatent.train.fit import _check_state_finite
from genlatent.train.loop import LossModule, StepSettings, autocast, train_epoch

CPU = torch.device("cpu")
QUIET = {"show_progress": False, "log": lambda line: None}
# 200 training images in batches of 100: two steps per epoch
TINY_VAE = TrainConfig(
    model="vae", epochs=3, batch_size=100, latent_dim=4, device="cpu", train_limit=200,
    test_limit=50,
)  # fmt: skip
TINY_VQ = TrainConfig(
    model="vqvae", epochs=2, batch_size=50, lr=2e-3, hidden_channels=8, codebook_size=16,
    embedding_dim=4, ema=True, device="cpu", train_limit=200, test_limit=50,
)  # fmt: skip


def _nan_at_training_step(monkeypatch, at: int, term: str) -> None:
    """Make ``VAE.loss`` return a NaN ``term`` at training step ``at`` (1-based)."""
    calls = {"n": 0}
    original = VAE.loss

    @functools.wraps(original)  # the trainer reads the keywords loss declares
    def loss(self, x, **kwargs):
        result = original(self, x, **kwargs)
        if not self.training:
            return result
        calls["n"] += 1
        if calls["n"] != at:
            return result
        return result._replace(
            loss=result.loss * math.nan, **{term: getattr(result, term) * math.nan}
        )

    monkeypatch.setattr(VAE, "loss", loss)


def _all_finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_nan_in_epoch_two_stops_by_name_and_keeps_epoch_one(monkeypatch, tmp_path):
    _nan_at_training_step(monkeypatch, at=3, term="kl")  # epoch 2, step 1
    run = tmp_path / "run"
    with pytest.raises(
        NonFiniteLossError,
        match=r"non-finite loss at epoch 2, step 1: loss, kl is NaN or infinite; no checkpoint "
        r"was written for this epoch \(lower the learning rate, set grad_clip \(--grad-clip\), "
        r"or skip such steps with skip_nonfinite \(--skip-nonfinite\)\)$",
    ):
        train(TINY_VAE, run, **QUIET)
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["epoch"] == 1
    assert _all_finite(last["model"])
    assert _all_finite(load_checkpoint(run / "checkpoints" / "best.pt")["model"])
    assert not (run / "checkpoints" / "last.prev.pt").exists()  # nothing was saved over it
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1]
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_skip_nonfinite_counts_the_step_and_finishes(monkeypatch, tmp_path):
    _nan_at_training_step(monkeypatch, at=3, term="reconstruction_loss")
    summary = train(TINY_VAE.replace(epochs=2, skip_nonfinite=True), tmp_path / "run", **QUIET)
    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["skipped_steps"] for r in records] == [0, 1]
    assert [r["train_examples"] for r in records] == [200, 100]
    assert _all_finite(summary.model.state_dict())


def test_nonfinite_state_is_never_checkpointed():
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.bias[1] = math.inf
    with pytest.raises(NonFiniteLossError, match=r"after epoch 4: bias hold NaN or infinity"):
        _check_state_finite(model, 4)


# --------------------------------------------------- skipped steps leave the codebook alone


def _tiny_vqvae(seed: int = 0, *, ema: bool = True) -> VQVAE:
    torch.manual_seed(seed)
    return VQVAE(
        ConvEncoder(1, 4, 2), VectorQuantizer(8, 2, ema=ema, restart_dead_codes=2),
        ConvDecoder(2, 4, 1),
    )  # fmt: skip


def test_skipped_nan_batch_equals_training_without_it():
    gen = torch.Generator().manual_seed(0)
    good = [(torch.rand(4, 1, 8, 8, generator=gen),) for _ in range(3)]
    poisoned = (torch.full((4, 1, 8, 8), math.nan),)
    states = []
    for batches in ([good[0], poisoned, *good[1:]], good):
        model = _tiny_vqvae()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        settings = StepSettings(CPU, skip_nonfinite=True)
        result = train_epoch(
            LossModule(model), optimizer, batches, settings, epoch=1, show_progress=False
        )
        states.append((result.skipped_steps, model.state_dict()))
    (skipped, with_nan), (none, without) = states
    assert (skipped, none) == (1, 0)
    for name, value in without.items():
        assert torch.equal(with_nan[name], value), name  # EMA, counters, restarts included


# ------------------------------------------------------------------ terms named, by source


def _message(model: nn.Module, precision: str) -> str:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    batches = [(torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)),)]
    settings = StepSettings(CPU, precision=precision)
    with pytest.raises(NonFiniteLossError) as caught:
        train_epoch(LossModule(model), optimizer, batches, settings, epoch=5, show_progress=False)
    return str(caught.value)


def test_overflowing_kl_is_named_kl():
    torch.manual_seed(0)
    model = mnist_vae(latent_dim=4, hidden_features=(16,))
    with torch.no_grad():
        model.encoder.mean_head.bias.fill_(1e20)  # mean^2 overflows float32: KL = inf
    message = _message(model, "bf16")
    assert "epoch 5, step 1: loss, kl, elbo_loss is NaN or infinite" in message


@pytest.mark.parametrize(
    ("poison", "ema", "named"),
    [
        ("decoder", True, "loss, reconstruction_loss is"),
        ("encoder", True, "loss, reconstruction_loss, quantizer_loss, commitment is"),
        ("encoder", False, "loss, reconstruction_loss, quantizer_loss, codebook, commitment is"),
    ],
)
def test_vq_terms_are_named_by_source(poison, ema, named):
    model = _tiny_vqvae(ema=ema)
    with torch.no_grad():
        layer = model.decoder.layers[-1] if poison == "decoder" else model.encoder.layers[-1]
        layer.bias.fill_(math.inf if poison == "encoder" else math.nan)
    batches = [(torch.rand(2, 1, 8, 8),)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with pytest.raises(NonFiniteLossError, match=rf"epoch 1, step 1: {named} NaN or infinite"):
        train_epoch(LossModule(model), optimizer, batches, StepSettings(CPU), epoch=1)


class _Square(NamedTuple):
    loss: torch.Tensor
    square: torch.Tensor


class _HookedLinear(nn.Linear):
    """``loss`` is the mean square of the output, whose gradient is made NaN."""

    def loss(self, x):
        out = self(x)
        out.register_hook(lambda grad: grad * math.nan)  # the loss stays finite
        loss = out.square().mean()
        return _Square(loss, loss.detach())


def test_nonfinite_gradient_with_finite_loss_is_named_gradient():
    torch.manual_seed(0)
    model = _HookedLinear(3, 1)
    batches = [(torch.randn(4, 3),)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    module = LossModule(model)
    with pytest.raises(NonFiniteLossError, match="epoch 2, step 1: gradient is NaN"):
        train_epoch(module, optimizer, batches, StepSettings(CPU, grad_clip=1.0), epoch=2)
    settings = StepSettings(CPU, skip_nonfinite=True)
    result = train_epoch(module, optimizer, batches, settings, epoch=2)
    assert result.skipped_steps == 1


# -------------------------------------------------------------------- clipping, precision


class _Loss(NamedTuple):
    loss: torch.Tensor


class _SteepLinear(nn.Linear):
    def loss(self, x):
        return _Loss((self(x).float() * 10).square().mean())  # a gradient norm well above 0.01


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_gradient_clipping_bounds_the_update(precision):
    torch.manual_seed(0)
    model = _SteepLinear(3, 1)
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    # scale 1: the default 65536 overflows this toy's float16 gradient and skips the step
    scaler = torch.amp.GradScaler("cpu", init_scale=1.0) if precision == "fp16" else None
    settings = StepSettings(CPU, precision=precision, grad_clip=0.01)
    train_epoch(
        LossModule(model), optimizer, [(torch.randn(8, 3),)], settings, epoch=1, scaler=scaler
    )
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    # SGD with lr 1 moves the weights by exactly the clipped gradient (norm 0.01)
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-3)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_objectives_keep_kl_and_quantizer_terms_in_float32(precision):
    torch.manual_seed(0)
    vae = mnist_vae(latent_dim=4, hidden_features=(16,))
    vq, vq_ema = _tiny_vqvae(ema=False), _tiny_vqvae(ema=True)
    x28, x8 = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 8, 8)
    with autocast(CPU, precision):
        vae_terms = loss_parts(vae.loss(x28)).terms
        vq_terms = loss_parts(vq.loss(x8)).terms
        vq_ema_terms = loss_parts(vq_ema.loss(x8)).terms
        latent = vq.encoder(x8)
        indices = vq.quantizer.encode(latent)
    half = torch.bfloat16 if precision == "bf16" else torch.float16
    assert latent.dtype == half  # the network itself ran in half precision
    assert vae_terms["kl"].dtype == torch.float32
    assert vae_terms["reconstruction_loss"].dtype == torch.float32
    names = ("codebook", "commitment", "reconstruction_loss", "quantizer_loss")
    assert set(vq_terms) == set(names)
    for name in names:
        assert vq_terms[name].dtype == torch.float32, name
    assert set(vq_ema_terms) == set(names) - {"codebook"}  # EMA: no codebook term
    for name, value in vq_ema_terms.items():
        assert value.dtype == torch.float32, name
    # the distances ran in float32 on the half-precision latents
    assert torch.equal(indices, vq.quantizer.encode(latent.float()))


@pytest.mark.parametrize(
    ("config", "precision"),
    # the output bias from zero: a start at the data mean leaves 4 steps too little to learn
    [(TINY_VAE.replace(epochs=2, output_bias_init="zero"), "fp16"), (TINY_VQ, "bf16")],
    ids=["vae-fp16", "vqvae-ema-bf16"],
)
def test_mixed_precision_runs_train_on_cpu(tmp_path, config, precision):
    summary = train(config.replace(precision=precision), tmp_path / "run", **QUIET)
    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert all(math.isfinite(r["test_loss"]) and r["skipped_steps"] == 0 for r in records)
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert _all_finite(state["model"])
    assert all(v.dtype != torch.float16 for v in state["model"].values())  # fp32 master weights
    assert "scaler" in state  # the gradient scaler resumes too (a disabled one for bf16)
    assert summary.epochs == config.epochs
