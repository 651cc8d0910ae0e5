"""Tests for genlatent.metrics: the IWAE bound, dataset evaluation, bits/dim, code usage."""

from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.distributions import MultivariateNormal, Normal

from genlatent import (
    VAE,
    VQVAE,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    VectorQuantizer,
    vae_loss,
)
from genlatent.metrics import (
    Evaluation,
    VAEEvaluation,
    bits_per_dim,
    code_usage,
    evaluate_model,
    evaluate_vae,
    iwae_bound,
)
from genlatent.nn import QuantizerOutput

SEEDS = st.integers(0, 2**31 - 1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _vae(seed: int = 0, *, likelihood: str = "bernoulli", features: int = 6) -> VAE:
    torch.manual_seed(seed)
    return VAE(
        MLPEncoder(features, 8, 3, dtype=torch.float64),
        MLPDecoder(3, 8, features, dtype=torch.float64),
        likelihood=likelihood,
    )


def _data(seed: int, batch: int, features: int = 6) -> torch.Tensor:
    return torch.rand(batch, features, generator=_gen(seed), dtype=torch.float64)


# ------------------------------------------------------------------------------ iwae_bound


@settings(deadline=None, max_examples=25)
@given(seed=SEEDS, batch=st.integers(1, 5), likelihood=st.sampled_from(["bernoulli", "gaussian"]))
def test_iwae_with_one_sample_is_the_single_sample_elbo_on_the_same_noise(seed, batch, likelihood):
    # L_1 = log p(x|z) + log p(z) - log q(z|x): the ELBO with a Monte Carlo KL term. Its
    # reconstruction part is vae_loss's on the noise of model(x, generator); the KL part is
    # the Monte Carlo one, which vae_loss replaces by its expectation (closed form).
    model, x = _vae(seed % 7, likelihood=likelihood), _data(seed, batch)
    out = model(x, generator=_gen(seed))
    reconstruction = vae_loss(
        x, out.decoder_output, out.mean, out.log_var, likelihood=likelihood, reduction="none"
    ).reconstruction_loss
    q = Normal(out.mean, torch.exp(0.5 * out.log_var))
    prior = Normal(torch.zeros_like(out.mean), torch.ones_like(out.mean))
    monte_carlo_kl = (q.log_prob(out.z) - prior.log_prob(out.z)).sum(-1)
    bound = iwae_bound(model, x, num_samples=1, generator=_gen(seed))
    torch.testing.assert_close(bound, -reconstruction - monte_carlo_kl)


def test_iwae_with_one_sample_averages_to_the_closed_form_elbo():
    # E[L_1] = ELBO: average L_1 over 4000 copies of one example, and the single-sample
    # ELBO (closed-form KL) over 4000 other draws. L_1 has a spread of ~0.5 nats per copy
    # here, so each mean has a standard error of ~0.008 nats; 0.05 nats is > 4 combined
    # standard errors (measured difference: 0.006).
    model, x = _vae(3), _data(3, 1)
    with torch.no_grad():
        l1 = iwae_bound(model, x.expand(4000, -1), num_samples=1, generator=_gen(0))
        out = model(x.expand(4000, -1), generator=_gen(1))
        elbo = -vae_loss(x.expand(4000, -1), out.decoder_output, out.mean, out.log_var).loss
    assert abs(l1.mean().item() - elbo.item()) < 0.05


@settings(deadline=None, max_examples=25)
@given(seed=SEEDS, num_samples=st.integers(1, 12), chunk_size=st.integers(1, 15))
def test_chunked_equals_unchunked(seed, num_samples, chunk_size):
    model, x = _vae(seed % 5), _data(seed, 3)
    with torch.no_grad():
        whole = iwae_bound(
            model, x, num_samples=num_samples, chunk_size=num_samples, generator=_gen(seed)
        )
        chunked = iwae_bound(
            model, x, num_samples=num_samples, chunk_size=chunk_size, generator=_gen(seed)
        )
    torch.testing.assert_close(chunked, whole)


@settings(deadline=None, max_examples=20)
@given(seed=SEEDS, batch=st.integers(1, 5))
def test_reductions_agree(seed, batch):
    model, x = _vae(seed % 5), _data(seed, batch)
    with torch.no_grad():
        per_example = iwae_bound(model, x, num_samples=5, generator=_gen(seed))
        total = iwae_bound(model, x, num_samples=5, generator=_gen(seed), reduction="sum")
        mean = iwae_bound(model, x, num_samples=5, generator=_gen(seed), reduction="mean")
    assert per_example.shape == (batch,)
    torch.testing.assert_close(total, per_example.sum())
    torch.testing.assert_close(mean, per_example.mean())


def test_bound_is_non_decreasing_in_k_on_average():
    # E[L_1] <= E[L_100] <= E[L_1000] (Burda et al. 2016, theorem 1); each L_k is one random
    # draw, so the test compares batch means over 2048 binary examples with a decoder made
    # sensitive to z (weights x4), which widens the gaps. Measured over 10 seeds at 1024
    # examples: L_1 = -17.8 (sd 0.26), L_100 = -10.73 (sd 0.014), L_1000 = -10.67 (sd 0.005),
    # so the smaller gap, 0.055, is ~3.7 sd at 1024 examples and ~5 sd at 2048.
    torch.manual_seed(0)
    model = VAE(MLPEncoder(12, 16, 3), MLPDecoder(3, 16, 12)).double()
    with torch.no_grad():
        for parameter in model.decoder.parameters():
            parameter.mul_(4)
        x = (torch.rand(2048, 12, generator=_gen(1), dtype=torch.float64) > 0.5).double()
        bounds = [
            iwae_bound(
                model, x, num_samples=k, chunk_size=250, generator=_gen(k), reduction="mean"
            ).item()
            for k in (1, 100, 1000)
        ]
    assert bounds[0] < bounds[1] < bounds[2]


def _linear_gaussian_vae(weight: torch.Tensor, bias: torch.Tensor, q_var: torch.Tensor) -> VAE:
    """x = W z + b + noise, z ~ N(0, I); q(z|x) = N(exact posterior mean, diag(q_var))."""
    features, latent = weight.shape
    precision = torch.eye(latent, dtype=torch.float64) + weight.T @ weight
    gain = torch.linalg.solve(precision, weight.T)  # posterior mean = gain (x - b)
    encoder = MLPEncoder(features, (), latent, dtype=torch.float64)
    decoder = MLPDecoder(latent, (), features, dtype=torch.float64)
    with torch.no_grad():
        encoder.mean_head.weight.copy_(gain)
        encoder.mean_head.bias.copy_(-gain @ bias)
        encoder.log_var_head.weight.zero_()
        encoder.log_var_head.bias.copy_(q_var.log())
        decoder.out.weight.copy_(weight)
        decoder.out.bias.copy_(bias)
    return VAE(encoder, decoder, likelihood="gaussian")


def _exact_log_px(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    covariance = weight @ weight.T + torch.eye(weight.shape[0], dtype=torch.float64)
    return MultivariateNormal(bias, covariance).log_prob(x)


def test_iwae_converges_to_exact_log_likelihood_of_linear_gaussian_model():
    g = _gen(0)
    weight = torch.randn(4, 2, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64)
    posterior_cov = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + weight.T @ weight)
    # q is the exact posterior mean with a diagonal covariance Q = 1.5 lambda_max(Sigma) I,
    # broader than the posterior Sigma, so the weights p(z|x)/q(z) have finite variance.
    q_var = 1.5 * torch.linalg.eigvalsh(posterior_cov).max() * torch.ones(2, dtype=torch.float64)
    model = _linear_gaussian_vae(weight, bias, q_var)
    x = bias + torch.randn(16, 4, generator=g, dtype=torch.float64) @ (
        torch.linalg.cholesky(weight @ weight.T + torch.eye(4, dtype=torch.float64)).T
    )
    exact = _exact_log_px(x, weight, bias)

    # Normalised weights v = w / p(x) = p(z|x) / q(z) have mean 1 and, as the means agree,
    # variance chi2 = |Q|^(1/2) / (|Sigma| |2 Sigma^-1 - Q^-1|^(1/2)) - 1, the same for every x.
    # L_k - log p(x) = log mean(v) has sd ~ sqrt(chi2 / k) and bias ~ -chi2 / (2k): allow
    # 5 sd plus the bias, per example.
    q_cov = torch.diag(q_var)
    m = 2 * torch.linalg.inv(posterior_cov) - torch.linalg.inv(q_cov)
    chi2 = (q_cov.det().sqrt() / (posterior_cov.det() * m.det().sqrt()) - 1).item()
    k = 2000
    tolerance = 5 * math.sqrt(chi2 / k) + chi2 / k
    # ELBO = log p(x) - KL(q || posterior), in closed form.
    gap = (
        0.5
        * (
            torch.trace(torch.linalg.solve(posterior_cov, q_cov))
            - 2
            + torch.logdet(posterior_cov)
            - torch.logdet(q_cov)
        ).item()
    )
    assert gap > 3 * tolerance  # so "tighter than the ELBO" says something

    with torch.no_grad():
        bound = iwae_bound(model, x, num_samples=k, chunk_size=500, generator=_gen(1))
    assert ((bound - exact).abs() < tolerance).all(), (bound - exact, tolerance)
    assert ((bound - (exact - gap)) > 0).all()  # tighter than the ELBO
    assert ((exact - bound).abs() < gap).all()


def _orthogonal_linear_gaussian() -> tuple[VAE, torch.Tensor, torch.Tensor]:
    # W^T W diagonal makes the posterior covariance diagonal, so q can be the exact posterior
    weight = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    bias = torch.tensor([0.5, -0.5, 0.25, 0.0], dtype=torch.float64)
    posterior_var = 1.0 / (1.0 + (weight**2).sum(0))
    return _linear_gaussian_vae(weight, bias, posterior_var), weight, bias


@pytest.mark.parametrize("num_samples", [1, 7])
def test_iwae_is_exact_when_q_is_the_posterior(num_samples):
    # every importance weight p(x, z) / q(z|x) equals p(x), whatever the noise
    model, weight, bias = _orthogonal_linear_gaussian()
    x = torch.randn(5, 4, generator=_gen(2), dtype=torch.float64)
    with torch.no_grad():
        bound = iwae_bound(model, x, num_samples=num_samples, generator=_gen(3))
    torch.testing.assert_close(bound, _exact_log_px(x, weight, bias))


def test_iwae_does_not_change_training_mode_or_disable_gradients():
    model, x = _vae(), _data(0, 2)
    model.train()
    bound = iwae_bound(model, x, num_samples=3, reduction="mean")
    bound.backward()
    assert model.training
    assert model.decoder.out.weight.grad is not None


def test_iwae_bad_arguments():
    model, x = _vae(), _data(0, 2)
    with pytest.raises(ValueError, match=r"num_samples must be >= 1, got 0"):
        iwae_bound(model, x, num_samples=0)
    with pytest.raises(TypeError, match=r"num_samples must be an int, got float"):
        iwae_bound(model, x, num_samples=2.0)
    with pytest.raises(ValueError, match=r"chunk_size must be >= 1, got 0"):
        iwae_bound(model, x, num_samples=2, chunk_size=0)
    with pytest.raises(ValueError, match=r"reduction must be one of .* got 'avg'"):
        iwae_bound(model, x, num_samples=2, reduction="avg")
    with pytest.raises(
        TypeError,
        match=r"the IWAE bound needs a model with .*encode method and a decode method and a "
        r"likelihood attribute; Linear has none",
    ):
        iwae_bound(nn.Linear(2, 2), x, num_samples=2)
    with pytest.raises(TypeError, match=r"x must have a floating-point dtype, got torch.int64"):
        iwae_bound(model, torch.ones(2, 6, dtype=torch.int64), num_samples=2)
    with pytest.raises(ValueError, match=r"x must have a batch dimension \(B, \*\), got a scalar"):
        iwae_bound(model, torch.tensor(1.0, dtype=torch.float64), num_samples=2)

    class BadEncoder(nn.Module):
        def forward(self, x):
            return x[:1, :3], x[:1, :3]

    bad = VAE(BadEncoder(), MLPDecoder(3, 4, 6, dtype=torch.float64))
    with pytest.raises(
        ValueError,
        match=r"the encoder \(BadEncoder\) must return mean of shape \(B, latent_dim\) = "
        r"\(2, 3\), got \(1, 3\)",
    ):
        iwae_bound(bad, x, num_samples=2)


# ----------------------------------------------------------------------------- evaluate_vae


def _narrow_posterior_vae(seed: int) -> VAE:
    # log_var = -60: std ~ 1e-13, so z = mean and the single-sample ELBO ignores the noise
    model = _vae(seed)
    with torch.no_grad():
        model.encoder.log_var_head.weight.zero_()
        model.encoder.log_var_head.bias.fill_(-60.0)
    return model


@settings(deadline=None, max_examples=20)
@given(seed=SEEDS, sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4))
def test_evaluate_vae_weights_batches_by_their_size(seed, sizes):
    model = _narrow_posterior_vae(seed % 5)
    x = _data(seed, sum(sizes))
    split = evaluate_vae(model, list(torch.split(x, sizes)))
    whole = evaluate_vae(model, [x])
    per_example = model.loss(x, reduction="none")
    assert split.num_examples == whole.num_examples == sum(sizes)
    for name in ("negative_elbo", "reconstruction_loss", "kl", "bits_per_dim"):
        assert math.isclose(getattr(split, name), getattr(whole, name), rel_tol=1e-12), name
    assert math.isclose(whole.negative_elbo, per_example.loss.mean().item(), rel_tol=1e-12)
    assert math.isclose(whole.kl, per_example.kl.mean().item(), rel_tol=1e-12)


