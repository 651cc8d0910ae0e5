r"""The two protocols everything above the models speaks: the model and the quantizer.

The ground floor of the package, beside `genlatent._validation`: it imports only torch,
so `genlatent.metrics`, `genlatent.plotting` and `genlatent.train` ask what a model or a
quantizer can do without importing any concrete class.

**The model protocol.** A model is any ``nn.Module`` with a ``loss`` method:

- ``model.loss(x)`` returns a NamedTuple or dataclass with a ``loss`` field, the scalar to
  minimise (a per-example mean). Every other 0-dim tensor field is logged by its name; a
  field holding a dict of 0-dim tensors is logged key by key; a field ``code_counts``
  (this batch's code counts, $(K,)$ or $(S, K)$) is summed over an epoch and reported as
  code usage. A field ``elbo_loss``, when present, is what evaluation and the choice of
  ``best.pt`` use instead of ``loss`` (the true bound of a model trained on a surrogate).
- ``loss`` may declare the keyword parameters ``labels`` (the batch's int64 labels
  $(B,)$), ``step`` (the global optimiser step, for schedules) and ``generator`` (the
  trainer's seeded noise source); the trainer passes each only when it is declared, read
  from the signature once.
- An optional class attribute ``loss_unit`` names what the loss terms are measured in
  (``"nats/image"``, ``"MSE"``, ``"nats/code"``...); the trainer's epoch line and
  ``genlatent eval`` print it beside each number (see `loss_unit`).
- Optional capabilities, found by method, never by class: ``reconstruct(x)`` (data-space
  reconstructions shaped like ``x``), ``sample(num, *, generator=None)`` (with
  ``labels=`` for a class-conditional model), ``encode(x)``, ``init_output_bias(mean)``
  (called by `fit` once, before a new run's first step, with the training data's mean
  example, shaped like one example, in data space: a model starts its output there, as
  `VAE` does with ``output_bias_init="mean"``). A Gaussian-latent model
  (`GaussianLatentModel`: ``encode(x) -> (mean, log_var)``, ``decode(z)``,
  ``likelihood``) also gets the IWAE bound, the ELBO evaluation and interpolations.

**Models with several optimizers** (`MultiOptimizerModel`): a model that trains more
than one set of parameters (a generator and a discriminator) declares them with
``optimizer_groups()``, each an `OptimizerGroup` with its own optimiser settings, and
takes ``group=`` in ``loss``; the trainer steps each group in turn on every batch.

**The quantizer protocol** (`Quantizer`, `QuantizerOutput`): see `genlatent.nn.Quantizer`.

`VAE` and `VQVAE` follow them like any user model would; see ``docs/extending.md``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch

__all__ = [
    "GaussianLatentModel",
    "LossParts",
    "Model",
    "MultiOptimizerModel",
    "OptimizerGroup",
    "Quantizer",
    "QuantizerOutput",
    "declared_keywords",
    "loss_parts",
    "loss_unit",
    "optimizer_groups",
]

_OPTIONAL_KEYWORDS = ("labels", "step", "generator")


@runtime_checkable
class Model(Protocol):
    """The model protocol: an ``nn.Module`` with ``loss(x)`` (see `genlatent.fit`).

    ``model.loss(x)`` returns a NamedTuple or dataclass with a ``loss`` field, the 0-dim
    scalar to minimise (a per-example mean); every other 0-dim field is logged by name,
    and ``code_counts`` is summed into code usage. ``loss`` may declare ``labels=``,
    ``step=`` and ``generator=``, passed only when declared. Optional capabilities are
    found by method: ``reconstruct(x)``, ``sample(num, *, generator=None)``,
    ``encode(x)``. `VAE`, `VQVAE` and the priors follow it; so can a user's own module,
    with no base class.

    Example:
        >>> import torch
        >>> from genlatent import VAE, MLPDecoder, MLPEncoder, Model
        >>> model = VAE(MLPEncoder(4, 8, 2), MLPDecoder(2, 8, 4))
        >>> isinstance(model, Model)  # by its loss method, not by class
        True
        >>> isinstance(torch.nn.Linear(2, 2), Model)
        False
    """

    def loss(self, x: torch.Tensor) -> Any: ...


@runtime_checkable
class GaussianLatentModel(Protocol):
    r"""A model with a Gaussian posterior $q(z \mid x)$: what the IWAE bound, `evaluate_vae`
    and latent interpolations ask for.

    ``encode(x)`` gives ``(mean, log_var)`` of shape $(B, D)$; ``decode(z)`` gives the
    decoder's output for ``likelihood`` (a name `log_likelihood` takes); calling the model with
    ``generator=`` returns an output with ``decoder_output``, ``mean`` and ``log_var``.
    An optional ``prior`` module with ``log_prob(z, encode)`` replaces $\mathcal{N}(0, I)$.
    """

    likelihood: str

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> Any: ...


@dataclass(frozen=True, init=False)
class OptimizerGroup:
    r"""One set of parameters that a model trains with an optimiser of its own.

    Each group gets its own Adam (with its own state, and its own gradient scaler under
    fp16), stepped on the loss that ``model.loss(x, group=name)`` returns. The run's
    learning rate, and any schedule of it, is scaled by ``lr_factor`` for this group.

    Attributes:
        parameters: the parameters this group's optimiser steps (each in one group only).
        lr_factor: this group's learning rate as a multiple of the run's ``lr``.
        betas: Adam's $(\beta_1, \beta_2)$ (GANs often use ``(0.5, 0.9)``, as VQGAN).
        start_step: the first global step (1 is the run's first) at which this group
            trains; before it, its loss is not computed and its optimiser does not step,
            so its parameters and optimiser state are untouched (VQGAN's ``disc_start``).

    Example:
        >>> import torch
        >>> group = OptimizerGroup(torch.nn.Linear(2, 1).parameters(), betas=(0.5, 0.9))
        >>> len(group.parameters), group.lr_factor
        (2, 1.0)
    """

    parameters: tuple[torch.nn.Parameter, ...]
    lr_factor: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    start_step: int = 0

    def __init__(
        self,
        parameters: Iterable[torch.nn.Parameter],
        *,
        lr_factor: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        start_step: int = 0,
    ) -> None:
        params = tuple(parameters)
        if not params or not all(isinstance(p, torch.nn.Parameter) for p in params):
            raise ValueError(
                "OptimizerGroup parameters must be a non-empty iterable of nn.Parameter, got "
                f"{len(params)} item(s) of type(s) {sorted({type(p).__name__ for p in params})}"
            )
        if not (isinstance(lr_factor, (int, float)) and lr_factor > 0):
            raise ValueError(f"OptimizerGroup lr_factor must be a float > 0, got {lr_factor!r}")
        if len(betas) != 2 or not all(0.0 <= float(b) < 1.0 for b in betas):
            raise ValueError(f"OptimizerGroup betas must be two floats in [0, 1), got {betas!r}")
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            raise ValueError(f"OptimizerGroup start_step must be an int >= 0, got {start_step!r}")
        object.__setattr__(self, "parameters", params)
        object.__setattr__(self, "lr_factor", float(lr_factor))
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        object.__setattr__(self, "start_step", start_step)


@runtime_checkable
class MultiOptimizerModel(Protocol):
    """A model that trains several parameter groups, each with its own optimiser.

    ``optimizer_groups()`` returns the groups by name, in the order the trainer steps them
    on every batch; ``loss(x, *, group, ...)`` returns that group's loss result (a ``loss``
    field and named terms, as for `Model`), and may declare ``labels``, ``step`` and
    ``generator`` as `Model`'s ``loss`` does.

    The choice, as taming-transformers and Lightning's manual optimisation make it: **one
    forward per group**. For each batch and each group in order, the trainer calls
    ``loss(x, group=name)``, back-propagates into that group's parameters only (the others
    have ``requires_grad`` switched off meanwhile, Lightning's ``toggle_optimizer``), and
    steps that group's optimiser; the next group's loss is computed after that step (the
    discriminator sees the generator as just updated). Each group's loss builds the graph
    it needs, no more: a discriminator's loss detaches the generated images. Under
    DistributedDataParallel a step leaves the other groups' parameters without gradients,
    so the trainer wraps such a model with ``find_unused_parameters=True``.

    Evaluation calls the first group's loss with ``step=None``, in eval mode and without
    gradients: that loss must then be computable without a graph (an adaptive weight that
    needs gradients is left out of it).

    Example:
        >>> import torch
        >>> from typing import NamedTuple
        >>> class Out(NamedTuple):
        ...     loss: torch.Tensor
        >>> class TwoParts(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.first, self.second = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        ...     def optimizer_groups(self):
        ...         return {
        ...             "first": OptimizerGroup(self.first.parameters()),
        ...             "second": OptimizerGroup(self.second.parameters(), lr_factor=0.5),
        ...         }
        ...     def loss(self, x, *, group="first"):
        ...         layer = self.first if group == "first" else self.second
        ...         return Out(layer(x).square().mean())
        >>> isinstance(TwoParts(), MultiOptimizerModel)
        True
        >>> list(optimizer_groups(TwoParts()))
        ['first', 'second']
    """

    def optimizer_groups(self) -> Mapping[str, OptimizerGroup]: ...

    def loss(self, x: torch.Tensor, *, group: str) -> Any: ...


def optimizer_groups(model: object) -> dict[str, OptimizerGroup] | None:
    """The checked parameter groups of ``model``, in its order; ``None`` for a one-optimiser model.

    Raises:
        TypeError: if ``optimizer_groups()`` returns no mapping of names to
            `OptimizerGroup`, or ``model.loss`` does not take ``group=``.
        ValueError: if it returns no group, or a parameter is in two groups.

    Example:
        >>> import torch
        >>> optimizer_groups(torch.nn.Linear(2, 2)) is None
        True
    """
    method = getattr(model, "optimizer_groups", None)
    if not callable(method):
        return None
    groups = method()
    name = type(model).__name__
    if not isinstance(groups, Mapping) or not all(
        isinstance(k, str) and isinstance(v, OptimizerGroup) for k, v in groups.items()
    ):
        raise TypeError(
            f"{name}.optimizer_groups() must return a mapping of names to OptimizerGroup, "
            f"got {type(groups).__name__}"
        )
    if not groups:
        raise ValueError(f"{name}.optimizer_groups() must return at least one group, got none")
    owner: dict[int, str] = {}
    for group, settings in groups.items():
        for parameter in settings.parameters:
            if id(parameter) in owner:
                raise ValueError(
                    f"{name}.optimizer_groups(): a parameter of shape {tuple(parameter.shape)} "
                    f"is in both {owner[id(parameter)]!r} and {group!r}; each parameter "
                    "belongs to one group"
                )
            owner[id(parameter)] = group
    loss = getattr(model, "loss", None)
    if not callable(loss) or "group" not in declared_keywords(loss, ("group",)):
        raise TypeError(
            f"{name} declares optimizer_groups() but its loss does not take group=: "
            "the trainer calls loss(x, group=name) for each group"
        )
    return dict(groups)


class LossParts(NamedTuple):
    """What the trainer reads from one ``model.loss(x)`` result."""

    loss: torch.Tensor
    """The scalar to minimise."""
    terms: dict[str, torch.Tensor]
    """Every other 0-dim tensor, by name (the ``loss`` itself not included)."""
    code_counts: torch.Tensor | None
    """This batch's code counts, if the model reports them."""


def declared_keywords(
    method: Callable[..., Any], names: tuple[str, ...] = _OPTIONAL_KEYWORDS
) -> frozenset[str]:
    """Which of ``names`` the callable accepts as keyword arguments (all of them with ``**kwargs``).

    Example:
        >>> def loss(x, *, labels=None): ...
        >>> sorted(declared_keywords(loss))
        ['labels']
    """
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):  # builtins without a signature: pass nothing optional
        return frozenset()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return frozenset(names)
    keyword_kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return frozenset(n for n in names if n in parameters and parameters[n].kind in keyword_kinds)


def _fields(result: object) -> dict[str, Any]:
    if hasattr(result, "_asdict"):
        return dict(result._asdict())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    raise TypeError(
        "model.loss must return a NamedTuple or dataclass with a 'loss' field, "
        f"got {type(result).__name__}"
    )


def _is_scalar(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.ndim == 0 and value.is_floating_point()


def loss_parts(result: object) -> LossParts:
    """Split a ``model.loss`` result into the scalar to minimise, named terms and counts.

    Raises:
        TypeError: if ``result`` is not a NamedTuple or dataclass with a 0-dim floating
            ``loss`` tensor.

    Example:
        >>> import torch
        >>> from typing import NamedTuple
        >>> class Out(NamedTuple):
        ...     loss: torch.Tensor
        ...     kl: torch.Tensor
        >>> parts = loss_parts(Out(torch.tensor(3.0), torch.tensor(1.0)))
        >>> parts.loss, parts.terms
        (tensor(3.), {'kl': tensor(1.)})
    """
    fields = _fields(result)
    loss = fields.pop("loss", None)
    if not _is_scalar(loss):
        got = (
            f"a tensor of shape {tuple(loss.shape)} and dtype {loss.dtype}"
            if isinstance(loss, torch.Tensor)
            else type(loss).__name__
        )
        raise TypeError(
            f"model.loss must return a 'loss' field holding a 0-dim floating tensor, got {got}"
        )
    counts = fields.pop("code_counts", None)
    terms: dict[str, torch.Tensor] = {}
    for name, value in fields.items():
        if _is_scalar(value):
            terms[name] = value
        elif isinstance(value, dict):
            terms.update((str(k), v) for k, v in value.items() if _is_scalar(v))
    return LossParts(loss, terms, counts if isinstance(counts, torch.Tensor) else None)


class QuantizerOutput(NamedTuple):
    """What a quantizer's ``forward`` returns.

    Attributes:
        quantized: the quantized inputs, shaped and typed like the inputs, with the
            quantizer's gradient estimator (straight-through by default) to the inputs.
        indices: the chosen codes, int64: the input shape without the channel dim
            $(B, *)$, with a trailing stage dim $(B, *, S)$ for a multi-stage quantizer.
        loss: the scalar to add to the model's loss (zero for quantizers without one),
            float32.
        terms: the named float32 scalars that make up ``loss`` or describe it (for
            example ``{"codebook": ..., "commitment": ...}``), logged by name.
        counts: how many positions chose each code in this batch (this process's batch),
            float32, $(K,)$, or $(S, K)$ per stage; each row sums to the number of positions.
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    counts: torch.Tensor


@runtime_checkable
class Quantizer(Protocol):
    """The quantizer contract as a `typing.Protocol` (see `genlatent.nn.quantizer`)."""

    codebook_size: int

    def __call__(self, inputs: torch.Tensor) -> QuantizerOutput: ...

    def encode(self, inputs: torch.Tensor) -> torch.Tensor: ...

    def decode(self, indices: torch.Tensor) -> torch.Tensor: ...


def loss_unit(model: object) -> str | None:
    """What ``model``'s loss terms are measured in: its ``loss_unit`` string, else ``None``.

    Example:
        >>> from genlatent import VAE
        >>> loss_unit(VAE), loss_unit(object())
        ('nats/image', None)
    """
    unit = getattr(model, "loss_unit", None)
    return unit if isinstance(unit, str) and unit else None
