"""The variational autoencoder: an encoder to a Gaussian posterior and a decoder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, cast

import torch
from torch import nn

from genlatent._deprecation import add_renamed_field
from genlatent._validation import check_finite, check_positive_int
from genlatent.functional._dtype import at_least_float32
from genlatent.functional.gaussian import reparameterize
from genlatent.functional.importance import standard_normal_draws
from genlatent.functional.likelihood import (
    MEAN_PARAMETERIZED,
    check_likelihood,
    decoder_channels,
    fit_decoder_output,
    likelihood_mean,
    parameters_for_mean,
)
from genlatent.functional.mixture import gaussian_log_prob, gaussian_mixture_log_prob
from genlatent.losses.elbo import VAELoss, vae_loss
from genlatent.losses.iwae import iwae_loss
from genlatent.pretrained import PretrainedMixin

__all__ = ["VAE", "VAEOutput", "VampPrior"]


Encode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""An encoder as a function: data to the posterior's ``(mean, log_var)``."""


class Prior(Protocol):
    """What `VAE` asks of a ``prior`` module (`VampPrior` is one)."""

    def log_prob(self, z: torch.Tensor, encode: Encode) -> torch.Tensor: ...

    def sample(
        self, num_samples: int, encode: Encode, *, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...


class VAEOutput(NamedTuple):
    """What `VAE.forward` returns."""

    decoder_output: torch.Tensor
    """The likelihood's parameters for the sampled latent: shaped like ``x`` for Bernoulli
    logits (``likelihood="bernoulli"``) or the Gaussian mean (``"gaussian"``), with $P$
    times ``x``'s channels for a likelihood of $P$ parameters per value (see `log_likelihood`)."""
    mean: torch.Tensor
    r"""Posterior mean $\mu$, shape $(B, D)$."""
    log_var: torch.Tensor
    r"""Posterior log-variance $\log\sigma^2$, shape $(B, D)$."""
    z: torch.Tensor
    r"""The reparameterized sample $z = \mu + \sigma \odot \varepsilon$, shape $(B, D)$."""


# Old names of 0.1, kept for one release (see docs/guides/migration.md).
add_renamed_field(VAEOutput, "logits", "decoder_output")


class VampPrior(nn.Module, PretrainedMixin):
    r"""The VampPrior (Tomczak and Welling 2018): a mixture of the posteriors of $K$ pseudo-inputs.

    $$p(z) = \frac{1}{K}\sum_{k=1}^{K} q(z \mid u_k),$$

    with learned pseudo-inputs $u_k$ shaped like the data and $q$ the VAE's own encoder
    (their eq. 9), so the prior follows the aggregate posterior. Passed as
    ``VAE(..., prior=VampPrior(K, input_shape))``; the VAE then uses `log_prob` in its
    Monte Carlo KL and its IWAE weights, and `sample` in ``VAE.sample``. The pseudo-inputs
    are parameters, clamped to $[0, 1]$ where they are used (their hard-tanh), and
    initialised from $\mathcal{N}(0.05, 0.01^2)$ as in their MNIST code, or from
    ``init`` (a few training images is a good start).

    Args:
        num_components: $K \ge 1$ (500 in the paper).
        input_shape: the shape of one example, e.g. ``(1, 28, 28)`` or ``(784,)``.
        init: optional $(K, *)$ starting pseudo-inputs.
        device: where to create the pseudo-inputs.
        dtype: their dtype.

    Raises:
        TypeError: if ``num_components`` is not an int.
        ValueError: if ``num_components < 1`` or ``init`` has not the shape $(K, *)$.

    Shape:
        - pseudo_inputs: $(K, *)$

    Example:
        >>> from genlatent import MLPDecoder, MLPEncoder
        >>> _ = torch.manual_seed(0)
        >>> vae = VAE(MLPEncoder(6, 8, 2), MLPDecoder(2, 8, 6), prior=VampPrior(10, (6,)))
        >>> vae.loss(torch.rand(4, 6)).loss.shape, vae.sample(3).shape
        (torch.Size([]), torch.Size([3, 6]))
    """

    def __init__(
        self,
        num_components: int,
        input_shape: tuple[int, ...],
        *,
        init: torch.Tensor | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        shape = (check_positive_int("num_components", num_components), *input_shape)
        if init is None:
            init = torch.randn(shape, device=device, dtype=dtype) * 0.01 + 0.05
        elif tuple(init.shape) != shape:
            raise ValueError(
                f"init must have shape (num_components, *input_shape) = {shape}, "
                f"got {tuple(init.shape)}"
            )
        self.pseudo_inputs = nn.Parameter(init.detach().clone().to(device=device, dtype=dtype))

    def components(self, encode: Encode) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixture's ``(means, log_vars)``, each $(K, D)$: ``encode`` of the pseudo-inputs."""
        return encode(self.pseudo_inputs.clamp(0.0, 1.0))

    def log_prob(self, z: torch.Tensor, encode: Encode) -> torch.Tensor:
        r"""$\log p(z)$ for latents $(*, D)$, shape $(*)$ (see `gaussian_mixture_log_prob`)."""
        means, log_vars = self.components(encode)
        return gaussian_mixture_log_prob(z, means, log_vars)

    def sample(
        self, num_samples: int, encode: Encode, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw $(N, D)$ latents: a uniform component each, then its Gaussian."""
        means, log_vars = self.components(encode)
        device = means.device
        index = torch.randint(means.shape[0], (num_samples,), generator=generator, device=device)
        eps = torch.randn(
            num_samples, means.shape[1], generator=generator, device=device, dtype=means.dtype
        )
        return means[index] + torch.exp(0.5 * log_vars[index]) * eps

    def extra_repr(self) -> str:
        return f"num_components={self.pseudo_inputs.shape[0]}"


class VAE(nn.Module, PretrainedMixin):
    r"""Variational autoencoder (Kingma and Welling 2014) from any encoder and decoder.

    The encoder maps $x$ to ``(mean, log_var)`` of $q(z \mid x)$; the decoder maps $z$ to
    the parameters of $p(x \mid z)$ (logits for the default Bernoulli likelihood). The
    prior is $\mathcal{N}(0, I)$.

    Args:
        encoder: a module returning a pair ``(mean, log_var)``, each $(B, D)$, such as
            `MLPEncoder`.
        decoder: a module mapping $(B, D)$ latents to the data's shape, such as `MLPDecoder`.
        latent_dim: $D$; read from ``decoder.latent_dim`` when not given.
        likelihood: a name `log_likelihood` takes: ``"bernoulli"`` (decoder gives logits),
            ``"gaussian"`` (the mean of a unit-variance Gaussian), ``"continuous_bernoulli"``,
            ``"gaussian_learned_var"`` (mean and log-variance: twice the channels) or
            ``"discretized_logistic"`` ($3M$ times the channels; `decoder_channels` says how
            many); used by `loss`, `sample`, `reconstruct`.
        num_mixtures: $M$, the logistics per value, for ``"discretized_logistic"`` only.
        prior: ``None`` for $\mathcal{N}(0, I)$ (closed-form KL), or a `VampPrior` (any
            module with ``log_prob(z, encode)`` and ``sample(num, encode, generator=)``):
            the KL is then the single-sample Monte Carlo estimate
            $\log q(z \mid x) - \log p(z)$, and IWAE and `sample` use the prior.
        output_bias_init: what `init_output_bias` (called by `fit` before the first step
            of a new run) does to the decoder's output bias: ``"mean"`` sets it to the
            parameters of the training data's mean (`parameters_for_mean`), ``"zero"`` to
            zero, ``None`` leaves the decoder's own initialisation. ``"mean"`` and
            ``"zero"`` need a decoder with ``init_output_bias(bias)`` (`MLPDecoder` has
            it) and a likelihood in `MEAN_PARAMETERIZED`.

    Raises:
        TypeError: if ``encoder`` or ``decoder`` is not an ``nn.Module``.
        ValueError: on an unknown ``likelihood``, a ``latent_dim`` below 1 or missing,
            ``num_mixtures`` missing for ``"discretized_logistic"`` or given for another, or
            an ``output_bias_init`` that is unknown or that the decoder or likelihood cannot take.

    Example:
        >>> import torch
        >>> from genlatent import MLPDecoder, MLPEncoder
        >>> vae = VAE(MLPEncoder(784, 400, 20), MLPDecoder(20, 400, 784, out_shape=(1, 28, 28)))
        >>> x = torch.rand(16, 1, 28, 28)
        >>> vae(x).decoder_output.shape
        torch.Size([16, 1, 28, 28])
        >>> vae.loss(x).loss.shape
        torch.Size([])
        >>> vae.loss(x.flatten(1)).loss.shape  # flat inputs work too
        torch.Size([])
        >>> vae.sample(4).shape
        torch.Size([4, 1, 28, 28])
    """

    loss_unit = "nats/image"
    """What the loss terms are measured in: nats per image (summed over its pixels)."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        latent_dim: int | None = None,
        likelihood: str = "bernoulli",
        num_mixtures: int | None = None,
        prior: nn.Module | None = None,
        output_bias_init: str | None = None,
    ) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        if latent_dim is None:
            latent_dim = getattr(decoder, "latent_dim", None)
            if latent_dim is None:
                raise ValueError(
                    "latent_dim must be given when the decoder has no latent_dim attribute"
                )
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.likelihood = check_likelihood(likelihood)
        decoder_channels(likelihood, 1, num_mixtures=num_mixtures)  # checks num_mixtures
        self.num_mixtures = num_mixtures
        self.prior = prior
        self.output_bias_init = _check_output_bias_init(output_bias_init, decoder, likelihood)

    @torch.no_grad()
    def init_output_bias(self, mean: torch.Tensor) -> None:
        r"""Start the decoder's output bias from the training data's mean, as chosen at
        construction (``output_bias_init``); `fit` calls it before a new run's first step.

        With ``"mean"`` the bias becomes `parameters_for_mean` of ``mean``: the logits of
        the mean pixel for the Bernoulli, the logits whose continuous Bernoulli mean is the
        mean pixel, the mean itself for the Gaussian. Burda et al. (2016) start their
        decoders so; without it a tanh decoder spends its first epochs learning the mean
        image while its posteriors collapse. ``"zero"`` zeroes the bias; ``None`` does
        nothing.

        Args:
            mean: the training examples' mean, one example's shape $(*)$ (e.g.
                $(1, 28, 28)$), data-space values (in $[0, 1]$ for the first two).

        Raises:
            ValueError: as `parameters_for_mean` and the decoder's ``init_output_bias`` raise.
        """
        if self.output_bias_init is None:
            return
        reference = next(self.decoder.parameters())
        mean = mean.to(device=reference.device, dtype=reference.dtype)
        if self.output_bias_init == "zero":
            bias = torch.zeros_like(mean)
        else:
            bias = parameters_for_mean(mean, self.likelihood)
        cast(Any, self.decoder).init_output_bias(bias)  # checked at construction

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the posterior's ``(mean, log_var)`` for ``x``, each $(B, D)$.

        Raises:
            TypeError: if the encoder does not return a pair of tensors.
            ValueError: if ``mean`` or ``log_var`` is not $(B, D)$ with $B$ = ``x.shape[0]``,
                or (while `set_validate_args` is on) ``x`` holds NaN or infinity: the input
                is named, not the posterior it would spoil.
        """
        if isinstance(x, torch.Tensor):
            check_finite("x", x)
        return _check_posterior(self.encoder(x), x, self.latent_dim, type(self.encoder))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Return the decoder's output (logits, or a Gaussian mean) for latents ``z``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, draw one reparameterized latent per example, and decode it.

        The decoder's output is reshaped to ``x``'s layout when it holds as many values
        per example (or $P$ times as many, see `fit_decoder_output`), so flat
        $(B, 784)$ and image $(B, 1, 28, 28)$ inputs both work.
        """
        mean, log_var = self.encode(x)
        z = reparameterize(mean, log_var, generator=generator)
        return VAEOutput(fit_decoder_output(self.decode(z), x), mean, log_var, z)

    def loss(
        self,
        x: torch.Tensor,
        *,
        step: int | None = None,
        beta: float = 1.0,
        free_bits: float = 0.0,
        warmup_steps: int = 0,
        capacity: float | None = None,
        gamma: float | None = None,
        iwae_samples: int = 1,
        reduction: str = "mean",
        generator: torch.Generator | None = None,
    ) -> VAELoss:
        r"""The single-sample negative ELBO of ``x`` (`vae_loss`), or the IWAE objective.

        ``step`` is declared so that the trainer passes the global step: it drives the
        warm-up (``warmup_steps``) of `vae_loss`, whose options ``beta``, ``free_bits``,
        ``warmup_steps``, ``capacity`` and ``gamma`` this passes on. Every result carries
        ``elbo_loss``, the true negative ELBO, for evaluation and checkpoint choice.

        With ``iwae_samples`` $= K > 1$ it returns `iwae_loss`: $K$ latents per example
        (drawn as $K$ successive $(B, D)$ draws from ``generator``, the first being the
        noise of ``forward``), decoded in one call of $K \cdot B$ rows; the ELBO's
        options do not apply to it. ``iwae_samples=1`` is exactly the ELBO above. The
        objective is computed in float32 whatever the autocast dtype.

        Raises:
            TypeError: if ``iwae_samples`` is not an int, and as `vae_loss` raises.
            ValueError: if ``iwae_samples < 1``, or an ELBO option is set with
                ``iwae_samples > 1``, and as `vae_loss` raises.
        """
        iwae_samples = check_positive_int("iwae_samples", iwae_samples)
        if iwae_samples > 1:
            options = {
                "beta": (beta, 1.0),
                "free_bits": (free_bits, 0.0),
                "warmup_steps": (warmup_steps, 0),
                "capacity": (capacity, None),
                "gamma": (gamma, None),
            }
            changed = [
                f"{name}={value!r}"
                for name, (value, default) in options.items()
                if value != default
            ]
            if changed:
                raise ValueError(
                    f"{', '.join(changed)} applies to the ELBO (iwae_samples=1), "
                    f"not to the IWAE objective with iwae_samples={iwae_samples}"
                )
            return self._iwae_loss(x, iwae_samples, reduction, generator)
        out = self(x, generator=generator)
        kl = None
        if self.prior is not None:  # Monte Carlo KL at the sampled z
            z = at_least_float32(out.z)
            log_q = gaussian_log_prob(z, at_least_float32(out.mean), at_least_float32(out.log_var))
            kl = log_q - cast(Prior, self.prior).log_prob(z, self._encode_float)
        return negative_elbo(
            x, out, self.likelihood, beta=beta, free_bits=free_bits, warmup_steps=warmup_steps,
            step=step, capacity=capacity, gamma=gamma, kl=kl, reduction=reduction,
        )  # fmt: skip

    def _encode_float(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.encode(x)
        return at_least_float32(mean), at_least_float32(log_var)

    def _iwae_loss(
        self,
        x: torch.Tensor,
        num_samples: int,
        reduction: str,
        generator: torch.Generator | None,
    ) -> VAELoss:
        mean, log_var = self.encode(x)
        noise = standard_normal_draws(
            num_samples, mean.shape, generator=generator, device=mean.device, dtype=mean.dtype
        )
        z = mean + torch.exp(0.5 * log_var) * noise  # (K, B, D)
        output = fit_decoder_output(self.decode(z.flatten(0, 1)), x)
        log_prior = None
        if self.prior is not None:
            log_prior = cast(Prior, self.prior).log_prob(at_least_float32(z), self._encode_float)
        return iwae_loss(
            at_least_float32(x),
            at_least_float32(output.unflatten(0, (num_samples, mean.shape[0]))),
            at_least_float32(z),
            at_least_float32(mean),
            at_least_float32(log_var),
            noise=at_least_float32(noise),
            log_prior=log_prior,
            likelihood=self.likelihood,
            reduction=reduction,
        )

    def sample(
        self,
        num_samples: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        r"""Decode $z \sim p(z)$ ($\mathcal{N}(0, I)$, or the `VampPrior`) into data-space means.

        Returns probabilities in $[0, 1]$ for the Bernoulli likelihood (the image one
        would show), the likelihood's mean otherwise (`likelihood_mean`). Drawn on the
        model's device and dtype.

        Shape:
            - output: $(N, *)$, the decoder's output shape ($1/P$ of its channels).
        """
        check_positive_int("num_samples", num_samples)
        if self.prior is not None:
            z = cast(Prior, self.prior).sample(num_samples, self.encode, generator=generator)
        else:
            reference = next(self.decoder.parameters())
            z = torch.randn(
                num_samples,
                self.latent_dim,
                generator=generator,
                device=reference.device,
                dtype=reference.dtype,
            )
        return likelihood_mean(self.decode(z), self.likelihood, num_mixtures=self.num_mixtures)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of ``x``: a deterministic reconstruction shaped like ``x``."""
        mean, _ = self.encode(x)
        output = fit_decoder_output(self.decode(mean), x)
        return likelihood_mean(output, self.likelihood, num_mixtures=self.num_mixtures)

    def extra_repr(self) -> str:
        mixtures = "" if self.num_mixtures is None else f", num_mixtures={self.num_mixtures}"
        return f"latent_dim={self.latent_dim}, likelihood={self.likelihood!r}{mixtures}"


def negative_elbo(x: torch.Tensor, out: VAEOutput, likelihood: str, **options: Any) -> VAELoss:
    """`vae_loss` of a forward pass's output, in float32 whatever the autocast dtype.

    ``options`` are `vae_loss`'s keyword arguments (``beta``, ``step``, ``kl``, ...).
    """
    return vae_loss(
        at_least_float32(x),
        at_least_float32(out.decoder_output),
        at_least_float32(out.mean),
        at_least_float32(out.log_var),
        likelihood=likelihood,
        **options,
    )


OUTPUT_BIAS_INITS = ("mean", "zero")
"""The values of ``VAE(output_bias_init=...)`` besides ``None``."""


def _check_output_bias_init(
    output_bias_init: object, decoder: nn.Module, likelihood: str
) -> str | None:
    if output_bias_init is None:
        return None
    if output_bias_init not in OUTPUT_BIAS_INITS:
        raise ValueError(
            f"output_bias_init must be one of {OUTPUT_BIAS_INITS} or None, got {output_bias_init!r}"
        )
    if not callable(getattr(decoder, "init_output_bias", None)):
        raise ValueError(
            f"output_bias_init={output_bias_init!r} needs a decoder with an "
            f"init_output_bias(bias) method, got {type(decoder).__name__} without one"
        )
    if likelihood not in MEAN_PARAMETERIZED:
        raise ValueError(
            f"output_bias_init={output_bias_init!r} needs a likelihood in "
            f"{MEAN_PARAMETERIZED}, got {likelihood!r}"
        )
    return str(output_bias_init)


def _check_posterior(
    output: object, x: torch.Tensor, latent_dim: int, encoder: type
) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's ``(mean, log_var)``, checked to be two $(B, D)$ tensors."""
    name = encoder.__name__
    if not (
        isinstance(output, (tuple, list))
        and len(output) == 2
        and all(isinstance(t, torch.Tensor) for t in output)
    ):
        got = type(output).__name__
        if isinstance(output, torch.Tensor):
            got = f"one tensor of shape {tuple(output.shape)}"
        raise TypeError(
            f"the encoder ({name}) must return a pair (mean, log_var) of tensors, got {got}"
        )
    mean, log_var = output
    expected = (x.shape[0], latent_dim) if x.ndim else None
    for label, tensor in (("mean", mean), ("log_var", log_var)):
        if tuple(tensor.shape) != expected:
            raise ValueError(
                f"the encoder ({name}) must return {label} of shape (B, latent_dim) = "
                f"{expected}, got {tuple(tensor.shape)}"
            )
    return mean, log_var
