"""Both priors against independent references: causality, exact likelihood, sampling."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.priors import PixelCNNPrior, PriorLoss, TransformerPrior

KINDS = ("transformer", "pixelcnn")
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(deadline=None, max_examples=20)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _codes(seed: int, batch: int, codebook_size: int, grid: tuple[int, int]) -> torch.Tensor:
    return torch.randint(codebook_size, (batch, *grid), generator=_gen(seed))


def _labels(seed: int, batch: int, num_classes: int | None) -> torch.Tensor | None:
    if num_classes is None:
        return None
    return torch.randint(num_classes, (batch,), generator=_gen(seed))


def _raster(grid: tuple[int, int]) -> list[tuple[int, int]]:
    return [(i, j) for i in range(grid[0]) for j in range(grid[1])]


# ------------------------------------------------------------------------ causality


class _EmbeddingTap:
    """Replace the output of ``prior.code_embedding`` by a leaf tensor whose gradient we read.

    Both priors read the codes only through ``code_embedding`` (asserted by the
    perturbation test below, which does not use this tap), so the gradient of the logits
    with respect to this leaf at position ``j`` is their dependence on the code ``x_j``.
    """

    def __init__(self, prior: torch.nn.Module) -> None:
        self.leaf: torch.Tensor | None = None
        self.handle = prior.code_embedding.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.leaf = output.detach().requires_grad_()
        return self.leaf


@SETTINGS
@given(
    kind=st.sampled_from(KINDS),
    height=st.integers(1, 4),
    width=st.integers(1, 4),
    codebook_size=st.integers(2, 6),
    conditional=st.booleans(),
    seed=SEEDS,
    data=st.data(),
)
def test_logits_have_zero_gradient_wrt_current_and_later_codes(
    make_prior, kind, height, width, codebook_size, conditional, seed, data
):
    grid = (height, width)
    num_classes = 3 if conditional else None
    prior = make_prior(kind, codebook_size, grid, seed=seed, num_classes=num_classes)
    indices = _codes(seed + 1, 2, codebook_size, grid)
    labels = _labels(seed + 2, 2, num_classes)
    position = data.draw(st.integers(0, height * width - 1), label="position")
    row, col = divmod(position, width)

    tap = _EmbeddingTap(prior)
    logits = prior.logits(indices, labels)
    tap.handle.remove()
    weights = torch.randn(
        logits[:, :, row, col].shape, generator=_gen(seed + 3), dtype=logits.dtype
    )
    (grad,) = torch.autograd.grad((logits[:, :, row, col] * weights).sum(), tap.leaf)
    per_code = grad.abs().sum(dim=(0, 3))  # (h, w): dependence on the code at each cell
    for t, (i, j) in enumerate(_raster(grid)):
        if t >= position:
            assert per_code[i, j].item() == 0.0, f"logits at {(row, col)} see code {(i, j)}"
    # the tap sees the dependence that must exist: the code to the left and the one above
    if col > 0:
        assert per_code[row, col - 1] > 0
    if row > 0:
        assert per_code[row - 1, col] > 0


@pytest.mark.parametrize("kind", KINDS)
def test_no_blind_spot_every_earlier_code_is_seen(make_prior, kind):
    """With enough layers the logits at each position depend on every earlier code,
    including those above and to the right, which a masked PixelCNN misses."""
    grid = (4, 4)
    prior = make_prior(kind, 5, grid, seed=1, layers=6)
    indices = _codes(0, 2, 5, grid)
    for position, (row, col) in enumerate(_raster(grid)):
        tap = _EmbeddingTap(prior)
        logits = prior.logits(indices)
        tap.handle.remove()
        (grad,) = torch.autograd.grad(logits[:, :, row, col].sum(), tap.leaf)
        seen = (grad.abs().sum(dim=(0, 3)) > 0).flatten()
        assert seen[:position].all(), f"{(row, col)} misses {(~seen[:position]).nonzero()}"
        assert not seen[position:].any()


@SETTINGS
@given(
    kind=st.sampled_from(KINDS),
    height=st.integers(1, 4),
    width=st.integers(1, 4),
    conditional=st.booleans(),
    seed=SEEDS,
    data=st.data(),
)
def test_changing_current_and_later_codes_leaves_logits_unchanged(
    make_prior, kind, height, width, conditional, seed, data
):
    grid, codebook_size = (height, width), 5
    num_classes = 3 if conditional else None
    prior = make_prior(kind, codebook_size, grid, seed=seed, num_classes=num_classes)
    indices = _codes(seed + 1, 3, codebook_size, grid)
    labels = _labels(seed + 2, 3, num_classes)
    position = data.draw(st.integers(0, height * width - 1), label="position")
    row, col = divmod(position, width)
    changed = indices.clone().flatten(1)
    changed[:, position:] = _codes(seed + 4, 3, codebook_size, grid).flatten(1)[:, position:]
    changed = changed.reshape(indices.shape)
    with torch.no_grad():
        before = prior.logits(indices, labels)[:, :, row, col]
        after = prior.logits(changed, labels)[:, :, row, col]
    torch.testing.assert_close(after, before, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ likelihood


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conditional", [False, True])
def test_log_prob_is_the_sum_of_the_conditionals(make_prior, kind, conditional):
    grid, codebook_size = (3, 2), 7
    num_classes = 4 if conditional else None
    prior = make_prior(kind, codebook_size, grid, seed=5, num_classes=num_classes)
    indices = _codes(1, 6, codebook_size, grid)
    labels = _labels(2, 6, num_classes)
    with torch.no_grad():
        logits = prior.logits(indices, labels)
        log_prob = prior.log_prob(indices, labels)
    assert logits.shape == (6, codebook_size, *grid)
    assert log_prob.shape == (6,)
    # reference: log-softmax written out, gathered at the codes, position by position
    expected = torch.zeros(6, dtype=torch.float64)
    for i, j in _raster(grid):
        cell = logits[:, :, i, j]
        log_softmax = cell - torch.logsumexp(cell, dim=1, keepdim=True)
        expected += log_softmax[torch.arange(6), indices[:, i, j]]
    torch.testing.assert_close(log_prob, expected, rtol=1e-12, atol=1e-12)

    out = prior.loss(indices, labels)
    assert isinstance(out, PriorLoss)
    num_positions = grid[0] * grid[1]
    torch.testing.assert_close(out.loss, -expected.mean() / num_positions)
    torch.testing.assert_close(out.bits_per_code, out.loss / math.log(2))
    none = prior.loss(indices, labels, reduction="none").loss
    torch.testing.assert_close(none, -expected / num_positions)
    torch.testing.assert_close(prior.loss(indices, labels, reduction="sum").loss, none.sum())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conditional", [False, True])
def test_probabilities_of_all_grids_sum_to_one(make_prior, kind, conditional):
    """K = 3 codes on a 2x2 grid: 81 grids, whose probabilities must add up to exactly 1."""
    grid, codebook_size = (2, 2), 3
    num_classes = 2 if conditional else None
    prior = make_prior(kind, codebook_size, grid, seed=11, num_classes=num_classes)
    # sharpen the untrained model so the check is not between near-uniform numbers
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.mul_(3.0)
    every_grid = torch.tensor(list(itertools.product(range(codebook_size), repeat=4)))
    every_grid = every_grid.reshape(-1, *grid)
    assert len(every_grid) == 81
    for label in range(num_classes or 1):
        labels = torch.full((81,), label) if conditional else None
        with torch.no_grad():
            log_prob = prior.log_prob(every_grid, labels)
        torch.testing.assert_close(
            torch.logsumexp(log_prob, dim=0), torch.tensor(0.0, dtype=torch.float64)
        )
        assert log_prob.max() - log_prob.min() > 1.0  # far from uniform: a real check


def test_untrained_transformer_is_near_uniform(make_prior):
    prior = make_prior("transformer", 64, (2, 3), seed=0)
    out = prior.loss(_codes(0, 32, 64, (2, 3)))
    assert abs(out.bits_per_code.item() - 6.0) < 0.1  # log2(64), the small-init GPT-2 start


@pytest.mark.parametrize("kind", KINDS)
def test_batch_of_one_and_float32(make_prior, kind):
    prior = make_prior(kind, 9, (2, 3), dtype=torch.float32)
    indices = _codes(0, 1, 9, (2, 3)).to(torch.int32)  # any integer dtype is accepted
    assert prior.log_prob(indices).shape == (1,)
    assert prior.log_prob(indices).dtype == torch.float32
    assert prior.loss(indices).loss.shape == ()
    assert prior.sample(1, generator=_gen(0)).shape == (1, 2, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_train_step_changes_parameters_and_eval_changes_nothing(make_prior, kind):
    prior = make_prior(kind, 5, (2, 2))
    indices = _codes(0, 4, 5, (2, 2))
    before = {name: p.detach().clone() for name, p in prior.named_parameters()}
    prior.eval()
    with torch.no_grad():
        prior.loss(indices)
        prior.sample(2, generator=_gen(0))
    assert all(torch.equal(p, before[n]) for n, p in prior.named_parameters())
    prior.train()
    optimizer = torch.optim.SGD(prior.parameters(), lr=0.1)
    prior.loss(indices).loss.backward()
    optimizer.step()
    assert any(not torch.equal(p, before[n]) for n, p in prior.named_parameters())


# ------------------------------------------------------------------------ sampling


def _sample(prior, num, labels=None, **kwargs):
    return prior.sample(num, labels=labels, **kwargs)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conditional", [False, True])
def test_sampling_is_reproducible_and_in_range(make_prior, kind, conditional):
    grid, codebook_size = (3, 3), 8
    num_classes = 3 if conditional else None
    prior = make_prior(kind, codebook_size, grid, seed=2, num_classes=num_classes)
    labels = _labels(0, 16, num_classes)
    first = _sample(prior, 16, labels, generator=_gen(42))
    second = _sample(prior, 16, labels, generator=_gen(42))
    other = _sample(prior, 16, labels, generator=_gen(43))
    assert first.shape == (16, *grid)
    assert first.dtype == torch.int64
    assert int(first.min()) >= 0
    assert int(first.max()) < codebook_size
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("use_cache", [True, False])
def test_step_by_step_logits_equal_the_one_pass_logits(make_prior, kind, use_cache):
    """Teacher-forced through the sampling path (cached or not), the logits are `logits`."""
    grid, codebook_size = (3, 4), 6
    prior = make_prior(kind, codebook_size, grid, seed=3, num_classes=5)
    indices = _codes(0, 4, codebook_size, grid)
    labels = _labels(1, 4, 5)
    with torch.no_grad():
        expected = prior.logits(indices, labels).flatten(2)  # (B, K, T)
        steps = prior._sequential_logits(indices.flatten(1), labels, use_cache=use_cache)
        got = torch.stack(list(steps), dim=2)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("conditional", [False, True])
def test_cached_and_uncached_transformer_draw_the_same_samples(make_prior, conditional):
    num_classes = 4 if conditional else None
    prior = make_prior("transformer", 16, (4, 4), seed=7, num_classes=num_classes)
    labels = _labels(0, 8, num_classes)
    for options in ({}, {"temperature": 0.7, "top_k": 5}, {"top_p": 0.8}):
        cached = _sample(prior, 8, labels, generator=_gen(9), **options)
        uncached = _sample(prior, 8, labels, generator=_gen(9), use_cache=False, **options)
        assert torch.equal(cached, uncached)


@pytest.mark.parametrize("kind", KINDS)
def test_sample_frequencies_match_the_likelihood(make_prior, kind):
    """20,000 draws of K = 3 codes on a 2x2 grid against exp(log_prob) of all 81 grids."""
    prior = make_prior(kind, 3, (2, 2), seed=21, num_classes=2)
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.mul_(3.0)
    num = 20_000
    labels = torch.ones(num, dtype=torch.long)
    samples = prior.sample(num, labels=labels, generator=_gen(0))
    grid_ids = (samples.flatten(1) * torch.tensor([27, 9, 3, 1])).sum(dim=1)
    frequencies = torch.bincount(grid_ids, minlength=81).double() / num
    every_grid = torch.tensor(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2)
    with torch.no_grad():
        probs = prior.log_prob(every_grid, torch.ones(81, dtype=torch.long)).exp()
    standard_error = (probs * (1 - probs) / num).sqrt()
    # 81 cells: 5 standard errors each leaves a false alarm rate below 1e-4
    assert torch.all((frequencies - probs).abs() <= 5 * standard_error + 1e-12)


def _greedy(prior, num, labels):
    """Reference greedy decoding through the one-pass `logits`, one position at a time."""
    height, width = prior.grid_shape
    grid = torch.zeros(num, height, width, dtype=torch.long)
    with torch.no_grad():
        for i, j in _raster(prior.grid_shape):
            grid[:, i, j] = prior.logits(grid, labels)[:, :, i, j].argmax(dim=1)
    return grid


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "options",
    [{"temperature": 1e-6}, {"top_k": 1}, {"top_p": 1e-9}, {"top_k": 1, "temperature": 5.0}],
    ids=["temperature-small", "top_k-1", "top_p-tiny", "top_k-1-hot"],
)
def test_greedy_limits_pick_the_most_likely_code(make_prior, kind, options):
    prior = make_prior(kind, 12, (3, 3), seed=13, num_classes=3)
    with torch.no_grad():  # a wider spread of logits, so that no two are nearly tied
        prior.code_embedding.weight.mul_(4.0)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    expected = _greedy(prior, 6, labels)
    for seed in (0, 1):
        assert torch.equal(_sample(prior, 6, labels, generator=_gen(seed), **options), expected)


# ------------------------------------------------------------------------ learning


@pytest.mark.parametrize("kind", KINDS)
def test_learns_class_constant_grids(make_prior, kind):
    """Grids of class c are all code 2c + 1: learnt, the code costs almost no bits."""
    grid, codebook_size, num_classes = (3, 3), 8, 4
    prior = make_prior(kind, codebook_size, grid, seed=0, num_classes=num_classes)
    prior = prior.float()
    optimizer = torch.optim.Adam(prior.parameters(), lr=3e-3)
    generator = _gen(0)

    def batch(size):
        labels = torch.randint(num_classes, (size,), generator=generator)
        return (2 * labels + 1).view(-1, 1, 1).expand(-1, *grid), labels

    uniform_bits = math.log2(codebook_size)
    indices, labels = batch(256)
    assert prior.loss(indices, labels).bits_per_code.item() > 0.8 * uniform_bits
    for _ in range(200):
        indices, labels = batch(64)
        optimizer.zero_grad(set_to_none=True)
        prior.loss(indices, labels).loss.backward()
        optimizer.step()
    prior.eval()
    indices, labels = batch(256)
    with torch.no_grad():
        bits = prior.loss(indices, labels).bits_per_code.item()
    assert bits < 0.05 * uniform_bits
    wanted = torch.arange(num_classes).repeat_interleave(25)
    samples = prior.sample(len(wanted), labels=wanted, generator=_gen(1))
    follows = (samples == (2 * wanted + 1).view(-1, 1, 1)).float().mean().item()
    assert follows > 0.95


def test_priors_are_independent_of_the_global_seed(make_prior):
    """`sample` draws only from its generator: the global RNG neither matters nor moves."""
    prior = make_prior("transformer", 8, (2, 2))
    state = torch.get_rng_state()
    first = prior.sample(4, generator=_gen(0))
    torch.manual_seed(12345)
    assert torch.equal(prior.sample(4, generator=_gen(0)), first)
    torch.set_rng_state(state)
    before = torch.get_rng_state()
    prior.sample(4, generator=_gen(0))
    assert torch.equal(torch.get_rng_state(), before)


def test_public_types(make_prior):
    assert isinstance(make_prior("transformer", 4, (2, 2)), TransformerPrior)
    assert isinstance(make_prior("pixelcnn", 4, (2, 2)), PixelCNNPrior)
    assert "grid_shape=(2, 2)" in repr(make_prior("pixelcnn", 4, (2, 2)))


def test_cross_entropy_reference_agrees(make_prior):
    """``loss`` equals ``F.cross_entropy`` over all positions (mean over B and T)."""
    prior = make_prior("pixelcnn", 5, (2, 3), seed=4)
    indices = _codes(3, 7, 5, (2, 3))
    with torch.no_grad():
        logits = prior.logits(indices)
        torch.testing.assert_close(prior.loss(indices).loss, F.cross_entropy(logits, indices))


@pytest.mark.parametrize("kind", KINDS)
def test_bfloat16_autocast_loss_is_float32_and_close(make_prior, kind):
    prior = make_prior(kind, 16, (3, 3), seed=6, num_classes=2, dtype=torch.float32)
    indices, labels = _codes(0, 8, 16, (3, 3)), _labels(1, 8, 2)
    reference = prior.loss(indices, labels).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = prior.loss(indices, labels).loss
        samples = prior.sample(2, labels=torch.tensor([0, 1]), generator=_gen(0))
    assert mixed.dtype == torch.float32
    # bfloat16 keeps 8 bits of mantissa: logits are right to about 1%, so is the loss
    torch.testing.assert_close(mixed, reference, rtol=2e-2, atol=2e-2)
    assert samples.shape == (2, 3, 3)


def test_transformer_dropout_acts_in_training_only(make_prior):
    prior = make_prior("transformer", 6, (2, 3), seed=8, dropout=0.3)
    indices = _codes(0, 4, 6, (2, 3))
    with torch.no_grad():
        prior.train()
        assert not torch.equal(prior.logits(indices), prior.logits(indices))
        prior.eval()
        expected = prior.logits(indices)
        assert torch.equal(prior.logits(indices), expected)
        steps = prior._sequential_logits(indices.flatten(1), None, use_cache=True)
        got = torch.stack(list(steps), dim=2)
    torch.testing.assert_close(got, expected.flatten(2), rtol=1e-10, atol=1e-10)