def test_evaluate_vae_weights_the_iwae_bound_by_batch_size():
    model, weight, bias = _orthogonal_linear_gaussian()
    x = torch.randn(9, 4, generator=_gen(4), dtype=torch.float64)
    split = evaluate_vae(model, torch.split(x, [5, 1, 3]), iwae_samples=4, generator=_gen(5))
    exact_nll = -_exact_log_px(x, weight, bias).mean().item()
    assert math.isclose(split.iwae_nll, exact_nll, rel_tol=1e-12)
    assert math.isclose(split.iwae_bits_per_dim, exact_nll / (4 * math.log(2)), rel_tol=1e-12)
    assert split.iwae_samples == 4


def test_evaluate_vae_reports_consistent_numbers_and_accepts_labelled_batches():
    model, x = _vae(1), _data(1, 7)
    labels = torch.arange(7)
    plain = evaluate_vae(model, [x[:4], x[4:]], iwae_samples=20, generator=_gen(0))
    labelled = evaluate_vae(
        model, [(x[:4], labels[:4]), (x[4:], labels[4:])], iwae_samples=20, generator=_gen(0)
    )
    assert isinstance(plain, VAEEvaluation)
    assert plain == labelled
    assert math.isclose(plain.negative_elbo, plain.reconstruction_loss + plain.kl)
    assert math.isclose(plain.bits_per_dim, plain.negative_elbo / (6 * math.log(2)))
    assert math.isclose(plain.iwae_bits_per_dim, plain.iwae_nll / (6 * math.log(2)))
    assert plain.values_per_example == 6
    without = evaluate_vae(model, [x])
    assert without.iwae_nll is None
    assert without.iwae_bits_per_dim is None
    assert without.iwae_samples == 0


