"""Temperature, top-k and top-p filtering against brute-force references."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.priors import filter_logits
from genlatent.priors._sampling import draw

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(deadline=None, max_examples=40)


def _logits(seed: int, rows: int, codes: int) -> torch.Tensor:
    return 3 * torch.randn(rows, codes, generator=torch.Generator().manual_seed(seed))


def _kept_top_p(probs: list[float], top_p: float) -> set[int]:
    """Brute force: most likely first, add codes until the mass reaches ``top_p`` (all of
    them at ``top_p = 1``, as documented: a float sum can reach 1 before the last code)."""
    if top_p >= 1.0:
        return set(range(len(probs)))
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    kept, mass = set(), 0.0
    for i in order:
        if mass >= top_p:
            break
        kept.add(i)
        mass += probs[i]
    return kept


@SETTINGS
@given(seed=SEEDS, codes=st.integers(1, 12), top_k=st.integers(1, 15))
def test_top_k_keeps_the_k_largest(seed, codes, top_k):
    logits = _logits(seed, 3, codes)
    filtered = filter_logits(logits, top_k=top_k)
    for row, out in zip(logits.tolist(), filtered.tolist(), strict=True):
        kept = {i for i, v in enumerate(out) if v != -math.inf}
        expected = set(sorted(range(codes), key=lambda i: -row[i])[: min(top_k, codes)])
        assert kept == expected
        assert all(out[i] == row[i] for i in kept)  # kept logits are unchanged


@SETTINGS
@given(
    seed=SEEDS,
    codes=st.integers(1, 12),
    top_p=st.floats(0.01, 1.0),
    temperature=st.floats(0.2, 5.0),
)
def test_top_p_keeps_the_smallest_set_reaching_the_mass(seed, codes, top_p, temperature):
    logits = _logits(seed, 3, codes).double()
    filtered = filter_logits(logits, temperature=temperature, top_p=top_p)
    probs = torch.softmax(logits / temperature, dim=1)
    for row, out in zip(probs.tolist(), filtered.tolist(), strict=True):
        kept = {i for i, v in enumerate(out) if v != -math.inf}
        assert kept == _kept_top_p(row, top_p)


@SETTINGS
@given(seed=SEEDS, temperature=st.floats(0.05, 20.0))
def test_temperature_divides_the_logits(seed, temperature):
    logits = _logits(seed, 2, 5)
    torch.testing.assert_close(filter_logits(logits, temperature=temperature), logits / temperature)


def test_no_filter_and_half_precision():
    logits = _logits(0, 2, 6).half()
    out = filter_logits(logits, top_k=6, top_p=1.0)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, logits.float())


def test_draws_follow_the_filtered_distribution():
    """Frequencies of 40,000 draws within 5 standard errors of the filtered probabilities."""
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]]).expand(40_000, -1)
    options = {"temperature": 0.8, "top_k": 4, "top_p": 0.9}
    codes = draw(logits, generator=torch.Generator().manual_seed(0), **options)
    frequencies = torch.bincount(codes, minlength=5).double() / len(codes)
    row = logits[0].double() / 0.8
    row[4] = -math.inf  # top-k = 4
    probs = torch.softmax(row, dim=0)
    cut = _kept_top_p(probs.tolist(), 0.9)
    probs = torch.where(torch.tensor([i in cut for i in range(5)]), probs, 0.0)
    probs /= probs.sum()
    assert frequencies[probs == 0].sum() == 0
    standard_error = (probs * (1 - probs) / len(codes)).sqrt()
    assert torch.all((frequencies - probs).abs() <= 5 * standard_error + 1e-12)
