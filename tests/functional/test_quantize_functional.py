"""Tests for genlatent.functional.quantize: nearest code, straight-through, losses, EMA."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.functional.quantize import (
    EMAUpdate,
    VQLosses,
    code_counts,
    code_sums,
    counts_perplexity,
    ema_codebook_update,
    nearest_code,
    straight_through,
    vq_losses,
)

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(deadline=None, max_examples=25)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _brute_force_check(inputs: torch.Tensor, codebook: torch.Tensor, indices: torch.Tensor):
    """Chosen codes are at the minimum cdist distance; where the minimum is clear, exact."""
    dist = torch.cdist(inputs.double(), codebook.double()).pow(2)
    assert indices.dtype == torch.int64
    assert indices.shape == inputs.shape[:1]
    if inputs.shape[0] == 0:
        return
    chosen = dist.gather(1, indices.unsqueeze(1)).squeeze(1)
    best = dist.min(dim=1).values
    # float32 distances: the chosen code may differ from the best by rounding only
    torch.testing.assert_close(chosen, best, rtol=1e-5, atol=1e-5)
    reference = dist.argmin(dim=1)
    if codebook.shape[0] > 1:
        two = dist.topk(2, dim=1, largest=False).values
        clear = (two[:, 1] - two[:, 0]) > 1e-3
        assert torch.equal(indices[clear], reference[clear])


# ------------------------------------------------------------------------- nearest_code


@SETTINGS
@given(
    seed=SEEDS,
    num_rows=st.integers(0, 12),
    num_codes=st.integers(1, 10),
    dim=st.integers(1, 6),
    chunk_size=st.one_of(st.none(), st.integers(1, 12)),
)
def test_nearest_code_matches_cdist_argmin(seed, num_rows, num_codes, dim, chunk_size):
    gen = _gen(seed)
    codebook = torch.randn(num_codes, dim, generator=gen)
    inputs = torch.randn(num_rows, dim, generator=gen) * 1.5
    indices = nearest_code(inputs, codebook, chunk_size=chunk_size)
    _brute_force_check(inputs, codebook, indices)
    assert torch.equal(indices, nearest_code(inputs, codebook))


@SETTINGS
@given(seed=SEEDS, num_codes=st.integers(2, 40), chunk_size=st.integers(1, 41))
def test_nearest_code_chunked_equals_unchunked(seed, num_codes, chunk_size):
    gen = _gen(seed)
    codebook = torch.randn(num_codes, 3, generator=gen)
    inputs = torch.cat([torch.randn(20, 3, generator=gen), codebook])
    unchunked = nearest_code(inputs, codebook)
    assert torch.equal(nearest_code(inputs, codebook, chunk_size=chunk_size), unchunked)


@SETTINGS
@given(seed=SEEDS, num_codes=st.integers(2, 20), chunk_size=st.integers(1, 21))
def test_nearest_code_chunked_with_duplicate_codes(seed, num_codes, chunk_size):
    # exact duplicates tie; blocks of different shapes may round their distances apart by
    # an ulp, so a chunked search may pick another copy, always at the minimum distance
    gen = _gen(seed)
    codebook = torch.randn(num_codes, 3, generator=gen)
    codebook = torch.cat([codebook, codebook[: num_codes // 2]])
    inputs = torch.cat([torch.randn(20, 3, generator=gen), codebook])
    indices = nearest_code(inputs, codebook, chunk_size=chunk_size)
    _brute_force_check(inputs, codebook, indices)
    assert torch.equal(codebook[indices], codebook[nearest_code(inputs, codebook)])


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 3])
def test_nearest_code_ties_go_to_smallest_index(chunk_size):
    codebook = torch.tensor([[5.0, 5.0], [1.0, 0.0], [-5.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    inputs = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.9, 0.1]])
    # row 1 is equidistant from codes 1, 3 and 4
    expected = torch.tensor([1, 1, 1])
    assert torch.equal(nearest_code(inputs, codebook, chunk_size=chunk_size), expected)


def test_nearest_code_large_codebook_chunked():
    gen = _gen(0)
    codebook = torch.randn(4096, 8, generator=gen)
    picks = torch.randint(4096, (64,), generator=gen)
    inputs = codebook[picks] + 1e-3 * torch.randn(64, 8, generator=gen)
    assert torch.equal(nearest_code(inputs, codebook, chunk_size=1000), picks)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@SETTINGS
@given(seed=SEEDS)
def test_nearest_code_half_inputs_match_float32(seed, dtype):
    gen = _gen(seed)
    codebook = torch.randn(16, 4, generator=gen).to(dtype)
    inputs = torch.randn(32, 4, generator=gen).to(dtype)
    expected = nearest_code(inputs.float(), codebook.float())
    assert torch.equal(nearest_code(inputs, codebook), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(nearest_code(inputs.float(), codebook.float()), expected)


def test_nearest_code_float64():
    gen = _gen(1)
    codebook = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    inputs = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    indices = nearest_code(inputs, codebook)
    assert torch.equal(indices, torch.cdist(inputs, codebook).argmin(dim=1))


def test_nearest_code_builds_no_graph():
    inputs = torch.randn(4, 2, requires_grad=True)
    codebook = torch.randn(3, 2, requires_grad=True)
    indices = nearest_code(inputs, codebook)
    assert not indices.requires_grad
    assert indices.grad_fn is None


def test_nearest_code_errors():
    codebook = torch.zeros(3, 2)
    with pytest.raises(TypeError, match=r"inputs must be a torch\.Tensor, got list"):
        nearest_code([[0.0, 0.0]], codebook)
    with pytest.raises(
        TypeError, match=r"inputs must have a floating-point dtype, got torch\.int64"
    ):
        nearest_code(torch.zeros(1, 2, dtype=torch.int64), codebook)
    with pytest.raises(
        ValueError, match=r"inputs must have shape \(N, D\) \(2 dims\), got shape \(2,\)"
    ):
        nearest_code(torch.zeros(2), codebook)
    with pytest.raises(
        ValueError, match=r"codebook must have shape \(K, D\) \(2 dims\), got shape \(3, 2, 1\)"
    ):
        nearest_code(torch.zeros(1, 2), torch.zeros(3, 2, 1))
    with pytest.raises(
        ValueError,
        match=r"inputs and codebook must have the same D \(dim 1\), got inputs shape \(1, 4\) "
        r"and codebook shape \(3, 2\)",
    ):
        nearest_code(torch.zeros(1, 4), codebook)
    with pytest.raises(
        ValueError, match=r"codebook must have at least one code \(K >= 1\), got shape \(0, 2\)"
    ):
        nearest_code(torch.zeros(1, 2), torch.zeros(0, 2))
    with pytest.raises(ValueError, match="chunk_size must be >= 1, got 0"):
        nearest_code(torch.zeros(1, 2), codebook, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be an int, got float"):
        nearest_code(torch.zeros(1, 2), codebook, chunk_size=2.0)


# --------------------------------------------------------------------- straight_through


@SETTINGS
@given(seed=SEEDS, shape=st.lists(st.integers(0, 4), min_size=1, max_size=4))
def test_straight_through_value_and_identity_gradient(seed, shape):
    gen = _gen(seed)
    inputs = torch.randn(shape, generator=gen, requires_grad=True)
    quantized = torch.randn(shape, generator=gen, requires_grad=True)
    upstream = torch.randn(shape, generator=gen)
    out = straight_through(inputs, quantized)
    assert torch.equal(out, quantized)
    (out * upstream).sum().backward()
    assert torch.equal(inputs.grad, upstream)
    assert quantized.grad is None


def test_straight_through_takes_the_inputs_dtype():
    inputs = torch.randn(3, 2, dtype=torch.bfloat16, requires_grad=True)
    out = straight_through(inputs, torch.randn(3, 2))
    assert out.dtype == torch.bfloat16


def test_straight_through_errors():
    with pytest.raises(
        TypeError, match=r"quantized must have a floating-point dtype, got torch\.int64"
    ):
        straight_through(torch.zeros(2), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(
        ValueError, match=r"inputs and quantized must have the same shape, got \(2,\) and \(3,\)"
    ):
        straight_through(torch.zeros(2), torch.zeros(3))


# ---------------------------------------------------------------------------- vq_losses


@SETTINGS
@given(seed=SEEDS, batch=st.integers(1, 4), rest=st.lists(st.integers(1, 4), max_size=3))
def test_vq_losses_formula_and_reductions(seed, batch, rest):
    gen = _gen(seed)
    shape = [batch, *rest]
    inputs = torch.randn(shape, generator=gen)
    quantized = torch.randn(shape, generator=gen)
    losses = vq_losses(inputs, quantized)
    assert isinstance(losses, VQLosses)
    expected = ((inputs - quantized) ** 2).mean()
    torch.testing.assert_close(losses.codebook, expected)
    torch.testing.assert_close(losses.commitment, expected)
    none = vq_losses(inputs, quantized, reduction="none")
    per_example = ((inputs - quantized) ** 2).reshape(batch, -1).mean(dim=1)
    torch.testing.assert_close(none.codebook, per_example)
    torch.testing.assert_close(none.commitment, per_example)
    total = vq_losses(inputs, quantized, reduction="sum")
    torch.testing.assert_close(total.codebook, per_example.sum())
    torch.testing.assert_close(total.commitment, none.commitment.sum())


def test_vq_losses_route_gradients():
    gen = _gen(3)
    inputs = torch.randn(4, 3, generator=gen, requires_grad=True)
    quantized = torch.randn(4, 3, generator=gen, requires_grad=True)
    losses = vq_losses(inputs, quantized)
    (grad_q,) = torch.autograd.grad(losses.codebook, quantized, retain_graph=True)
    torch.testing.assert_close(grad_q, 2 * (quantized - inputs).detach() / 12)
    assert torch.autograd.grad(losses.codebook, inputs, allow_unused=True)[0] is None
    (grad_x,) = torch.autograd.grad(losses.commitment, inputs, retain_graph=True)
    torch.testing.assert_close(grad_x, 2 * (inputs - quantized).detach() / 12)
    assert torch.autograd.grad(losses.commitment, quantized, allow_unused=True)[0] is None


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_vq_losses_gradcheck(reduction):
    # each term is differentiable in the argument it sends gradient to (the other one is
    # behind a stop-gradient, which finite differences cannot see, so it is held fixed)
    gen = _gen(4)
    inputs = torch.randn(3, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    quantized = torch.randn(3, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    fixed_x, fixed_q = inputs.detach(), quantized.detach()
    assert torch.autograd.gradcheck(
        lambda q: vq_losses(fixed_x, q, reduction=reduction).codebook, (quantized,)
    )
    assert torch.autograd.gradcheck(
        lambda x: vq_losses(x, fixed_q, reduction=reduction).commitment, (inputs,)
    )


def test_vq_losses_half_inputs_give_float32():
    inputs = torch.randn(2, 3).to(torch.bfloat16)
    losses = vq_losses(inputs, torch.zeros(2, 3, dtype=torch.bfloat16))
    assert losses.codebook.dtype == torch.float32
    torch.testing.assert_close(losses.commitment, inputs.float().pow(2).mean())


def test_vq_losses_empty_batch():
    inputs = torch.zeros(0, 3)
    assert math.isnan(vq_losses(inputs, inputs).codebook.item())
    assert vq_losses(inputs, inputs, reduction="sum").commitment.item() == 0.0
    assert vq_losses(inputs, inputs, reduction="none").codebook.shape == (0,)


def test_vq_losses_errors():
    with pytest.raises(
        ValueError, match=r"inputs must have a batch dimension \(B, \*\), got a scalar"
    ):
        vq_losses(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="reduction must be one of"):
        vq_losses(torch.zeros(2), torch.zeros(2), reduction="batchmean")
    with pytest.raises(ValueError, match="inputs and quantized must have the same shape"):
        vq_losses(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="inputs must have a floating-point dtype"):
        vq_losses(torch.zeros(2, dtype=torch.int32), torch.zeros(2))


# ------------------------------------------------------------------ counts, perplexity


@SETTINGS
@given(seed=SEEDS, num_codes=st.integers(1, 10), shape=st.lists(st.integers(0, 5), max_size=3))
def test_code_counts_and_perplexity(seed, num_codes, shape):
    indices = torch.randint(num_codes, shape, generator=_gen(seed))
    counts = code_counts(indices, num_codes)
    assert counts.dtype == torch.float32
    assert counts.shape == (num_codes,)
    torch.testing.assert_close(
        counts, torch.bincount(indices.reshape(-1), minlength=num_codes).float()
    )
    perplexity = counts_perplexity(counts)
    assert 1.0 <= perplexity.item() <= num_codes
    if indices.numel() > 0:
        entropy = torch.distributions.Categorical(probs=counts).entropy()
        torch.testing.assert_close(perplexity, entropy.exp().clamp(1.0, num_codes))


def test_perplexity_known_values():
    torch.testing.assert_close(counts_perplexity(torch.full((8,), 3.0)), torch.tensor(8.0))
    torch.testing.assert_close(counts_perplexity(torch.tensor([0.0, 7.0, 0.0])), torch.tensor(1.0))
    # an empty batch: perplexity 1, by definition
    torch.testing.assert_close(counts_perplexity(torch.zeros(5)), torch.tensor(1.0))
    empty = torch.zeros(0, dtype=torch.int64)
    torch.testing.assert_close(counts_perplexity(code_counts(empty, 4)), torch.tensor(1.0))


def test_code_sums_matches_one_hot_matmul():
    gen = _gen(5)
    inputs = torch.randn(20, 3, generator=gen)
    indices = torch.randint(6, (20,), generator=gen)
    one_hot = torch.nn.functional.one_hot(indices, 6).float()
    torch.testing.assert_close(code_sums(inputs, indices, 6), one_hot.T @ inputs)
    assert code_sums(inputs.half(), indices, 6).dtype == torch.float32


def test_counts_errors():
    with pytest.raises(TypeError, match=r"indices must be a torch\.Tensor, got list"):
        code_counts([0, 1], 2)
    with pytest.raises(TypeError, match=r"indices must have an integer dtype, got torch\.float32"):
        code_counts(torch.zeros(2), 2)
    with pytest.raises(ValueError, match="codebook_size must be >= 1, got 0"):
        code_counts(torch.zeros(2, dtype=torch.int64), 0)
    with pytest.raises(TypeError, match="codebook_size must be an int, got float"):
        code_counts(torch.zeros(2, dtype=torch.int64), 2.0)
    with pytest.raises(
        ValueError,
        match=r"indices must be in \[0, 2\] \(codebook_size=3\), got values from -1 to 3",
    ):
        code_counts(torch.tensor([-1, 3]), 3, validate_args=True)
    assert code_counts(torch.tensor([0, 2]), 3, validate_args=True).sum() == 2
    with pytest.raises(
        ValueError,
        match=r"indices must have shape \(N,\) = \(4,\) to match inputs \(4, 2\), got \(4, 1\)",
    ):
        code_sums(torch.zeros(4, 2), torch.zeros(4, 1, dtype=torch.int64), 3)
    with pytest.raises(ValueError, match=r"inputs must have shape \(N, D\)"):
        code_sums(torch.zeros(4), torch.zeros(4, dtype=torch.int64), 3)
    with pytest.raises(
        ValueError, match=r"counts must have shape \(K,\) \(1 dims\), got shape \(2, 2\)"
    ):
        counts_perplexity(torch.zeros(2, 2))
    with pytest.raises(
        ValueError, match=r"counts must have at least one code, shape \(K,\) with K >= 1"
    ):
        counts_perplexity(torch.zeros(0))
    with pytest.raises(TypeError, match="counts must have a floating-point dtype"):
        counts_perplexity(torch.zeros(3, dtype=torch.int64))


# -------------------------------------------------------------------------------- EMA


def _by_hand(cluster_size, embed_sum, counts, sums, decay, eps, step=None):
    n_i = decay * cluster_size + (1 - decay) * counts
    m_i = decay * embed_sum + (1 - decay) * sums
    n_hat, m_hat = n_i, m_i
    if step is not None:
        n_hat, m_hat = n_i / (1 - decay**step), m_i / (1 - decay**step)
    n = n_hat.sum()
    smoothed = (n_hat + eps) / (n + len(n_hat) * eps) * n
    return n_i, m_i, m_hat / smoothed[:, None]


@SETTINGS
@given(
    seed=SEEDS,
    num_codes=st.integers(1, 8),
    dim=st.integers(1, 4),
    decay=st.floats(0.5, 0.999),
    step=st.one_of(st.none(), st.integers(1, 5)),
)
def test_ema_update_matches_formula(seed, num_codes, dim, decay, step):
    gen = _gen(seed)
    rows = torch.randn(10, dim, generator=gen)
    indices = torch.randint(num_codes, (10,), generator=gen)
    counts, sums = code_counts(indices, num_codes), code_sums(rows, indices, num_codes)
    cluster_size = torch.rand(num_codes, generator=gen) + 0.5
    embed_sum = torch.randn(num_codes, dim, generator=gen)
    before = (cluster_size.clone(), embed_sum.clone())
    update = ema_codebook_update(
        cluster_size, embed_sum, counts, sums, decay=decay, eps=1e-5, step=step
    )
    assert isinstance(update, EMAUpdate)
    expected = _by_hand(cluster_size, embed_sum, counts, sums, decay, 1e-5, step)
    torch.testing.assert_close(update.cluster_size, expected[0])
    torch.testing.assert_close(update.embed_sum, expected[1])
    torch.testing.assert_close(update.codebook, expected[2])
    assert torch.isfinite(update.codebook).all()
    # pure: the arguments are not modified
    assert torch.equal(cluster_size, before[0])
    assert torch.equal(embed_sum, before[1])


def test_ema_update_step_tensor_equals_int():
    args = (torch.zeros(3), torch.zeros(3, 2), torch.tensor([2.0, 0.0, 1.0]), torch.ones(3, 2))
    by_int = ema_codebook_update(*args, decay=0.9, eps=1e-5, step=3)
    by_tensor = ema_codebook_update(*args, decay=0.9, eps=1e-5, step=torch.tensor(3))
    torch.testing.assert_close(by_int.codebook, by_tensor.codebook)


def test_ema_update_bias_correction_first_step_gives_batch_means():
    gen = _gen(6)
    rows = torch.randn(30, 2, generator=gen)
    indices = torch.randint(3, (30,), generator=gen)
    counts, sums = code_counts(indices, 3), code_sums(rows, indices, 3)
    update = ema_codebook_update(
        torch.zeros(3), torch.zeros(3, 2), counts, sums, decay=0.99, eps=1e-5, step=1
    )
    means = sums / counts[:, None]
    # Laplace smoothing shifts each count by about eps: a relative change of ~1e-5
    torch.testing.assert_close(update.codebook, means, rtol=1e-4, atol=1e-5)


def test_ema_update_unused_codes_stay_finite():
    counts = torch.tensor([5.0, 0.0, 0.0])
    sums = torch.tensor([[5.0, 5.0], [0.0, 0.0], [0.0, 0.0]])
    for cluster_size, embed_sum, step in [
        (torch.zeros(3), torch.zeros(3, 2), 1),
        (torch.ones(3), torch.randn(3, 2), None),
        (torch.tensor([1.0, 1e-30, 0.0]), torch.randn(3, 2), None),
    ]:
        update = ema_codebook_update(
            cluster_size, embed_sum, counts, sums, decay=0.99, eps=1e-5, step=step
        )
        assert torch.isfinite(update.codebook).all()


def test_ema_update_nothing_counted_keeps_codebook():
    codebook = torch.randn(3, 2)
    args = (torch.zeros(3), torch.zeros(3, 2), torch.zeros(3), torch.zeros(3, 2))
    update = ema_codebook_update(*args, decay=0.9, eps=1e-5, step=1, codebook=codebook)
    assert torch.equal(update.codebook, codebook)
    update = ema_codebook_update(*args, decay=0.9, eps=1e-5, step=1)
    assert torch.equal(update.codebook, torch.zeros(3, 2))


def test_ema_update_worked_numbers_unbalanced():
    # Worked by hand, with decay 0.8 (so decay and 1 - decay differ) and eps 0.1 (so the
    # Laplace smoothing moves the result by far more than rounding). K = 3, D = 2.
    # Before: N = (1, 2, 0.5), m = ((1, 0), (0, 2), (1, 1)).
    # Batch: code 0 gets (1, 2), (3, 0), (2, 1): n_0 = 3, s_0 = (6, 3); code 1 gets (4, 4):
    # n_1 = 1, s_1 = (4, 4); code 2 gets nothing.
    #   N' = 0.8 N + 0.2 n = (1.4, 1.8, 0.4)
    #   m' = 0.8 m + 0.2 s = ((2.0, 0.6), (0.8, 2.4), (0.8, 0.8))
    #   n = sum N' = 3.6; smoothed = (N' + 0.1) / (3.6 + 3 * 0.1) * 3.6
    #      = (1.5, 1.9, 0.5) * 12 / 13 = (18, 22.8, 6) / 13
    #   e = m' / smoothed = ((13/9, 13/30), (26/57, 26/19), (26/15, 26/15))
    rows = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0], [4.0, 4.0]])
    indices = torch.tensor([0, 0, 0, 1])
    counts, sums = code_counts(indices, 3), code_sums(rows, indices, 3)
    update = ema_codebook_update(
        torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64),
        torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64),
        counts.double(),
        sums.double(),
        decay=0.8,
        eps=0.1,
    )
    torch.testing.assert_close(
        update.cluster_size, torch.tensor([1.4, 1.8, 0.4], dtype=torch.float64)
    )
    torch.testing.assert_close(
        update.embed_sum,
        torch.tensor([[2.0, 0.6], [0.8, 2.4], [0.8, 0.8]], dtype=torch.float64),
    )
    expected = torch.tensor(
        [[13 / 9, 13 / 30], [26 / 57, 26 / 19], [26 / 15, 26 / 15]], dtype=torch.float64
    )
    torch.testing.assert_close(update.codebook, expected)


def test_ema_update_laplace_smoothing_exact_values_of_unused_codes():
    # Code 0 takes all 4 vectors, codes 1 and 2 none. Code 1 has a history (N_1 = 1,
    # m_1 = (2, 4)); code 2 was never counted (N_2 = 0, m_2 = 0). With decay 0.5, eps 0.5:
    #   N' = 0.5 (0, 1, 0) + 0.5 (4, 0, 0) = (2, 0.5, 0); n = 2.5
    #   m' = 0.5 m + 0.5 s = ((2, 2), (1, 2), (0, 0))
    #   smoothed = (N' + 0.5) / (2.5 + 3 * 0.5) * 2.5 = (2.5, 1, 0.5) * 5/8
    #            = (1.5625, 0.625, 0.3125)
    #   e_0 = (2, 2) / 1.5625 = (1.28, 1.28)
    #   e_1 = (1, 2) / 0.625 = (1.6, 3.2)   (unsmoothed: (2, 4))
    #   e_2 = 0 / 0.3125 = (0, 0)           (unsmoothed: N'_2 = 0, the old codebook kept)
    # A never-counted code moves to the origin once anything is counted, because its
    # smoothed count is positive; it is not kept.
    update = ema_codebook_update(
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
        torch.tensor([[0.0, 0.0], [2.0, 4.0], [0.0, 0.0]], dtype=torch.float64),
        torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64),
        torch.tensor([[4.0, 4.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64),
        decay=0.5,
        eps=0.5,
        codebook=torch.full((3, 2), 7.0, dtype=torch.float64),
    )
    expected = torch.tensor([[1.28, 1.28], [1.6, 3.2], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(update.codebook, expected)


@pytest.mark.parametrize("decay", [0.9, 0.99, 0.3])
def test_ema_update_first_bias_corrected_step(decay):
    # From zero statistics, N_1 = decay * 0 + (1 - decay) n = (1 - decay) n is the state
    # kept; the correction divides by 1 - decay^1, so the codebook sees N_hat = n and
    # m_hat = s exactly, and e_i = s_i / ((n_i + eps) / (n + K eps) * n).
    counts = torch.tensor([5.0, 1.0, 0.0, 2.0], dtype=torch.float64)
    sums = torch.tensor([[5.0, -10.0], [3.0, 3.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    eps = 0.25
    update = ema_codebook_update(
        torch.zeros(4, dtype=torch.float64),
        torch.zeros(4, 2, dtype=torch.float64),
        counts,
        sums,
        decay=decay,
        eps=eps,
        step=1,
    )
    torch.testing.assert_close(update.cluster_size, (1 - decay) * counts)
    torch.testing.assert_close(update.embed_sum, (1 - decay) * sums)
    # n = 8, n + K eps = 9: smoothed = (n_i + 1/4) * 8 / 9
    smoothed = torch.tensor([5.25, 1.25, 0.25, 2.25], dtype=torch.float64) * 8 / 9
    torch.testing.assert_close(update.codebook, sums / smoothed[:, None])


def test_ema_update_converges_to_the_mean_of_assigned_vectors():
    # The same assignment every step: N -> n and m -> s geometrically (decay^t), so each
    # used code converges to s_i / smoothed_i, which is the mean s_i / n_i up to the
    # smoothing's relative O(eps) shift.
    gen = _gen(3)
    rows = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    indices = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2])
    counts, sums = code_counts(indices, 3).double(), code_sums(rows, indices, 3)
    cluster_size = torch.ones(3, dtype=torch.float64)
    embed_sum = torch.randn(3, 3, generator=gen, dtype=torch.float64) * 10
    for _ in range(400):
        update = ema_codebook_update(cluster_size, embed_sum, counts, sums, decay=0.95, eps=1e-9)
        cluster_size, embed_sum = update.cluster_size, update.embed_sum
    means = torch.stack([rows[indices == i].mean(0) for i in range(3)])
    # 0.95^400 ~ 1e-9 of the initial offset remains, eps shifts by ~1e-9 relative
    torch.testing.assert_close(update.codebook, means, rtol=1e-7, atol=1e-7)


def test_ema_update_float64_stays_float64():
    update = ema_codebook_update(
        torch.ones(2, dtype=torch.float64),
        torch.ones(2, 3, dtype=torch.float64),
        torch.ones(2),
        torch.ones(2, 3),
        decay=0.9,
        eps=1e-5,
    )
    assert update.codebook.dtype == torch.float64


def test_ema_update_errors():
    k, d = torch.zeros(3), torch.zeros(3, 2)

    def call(**overrides):
        kwargs = {
            "cluster_size": k,
            "embed_sum": d,
            "counts": k,
            "sums": d,
            "decay": 0.9,
            "eps": 1e-5,
        }
        kwargs.update(overrides)
        return ema_codebook_update(**kwargs)

    with pytest.raises(
        ValueError, match=r"cluster_size must have shape \(K,\) \(1 dims\), got shape \(3, 2\)"
    ):
        call(cluster_size=d)
    with pytest.raises(
        ValueError, match=r"embed_sum must have shape \(K, D\) \(2 dims\), got shape \(3,\)"
    ):
        call(embed_sum=k)
    with pytest.raises(
        ValueError,
        match=r"embed_sum must have shape \(K, D\) with K=3 as cluster_size, got \(4, 2\)",
    ):
        call(embed_sum=torch.zeros(4, 2), sums=torch.zeros(4, 2))
    with pytest.raises(
        ValueError, match=r"cluster_size and counts must have the same shape, got \(3,\) and \(4,\)"
    ):
        call(counts=torch.zeros(4))
    with pytest.raises(
        ValueError, match=r"embed_sum and sums must have the same shape, got \(3, 2\) and \(3, 1\)"
    ):
        call(sums=torch.zeros(3, 1))
    with pytest.raises(ValueError, match=r"embed_sum and codebook must have the same shape"):
        call(codebook=torch.zeros(2, 2))
    with pytest.raises(TypeError, match="counts must have a floating-point dtype"):
        call(counts=torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"decay must be in \(0.0, 1.0\), got 1.0"):
        call(decay=1.0)
    with pytest.raises(TypeError, match="decay must be a float, got str"):
        call(decay="0.9")
    with pytest.raises(ValueError, match=r"eps must be in \(0.0, inf\), got 0.0"):
        call(eps=0.0)
    with pytest.raises(ValueError, match="step must be >= 1, got 0"):
        call(step=0)
    with pytest.raises(TypeError, match="step must be an int, got float"):
        call(step=1.0)