def test_evaluate_vae_counts_values_of_images():
    torch.manual_seed(0)
    model = VAE(MLPEncoder(12, 8, 2), MLPDecoder(2, 8, 12, out_shape=(3, 2, 2)))
    result = evaluate_vae(model, [torch.rand(3, 3, 2, 2)])
    assert result.values_per_example == 12


def test_evaluate_vae_restores_every_submodule_mode_and_grad_mode():
    model, x = _vae(), _data(0, 3)
    model.train()
    model.decoder.eval()
    seen = []
    original_decode = model.decode

    def spy(z):
        seen.append((model.training, model.decoder.training, torch.is_grad_enabled()))
        return original_decode(z)

    model.decode = spy
    evaluate_vae(model, [x], iwae_samples=2)
    assert seen
    assert all(mode == (False, False, False) for mode in seen)
    assert model.training
    assert model.encoder.training
    assert not model.decoder.training
    assert torch.is_grad_enabled()
    model.eval()
    evaluate_vae(model, [x])
    assert not model.training


def test_evaluate_vae_restores_mode_after_an_error():
    model = _vae()
    model.train()
    with pytest.raises(ValueError, match=r"every example must have the same number of values"):
        evaluate_vae(model, [_data(0, 2), torch.rand(2, 3, dtype=torch.float64)])
    assert model.training


