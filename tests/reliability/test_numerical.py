"""Numerical faults: extremes stay finite, half precision keeps float32 answers, NaN stays out."""

from __future__ import annotations

import pytest
import torch

import genlatent.nn.quantize as quantize_module
from genlatent import (
    VectorQuantizer,
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_likelihood,
    reparameterize,
    vae_loss,
)
from genlatent._validation import validate_args
from genlatent.functional import ema_codebook_update, nearest_code, vq_losses


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------- extremes stay finite


def test_elbo_and_gradients_finite_for_saturated_logits_and_extreme_log_var():
    # Logits of +-1e4 (a saturated decoder: sigmoid is exactly 0 or 1 in float32) and
    # log-variances of +-80 (exp(80) ~ 5.5e34, still a float32): the loss and every
    # gradient stay finite. The probability form of BCE would take log(0) here.
    x = torch.tensor([[0.0, 1.0, 0.5, 1.0], [1.0, 0.0, 0.0, 0.25]])
    logits = torch.tensor([[1e4, -1e4, 1e4, 1e4], [-1e4, 1e4, -1e4, 0.0]], requires_grad=True)
    mean = torch.tensor([[0.0, 30.0], [-30.0, 1.0]], requires_grad=True)
    log_var = torch.tensor([[80.0, -80.0], [-80.0, 80.0]], requires_grad=True)
    out = vae_loss(x, logits, mean, log_var, reduction="sum")
    out.loss.backward()
    for value in (out.loss, out.reconstruction_loss, out.kl):
        assert torch.isfinite(value)
    for tensor in (logits, mean, log_var):
        assert tensor.grad is not None
        assert torch.isfinite(tensor.grad).all()
    # and the values are the exact ones: BCE of a confident wrong logit is |logit|
    assert bernoulli_log_likelihood(x[:1, :2], logits[:1, :2].detach()).item() == -2e4


def test_gaussian_pieces_finite_at_extreme_log_variance():
    mean = torch.zeros(3, 2, requires_grad=True)
    log_var = torch.tensor([[80.0, -80.0], [60.0, -60.0], [0.0, 0.0]], requires_grad=True)
    z = reparameterize(mean, log_var, generator=_gen(0))
    kl = gaussian_kl(mean, log_var, reduction="sum")
    log_p = gaussian_log_likelihood(torch.zeros(3, 2), mean, log_var=log_var, reduction="sum")
    (z.sum() + kl + log_p).backward()
    for value in (z, kl, log_p, mean.grad, log_var.grad):
        assert torch.isfinite(value).all()
    # KL at log_var = -80: -1/2 (1 - 80 - 0 - e^-80), exact in float32
    per_unit = gaussian_kl(torch.zeros(1, 1), torch.tensor([[-80.0]]), reduction="sum")
    assert per_unit.item() == pytest.approx(39.5)


# ------------------------------------------------------- half precision: float32 answers


