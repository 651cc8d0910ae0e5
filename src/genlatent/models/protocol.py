r"""The model protocol: what the trainer, evaluation, sampling and plots may ask of a model.

A model is any ``nn.Module`` with a ``loss`` method:

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
- Optional capabilities, found by method, never by class: ``reconstruct(x)`` (data-space
  reconstructions shaped like ``x``), ``sample(num, *, generator=None)`` (with
  ``labels=`` for a class-conditional model), ``encode(x)``.

`VAE` and `VQVAE` follow it like any user model would; see ``docs/extending.md``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch

__all__ = ["LossParts", "Model", "declared_keywords", "loss_parts"]

_OPTIONAL_KEYWORDS = ("labels", "step", "generator")


@runtime_checkable
class Model(Protocol):
    """The model protocol as a `typing.Protocol` (see the module docstring)."""

    def loss(self, x: torch.Tensor) -> Any: ...


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