def test_evaluate_vae_bad_arguments():
    model, x = _vae(), _data(0, 2)
    with pytest.raises(ValueError, match=r"iwae_samples must be >= 0 .* got -1"):
        evaluate_vae(model, [x], iwae_samples=-1)
    with pytest.raises(TypeError, match=r"iwae_samples must be an int, got bool"):
        evaluate_vae(model, [x], iwae_samples=True)
    with pytest.raises(ValueError, match=r"iwae_chunk_size must be >= 1 or None, got 0"):
        evaluate_vae(model, [x], iwae_samples=2, iwae_chunk_size=0)
    with pytest.raises(
        TypeError,
        match=r"evaluate_vae needs a model with .*encode method and a decode method and a "
        r"likelihood attribute; Linear has none",
    ):
        evaluate_vae(nn.Linear(2, 2), [x])
    with pytest.raises(ValueError, match=r"batches must yield at least one example, got none"):
        evaluate_vae(model, [])
    with pytest.raises(
        TypeError, match=r"batches must yield tensors x or tuples \(x, y\), got list"
    ):
        evaluate_vae(model, [[[0.5] * 6]])
    with pytest.raises(TypeError, match=r"x \(batch 1\) must have a floating-point dtype"):
        evaluate_vae(model, [x, torch.ones(2, 6, dtype=torch.int64)])
    with pytest.raises(ValueError, match=r"x \(batch 0\) must have shape \(B, \*\)"):
        evaluate_vae(model, [torch.rand(6, dtype=torch.float64)])
    with pytest.raises(
        ValueError, match=r"every example must have the same number of values, got 6 before and 3"
    ):
        evaluate_vae(model, [x, torch.rand(2, 3, dtype=torch.float64)])


