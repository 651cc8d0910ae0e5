"""VectorQuantizer's ``distance="cosine"``, ``gradient="rotation"`` and ``init="kmeans"``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.functional.kmeans import kmeans
from genlatent.functional.rotation import rotation_trick
from genlatent.nn import ResidualVQ, VectorQuantizer

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(deadline=None, max_examples=25)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rotation_reference(e: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's R = I - 2 r r^T + 2 q_hat e_hat^T and scale |q| / |e|, formed as matrices."""
    e_hat = e / e.norm(dim=-1, keepdim=True)
    q_hat = q / q.norm(dim=-1, keepdim=True)
    r = (e_hat + q_hat) / (e_hat + q_hat).norm(dim=-1, keepdim=True)
    eye = torch.eye(e.shape[-1], dtype=e.dtype)
    rotation = eye - 2 * r[:, :, None] * r[:, None, :] + 2 * q_hat[:, :, None] * e_hat[:, None, :]
    return rotation, q.norm(dim=-1) / e.norm(dim=-1)


@SETTINGS
@given(seed=SEEDS, rows=st.integers(1, 6), dim=st.integers(2, 6))
def test_rotation_trick_value_is_the_code_and_gradient_the_rotated_one(seed, rows, dim):
    g = _gen(seed)
    e = torch.randn(rows, dim, generator=g, dtype=torch.float64)
    q = torch.randn(rows, dim, generator=g, dtype=torch.float64)
    weights = torch.randn(rows, dim, generator=g, dtype=torch.float64)
    rotation, scale = rotation_reference(e, q)
    # the reference is a rotation taking e_hat to q_hat
    eye = torch.eye(dim, dtype=torch.float64).expand(rows, dim, dim)
    torch.testing.assert_close(rotation.transpose(1, 2) @ rotation, eye)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(rows, dtype=torch.float64))
    e_hat = e / e.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(
        (rotation @ e_hat[:, :, None]).squeeze(2), q / q.norm(dim=-1, keepdim=True)
    )
    inputs = e.clone().requires_grad_()
    out = rotation_trick(inputs, q)
    assert torch.equal(out, q)  # the value, exactly
    (out * weights).sum().backward()
    want = scale[:, None] * (rotation.transpose(1, 2) @ weights[:, :, None]).squeeze(2)
    torch.testing.assert_close(inputs.grad, want)


def test_rotation_trick_falls_back_to_straight_through_where_undefined():
    e = torch.tensor([[0.0, 0.0], [1.0, 2.0], [1.0, 2.0], [3.0, 0.0]], requires_grad=True)
    q = torch.tensor([[1.0, 1.0], [-2.0, -4.0], [0.0, 0.0], [0.0, 3.0]])
    weights = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    out = rotation_trick(e, q)
    (out * weights).sum().backward()
    # a zero input, a code opposite the input, a zero code: the identity
    assert torch.equal(e.grad[:3], weights[:3])
    # a quarter turn of equal length: the gradient rotated back
    assert torch.equal(out, q)
    torch.testing.assert_close(e.grad[3], torch.tensor([8.0, -7.0]))
    half = rotation_trick(torch.zeros(2, 3, dtype=torch.float16), torch.ones(2, 3))
    assert half.dtype == torch.float16


@SETTINGS
@given(seed=SEEDS, ema=st.booleans())
def test_rotation_changes_the_gradient_only(seed, ema):
    straight = VectorQuantizer(6, 3, ema=ema)
    rotated = VectorQuantizer(6, 3, ema=ema, gradient="rotation")
    codebook = torch.randn(6, 3, generator=_gen(seed))
    with torch.no_grad():
        for quantizer in (straight, rotated):
            quantizer.codebook.copy_(codebook)
            if ema:
                quantizer.embed_sum.copy_(codebook)
    x = torch.randn(4, 3, 5, generator=_gen(seed + 1))
    weights = torch.randn(4, 3, 5, generator=_gen(seed + 2))
    outs, grads = [], []
    for quantizer in (straight, rotated):
        inputs = x.clone().requires_grad_()
        out = quantizer(inputs)
        (out.quantized * weights).sum().backward()
        outs.append(out)
        grads.append(inputs.grad)
    assert torch.equal(outs[1].quantized, outs[0].quantized)
    assert torch.equal(outs[1].indices, outs[0].indices)
    torch.testing.assert_close(outs[1].loss, outs[0].loss, rtol=0, atol=0)
    for name, value in straight.state_dict().items():
        assert torch.equal(rotated.state_dict()[name], value), name
    # the rotated gradient, row by row from the reference matrices
    rows = x.movedim(1, -1).reshape(-1, 3).double()
    codes = codebook[outs[0].indices.reshape(-1)].double()
    rotation, scale = rotation_reference(rows, codes)
    flat_w = weights.movedim(1, -1).reshape(-1, 3).double()
    want = scale[:, None] * (rotation.transpose(1, 2) @ flat_w[:, :, None]).squeeze(2)
    torch.testing.assert_close(grads[1].movedim(1, -1).reshape(-1, 3), want.float())


