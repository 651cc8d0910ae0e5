"""Priors over stacked codes (B, h, w, s): one joint autoregressive model, stage fastest.

The references are the definition: the order is raster over positions with the $s$ codes
of a position in turn, so the logits of code $(i, j, k)$ may depend on exactly the codes
before it in that order, and the probabilities of every grid add up to one.
"""

from __future__ import annotations

import itertools

import pytest
import torch

KINDS = ("transformer", "pixelcnn")
GRID = (2, 2, 3)  # h, w, s


def _order(grid: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every cell of the grid in the modelled order: raster, the stage index fastest."""
    return list(itertools.product(*(range(size) for size in grid)))


def _sharpen(prior: torch.nn.Module) -> None:
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.mul_(3.0)


@pytest.mark.parametrize("kind", KINDS)
def test_each_code_depends_on_exactly_the_codes_before_it(make_prior, kind):
    prior = make_prior(kind, 4, GRID, seed=3, layers=4)
    _sharpen(prior)
    generator = torch.Generator().manual_seed(0)
    indices = torch.randint(4, (3, *GRID), generator=generator)
    order = _order(GRID)
    with torch.no_grad():
        base = prior.logits(indices)
    assert base.shape == (3, 4, *GRID)
    for t, cell in enumerate(order):
        for u, other in enumerate(order):
            changed = indices.clone()
            changed[(slice(None), *other)] = (indices[(slice(None), *other)] + 1) % 4
            with torch.no_grad():
                moved = prior.logits(changed)[(slice(None), slice(None), *cell)]
            sees = not torch.allclose(moved, base[(slice(None), slice(None), *cell)], atol=1e-12)
            if u >= t:
                assert not sees, f"the logits of {cell} see the code at {other}"
            elif kind == "transformer" or other[:2] == cell[:2]:
                # attention sees the whole prefix; a PixelCNN's view is local, but it
                # always holds the earlier stages of its own position
                assert sees, f"the logits of {cell} ignore the earlier code at {other}"


@pytest.mark.parametrize("kind", KINDS)
def test_probabilities_of_all_stacked_grids_sum_to_one(make_prior, kind):
    """K = 3 codes on a 1x2 grid of 2 stages: 81 grids."""
    grid = (1, 2, 2)
    prior = make_prior(kind, 3, grid, seed=5, num_classes=2)
    _sharpen(prior)
    every = torch.tensor(list(itertools.product(range(3), repeat=4))).reshape(-1, *grid)
    for label in (0, 1):
        with torch.no_grad():
            log_prob = prior.log_prob(every, torch.full((81,), label))
        torch.testing.assert_close(
            torch.logsumexp(log_prob, dim=0), torch.tensor(0.0, dtype=torch.float64)
        )
        assert log_prob.max() - log_prob.min() > 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_samples_have_the_stacked_shape_and_follow_the_likelihood(make_prior, kind):
    """Greedy sampling (top_k=1) picks, code after code, the argmax of `logits`."""
    prior = make_prior(kind, 5, GRID, seed=7)
    _sharpen(prior)
    samples = prior.sample(4, top_k=1, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (4, *GRID)
    assert samples.dtype == torch.long
    with torch.no_grad():
        best = prior.logits(samples).argmax(dim=1)
    assert torch.equal(samples, best)
    loss = prior.loss(samples, reduction="none")
    torch.testing.assert_close(loss.loss, -prior.log_prob(samples) / 12)


@pytest.mark.parametrize("kind", KINDS)
def test_unstacked_indices_are_refused_with_the_stacked_shape(make_prior, kind):
    prior = make_prior(kind, 5, GRID)
    with pytest.raises(
        ValueError, match=r"indices must have shape \(B, 2, 2, 3\) .*got \(4, 2, 2\)"
    ):
        prior.logits(torch.zeros(4, 2, 2, dtype=torch.long))