def test_model_without_parameters_is_rejected():
    class Empty(nn.Module):
        latent_dim = 2

        def forward(self, x):
            return x

    with pytest.raises(
        ValueError, match=r"cannot tell the device of VAE: it has no parameter and no buffer"
    ):
        evaluate_vae(VAE(Empty(), Empty()), [torch.rand(2, 2)])


# ------------------------------------------------------------------------- evaluate_model


class _StandInQuantizer(nn.Module):
    """Nearest-code quantizer by brute force, (B, D, h, w) in, for tests only.

    It follows the quantizer contract with no base class; its one term, ``distance``, is
    the mean squared distance of the inputs to their codes.
    """

    def __init__(self, codebook_size: int, embedding_dim: int) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.codebook = nn.Parameter(torch.randn(codebook_size, embedding_dim))
        self.fail = False  # raise in forward, to fake a broken quantizer

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        rows = inputs.permute(0, 2, 3, 1)  # (B, h, w, D)
        distances = (rows.unsqueeze(-2) - self.codebook).pow(2).sum(-1)  # (B, h, w, K)
        return distances.argmin(-1)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return self.codebook[indices].permute(0, 3, 1, 2)

    def forward(self, inputs: torch.Tensor) -> QuantizerOutput:
        if self.fail:
            raise RuntimeError("the stand-in quantizer failed")
        indices = self.encode(inputs)
        quantized = self.decode(indices)
        distance = (inputs - quantized).pow(2).mean()
        counts = torch.bincount(indices.flatten(), minlength=self.codebook_size).float()
        return QuantizerOutput(quantized, indices, distance, {"distance": distance}, counts)


def _quantizers() -> list:
    return [
        pytest.param(_StandInQuantizer, id="stand-in"),
        pytest.param(VectorQuantizer, id="real"),
    ]