def test_residual_vq_rotation_rotates_the_input_onto_the_sum_of_codes():
    rvq = ResidualVQ(3, 5, 4, gradient="rotation", channel_last=True)
    with torch.no_grad():
        for index, stage in enumerate(rvq.stages):
            stage.codebook.copy_(torch.randn(5, 4, generator=_gen(index)) * 0.5**index)
    x = torch.randn(6, 4, generator=_gen(9), requires_grad=True)
    weights = torch.randn(6, 4, generator=_gen(10))
    out = rvq(x)
    (out.quantized * weights).sum().backward()
    rotation, scale = rotation_reference(x.detach().double(), out.quantized.detach().double())
    want = scale[:, None] * (rotation.transpose(1, 2) @ weights.double()[:, :, None]).squeeze(2)
    torch.testing.assert_close(x.grad, want.float())


@SETTINGS
@given(seed=SEEDS, ema=st.booleans(), scale=st.floats(0.1, 10.0))
def test_cosine_distance_picks_the_most_similar_unit_code(seed, ema, scale):
    quantizer = VectorQuantizer(7, 3, ema=ema, distance="cosine").eval()
    with torch.no_grad():
        quantizer.codebook.copy_(torch.randn(7, 3, generator=_gen(seed)) * 5)
    x = torch.randn(4, 3, 2, generator=_gen(seed + 1))
    out = quantizer(x)
    rows = x.movedim(1, -1).reshape(-1, 3).double()
    similarity = F.normalize(rows, dim=1) @ F.normalize(quantizer.codebook.double(), dim=1).T
    chosen = similarity.gather(1, out.indices.reshape(-1, 1)).squeeze(1)
    torch.testing.assert_close(chosen, similarity.max(dim=1).values)
    units = out.quantized.movedim(1, -1).reshape(-1, 3)
    torch.testing.assert_close(units.norm(dim=1), torch.ones(8))
    # only the direction of an input matters
    assert torch.equal(quantizer(scale * x).indices, out.indices)
    assert torch.equal(quantizer.decode(out.indices), out.quantized)


def test_cosine_ema_codebook_turns_towards_its_inputs():
    quantizer = VectorQuantizer(2, 2, ema=True, distance="cosine", decay=0.5)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[1.0, 0.1], [-1.0, 0.0]]))
        quantizer.embed_sum.copy_(quantizer.codebook)
    x = torch.tensor([[10.0, 10.0], [20.0, 20.0]])  # one direction, two lengths
    for _ in range(30):
        quantizer(x.clone().requires_grad_())
    direction = F.normalize(quantizer.codebook[0], dim=0)
    torch.testing.assert_close(direction, torch.tensor([0.5**0.5, 0.5**0.5]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: VectorQuantizer(4, 2, distance="l1"),
            r"distance must be one of \('l2', 'cosine'\)",
        ),
        (
            lambda: VectorQuantizer(4, 2, gradient="rot"),
            r"gradient must be one of \('straight_through', 'rotation'\), got 'rot'",
        ),
        (lambda: ResidualVQ(2, 4, 2, distance="cosine"), r"distance must be 'l2', got 'cosine'"),
        (
            lambda: VectorQuantizer(4, 2, init="random"),
            r"init must be one of \('uniform', 'kmeans'\)",
        ),
        (lambda: kmeans(torch.zeros(3, 2), torch.zeros(2, 3)), r"initial must have D=2 columns"),
        (lambda: kmeans(torch.zeros(3, 2), torch.zeros(2, 2), iterations=0), r"iterations must be"),
    ],
)
def test_unknown_options_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ------------------------------------------------------------------------------ k-means