def _close_codes(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes far from the origin and close together: half precision cannot tell them apart."""
    gen = _gen(seed)
    centre = torch.full((1, 8), 60.0)
    codebook = centre + 0.05 * torch.randn(64, 8, generator=gen)
    inputs = centre + 0.05 * torch.randn(256, 8, generator=gen)
    return inputs, codebook


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_quantizer_indices_under_autocast_equal_float32(dtype):
    inputs, codebook = _close_codes(1)
    expected = nearest_code(inputs, codebook)
    # the naive search in the autocast dtype gets many of them wrong: the test has teeth
    naive = (inputs.to(dtype)[:, None] - codebook.to(dtype)[None]).pow(2).sum(-1).argmin(1)
    assert (naive != expected).sum() > 10
    with torch.autocast("cpu", dtype=dtype):
        assert torch.equal(nearest_code(inputs, codebook), expected)
        quantizer = VectorQuantizer(64, 8).eval()
        with torch.no_grad():
            quantizer.codebook.copy_(codebook)
        out = quantizer(inputs)
        losses = vq_losses(inputs, codebook[expected])
    assert torch.equal(out.indices, expected)
    assert out.loss.dtype == torch.float32
    assert losses.commitment.dtype == torch.float32


# ------------------------------------------------------------------ EMA: no divide by zero


@pytest.mark.parametrize("bias_correction", [False, True])
def test_ema_codes_without_vectors_never_divide_by_zero(bias_correction):
    # Every vector goes to code 0; codes 1..7 receive none (with bias correction their
    # statistics start at zero, so they become 0 / eps-smoothed counts = 0, not 0 / 0).
    quantizer = VectorQuantizer(8, 2, ema=True, bias_correction=bias_correction, eps=1e-5)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.arange(8.0)[:, None].repeat(1, 2) * 100)
        if not bias_correction:
            quantizer.embed_sum.copy_(quantizer.codebook)
    for step in range(50):
        out = quantizer(torch.randn(16, 2, generator=_gen(step)) * 0.1)
        assert torch.isfinite(out.loss)
        if step == 0 or not bias_correction:
            assert torch.equal(out.indices, torch.zeros(16, dtype=torch.int64))
    for buffer in (quantizer.codebook, quantizer.cluster_size, quantizer.embed_sum):
        assert torch.isfinite(buffer).all()
    # an all-zero history (nothing ever counted) keeps the codebook rather than 0/0
    zeros = (torch.zeros(8), torch.zeros(8, 2), torch.zeros(8), torch.zeros(8, 2))
    kept = ema_codebook_update(*zeros, decay=0.99, eps=1e-5, step=1, codebook=quantizer.codebook)
    assert torch.equal(kept.codebook, quantizer.codebook)


# ----------------------------------------------------- a NaN batch never reaches the codebook


QUANTIZER_OPTIONS = {
    "ema": {"ema": True},
    "ema-corrected-restart": {"ema": True, "bias_correction": True, "restart_dead_codes": 1},
    "learnable-restart": {"restart_dead_codes": 1},
}


@pytest.mark.parametrize("options", QUANTIZER_OPTIONS.values(), ids=list(QUANTIZER_OPTIONS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_batch_leaves_quantizer_state_untouched(options, bad):
    torch.manual_seed(0)
    quantizer = VectorQuantizer(6, 3, **options)
    quantizer(torch.randn(10, 3, generator=_gen(1)))  # one good training step first
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    poisoned = torch.randn(10, 3, generator=_gen(2))
    poisoned[4, 1] = bad
    with validate_args(False):  # as the trainer runs it; with checks on this raises
        out = quantizer(poisoned)
    assert not torch.isfinite(out.loss)  # the trainer sees it and skips or stops
    after = quantizer.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), f"{name} changed on a non-finite batch"
    # and a good batch afterwards updates as usual
    quantizer(torch.randn(10, 3, generator=_gen(3)))
    if quantizer.ema:
        assert not torch.equal(quantizer.codebook, before["codebook"])
    assert all(torch.isfinite(v).all() for v in quantizer.state_dict().values())


def test_replicas_agree_to_skip_when_only_another_replica_saw_nan(monkeypatch):
    # Simulate two replicas: this one's batch is finite, the other's held a NaN. The
    # all-reduced EMA statistics carry the NaN to this replica too, which must skip the
    # update exactly as the other does (else their codebooks would drift apart).
    quantizer = VectorQuantizer(4, 2, ema=True)
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}

    def all_reduce(tensor, op=None):
        other = torch.zeros_like(tensor)
        other[0, -1] = float("nan")  # the other replica's sums for code 0
        tensor.add_(other)

    monkeypatch.setattr(quantize_module, "replicated", lambda: True)
    monkeypatch.setattr(quantize_module.dist, "all_reduce", all_reduce)
    quantizer(torch.randn(8, 2, generator=_gen(4)))
    for name in ("codebook", "cluster_size", "embed_sum"):
        assert torch.equal(quantizer.state_dict()[name], before[name]), name