@pytest.mark.parametrize("make_quantizer", _quantizers())
def test_evaluate_model_of_a_vqvae_on_a_constructed_case(make_quantizer):
    # Identity encoder and decoder: x (B, 2, h, w) is its own latent grid and the
    # reconstruction is the chosen code. Codes 0..7 sit at (10 i, 0); every latent vector is
    # a code plus (0.1, -0.1), so it picks that code and the squared error is 0.01 per value.
    quantizer = make_quantizer(8, 2)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[10.0 * i, 0.0] for i in range(8)]))
    model = VQVAE(nn.Identity(), quantizer, nn.Identity())
    # codes used: 1, 3, 4, 6, each 6 times over 2 batches (2 and 1 images of 2x2 and 4 rows)
    chosen = torch.tensor([1, 3, 4, 6]).repeat(6)  # 24 positions = 3 images x 2 x 4
    grid = torch.stack([10.0 * chosen + 0.1, torch.full_like(chosen, -0.1, dtype=torch.float32)])
    x = grid.reshape(2, 3, 2, 4).permute(1, 0, 2, 3).contiguous()  # (3, 2, 2, 4)
    result = evaluate_model(model, [x[:2], (x[2:], torch.zeros(1))])
    assert isinstance(result, Evaluation)
    assert math.isclose(result.mse, 0.01, rel_tol=1e-4)
    assert math.isclose(result.psnr, 20.0, rel_tol=1e-4)  # 10 log10(1 / 0.01)
    assert math.isclose(result.perplexity, 4.0, rel_tol=1e-6)  # uniform over m = 4 codes
    assert result.fraction_used == 0.5
    assert result.counts.tolist() == [0, 6, 0, 6, 6, 0, 6, 0]
    assert result.counts.dtype == torch.float64
    assert result.num_examples == 3
    # every term is a per-example mean; the quantizer's terms are logged by their names
    terms = result.terms
    assert math.isclose(terms["reconstruction_loss"], 0.01, rel_tol=1e-4)
    assert math.isclose(terms["loss"], terms["reconstruction_loss"] + terms["quantizer_loss"])
    if make_quantizer is VectorQuantizer:
        # codebook = commitment = 0.01 per value; quantizer loss = 0.01 + 0.25 x 0.01
        assert sorted(terms) == [
            "codebook", "commitment", "loss", "quantizer_loss", "reconstruction_loss",
        ]  # fmt: skip
        assert math.isclose(terms["codebook"], 0.01, rel_tol=1e-4)
        assert math.isclose(terms["commitment"], 0.01, rel_tol=1e-4)
        assert math.isclose(terms["quantizer_loss"], 0.0125, rel_tol=1e-4)
    else:
        assert sorted(terms) == ["distance", "loss", "quantizer_loss", "reconstruction_loss"]
        assert math.isclose(terms["distance"], 0.01, rel_tol=1e-4)
        assert math.isclose(terms["quantizer_loss"], 0.01, rel_tol=1e-4)
    assert result.as_dict() == {
        "num_examples": 3, **terms, "mse": result.mse, "psnr": result.psnr,
        "fraction_used": 0.5, "perplexity": result.perplexity,
    }  # fmt: skip


def test_evaluate_model_perplexity_of_uneven_usage_and_data_range():
    quantizer = _StandInQuantizer(4, 1)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0], [1.0], [2.0], [3.0]]))
    model = VQVAE(nn.Identity(), quantizer, nn.Identity())
    x = torch.tensor([0.0, 0.0, 0.0, 1.0, 3.0, 3.0]).reshape(1, 1, 2, 3) + 0.5
    x = x - 0.5 * (x > 0.5)  # the first three stay 0.5 (-> code 0), the rest are exact
    result = evaluate_model(model, [x], data_range=2.0)
    probs = torch.tensor([3.0, 1.0, 0.0, 2.0]) / 6
    expected = torch.distributions.Categorical(probs=probs).entropy().exp().item()
    assert math.isclose(result.perplexity, expected, rel_tol=1e-6)
    assert result.fraction_used == 0.75
    assert math.isclose(result.mse, 3 * 0.25 / 6, rel_tol=1e-6)
    assert math.isclose(result.psnr, 10 * math.log10(4 / result.mse), rel_tol=1e-6)


def test_evaluate_model_perfect_reconstruction_has_infinite_psnr():
    quantizer = _StandInQuantizer(2, 1)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0], [1.0]]))
    model = VQVAE(nn.Identity(), quantizer, nn.Identity())
    result = evaluate_model(model, [torch.tensor([0.0, 1.0]).reshape(1, 1, 1, 2)])
    assert result.mse == 0.0
    assert result.psnr == math.inf