def _lloyd_step(rows: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """One assign-and-average step written out with cdist (float64)."""
    assign = torch.cdist(rows, centres).argmin(dim=1)
    new = centres.clone()
    for index in range(centres.shape[0]):
        members = rows[assign == index]
        if len(members):
            new[index] = members.mean(dim=0)
    return new


def _distortion(rows: torch.Tensor, centres: torch.Tensor) -> float:
    return float(torch.cdist(rows, centres).square().min(dim=1).values.sum())


@SETTINGS
@given(seed=SEEDS, rows=st.integers(1, 30), codes=st.integers(1, 5), dim=st.integers(1, 3))
def test_kmeans_steps_are_lloyd_steps_and_never_worse(seed, rows, codes, dim):
    g = _gen(seed)
    x = torch.randn(rows, dim, generator=g, dtype=torch.float64)
    initial = torch.randn(codes, dim, generator=g, dtype=torch.float64)
    want = initial
    previous = _distortion(x, initial)
    for steps in range(1, 5):
        want = _lloyd_step(x, want)
        got = kmeans(x, initial, iterations=steps)
        torch.testing.assert_close(got.centroids, want)
        distortion = _distortion(x, got.centroids)
        assert distortion <= previous + 1e-9
        previous = distortion
    # the counts are those of the last assignment (here the first, to the initial centres)
    counts = torch.bincount(torch.cdist(x, initial).argmin(dim=1), minlength=codes).double()
    assert torch.equal(kmeans(x, initial, iterations=1).counts, counts)


def test_kmeans_finds_separated_blobs():
    g = _gen(0)
    centres = torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    x = torch.cat([c + torch.randn(20, 2, generator=g) for c in centres])
    result = kmeans(x, x[[0, 20, 40]] + 3.0)
    torch.testing.assert_close(result.centroids, x.reshape(3, 20, 2).mean(dim=1))
    assert torch.equal(result.counts, torch.full((3,), 20.0))


@pytest.mark.parametrize("ema", [False, True])
def test_kmeans_init_runs_once_in_the_first_training_step(ema):
    quantizer = VectorQuantizer(4, 2, ema=ema, init="kmeans", channel_last=True)
    quantizer.generator = _gen(5)
    x = torch.randn(30, 2, generator=_gen(6))
    before = quantizer.codebook.detach().clone()
    quantizer.encode(x)  # not a training step
    quantizer.eval()(x)
    assert not quantizer.initialized
    assert torch.equal(quantizer.codebook, before)
    quantizer.train()(x.clone().requires_grad_())
    assert quantizer.initialized
    seeds = x[torch.randperm(30, generator=_gen(5))[:4]]
    want = kmeans(x, seeds, iterations=10).centroids
    if ema:  # the EMA step after the init moved it; the init set the statistics to it
        assert not torch.equal(quantizer.codebook, want)
    else:
        assert torch.equal(quantizer.codebook, want)
    assert "initialized" in quantizer.state_dict()
    after = quantizer.codebook.detach().clone()
    quantizer(x[:5].clone().requires_grad_())  # no second k-means
    if not ema:
        assert torch.equal(quantizer.codebook, after)
    fresh = VectorQuantizer(4, 2, ema=ema, init="kmeans", channel_last=True)
    fresh.load_state_dict(quantizer.state_dict())
    fresh(x[:5].clone().requires_grad_())
    assert fresh.initialized


def test_kmeans_init_with_fewer_rows_than_codes_uses_batch_rows():
    quantizer = VectorQuantizer(8, 2, init="kmeans", channel_last=True)
    quantizer.generator = _gen(1)
    x = torch.randn(3, 2, generator=_gen(2))
    quantizer(x.clone().requires_grad_())
    on_batch = (quantizer.codebook[:, None, :] == x[None]).all(dim=2).any(dim=1)
    assert on_batch.all()


def test_residual_vq_kmeans_initialises_each_stage_on_its_residual():
    rvq = ResidualVQ(2, 4, 2, init="kmeans", channel_last=True)
    for index, stage in enumerate(rvq.stages):
        stage.generator = _gen(10 + index)
    x = torch.randn(25, 2, generator=_gen(3))
    rvq(x.clone().requires_grad_())
    first = kmeans(x, x[torch.randperm(25, generator=_gen(10))[:4]]).centroids
    residual = x - first[torch.cdist(x, first).argmin(dim=1)]
    second = kmeans(residual, residual[torch.randperm(25, generator=_gen(11))[:4]]).centroids
    torch.testing.assert_close(rvq.stages[0].codebook.detach(), first)
    torch.testing.assert_close(rvq.stages[1].codebook.detach(), second)
