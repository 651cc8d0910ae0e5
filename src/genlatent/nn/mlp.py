"""Fully connected encoder and decoder of the reference MNIST VAE."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from genlatent._validation import check_floating, check_input_dtype, check_positive_int
from genlatent.nn._activation import ActivationSpec, check_activation, make_activation
from genlatent.pretrained import PretrainedMixin

__all__ = ["GaussianParams", "MLPDecoder", "MLPEncoder"]


class GaussianParams(NamedTuple):
    """Parameters of a diagonal Gaussian posterior $q(z \\mid x)$."""

    mean: torch.Tensor
    """Mean $\\mu$, shape $(*, D)$."""
    log_var: torch.Tensor
    """Log-variance $\\log\\sigma^2$ (not the standard deviation), shape $(*, D)$."""


def _hidden_tuple(hidden_features: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(hidden_features, int):
        hidden_features = (hidden_features,)
    if isinstance(hidden_features, (str, bytes)) or not isinstance(hidden_features, Sequence):
        raise TypeError(
            "hidden_features must be an int or a sequence of ints, "
            f"got {type(hidden_features).__name__}"
        )
    return tuple(check_positive_int("hidden_features", h) for h in hidden_features)


def _mlp(
    in_features: int,
    hidden: tuple[int, ...],
    activation: ActivationSpec,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
) -> nn.Sequential:
    check_activation(activation)
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width, device=device, dtype=dtype)]
        layers += [make_activation(activation)]
        in_features = width
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module, PretrainedMixin):
    r"""Map data to the mean and log-variance of a diagonal Gaussian latent.

    A stack of ``Linear -> activation`` layers followed by two linear heads:

    $$h = f_L(\dots f_1(x)), \qquad \mu = W_\mu h + b_\mu, \qquad
      \log\sigma^2 = W_{\sigma} h + b_{\sigma}.$$

    The reference MNIST experiment uses ``MLPEncoder(784, (400, 400), 200)``.

    Args:
        in_features: size of one flattened input, e.g. ``784`` for 28x28 images.
        hidden_features: width of each hidden layer, an int for one layer.
        latent_dim: size $D$ of the latent.
        activation: a name, ``"leaky_relu"`` (``LeakyReLU(0.2)``, the tutorial's),
            ``"tanh"``, ``"relu"``, ``"gelu"`` or ``"silu"``; an ``nn.Module`` class such
            as ``nn.ELU``; an ``nn.Module`` (copied per layer) or a function returning one
            (these two cannot be saved by `save_pretrained`); ``None`` means
            ``"leaky_relu"``.
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a bad argument type; in ``forward``, an ``x`` that is not floating-point or
            (without autocast) not of the parameters' dtype.
        ValueError: on a size < 1 or an unknown activation name; in ``forward``, an ``x``
            without $F$ features per example.

    Shape:
        - input: $(*, F)$ with $F$ = ``in_features``, or $(B, *)$ whose non-batch
          dimensions multiply to $F$ (e.g. images $(B, 1, 28, 28)$).
        - output: ``GaussianParams(mean, log_var)``, each $(*, D)$ or $(B, D)$.

    Example:
        >>> import torch
        >>> encoder = MLPEncoder(784, (400, 400), 200)
        >>> mean, log_var = encoder(torch.rand(5, 1, 28, 28))
        >>> mean.shape, log_var.shape
        (torch.Size([5, 200]), torch.Size([5, 200]))
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | Sequence[int],
        latent_dim: int,
        *,
        activation: ActivationSpec = "leaky_relu",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        hidden = _hidden_tuple(hidden_features)
        self.hidden_features = hidden
        self.body = _mlp(in_features, hidden, activation, device, dtype)
        last = hidden[-1] if hidden else in_features
        self.mean_head = nn.Linear(last, latent_dim, device=device, dtype=dtype)
        self.log_var_head = nn.Linear(last, latent_dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> GaussianParams:
        """Return the posterior's ``GaussianParams(mean, log_var)`` for a batch ``x``."""
        check_floating("x", x)
        check_input_dtype("x", x, self.mean_head.weight)
        h = self.body(_flatten_features("x", x, self.in_features))
        return GaussianParams(self.mean_head(h), self.log_var_head(h))


class MLPDecoder(nn.Module, PretrainedMixin):
    r"""Map latents to the logits of the data distribution.

    A stack of ``Linear -> activation`` layers and a linear output layer. The output is
    unconstrained: Bernoulli logits for binary or grey-level data (apply ``sigmoid`` for
    probabilities), or a Gaussian mean for real-valued data.

    The reference MNIST experiment uses ``MLPDecoder(200, (400, 400), 784, out_shape=(1, 28, 28))``.

    Args:
        latent_dim: size $D$ of the latent.
        hidden_features: width of each hidden layer, an int for one layer.
        out_features: size of one flattened output.
        out_shape: if given, each output is reshaped to it (its product must be
            ``out_features``), e.g. ``(1, 28, 28)``.
        activation: as in `MLPEncoder`: a name (default ``"leaky_relu"``), an
            ``nn.Module`` class, a module, a function returning one, or ``None``.
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a bad argument type; in ``forward``, a ``z`` that is not floating-point or
            (without autocast) not of the parameters' dtype.
        ValueError: on a size < 1, an unknown activation name, or an ``out_shape`` whose
            product is not ``out_features``; in ``forward``, a ``z`` not shaped $(*, D)$.

    Shape:
        - input: $(*, D)$
        - output: $(*, F)$, or $(*, \text{out\_shape})$.

    Example:
        >>> import torch
        >>> decoder = MLPDecoder(200, (400, 400), 784, out_shape=(1, 28, 28))
        >>> decoder(torch.randn(5, 200)).shape
        torch.Size([5, 1, 28, 28])
    """

    def __init__(
        self,
        latent_dim: int,
        hidden_features: int | Sequence[int],
        out_features: int,
        *,
        out_shape: Sequence[int] | None = None,
        activation: ActivationSpec = "leaky_relu",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.out_features = check_positive_int("out_features", out_features)
        if out_shape is not None:
            out_shape = tuple(check_positive_int("out_shape", s) for s in out_shape)
            if math.prod(out_shape) != out_features:
                raise ValueError(
                    f"out_shape must multiply to out_features={out_features}, "
                    f"got {out_shape} (product {math.prod(out_shape)})"
                )
        self.out_shape: tuple[int, ...] | None = out_shape
        hidden = _hidden_tuple(hidden_features)
        self.hidden_features = hidden
        self.body = _mlp(latent_dim, hidden, activation, device, dtype)
        last = hidden[-1] if hidden else latent_dim
        self.out = nn.Linear(last, out_features, device=device, dtype=dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return the logits (or mean) of $p(x \\mid z)$ for latents ``z``."""
        check_floating("z", z)
        if z.ndim == 0 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have shape (*, {self.latent_dim}), got {tuple(z.shape)}")
        check_input_dtype("z", z, self.out.weight)
        logits = self.out(self.body(z))
        if self.out_shape is None:
            return logits
        return logits.reshape(*logits.shape[:-1], *self.out_shape)

    @torch.no_grad()
    def init_output_bias(self, bias: torch.Tensor) -> None:
        """Set the output layer's bias to ``bias``, one value per output (in ``out_shape``).

        With zero weights in front of it the decoder would output ``bias`` for every
        latent: `VAE.init_output_bias` starts it at the data's mean this way.

        Raises:
            ValueError: if ``bias`` does not hold ``out_features`` values.
        """
        if bias.numel() != self.out_features:
            raise ValueError(
                f"bias must hold out_features={self.out_features} values, got shape "
                f"{tuple(bias.shape)}"
            )
        self.out.bias.copy_(bias.reshape(-1))

    def extra_repr(self) -> str:
        return f"out_shape={self.out_shape}" if self.out_shape is not None else ""


def _flatten_features(name: str, x: torch.Tensor, in_features: int) -> torch.Tensor:
    """Accept ``(*, F)`` as is, flatten ``(B, *)`` whose trailing dims multiply to ``F``."""
    if x.ndim >= 1 and x.shape[-1] == in_features:
        return x
    if x.ndim >= 2 and math.prod(x.shape[1:]) == in_features:
        return x.flatten(start_dim=1)
    raise ValueError(
        f"{name} must have shape (*, {in_features}) or (B, ...) with {in_features} features "
        f"per example, got {tuple(x.shape)}"
    )