@pytest.mark.parametrize("ema", [False, True])
def test_evaluate_model_changes_no_state_and_restores_training_mode(ema):
    torch.manual_seed(0)
    model = VQVAE(
        ConvEncoder(3, 8, 4), VectorQuantizer(16, 4, ema=ema), ConvDecoder(4, 8, 3),
        grid_shape=(2, 2),  # known: a first forward would read it off the batch (state_dict too)
    )  # fmt: skip
    model.train()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    batches = [torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8)]
    result = evaluate_model(model, batches)
    assert model.training
    assert torch.is_grad_enabled()
    # usage is no state: nothing (parameters, EMA codebook and statistics) may move
    after = model.state_dict()
    assert after.keys() == before.keys()
    for name, value in after.items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0, msg=name)
    assert int(result.counts.sum()) == 5 * 2 * 2
    assert 1.0 <= result.perplexity <= 16.0
    assert result.fraction_used == float((result.counts > 0).sum()) / 16
    expected = {"loss", "reconstruction_loss", "quantizer_loss", "commitment"}
    assert set(result.terms) == (expected if ema else expected | {"codebook"})


class _Terms(NamedTuple):
    loss: torch.Tensor
    parts: dict[str, torch.Tensor]


class _ProtocolModel(nn.Module):
    """A model by protocol only: per-example loss ``scale * mean(x)``, plus a label term."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0, dtype=torch.float64))
        self.seen_labels: list[torch.Tensor | None] = []

    def loss(self, x: torch.Tensor, *, labels: torch.Tensor | None = None) -> _Terms:
        self.seen_labels.append(labels)
        per_example = self.scale * x.flatten(1).mean(1)
        label_term = x.new_zeros(()) if labels is None else labels.double().mean()
        return _Terms(per_example.mean(), {"mean": x.mean(), "label": label_term})


def test_evaluate_model_of_any_protocol_model_weights_batches_by_size_and_passes_labels():
    model = _ProtocolModel()
    x = torch.rand(7, 3, dtype=torch.float64, generator=_gen(0))
    labels = torch.arange(7)
    result = evaluate_model(model, [(x[:5], labels[:5]), (x[5:], labels[5:])])
    assert result.num_examples == 7
    assert math.isclose(result.terms["loss"], 2 * x.mean().item(), rel_tol=1e-12)
    assert math.isclose(result.terms["mean"], x.mean().item(), rel_tol=1e-12)
    assert math.isclose(result.terms["label"], 3.0, rel_tol=1e-12)  # mean of 0..6
    assert [t.tolist() for t in model.seen_labels] == [[0, 1, 2, 3, 4], [5, 6]]
    # no reconstruct and no code counts: neither MSE nor code usage
    assert (result.mse, result.psnr, result.fraction_used, result.perplexity) == (None,) * 4
    assert result.counts is None
    assert result.as_dict() == {"num_examples": 7, **result.terms}


def test_evaluate_model_bad_arguments():
    quantizer = _StandInQuantizer(4, 1)
    model = VQVAE(nn.Identity(), quantizer, nn.Identity())
    x = torch.rand(1, 1, 2, 2)
    with pytest.raises(TypeError, match=r"evaluation needs a model with a loss method; Linear"):
        evaluate_model(nn.Linear(2, 2), [x])
    with pytest.raises(
        TypeError,
        match=r"quantizer \(Linear\) does not follow the quantizer contract: it has no "
        r"codebook_size, encode, decode",
    ):
        VQVAE(nn.Identity(), nn.Linear(1, 1), nn.Identity())
    with pytest.raises(ValueError, match=r"data_range must be a positive finite number, got 0"):
        evaluate_model(model, [x], data_range=0)
    with pytest.raises(ValueError, match=r"batches must yield at least one example, got none"):
        evaluate_model(model, iter([]))
    model.train()
    quantizer.fail = True
    with pytest.raises(RuntimeError, match=r"the stand-in quantizer failed"):
        evaluate_model(model, [x])
    assert model.training
    assert quantizer.training

    class Shrinking(_ProtocolModel):
        def reconstruct(self, x):
            return x[:, :1]

    with pytest.raises(
        ValueError,
        match=r"reconstruction must have the shape of x \(1, 2\), got \(1, 1\) in batch 0",
    ):
        evaluate_model(Shrinking(), [torch.rand(1, 2, dtype=torch.float64)])


# ---------------------------------------------------------------------- helpers


@settings(deadline=None, max_examples=40)
@given(used=st.integers(1, 12), unused=st.integers(0, 12), each=st.integers(1, 1000))
def test_usage_of_uniform_counts_is_the_number_of_codes_used(used, unused, each):
    fraction, perplexity = code_usage(torch.tensor([each] * used + [0] * unused))
    assert fraction == used / (used + unused)
    assert math.isclose(perplexity, used, rel_tol=1e-12)


@settings(deadline=None, max_examples=40)
@given(counts=st.lists(st.integers(0, 50), min_size=1, max_size=10).filter(any))
def test_usage_perplexity_matches_categorical_entropy(counts):
    counts_t = torch.tensor(counts, dtype=torch.float64)
    expected = torch.distributions.Categorical(probs=counts_t / counts_t.sum()).entropy().exp()
    fraction, perplexity = code_usage(counts_t)
    assert isinstance(perplexity, float)
    assert math.isclose(perplexity, expected.item(), rel_tol=1e-12)
    assert fraction == sum(c > 0 for c in counts) / len(counts)
    # any real dtype reads the same
    for dtype in (torch.int64, torch.int32, torch.float32):
        assert code_usage(counts_t.to(dtype)) == pytest.approx((fraction, perplexity), rel=1e-6)


def test_usage_of_stages_is_the_mean_over_stages():
    fraction, perplexity = code_usage(torch.tensor([[1, 1, 0, 0], [5, 0, 0, 0]]))
    assert fraction == (0.5 + 0.25) / 2
    assert math.isclose(perplexity, (2.0 + 1.0) / 2, rel_tol=1e-12)


def test_usage_edge_cases_and_errors():
    assert code_usage(torch.zeros(5)) == (0.0, 1.0)
    assert code_usage(torch.tensor([0, 9, 0])) == (1 / 3, 1.0)
    with pytest.raises(TypeError, match=r"counts must be a torch.Tensor, got list"):
        code_usage([1, 2])
    with pytest.raises(TypeError, match=r"counts must have a real dtype, got torch.bool"):
        code_usage(torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"counts must have a real dtype, got torch.complex64"):
        code_usage(torch.ones(3, dtype=torch.complex64))
    with pytest.raises(
        ValueError, match=r"counts must have shape \(K,\) or \(S, K\) with K >= 1, got \(2, 2, 2\)"
    ):
        code_usage(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match=r"counts must have shape .* got \(0,\)"):
        code_usage(torch.ones(0))


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    assert bits_per_dim(100.0, 3072) == pytest.approx(100.0 / (3072 * math.log(2)))
    nats = torch.tensor([0.0, 2 * 3 * math.log(2)], dtype=torch.float64)
    torch.testing.assert_close(bits_per_dim(nats, 3), torch.tensor([0.0, 2.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"num_values must be >= 1, got 0"):
        bits_per_dim(1.0, 0)
    with pytest.raises(TypeError, match=r"num_values must be an int, got float"):
        bits_per_dim(1.0, 3.0)
    with pytest.raises(TypeError, match=r"nats must be a float or a tensor, got str"):
        bits_per_dim("1", 3)
    with pytest.raises(TypeError, match=r"nats must have a floating-point dtype, got torch.int64"):
        bits_per_dim(torch.tensor([1]), 3)


def test_active_units_counts_the_dimensions_whose_posterior_mean_varies():
    from genlatent.metrics import active_units

    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.0, 0.05, 0.2, 1.0, 3.0])  # std: var 0, 0.0025, 0.04, 1, 9
    means = torch.randn(2000, 5, generator=generator) * scales + 7.0
    centred = means.double() - means.double().mean(dim=0)
    variance = centred.square().sum(dim=0) / (means.shape[0] - 1)  # Cov_x, unbiased
    assert active_units(means) == int((variance > 1e-2).sum()) == 3
    assert active_units(means, threshold=2.0) == int((variance > 2.0).sum()) == 1


def test_active_units_needs_a_matrix_of_two_examples_or_more():
    from genlatent.metrics import active_units

    with pytest.raises(ValueError, match=r"means must have shape \(N, D\) with N >= 2"):
        active_units(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"means must have shape \(N, D\)"):
        active_units(torch.zeros(4))
