"""Fixtures shared by the prior tests: a seeded builder of small priors, one torch thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from genlatent.priors import PixelCNNPrior, TransformerPrior

Prior = TransformerPrior | PixelCNNPrior


@pytest.fixture(scope="package", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models run faster on one thread, and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _make_prior(
    kind: str,
    codebook_size: int,
    grid_shape: tuple[int, int],
    *,
    seed: int = 0,
    num_classes: int | None = None,
    dtype: torch.dtype = torch.float64,
    **kwargs,
) -> Prior:
    """A small prior whose initialisation depends only on ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "transformer":
            options = {"layers": 2, "heads": 2, "dim": 16, **kwargs}
            return TransformerPrior(
                codebook_size, grid_shape, num_classes=num_classes, dtype=dtype, **options
            )
        if kind == "pixelcnn":
            options = {"channels": 8, "layers": 3, **kwargs}
            return PixelCNNPrior(
                codebook_size, grid_shape, num_classes=num_classes, dtype=dtype, **options
            )
    raise ValueError(f"unknown prior kind {kind!r}")


@pytest.fixture(scope="session")
def make_prior() -> Callable[..., Prior]:
    return _make_prior
