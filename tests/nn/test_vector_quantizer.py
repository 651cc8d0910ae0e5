"""Tests for genlatent.nn.quantize.VectorQuantizer."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.nn.quantize import QuantizerOutput, VectorQuantizer

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(deadline=None, max_examples=25)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _make(seed: int, codebook_size: int, embedding_dim: int, **kwargs) -> VectorQuantizer:
    quantizer = VectorQuantizer(codebook_size, embedding_dim, **kwargs)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.randn(codebook_size, embedding_dim, generator=_gen(seed)))
        if quantizer.ema and not quantizer.bias_correction:
            quantizer.embed_sum.copy_(quantizer.codebook)
    return quantizer


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(B, D, *) -> (N, D), written independently of the module."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


# ------------------------------------------------------------------------------ shapes


@SETTINGS
@given(
    seed=SEEDS,
    batch=st.integers(0, 3),
    spatial=st.lists(st.integers(1, 3), max_size=3),
    embedding_dim=st.integers(1, 4),
    codebook_size=st.integers(1, 8),
    ema=st.booleans(),
)
def test_forward_shapes_indices_and_codebook_rows(
    seed, batch, spatial, embedding_dim, codebook_size, ema
):
    quantizer = _make(seed, codebook_size, embedding_dim, ema=ema).eval()
    inputs = torch.randn(batch, embedding_dim, *spatial, generator=_gen(seed + 1))
    out = quantizer(inputs)
    assert isinstance(out, QuantizerOutput)
    assert out.quantized.shape == inputs.shape
    assert out.indices.shape == (batch, *spatial)
    assert out.indices.dtype == torch.int64
    # every quantized vector is exactly a codebook row: the one its index names
    assert torch.equal(_rows(out.quantized), quantizer.codebook[out.indices.reshape(-1)])
    # indices are the brute-force nearest codes
    if batch > 0:
        dist = torch.cdist(_rows(inputs).double(), quantizer.codebook.double()).pow(2)
        chosen = dist.gather(1, out.indices.reshape(-1, 1)).squeeze(1)
        torch.testing.assert_close(chosen, dist.min(dim=1).values, rtol=1e-5, atol=1e-5)
    # this batch's counts are a histogram of the indices
    assert torch.equal(
        out.counts, torch.bincount(out.indices.reshape(-1), minlength=codebook_size).float()
    )
    assert out.counts.dtype == torch.float32
    for value in (out.loss, *out.terms.values()):
        assert value.shape == ()
        assert value.dtype == torch.float32


@SETTINGS
@given(seed=SEEDS, spatial=st.lists(st.integers(1, 3), max_size=3), ema=st.booleans())
def test_channel_last_equals_channel_first(seed, spatial, ema):
    first = _make(seed, 6, 3, ema=ema)
    last = _make(seed, 6, 3, ema=ema, channel_last=True)
    inputs = torch.randn(2, 3, *spatial, generator=_gen(seed + 1))
    out_first = first(inputs)
    out_last = last(inputs.movedim(1, -1).contiguous())
    assert torch.equal(out_last.quantized, out_first.quantized.movedim(1, -1))
    assert torch.equal(out_last.indices, out_first.indices)
    torch.testing.assert_close(out_last.loss, out_first.loss)
    torch.testing.assert_close(last.codebook, first.codebook)


def test_batch_of_one_and_zero():
    for ema in (False, True):
        quantizer = _make(0, 5, 4, ema=ema)
        one = quantizer(torch.randn(1, 4, 3, 3, requires_grad=True))
        assert one.quantized.shape == (1, 4, 3, 3)
        one.loss.backward()
        empty = quantizer(torch.zeros(0, 4, 3, 3))
        assert empty.quantized.shape == (0, 4, 3, 3)
        assert empty.indices.shape == (0, 3, 3)
        assert int(empty.counts.sum()) == 0
        assert math.isnan(empty.loss.item())  # the mean of no elements
        assert torch.isfinite(quantizer.codebook).all()


@pytest.mark.parametrize("chunk_size", [1, 3, 7])
def test_chunked_search_equals_unchunked(chunk_size):
    inputs = torch.randn(4, 3, 5, 5, generator=_gen(1))
    plain = _make(2, 13, 3).eval()
    chunked = _make(2, 13, 3, chunk_size=chunk_size).eval()
    assert torch.equal(chunked(inputs).indices, plain(inputs).indices)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_give_float32_indices(dtype):
    quantizer = _make(3, 32, 4).eval()
    inputs = torch.randn(8, 4, 4, 4, generator=_gen(4)).to(dtype)
    expected = quantizer(inputs.float()).indices
    out = quantizer(inputs)
    assert torch.equal(out.indices, expected)
    assert out.quantized.dtype == dtype
    assert out.loss.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(quantizer(inputs.float()).indices, expected)


# --------------------------------------------------------------------------- gradients


def test_straight_through_gradient_is_identity():
    quantizer = _make(5, 7, 3)
    inputs = torch.randn(2, 3, 4, 4, generator=_gen(6), requires_grad=True)
    upstream = torch.randn(2, 3, 4, 4, generator=_gen(7))
    (quantizer(inputs).quantized * upstream).sum().backward()
    assert torch.equal(inputs.grad, upstream)
    assert quantizer.codebook.grad is None


@SETTINGS
@given(seed=SEEDS, commitment_weight=st.floats(0.0, 2.0))
def test_loss_and_codebook_gradient_by_hand(seed, commitment_weight):
    quantizer = _make(seed, 6, 3, commitment_weight=commitment_weight)
    inputs = torch.randn(2, 3, 2, 2, generator=_gen(seed + 1), requires_grad=True)
    out = quantizer(inputs)
    rows = _rows(inputs.detach())
    selected = quantizer.codebook.detach()[out.indices.reshape(-1)]
    mse = (selected - rows).pow(2).mean()
    torch.testing.assert_close(out.terms["codebook"], mse)
    torch.testing.assert_close(out.terms["commitment"], mse)
    torch.testing.assert_close(out.loss, (1.0 + commitment_weight) * mse)
    # the reconstruction path adds no codebook gradient (straight-through detaches it)
    (out.loss + out.quantized.sum()).backward()
    # d/d e_k mean((e_{k_j} - x_j)^2) = 2 / (N D) * sum_{j: k_j = k} (e_k - x_j)
    expected = torch.zeros(6, 3).index_add_(0, out.indices.reshape(-1), selected - rows)
    torch.testing.assert_close(quantizer.codebook.grad, 2.0 * expected / rows.numel())
    # commitment gradient plus the identity from the reconstruction path
    commitment_grad = 2.0 * commitment_weight * (rows - selected) / rows.numel()
    torch.testing.assert_close(_rows(inputs.grad), commitment_grad + 1.0)


# --------------------------------------------------------------------------------- EMA


def test_ema_codebook_is_a_buffer_not_a_parameter():
    quantizer = VectorQuantizer(8, 4, ema=True)
    assert list(quantizer.parameters()) == []
    buffers = dict(quantizer.named_buffers())
    assert {"codebook", "cluster_size", "embed_sum"} <= set(buffers)
    assert isinstance(VectorQuantizer(8, 4).codebook, torch.nn.Parameter)


@pytest.mark.parametrize("bias_correction", [False, True])
def test_ema_update_in_train_matches_formula(bias_correction):
    decay, eps = 0.9, 1e-5
    quantizer = _make(8, 5, 3, ema=True, decay=decay, eps=eps, bias_correction=bias_correction)
    for step in (1, 2):
        inputs = torch.randn(4, 3, 2, 2, generator=_gen(8 + step))
        cluster_size = quantizer.cluster_size.clone()
        embed_sum = quantizer.embed_sum.clone()
        old_codebook = quantizer.codebook.clone()
        out = quantizer(inputs)
        rows = _rows(inputs)
        one_hot = torch.nn.functional.one_hot(out.indices.reshape(-1), 5).float()
        # quantized with the old codebook, then updated
        assert torch.equal(_rows(out.quantized), old_codebook[out.indices.reshape(-1)])
        n_i = decay * cluster_size + (1 - decay) * one_hot.sum(0)
        m_i = decay * embed_sum + (1 - decay) * one_hot.T @ rows
        torch.testing.assert_close(quantizer.cluster_size, n_i)
        torch.testing.assert_close(quantizer.embed_sum, m_i)
        if bias_correction:
            n_i, m_i = n_i / (1 - decay**step), m_i / (1 - decay**step)
            assert int(quantizer.ema_step) == step
        n = n_i.sum()
        smoothed = (n_i + eps) / (n + 5 * eps) * n
        torch.testing.assert_close(quantizer.codebook, m_i / smoothed[:, None])
        # the codebook term is not optimised in EMA mode, so it is not reported
        assert set(out.terms) == {"commitment"}
        torch.testing.assert_close(out.loss, 0.25 * out.terms["commitment"])


@pytest.mark.parametrize("commitment_weight", [0.25, 1.7])
def test_ema_gradient_is_the_weighted_commitment_gradient_exactly(commitment_weight):
    # In EMA mode L = beta * mean((z - sg[e])^2) over the N * D scalar elements, so
    # dL/dz = 2 beta (z - e) / (N D) and the codebook (a buffer) gets no gradient. The
    # codebook term sg[z] - e has the same value but no gradient to z: putting beta on
    # it, or dropping beta, changes this gradient.
    quantizer = _make(21, 5, 3, ema=True, commitment_weight=commitment_weight)
    inputs = torch.randn(2, 3, 2, 2, generator=_gen(22), dtype=torch.float32)
    inputs.requires_grad_(True)
    old_codebook = quantizer.codebook.clone()
    out = quantizer(inputs)
    out.loss.backward()
    rows = _rows(inputs.detach())
    selected = old_codebook[out.indices.reshape(-1)]
    expected = 2.0 * commitment_weight * (rows - selected) / rows.numel()
    assert rows.numel() == 2 * 3 * 2 * 2
    torch.testing.assert_close(_rows(inputs.grad), expected)
    torch.testing.assert_close(out.loss, commitment_weight * (rows - selected).pow(2).mean())


def test_ema_codes_converge_to_the_mean_of_their_vectors():
    # Two well-separated clusters, one code started near each, the same batch every step:
    # each code's assignment never changes, so it converges to its cluster's mean (up to
    # decay^t of the initial offset and the O(eps) smoothing shift).
    gen = _gen(23)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 3.0]])
    batch = torch.cat(
        [
            centres[0] + torch.randn(9, 2, generator=gen),
            centres[1] + torch.randn(4, 2, generator=gen),
        ]
    )
    quantizer = VectorQuantizer(2, 2, ema=True, decay=0.9, eps=1e-8)
    with torch.no_grad():
        quantizer.codebook.copy_(centres + 0.5)
        quantizer.embed_sum.copy_(quantizer.codebook)
    for _ in range(250):
        out = quantizer(batch)
    assert torch.equal(out.counts, torch.tensor([9.0, 4.0]))
    means = torch.stack([batch[:9].mean(0), batch[9:].mean(0)])
    torch.testing.assert_close(quantizer.codebook, means, rtol=1e-5, atol=1e-5)


def test_ema_state_never_moves_in_eval_or_without_grad():
    quantizer = _make(9, 5, 3, ema=True, bias_correction=True, restart_dead_codes=1)
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    inputs = torch.randn(4, 3, 2, 2, generator=_gen(10))
    quantizer.eval()
    quantizer(inputs)
    quantizer.train()
    with torch.no_grad():
        quantizer(inputs)
    for key, value in before.items():
        assert torch.equal(quantizer.state_dict()[key], value), key
    quantizer(inputs)
    assert not torch.equal(quantizer.codebook, before["codebook"])


def test_learnable_eval_changes_nothing():
    quantizer = _make(11, 5, 3, restart_dead_codes=1).eval()
    before = quantizer.codebook.detach().clone()
    quantizer(torch.randn(4, 3, 2, 2, generator=_gen(12)))
    assert torch.equal(quantizer.codebook, before)
    assert int(quantizer.steps_since_used.sum()) == 0


@pytest.mark.parametrize("bias_correction", [False, True])
def test_ema_unused_codes_stay_finite(bias_correction):
    quantizer = VectorQuantizer(64, 2, ema=True, bias_correction=bias_correction)
    gen = _gen(13)
    used = torch.zeros(64)
    for _ in range(30):
        out = quantizer(torch.randn(8, 2, generator=gen) * 0.01 + 0.5)
        assert torch.isfinite(out.loss)
        used += out.counts
    assert torch.isfinite(quantizer.codebook).all()
    assert torch.isfinite(quantizer.cluster_size).all()
    assert int((used > 0).sum()) < 64  # most codes never used


def test_state_dict_round_trip_restores_ema_state():
    kwargs = {"ema": True, "bias_correction": True, "restart_dead_codes": 3}
    source = _make(14, 6, 3, **kwargs)
    gen = _gen(15)
    for _ in range(3):
        source(torch.randn(5, 3, generator=gen))
    target = VectorQuantizer(6, 3, **kwargs)
    target.load_state_dict(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    inputs = torch.randn(5, 3, generator=gen)
    torch.testing.assert_close(target(inputs).loss, source(inputs).loss)
    torch.testing.assert_close(target.codebook, source.codebook)
    torch.testing.assert_close(target.embed_sum, source.embed_sum)


def test_state_follows_to():
    quantizer = VectorQuantizer(6, 3, ema=True, bias_correction=True).to(torch.float64)
    assert quantizer.codebook.dtype == torch.float64
    assert quantizer.embed_sum.dtype == torch.float64
    assert quantizer.ema_step.dtype == torch.int64
    out = quantizer(torch.randn(4, 3, dtype=torch.float64))
    assert out.quantized.dtype == torch.float64


# ------------------------------------------------------------------------------- usage


def test_usage_is_reported_per_batch_not_kept_as_state():
    quantizer = _make(16, 4, 2)
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    first = quantizer(torch.randn(3, 2, 5, generator=_gen(17)))
    quantizer.eval()
    second = quantizer(torch.randn(2, 2, generator=_gen(18)))
    assert torch.equal(first.counts, torch.bincount(first.indices.reshape(-1), minlength=4).float())
    assert torch.equal(second.counts, torch.bincount(second.indices, minlength=4).float())
    assert set(quantizer.state_dict()) == set(before)  # no usage buffer


# -------------------------------------------------------------------------- dead codes


@pytest.mark.parametrize(("ema", "bias_correction"), [(False, False), (True, False), (True, True)])
def test_dead_codes_are_reseeded_on_inputs(ema, bias_correction):
    quantizer = VectorQuantizer(
        6, 2, ema=ema, bias_correction=bias_correction, restart_dead_codes=2
    )
    alive = torch.tensor([[10.0, 10.0], [11.0, 10.0]])
    far = torch.full((4, 2), 100.0) + torch.arange(4.0)[:, None]
    with torch.no_grad():
        quantizer.codebook.copy_(torch.cat([alive, far]))
        if ema and not bias_correction:
            quantizer.embed_sum.copy_(quantizer.codebook)
    gen = _gen(19)
    inputs = [torch.rand(16, 2, generator=gen) + 10.0 for _ in range(2)]
    quantizer(inputs[0])
    # one step unused: not yet dead (with bias correction an unused code's EMA value is
    # already 0, as in sonnet, since its statistics start at zero)
    assert torch.equal(quantizer.steps_since_used, torch.tensor([0, 0, 1, 1, 1, 1]))
    assert not (quantizer.codebook[2:] == inputs[0][:, None]).all(dim=2).any()
    quantizer(inputs[1])
    # each far code now sits exactly on one of the second batch's vectors
    revived = quantizer.codebook[2:]
    matches = (revived[:, None, :] == inputs[1][None, :, :]).all(dim=2)
    assert matches.any(dim=1).all()
    assert torch.equal(quantizer.steps_since_used[2:], torch.zeros(4, dtype=torch.int64))
    if ema:
        # EMA statistics agree with the new codes: one vector each
        scale = 1 - 0.99**2 if bias_correction else 1.0
        torch.testing.assert_close(quantizer.cluster_size[2:], torch.full((4,), scale))
        torch.testing.assert_close(quantizer.embed_sum[2:], scale * revived)
    out = quantizer(torch.cat(inputs))
    assert (out.counts[2:] > 0).any()
    assert torch.isfinite(out.loss)


def test_dead_code_restart_uses_generator_and_skips_empty_batches():
    quantizer = VectorQuantizer(3, 2, restart_dead_codes=1)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [50.0, 50.0], [-50.0, 50.0]]))
    before = quantizer.codebook.detach().clone()
    quantizer(torch.zeros(0, 2))  # every code dead, no rows to draw from: codebook kept
    assert torch.equal(quantizer.codebook, before)
    inputs = torch.randn(5, 2, generator=_gen(20))
    reseeded = []
    for _ in range(2):
        quantizer.generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            quantizer.codebook.copy_(before)
        quantizer(inputs)
        reseeded.append(quantizer.codebook.detach().clone())
        assert torch.equal(quantizer.codebook[0], before[0])
        matches = (quantizer.codebook[1:, None, :] == inputs[None]).all(dim=2)
        assert matches.any(dim=1).all()  # codes 1 and 2 now lie on inputs
    assert torch.equal(reseeded[0], reseeded[1])  # same generator state, same draw


# ---------------------------------------------------------------------------- decode


def test_decode_maps_indices_back():
    quantizer = _make(21, 7, 3)
    inputs = torch.randn(2, 3, 4, 5, generator=_gen(22))
    out = quantizer(inputs)
    torch.testing.assert_close(quantizer.decode(out.indices), out.quantized)
    assert quantizer.decode(torch.tensor([0, 6])).shape == (2, 3)
    assert quantizer.decode(torch.tensor([[1, 2]], dtype=torch.int32)).shape == (1, 3, 2)
    last = _make(21, 7, 3, channel_last=True)
    grid = torch.zeros(2, 4, 5, dtype=torch.int64)
    assert last.decode(grid).shape == (2, 4, 5, 3)


def test_decode_errors():
    quantizer = VectorQuantizer(4, 2)
    with pytest.raises(TypeError, match=r"indices must be a torch\.Tensor, got list"):
        quantizer.decode([0, 1])
    with pytest.raises(TypeError, match=r"indices must have an integer dtype, got torch\.float32"):
        quantizer.decode(torch.zeros(2))
    with pytest.raises(ValueError, match=r"indices must have shape \(B,\), \(B, L\), \(B, H, W\)"):
        quantizer.decode(torch.tensor(1))
    with pytest.raises(
        ValueError, match=r"indices must be in \[0, 3\] \(codebook_size=4\), got values from 0 to 4"
    ):
        quantizer.decode(torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"got values from -1 to 2"):
        quantizer.decode(torch.tensor([-1, 2]))


# ---------------------------------------------------------------------------- errors


def test_forward_errors():
    quantizer = VectorQuantizer(4, 3)
    with pytest.raises(TypeError, match=r"inputs must be a torch\.Tensor, got ndarray"):
        quantizer(torch.zeros(2, 3).numpy())
    with pytest.raises(
        TypeError, match=r"inputs must have a floating-point dtype, got torch\.int64"
    ):
        quantizer(torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(
        ValueError,
        match=r"inputs must have shape \(B, 3\), \(B, 3, L\), \(B, 3, H, W\) or \(B, 3, T, H, W\) "
        r"\(2 or 3 or 4 or 5 dims\), got shape \(3,\)",
    ):
        quantizer(torch.zeros(3))
    with pytest.raises(ValueError, match=r"got shape \(1, 3, 1, 1, 1, 1\)"):
        quantizer(torch.zeros(1, 3, 1, 1, 1, 1))
    with pytest.raises(
        ValueError,
        match=r"inputs must have embedding_dim=3 channels in the second dim, shape \(B, 3\), .*"
        r"got shape \(2, 5, 4, 4\)",
    ):
        quantizer(torch.zeros(2, 5, 4, 4))
    last = VectorQuantizer(4, 3, channel_last=True)
    with pytest.raises(
        ValueError,
        match=r"inputs must have embedding_dim=3 channels in the last dim, shape \(B, 3\), "
        r"\(B, N, 3\), \(B, H, W, 3\) or \(B, T, H, W, 3\), got shape \(2, 3, 4, 4\)",
    ):
        last(torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"codebook_size": 0}, ValueError, "codebook_size must be >= 1, got 0"),
        ({"codebook_size": 2.0}, TypeError, "codebook_size must be an int, got float"),
        ({"embedding_dim": 0}, ValueError, "embedding_dim must be >= 1, got 0"),
        ({"embedding_dim": True}, TypeError, "embedding_dim must be an int, got bool"),
        ({"decay": 1.0}, ValueError, r"decay must be in \(0\.0, 1\.0\), got 1\.0"),
        ({"decay": 0}, ValueError, r"decay must be in \(0\.0, 1\.0\), got 0"),
        ({"eps": 0.0}, ValueError, r"eps must be in \(0\.0, inf\), got 0\.0"),
        ({"eps": None}, TypeError, "eps must be a float, got NoneType"),
        ({"commitment_weight": -0.1}, ValueError, "commitment_weight must be finite and >= 0"),
        ({"commitment_weight": math.inf}, ValueError, "commitment_weight must be finite and >= 0"),
        ({"commitment_weight": "0.25"}, TypeError, "commitment_weight must be a float, got str"),
        (
            {"bias_correction": True},
            ValueError,
            "bias_correction=True needs ema=True, got ema=False",
        ),
        ({"restart_dead_codes": 0}, ValueError, "restart_dead_codes must be >= 1 or None, got 0"),
        (
            {"restart_dead_codes": 1.5},
            TypeError,
            "restart_dead_codes must be an int or None, got float",
        ),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1 or None, got 0"),
        ({"chunk_size": "8"}, TypeError, "chunk_size must be an int or None, got str"),
    ],
)
def test_constructor_errors(kwargs, error, message):
    arguments = {"codebook_size": 4, "embedding_dim": 2, **kwargs}
    with pytest.raises(error, match=message):
        VectorQuantizer(**arguments)


def test_extra_repr():
    text = repr(VectorQuantizer(512, 16, ema=True, bias_correction=True, chunk_size=128))
    assert "codebook_size=512, embedding_dim=16, commitment_weight=0.25" in text
    assert "ema=True, decay=0.99, eps=1e-05, bias_correction=True" in text
    assert "chunk_size=128" in text
    text = repr(VectorQuantizer(4, 2, channel_last=True, restart_dead_codes=5))
    assert "channel_last=True, restart_dead_codes=5" in text
    assert "ema" not in text


def test_initialisation_range():
    quantizer = VectorQuantizer(50, 8)
    assert quantizer.codebook.abs().max() <= 1 / 50
    ema = VectorQuantizer(50, 8, ema=True)
    assert torch.equal(ema.embed_sum, ema.codebook)
    assert torch.equal(ema.cluster_size, torch.ones(50))
