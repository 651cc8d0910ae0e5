"""The negative evidence lower bound of a VAE with a Gaussian posterior."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from genlatent._deprecation import add_renamed_field
from genlatent._validation import check_finite, check_floating, check_reduction
from genlatent.functional._reduce import reduce_batch
from genlatent.functional.gaussian import gaussian_kl
from genlatent.functional.likelihood import (
    check_decoder_output,
    check_likelihood,
    log_likelihood,
)

__all__ = ["VAELoss", "vae_loss"]


class VAELoss(NamedTuple):
    """The objective a VAE minimises, and the true negative ELBO beside it.

    ``loss`` is what the options of `vae_loss` (``beta``, ``free_bits``, warm-up,
    ``capacity``) or the IWAE objective (`iwae_loss`) make of the bound; the other three
    fields are always the plain ELBO's terms, so evaluation and the choice of a best
    checkpoint can compare runs on the true bound: the trainer uses ``elbo_loss`` for
    that when a model's loss has it. All four are reduced the same way.
    """

    loss: torch.Tensor
    """The quantity to minimise: ``reconstruction_loss + beta * kl`` by default."""
    reconstruction_loss: torch.Tensor
    r"""$-\log p(x \mid z)$ summed over every data dimension, in nats."""
    kl: torch.Tensor
    r"""$\mathrm{KL}(q(z \mid x) \,\Vert\, \mathcal{N}(0, I))$ summed over the latent, in nats
    (under another prior, its Monte Carlo estimate $\log q(z \mid x) - \log p(z)$)."""
    elbo_loss: torch.Tensor
    """``reconstruction_loss + kl``: the true negative ELBO, whatever ``loss`` optimises."""


# Old names of 0.1, kept for one release (see docs/guides/migration.md).
add_renamed_field(VAELoss, "reconstruction", "reconstruction_loss")


def vae_loss(
    x: torch.Tensor,
    decoder_output: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    *,
    beta: float = 1.0,
    free_bits: float = 0.0,
    warmup_steps: int = 0,
    step: int | None = None,
    capacity: float | None = None,
    gamma: float | None = None,
    kl: torch.Tensor | None = None,
    likelihood: str = "bernoulli",
    reduction: str = "mean",
) -> VAELoss:
    r"""Negative ELBO: reconstruction term plus $\beta$ times the KL to the prior.

    For one example, with $z \sim q(z \mid x) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)$,

    $$\mathcal{L}(x) = \underbrace{-\log p(x \mid z)}_{\text{reconstruction}}
      + \beta\,\underbrace{\mathrm{KL}(q(z \mid x) \,\Vert\, \mathcal{N}(0, I))}_{\text{kl}}
      \;\ge\; -\log p(x) \quad (\beta = 1).$$

    Both terms are **summed** over their dimensions (every pixel, every latent unit), as the
    bound requires; ``reduction`` then acts over the batch only. With ``beta=1`` and
    ``reduction="sum"`` this equals the tutorial's loss
    ``F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") + KLD``, but is
    computed from logits, so saturated decoders give finite values.

    **Options** change only ``loss``; ``reconstruction_loss``, ``kl`` and ``elbo_loss``
    stay the plain ELBO's. Applied in this order to the KL term, with
    $\mathrm{KL}_{bd}$ the KL of latent dimension $d$ of example $b$:

    1. ``free_bits`` $= \lambda$ (Kingma et al. 2016, eq. 15, one group per latent
       dimension): dimension $d$ costs $\max(\lambda, \frac{1}{B}\sum_b \mathrm{KL}_{bd})$,
       the KL of the batch mean. Example $b$ is charged $\mathrm{KL}_{bd}$ where that
       batch mean is at least $\lambda$ and the constant $\lambda$ where it is below,
       so the per-example terms average to the formula and the gradient of a dimension
       below the threshold is exactly zero.
    2. Warm-up (Sønderby et al. 2016): with ``warmup_steps`` $= N > 0$ the KL weight is
       $\beta \min(1, t / N)$ at ``step`` $= t$: 0 at the first step, linear, $\beta$
       from step $N$ on. ``step=None`` (an evaluation) means after the warm-up.
    3. ``capacity`` $= C$ (Burgess et al. 2018, eq. 8): the KL term becomes
       $\gamma\,\lvert \mathrm{KL} - C_t \rvert$ per example, with ``gamma`` $= \gamma$
       (1000 when not given, their choice) in place of $\beta$; with ``warmup_steps``,
       $C_t = C \min(1, t / N)$ grows linearly from 0, as they anneal it.

    Args:
        x: the data, in $[0, 1]$ for the Bernoulli likelihoods.
        decoder_output: the likelihood's parameters for ``x`` (see `log_likelihood`):
            Bernoulli logits, or with ``likelihood="gaussian"`` the mean of a
            unit-variance Gaussian.
        mean: the posterior mean $\mu$.
        log_var: the posterior log-variance $\log\sigma^2$.
        beta: weight of the KL term ($\beta$-VAE, Higgins et al. 2017), at least 0;
            1 gives the ELBO.
        free_bits: $\lambda \ge 0$, nats per latent dimension; 0 turns it off.
        warmup_steps: $N \ge 0$ steps of linear KL warm-up; 0 turns it off.
        step: $t \ge 0$, the global training step, read only with ``warmup_steps``.
        capacity: $C \ge 0$ nats, the KL target of Burgess et al.; ``None`` turns it off.
        gamma: $\gamma \ge 0$, the weight of $\lvert \mathrm{KL} - C_t \rvert$; only
            with ``capacity``.
        kl: a per-example KL $(B,)$ to use instead of the closed form to
            $\mathcal{N}(0, I)$: the Monte Carlo estimate
            $\log q(z \mid x) - \log p(z)$ under another prior (`VampPrior`). Not with
            ``free_bits``, which needs the KL of each latent dimension.
        likelihood: a name `log_likelihood` takes, e.g. ``"bernoulli"`` (binary cross-entropy
            from logits) or ``"gaussian"`` (unit variance: half the squared error plus
            $\tfrac{1}{2}\log 2\pi$ per value).
        reduction: ``"none"`` gives one value per example $(B,)$, ``"sum"`` adds them,
            ``"mean"`` averages them (nats per example, the usual number to report).

    Returns:
        ``VAELoss(loss, reconstruction_loss, kl, elbo_loss)``.

    Raises:
        TypeError: if an input is not a floating-point tensor, or ``warmup_steps`` or
            ``step`` is not an int.
        ValueError: if the shapes disagree, ``likelihood`` or ``reduction`` is unknown,
            ``beta``, ``free_bits``, ``capacity`` or ``gamma`` is not a finite number in
            range, ``warmup_steps`` or ``step`` is negative, ``gamma`` comes without
            ``capacity`` or ``beta`` with it; while `set_validate_args` is on, also on
            NaN or infinity in an input or (Bernoulli) ``x`` outside $[0, 1]$.

    Shape:
        - x: $(B, *)$; decoder_output: $(B, P C, *)$, $P$ parameters per value
        - mean, log_var: $(B, D)$
        - outputs: $(B,)$ for ``"none"``, else $()$

    Example:
        >>> import math, torch
        >>> x = torch.rand(8, 784)
        >>> out = vae_loss(x, torch.zeros(8, 784), torch.zeros(8, 20), torch.zeros(8, 20))
        >>> math.isclose(out.loss.item(), 784 * math.log(2), rel_tol=1e-6)  # KL = 0 at the prior
        True
        >>> mean = torch.ones(8, 20)  # KL = 1/2 nat per dimension
        >>> halfway = vae_loss(x, torch.zeros(8, 784), mean, torch.zeros(8, 20),
        ...                    warmup_steps=100, step=50)
        >>> (halfway.loss - halfway.reconstruction_loss).item(), halfway.kl.item()
        (5.0, 10.0)
    """
    check_floating("x", x)
    check_floating("decoder_output", decoder_output)
    check_floating("mean", mean)
    check_floating("log_var", log_var)
    check_likelihood(likelihood)
    check_reduction(reduction)
    beta = _check_number("beta", beta, minimum=0.0)
    free_bits = _check_number("free_bits", free_bits, minimum=0.0)
    warmup_steps = _check_count("warmup_steps", warmup_steps)
    if step is not None:
        step = _check_count("step", step)
    capacity_weight = 0.0
    if capacity is not None:
        capacity = _check_number("capacity", capacity, minimum=0.0)
        capacity_weight = 1000.0 if gamma is None else _check_number("gamma", gamma, minimum=0.0)
        if beta != 1.0:
            raise ValueError(
                f"beta must be 1 when capacity is given (gamma weighs the KL term), got {beta}"
            )
    elif gamma is not None:
        raise ValueError(f"gamma applies only with capacity, got gamma={gamma!r} and no capacity")
    check_decoder_output(x, decoder_output, likelihood)
    check_finite("decoder_output", decoder_output)  # before the likelihood names it "logits"
    if kl is not None:
        check_floating("kl", kl)
        if free_bits:
            raise ValueError("free_bits needs the closed-form KL to N(0, I); got a kl tensor")
        if kl.shape != mean.shape[:1]:
            raise ValueError(
                f"kl must have shape (B,) = {tuple(mean.shape[:1])}, got {tuple(kl.shape)}"
            )
    if mean.ndim != 2 or x.ndim == 0 or mean.shape[0] != x.shape[0]:
        raise ValueError(
            f"mean must have shape (B, D) with B = x.shape[0] = {x.shape[0] if x.ndim else '?'}, "
            f"got {tuple(mean.shape)}"
        )
    reconstruction = -log_likelihood(x, decoder_output, likelihood)
    if kl is None:
        kl = gaussian_kl(mean, log_var, reduction="none")
    kl_term = kl if free_bits == 0.0 else _free_bits_kl(mean, log_var, free_bits)
    ramp = 1.0 if warmup_steps == 0 or step is None else min(1.0, step / warmup_steps)
    if capacity is None:
        loss = reconstruction + (beta * ramp) * kl_term
    else:
        loss = reconstruction + capacity_weight * (kl_term - capacity * ramp).abs()
    return VAELoss(
        loss=reduce_batch(loss, reduction),
        reconstruction_loss=reduce_batch(reconstruction, reduction),
        kl=reduce_batch(kl, reduction),
        elbo_loss=reduce_batch(reconstruction + kl, reduction),
    )


def _free_bits_kl(mean: torch.Tensor, log_var: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Per example, the free-bits KL: a dimension below the threshold charges the constant."""
    # the KL of each dimension alone: gaussian_kl over a trailing axis of size 1, (B, D)
    per_dim = gaussian_kl(mean.unsqueeze(-1), log_var.unsqueeze(-1), reduction="none")
    active = per_dim.detach().mean(dim=0) >= free_bits  # (D,), the batch-mean KL
    return torch.where(active, per_dim, torch.full_like(per_dim, free_bits)).sum(dim=-1)


def _check_number(name: str, value: object, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
    return float(value)


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value
