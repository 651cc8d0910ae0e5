"""The quantizers a VQ-VAE preset can be built with, by name: one registration each.

A quantizer builder is a function whose first parameter is ``embedding_dim`` (the
encoder's output channels $D$) and whose keyword parameters, with their defaults,
annotations and ``Args:`` docstring, are the options it takes: the command line's flags
(``--codebook-size``, ``--levels``...), their help and the rule "applies only to" are read
from them, and an option the chosen builder does not declare is refused. A user's builder
joins with `register_quantizer`, or from the command line as ``--quantizer FILE.py:build``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import nn

from genlatent._options import parameter_options
from genlatent.nn.fsq import FSQ
from genlatent.nn.lfq import LFQ
from genlatent.nn.quantize import VectorQuantizer
from genlatent.nn.residual import ResidualVQ
from genlatent.nn.simvq import SimVQ

__all__ = [
    "QUANTIZERS",
    "build_quantizer",
    "quantizer_stages",
    "register_quantizer",
]

QuantizerBuilder = Callable[..., nn.Module]

QUANTIZERS: dict[str, QuantizerBuilder] = {}
"""The registered quantizer builders by name (``"vq"``, ``"fsq"``, ``"lfq"``, ``"rvq"``,
``"simvq"``, ``"bsq"``...)."""


def register_quantizer(
    name: str, builder: QuantizerBuilder | None = None
) -> Callable[[QuantizerBuilder], QuantizerBuilder] | QuantizerBuilder:
    """Register ``builder`` as the quantizer ``name`` (usable as a decorator).

    Raises:
        ValueError: if ``name`` is taken or not an identifier, or the builder's first
            parameter is not ``embedding_dim``.

    Example:
        >>> @register_quantizer("tiny_vq")
        ... def tiny_vq(embedding_dim: int, *, codebook_size: int = 8):
        ...     return VectorQuantizer(codebook_size, embedding_dim)
        >>> build_quantizer("tiny_vq", 4, codebook_size=16).codebook_size
        16
        >>> del QUANTIZERS["tiny_vq"]
    """

    def add(function: QuantizerBuilder) -> QuantizerBuilder:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"quantizer name must be an identifier, got {name!r}")
        if name in QUANTIZERS:
            raise ValueError(f"quantizer {name!r} is already registered")
        first = next(iter(inspect.signature(function).parameters), None)
        if first != "embedding_dim":
            raise ValueError(
                f"a quantizer builder's first parameter must be embedding_dim, got {first!r}"
            )
        QUANTIZERS[name] = function
        return function

    return add if builder is None else add(builder)


def build_quantizer(
    quantizer: str | QuantizerBuilder, embedding_dim: int, **options: Any
) -> nn.Module:
    """Build the quantizer ``quantizer`` names (or a builder function) with ``options``.

    Each option must be one the builder declares; ``embedding_dim`` is passed where it is
    declared.

    Raises:
        ValueError: for an unknown name, or options the builder does not take (each named,
            with the options it does take).

    Example:
        >>> build_quantizer("fsq", 16, levels=(8, 5, 5)).codebook_size
        200
    """
    builder = _builder(quantizer)
    unknown = sorted(set(options) - set(parameter_options(builder)))
    if unknown:
        takes = ", ".join(parameter_options(builder)) or "no options"
        raise ValueError(
            f"quantizer {_name(quantizer)!r} does not take {', '.join(unknown)} (it takes {takes})"
        )
    declared = inspect.signature(builder).parameters
    dim = {"embedding_dim": embedding_dim} if "embedding_dim" in declared else {}
    module = builder(**dim, **options)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"quantizer {_name(quantizer)!r} returned {type(module).__name__}, not an nn.Module"
        )
    return module


def _name(quantizer: str | QuantizerBuilder) -> str:
    return quantizer if isinstance(quantizer, str) else getattr(quantizer, "__name__", "builder")


def _builder(quantizer: str | QuantizerBuilder) -> QuantizerBuilder:
    if callable(quantizer):
        return quantizer
    if quantizer not in QUANTIZERS:
        raise ValueError(f"quantizer must be one of {tuple(QUANTIZERS)}, got {quantizer!r}")
    return QUANTIZERS[quantizer]


def quantizer_options(quantizer: str | QuantizerBuilder) -> Mapping[str, Any]:
    """The options the quantizer ``quantizer`` takes, as `Option`s by name."""
    return parameter_options(_builder(quantizer), skip=("embedding_dim",))


@torch.no_grad()
def quantizer_stages(quantizer: nn.Module, embedding_dim: int) -> tuple[int, ...]:
    """The trailing index dims a quantizer adds per position: ``()``, or ``(S,)`` for S stages.

    Read from the contract alone: the indices that ``encode`` gives one $(1, D, 1, 1)$ input.
    """
    probe = torch.zeros(1, embedding_dim, 1, 1)
    for parameter in quantizer.parameters():
        probe = probe.to(parameter.device)
        break
    return tuple(int(n) for n in quantizer.encode(probe).shape[3:])  # type: ignore[operator]


Distance = Literal["l2", "cosine"]
Gradient = Literal["straight_through", "rotation"]
Init = Literal["uniform", "kmeans"]


@register_quantizer("vq")
def vq(
    embedding_dim: int,
    *,
    codebook_size: int = 512,
    commitment_weight: float = 0.25,
    ema: bool = False,
    restart_dead_codes: int | None = None,
    distance: Distance = "l2",
    gradient: Gradient = "straight_through",
    init: Init = "uniform",
) -> VectorQuantizer:
    """`VectorQuantizer`, the VQ-VAE's codebook (van den Oord et al. 2017).

    Args:
        embedding_dim: code dimension $D$.
        codebook_size: number of codes $K$.
        commitment_weight: the commitment weight beta of VQ-VAE eq. 3.
        ema: update the codebook by exponential moving averages instead of gradients.
        restart_dead_codes: re-seed codes unused for this many training steps.
        distance: nearest-code distance, l2 or cosine.
        gradient: gradient estimator, straight_through or rotation (the rotation trick).
        init: codebook initialisation, uniform or kmeans (on the first batch).
    """
    return VectorQuantizer(
        codebook_size, embedding_dim, commitment_weight=commitment_weight, ema=ema,
        restart_dead_codes=restart_dead_codes, distance=distance, gradient=gradient, init=init,
    )  # fmt: skip


@register_quantizer("fsq")
def fsq(embedding_dim: int, *, levels: tuple[int, ...] = (8, 5, 5, 5)) -> FSQ:
    """`FSQ`, finite scalar quantization (Mentzer et al. 2023), projected from $D$.

    Args:
        embedding_dim: input channels $D$, projected to one channel per level.
        levels: FSQ levels per channel, e.g. 8,5,5,5 (1,000 codes).
    """
    return FSQ(levels, dim=embedding_dim)


@register_quantizer("lfq")
def lfq(embedding_dim: int, *, codebook_size: int = 512, commitment_weight: float = 0.25) -> LFQ:
    """`LFQ`, lookup-free quantization (Yu et al. 2023), projected from $D$.

    Args:
        embedding_dim: input channels $D$.
        codebook_size: number of codes $K$, a power of two (log2 K binary channels).
        commitment_weight: the commitment weight beta of VQ-VAE eq. 3.
    """
    return LFQ(codebook_size, dim=embedding_dim, commitment_weight=commitment_weight)


@register_quantizer("rvq")
def rvq(
    embedding_dim: int,
    *,
    num_quantizers: int = 4,
    codebook_size: int = 512,
    commitment_weight: float = 0.25,
    ema: bool = False,
    restart_dead_codes: int | None = None,
    gradient: Gradient = "straight_through",
    init: Init = "uniform",
) -> ResidualVQ:
    """`ResidualVQ`: stages of `VectorQuantizer`, each quantizing what the last one left.

    Args:
        embedding_dim: code dimension $D$.
        num_quantizers: residual stages $S$.
        codebook_size: number of codes $K$ per stage.
        commitment_weight: the commitment weight beta of VQ-VAE eq. 3.
        ema: update the codebooks by exponential moving averages instead of gradients.
        restart_dead_codes: re-seed codes unused for this many training steps.
        gradient: gradient estimator, straight_through or rotation (the rotation trick).
        init: codebook initialisation, uniform or kmeans (on the first batch).
    """
    return ResidualVQ(
        num_quantizers, codebook_size, embedding_dim, commitment_weight=commitment_weight,
        ema=ema, restart_dead_codes=restart_dead_codes, gradient=gradient, init=init,
    )  # fmt: skip


@register_quantizer("simvq")
def simvq(
    embedding_dim: int, *, codebook_size: int = 512, commitment_weight: float = 0.25
) -> SimVQ:
    """`SimVQ`: VQ against a frozen random codebook through a learned map (Zhu et al. 2024).

    Args:
        embedding_dim: code dimension $D$.
        codebook_size: number of codes $K$.
        commitment_weight: the commitment weight beta of VQ-VAE eq. 3.
    """
    return SimVQ(codebook_size, embedding_dim, commitment_weight=commitment_weight)


@register_quantizer("bsq")
def bsq(embedding_dim: int, *, codebook_size: int = 512, commitment_weight: float = 0.25) -> LFQ:
    """`LFQ` with ``spherical=True``: binary spherical quantization (Zhao et al. 2024).

    Args:
        embedding_dim: input channels $D$.
        codebook_size: number of codes $K$, a power of two (log2 K binary channels).
        commitment_weight: the commitment weight beta of VQ-VAE eq. 3.
    """
    return LFQ(
        codebook_size, dim=embedding_dim, commitment_weight=commitment_weight, spherical=True
    )
