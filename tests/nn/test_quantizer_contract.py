"""The quantizer contract, one parametrized suite over every implementation.

``CASES`` lists a factory per implementation: genlatent's `VectorQuantizer` (learnable and
EMA), `FSQ` (with and without a projection), `LFQ`, `ResidualVQ`, and `RoundToGrid`, a
user's quantizer written below that subclasses nothing from genlatent. A new quantizer
joins the contract with one line in ``CASES``. After the suite come the reference tests
of the new quantizers against their maths (brute force over the level grid or the
``2**bits`` codes, a one-stage `ResidualVQ` against a `VectorQuantizer`).

Hypothesis does not seed torch: each example draws an integer seed for a
``torch.Generator``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from genlatent.functional.fsq import fsq_bound, fsq_codes, fsq_codes_from_indices
from genlatent.functional.lfq import lfq_codes, lfq_codes_from_indices, lfq_entropy, lfq_indices
from genlatent.nn import (
    FSQ,
    LFQ,
    GroupedQuantizer,
    Quantizer,
    QuantizerOutput,
    ResidualQuantizer,
    ResidualVQ,
    SimVQ,
    VectorQuantizer,
)
from genlatent.nn.quantizer import check_quantizer
from genlatent.nn.residual import _residual_rows

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(deadline=None, max_examples=10)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ a user's quantizer


class RoundToGrid(nn.Module):
    """Round each channel to the nearest of ``grid_size`` values in [-1, 1].

    What a user writes to join the contract: an ``nn.Module`` with ``codebook_size``,
    ``forward`` returning the five fields, ``encode`` and ``decode``. Straight-through
    gradient, no parameters, no loss; the index of a vector is its digits in base
    ``grid_size``, the first channel least significant.
    """

    grid: torch.Tensor

    def __init__(self, channels: int, grid_size: int = 4, *, channel_last: bool = False):
        super().__init__()
        if not isinstance(grid_size, int) or grid_size < 2:
            raise ValueError(f"grid_size must be an int >= 2, got {grid_size!r}")
        self.channels, self.grid_size, self.channel_last = channels, grid_size, channel_last
        self.codebook_size = grid_size**channels
        self.register_buffer("grid", torch.linspace(-1.0, 1.0, grid_size), persistent=False)

    def _channels_last(self, inputs: torch.Tensor) -> torch.Tensor:
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            raise TypeError(f"inputs must have a floating-point dtype, got {inputs.dtype}")
        if not 2 <= inputs.ndim <= 5:
            raise ValueError(f"inputs must have shape (B, D, *), got shape {tuple(inputs.shape)}")
        x = inputs if self.channel_last else inputs.movedim(1, -1)
        if x.shape[-1] != self.channels:
            raise ValueError(
                f"inputs must have {self.channels} channels, got shape {tuple(inputs.shape)}"
            )
        return x

    def _place(self, device: torch.device) -> torch.Tensor:
        return self.grid_size ** torch.arange(self.channels, device=device)

    def _digits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return (x.detach().float().unsqueeze(-1) - self.grid).abs().argmin(dim=-1)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.channel_last else x.movedim(-1, 1)

    def forward(self, inputs: torch.Tensor) -> QuantizerOutput:
        x = self._channels_last(inputs)
        digits = self._digits(x)
        values = self.grid[digits].to(x.dtype)
        quantized = values + (x - x.detach())  # straight-through, value exactly `values`
        indices = (digits * self._place(x.device)).sum(dim=-1)
        counts = torch.zeros(self.codebook_size, device=x.device).index_add_(
            0, indices.reshape(-1), torch.ones(indices.numel(), device=x.device)
        )
        zero = torch.zeros((), device=x.device)
        return QuantizerOutput(self._layout(quantized), indices, zero, {}, counts)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        return (self._digits(self._channels_last(inputs)) * self._place(inputs.device)).sum(-1)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.is_floating_point():
            raise TypeError(f"indices must have an integer dtype, got {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.codebook_size):
            raise ValueError(f"indices must be in [0, {self.codebook_size - 1}]")
        digits = indices.unsqueeze(-1) // self._place(indices.device) % self.grid_size
        return self._layout(self.grid[digits])


# ---------------------------------------------------------------------------- the cases


def _seeded(module: nn.Module, seed: int, scale: float = 1.0) -> nn.Module:
    """Overwrite every parameter, codebook and basis with N(0, scale^2) draws from ``seed``."""
    g = _gen(seed)
    with torch.no_grad():
        for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
            if name.endswith(("codebook", "basis", "weight", "bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=g) * scale)
                scale *= 0.5 if name.endswith("codebook") else 1.0
            if name.endswith("embed_sum"):  # EMA statistics start at the codebook
                tensor.copy_(dict(module.named_buffers())[name[: -len("embed_sum")] + "codebook"])
    return module


def _bound_reference(z: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
    """The paper's bound written out per channel from its reference code (appendix A.1)."""
    columns = []
    for c, level in enumerate(levels):
        half_level = (level - 1) * (1 - 1e-3) / 2
        offset = 0.5 if level % 2 == 0 else 0.0
        shift = math.tan(offset / half_level)
        columns.append(torch.tanh(z[:, c] + shift) * half_level - offset)
    return torch.stack(columns, dim=1)


def _fsq_surrogate(quantizer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """FSQ without its round: the function whose gradient the straight-through FSQ has."""
    rows = x.movedim(1, -1) if not quantizer.channel_last else x
    flat = rows.reshape(-1, rows.shape[-1])
    if quantizer.project_in is not None:
        flat = F.linear(flat, quantizer.project_in.weight, quantizer.project_in.bias)
    half_width = torch.tensor([level // 2 for level in quantizer.levels], dtype=flat.dtype)
    smooth = _bound_reference(flat, quantizer.levels) / half_width
    if quantizer.project_out is not None:
        smooth = F.linear(smooth, quantizer.project_out.weight, quantizer.project_out.bias)
    out = smooth.reshape(*rows.shape[:-1], smooth.shape[-1])
    return out.movedim(-1, 1) if not quantizer.channel_last else out


def _identity(quantizer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x


def _unit(quantizer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Cosine distance: straight-through from the unit-length inputs."""
    return F.normalize(x, dim=-1 if quantizer.channel_last else 1)


def _rotation(quantizer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The rotation trick written with explicit matrices: sg[|q|/|e| R] e per row."""
    channel = -1 if quantizer.channel_last else 1
    with torch.no_grad():
        codes = quantizer.decode(quantizer.encode(x)).movedim(channel, -1).double()
    e = x.movedim(channel, -1).double()
    flat_e, flat_q = e.reshape(-1, e.shape[-1]), codes.reshape(-1, e.shape[-1])
    with torch.no_grad():
        e_hat = flat_e / flat_e.norm(dim=1, keepdim=True)
        q_hat = flat_q / flat_q.norm(dim=1, keepdim=True)
        r = (e_hat + q_hat) / (e_hat + q_hat).norm(dim=1, keepdim=True)
        eye = torch.eye(e.shape[-1], dtype=e.dtype)
        rotation = eye - 2 * r[:, :, None] * r[:, None, :] + 2 * q_hat[:, :, None] * e_hat[:, None]
        scale = (flat_q.norm(dim=1) / flat_e.norm(dim=1))[:, None, None]
    out = ((scale * rotation) @ flat_e[:, :, None]).squeeze(2).reshape(e.shape)
    return out.movedim(-1, channel).to(x.dtype)


def _sphere_surrogate(quantizer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BSQ: straight-through from the projected inputs on the unit sphere."""
    rows = x if quantizer.channel_last else x.movedim(1, -1)
    if quantizer.project_in is not None:
        rows = F.linear(rows, quantizer.project_in.weight, quantizer.project_in.bias)
    rows = F.normalize(rows, dim=-1)
    if quantizer.project_out is not None:
        rows = F.linear(rows, quantizer.project_out.weight, quantizer.project_out.bias)
    return rows if quantizer.channel_last else rows.movedim(-1, 1)


def _residual(
    stage_surrogate: Callable[[nn.Module, torch.Tensor], torch.Tensor],
) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    """sum_s smooth_s(r_s): gradient sum_s J_s, the residual's rule (S I for S
    straight-through stages).

    The residuals r_s = z - sg[codes of the stages before] come from the stages' own
    encode and decode; each stage's smooth function is ``stage_surrogate`` (FSQ without its
    round, the identity for a straight-through stage).
    """

    def surrogate(quantizer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out, residual = torch.zeros_like(x), x
        for stage in quantizer.stages:
            out = out + stage_surrogate(stage, residual)
            with torch.no_grad():
                codes = stage.decode(stage.encode(residual))
            residual = residual - codes
        return out

    return surrogate


@dataclass(frozen=True)
class Case:
    """One implementation: how to build it, its input channels and stages, its gradient."""

    make: Callable[[int, bool], nn.Module]  # (seed, channel_last) -> quantizer
    channels: int
    stages: int | None = None  # None: indices (B, *); S: indices (B, *, S)
    # the smooth function whose gradient d quantized / d inputs equals the quantizer's
    surrogate: Callable[[nn.Module, torch.Tensor], torch.Tensor] = _identity
    # the error for inputs with one channel too many, when it cannot name the count
    channel_error: str | None = None


GROUPS_ERROR = r"inputs must have a number of channels divisible by the 2 groups"


CASES = {
    "vq": Case(lambda s, cl: _seeded(VectorQuantizer(7, 3, channel_last=cl), s), 3),
    "vq_ema": Case(lambda s, cl: _seeded(VectorQuantizer(7, 3, ema=True, channel_last=cl), s), 3),
    "vq_cosine": Case(
        lambda s, cl: _seeded(VectorQuantizer(7, 3, distance="cosine", channel_last=cl), s),
        3,
        surrogate=_unit,
    ),
    "vq_ema_rotation": Case(
        lambda s, cl: _seeded(
            VectorQuantizer(7, 3, ema=True, gradient="rotation", channel_last=cl), s
        ),
        3,
        surrogate=_rotation,
    ),
    "vq_kmeans": Case(
        lambda s, cl: _seeded(VectorQuantizer(7, 3, init="kmeans", channel_last=cl), s), 3
    ),
    "fsq": Case(lambda s, cl: FSQ([5, 4, 3], channel_last=cl), 3, surrogate=_fsq_surrogate),
    "fsq_dim": Case(
        lambda s, cl: _seeded(FSQ([5, 2], dim=4, channel_last=cl), s), 4, surrogate=_fsq_surrogate
    ),
    "lfq": Case(lambda s, cl: LFQ(8, channel_last=cl), 3),
    "rvq": Case(lambda s, cl: _seeded(ResidualVQ(3, 5, 3, ema=True, channel_last=cl), s), 3, 3),
    "user_round_to_grid": Case(lambda s, cl: RoundToGrid(3, 4, channel_last=cl), 3),
    "simvq": Case(lambda s, cl: _seeded(SimVQ(7, 3, channel_last=cl), s), 3),
    "bsq": Case(
        lambda s, cl: LFQ(8, spherical=True, channel_last=cl), 3, surrogate=_sphere_surrogate
    ),
    "bsq_dim": Case(
        lambda s, cl: _seeded(LFQ(16, dim=3, spherical=True, channel_last=cl), s),
        3,
        surrogate=_sphere_surrogate,
    ),
    "residual_vq": Case(
        lambda s, cl: _seeded(
            ResidualQuantizer([VectorQuantizer(5, 3, channel_last=cl) for _ in range(3)]), s
        ),
        3,
        3,
        surrogate=_residual(_identity),
    ),
    "residual_fsq_dim": Case(
        lambda s, cl: _seeded(
            ResidualQuantizer([FSQ([5, 2], dim=4, channel_last=cl) for _ in range(2)]), s
        ),
        4,
        2,
        surrogate=_residual(_fsq_surrogate),
    ),
    "residual_lfq": Case(
        lambda s, cl: ResidualQuantizer([LFQ(8, channel_last=cl) for _ in range(3)]),
        3,
        3,
        surrogate=_residual(_identity),
    ),
    "residual_user": Case(
        lambda s, cl: ResidualQuantizer([RoundToGrid(3, 4, channel_last=cl) for _ in range(2)]),
        3,
        2,
        surrogate=_residual(_identity),
    ),
    "grouped_lfq": Case(
        lambda s, cl: GroupedQuantizer([LFQ(8, channel_last=cl) for _ in range(2)]),
        6,
        2,
        channel_error=GROUPS_ERROR,
    ),
    "grouped_user_and_vq_ema": Case(
        lambda s, cl: _seeded(
            GroupedQuantizer(
                [
                    RoundToGrid(3, 4, channel_last=cl),
                    VectorQuantizer(64, 3, ema=True, channel_last=cl),
                ]
            ),
            s,
        ),
        6,
        2,
        channel_error=GROUPS_ERROR,
    ),
}
CASE_NAMES = list(CASES)


def _inputs(
    case: Case, seed: int, batch: int, spatial: list[int], channel_last: bool
) -> torch.Tensor:
    shape = (batch, *spatial, case.channels) if channel_last else (batch, case.channels, *spatial)
    return 1.5 * torch.randn(shape, generator=_gen(seed + 1))


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def _assert_same_state(before: dict[str, torch.Tensor], module: nn.Module) -> None:
    after = module.state_dict()
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert torch.equal(after[name], value), name


def _assert_same_output(got: QuantizerOutput, want: QuantizerOutput) -> None:
    assert torch.equal(got.quantized, want.quantized)
    assert torch.equal(got.indices, want.indices)
    assert torch.equal(got.counts, want.counts)
    torch.testing.assert_close(got.loss, want.loss, rtol=0, atol=0, equal_nan=True)
    assert got.terms.keys() == want.terms.keys()
    for name in want.terms:
        torch.testing.assert_close(got.terms[name], want.terms[name], rtol=0, atol=0)


def _reference_counts(indices: torch.Tensor, codebook_size: int, stages: int | None):
    """torch.bincount per stage: an independent count of the indices."""
    if stages is None:
        return torch.bincount(indices.reshape(-1), minlength=codebook_size).float()
    flat = indices.reshape(-1, stages)
    return torch.stack(
        [torch.bincount(flat[:, s], minlength=codebook_size).float() for s in range(stages)]
    )


# ----------------------------------------------------------------------- the contract

SHAPE_ARGS = {
    "seed": SEEDS,
    "batch": st.integers(0, 3),
    "spatial": st.lists(st.integers(1, 3), max_size=3),  # 2-D to 5-D inputs
    "channel_last": st.booleans(),
}


@pytest.mark.parametrize("name", CASE_NAMES)
@SETTINGS
@given(**SHAPE_ARGS)
def test_output_shapes_dtypes_indices_and_counts(name, seed, batch, spatial, channel_last):
    case = CASES[name]
    quantizer = case.make(seed, channel_last)
    assert isinstance(quantizer, Quantizer)
    check_quantizer(quantizer)
    inputs = _inputs(case, seed, batch, spatial, channel_last)
    out = quantizer(inputs)
    assert isinstance(out, tuple)
    assert out._fields == QuantizerOutput._fields
    assert out.quantized.shape == inputs.shape
    assert out.quantized.dtype == inputs.dtype
    assert out.quantized.device == inputs.device
    stage_dims = () if case.stages is None else (case.stages,)
    assert out.indices.shape == (batch, *spatial, *stage_dims)
    assert out.indices.dtype == torch.int64
    if out.indices.numel():
        assert int(out.indices.min()) >= 0
        assert int(out.indices.max()) < quantizer.codebook_size
    size = quantizer.codebook_size
    assert out.counts.shape == (*stage_dims, size)
    assert out.counts.dtype == torch.float32
    positions = batch * math.prod(spatial)
    assert torch.equal(out.counts.sum(dim=-1), torch.full(stage_dims, float(positions)))
    assert torch.equal(out.counts, _reference_counts(out.indices, size, case.stages))
    for value in (out.loss, *out.terms.values()):
        assert value.shape == ()
        assert value.dtype == torch.float32
        if batch > 0:
            assert torch.isfinite(value)


@pytest.mark.parametrize("name", CASE_NAMES)
@SETTINGS
@given(**SHAPE_ARGS)
def test_decode_of_encode_equals_forward(name, seed, batch, spatial, channel_last):
    case = CASES[name]
    quantizer = case.make(seed, channel_last).eval()
    inputs = _inputs(case, seed, batch, spatial, channel_last)
    out = quantizer(inputs)
    indices = quantizer.encode(inputs)
    assert torch.equal(indices, out.indices)
    decoded = quantizer.decode(indices)
    assert decoded.shape == out.quantized.shape
    assert torch.equal(decoded, out.quantized)  # exactly, not approximately


@pytest.mark.parametrize("name", CASE_NAMES)
@SETTINGS
@given(seed=SEEDS, spatial=st.lists(st.integers(1, 3), max_size=3), channel_last=st.booleans())
def test_tokens_are_exact_under_bfloat16_autocast(name, seed, spatial, channel_last):
    # exact tokens: encode gives the float32 indices under bf16 autocast, and so does the
    # forward; decoding them gives the forward's float32 output bit for bit
    case = CASES[name]
    quantizer = case.make(seed, channel_last).eval()
    inputs = _inputs(case, seed, 2, spatial, channel_last)
    want = quantizer(inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        encoded = quantizer.encode(inputs)
        out = quantizer(inputs)
    assert torch.equal(encoded, want.indices)
    assert torch.equal(out.indices, want.indices)
    assert torch.equal(quantizer.decode(encoded), want.quantized)


@pytest.mark.parametrize("name", CASE_NAMES)
@SETTINGS
@given(seed=SEEDS, channel_last=st.booleans())
def test_only_a_training_step_changes_state(name, seed, channel_last):
    case = CASES[name]
    quantizer = case.make(seed, channel_last)
    inputs = _inputs(case, seed, 3, [2], channel_last).requires_grad_()
    before = _state(quantizer)
    quantizer.encode(inputs)  # in train mode, with grad enabled
    _assert_same_state(before, quantizer)
    with torch.no_grad():
        quantizer(inputs)  # train mode but no grad: not a training step
    _assert_same_state(before, quantizer)
    quantizer.eval()
    quantizer(inputs).quantized.sum().backward()
    _assert_same_state(before, quantizer)


@pytest.mark.parametrize("name", CASE_NAMES)
@SETTINGS
@given(seed=SEEDS, spatial=st.lists(st.integers(1, 3), max_size=2), channel_last=st.booleans())
def test_gradient_to_inputs_is_the_estimators(name, seed, spatial, channel_last):
    # straight-through: d quantized / d inputs = I; FSQ: the derivative of its bound
    case = CASES[name]
    quantizer = case.make(seed, channel_last).eval()
    inputs = _inputs(case, seed, 2, spatial, channel_last).requires_grad_()
    weights = torch.randn(inputs.shape, generator=_gen(seed + 2))
    (grad,) = torch.autograd.grad((quantizer(inputs).quantized * weights).sum(), inputs)
    (want,) = torch.autograd.grad((case.surrogate(quantizer, inputs) * weights).sum(), inputs)
    torch.testing.assert_close(grad, want)


PRECISIONS = {
    "float32": (torch.float32, False),
    "float16": (torch.float16, False),
    "autocast_bfloat16": (torch.float32, True),
}


@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("precision", list(PRECISIONS))
@SETTINGS
@given(seed=SEEDS, spatial=st.lists(st.integers(1, 3), max_size=2))
def test_loss_and_terms_are_finite_float32_scalars(name, precision, seed, spatial):
    case = CASES[name]
    dtype, autocast = PRECISIONS[precision]
    quantizer = case.make(seed, False)
    inputs = _inputs(case, seed, 2, spatial, False).to(dtype).requires_grad_()
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with context:
        out = quantizer(inputs)
    assert out.quantized.dtype == dtype
    for value in (out.loss, *out.terms.values()):
        assert value.shape == ()
        assert value.dtype == torch.float32
        assert torch.isfinite(value)
    (out.loss + out.quantized.float().square().mean()).backward()
    assert inputs.grad is not None
    assert torch.isfinite(inputs.grad).all()
    if precision == "float16":
        # half inputs get the codes their float32 copies get (distances run in float32)
        # (in eval mode: a training step may change state, k-means init draws seeds)
        half, single = case.make(seed, False).eval(), case.make(seed, False).eval()
        x = inputs.detach()
        assert torch.equal(half(x).indices, single(x.float()).indices)


@pytest.mark.parametrize("name", CASE_NAMES)
@SETTINGS
@given(seed=SEEDS, channel_last=st.booleans())
def test_state_dict_round_trip_gives_identical_outputs(name, seed, channel_last):
    case = CASES[name]
    trained = case.make(seed, channel_last)
    inputs = _inputs(case, seed, 3, [2, 2], channel_last).requires_grad_()
    out = trained(inputs)  # a training step: EMA statistics move
    (out.loss + out.quantized.square().mean()).backward()
    fresh = case.make(seed + 1, channel_last)
    fresh.load_state_dict(trained.state_dict())
    probe = _inputs(case, seed + 5, 2, [3], channel_last)
    _assert_same_output(fresh.eval()(probe), trained.eval()(probe))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_forward_compiles_as_one_graph_and_matches_eager(name):
    # aot_eager runs Dynamo's full capture and AOTAutograd (forward and backward graphs)
    # without Inductor's minute of C++ compilation on a CPU
    torch._dynamo.reset()
    case = CASES[name]
    quantizer = case.make(0, False).eval()
    compiled = torch.compile(quantizer, fullgraph=True, backend="aot_eager")
    results, grads = [], []
    for fn in (quantizer, compiled):
        inputs = _inputs(case, 0, 2, [3, 2], False).requires_grad_()
        out = fn(inputs)
        (out.loss + out.quantized.square().sum()).backward()
        results.append(out)
        grads.append(inputs.grad)
    eager, comp = results
    assert torch.equal(comp.indices, eager.indices)
    assert torch.equal(comp.counts, eager.counts)
    torch.testing.assert_close(comp.quantized, eager.quantized)
    torch.testing.assert_close(comp.loss, eager.loss)
    torch.testing.assert_close(grads[1], grads[0])


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_inputs_raise_naming_the_argument(name):
    case = CASES[name]
    quantizer = case.make(0, False)
    good = _inputs(case, 0, 1, [2], False)
    with pytest.raises(TypeError, match=r"inputs must have a floating-point dtype, got torch\.int"):
        quantizer(good.long())
    with pytest.raises(ValueError, match=r"inputs must have shape .*got shape \(1, \d, 1, 1"):
        quantizer(torch.zeros(1, case.channels, 1, 1, 1, 1))
    wrong = torch.zeros(1, case.channels + 1, 2)
    channel_error = case.channel_error or rf"inputs must have (\w+=)?{case.channels} channels"
    with pytest.raises(ValueError, match=channel_error):
        quantizer(wrong)
    with pytest.raises(ValueError, match=channel_error):
        quantizer.encode(wrong)
    indices = quantizer.encode(good)
    with pytest.raises(TypeError, match=r"indices must have an integer dtype"):
        quantizer.decode(indices.float())
    too_big = torch.full_like(indices, quantizer.codebook_size)
    with pytest.raises(
        ValueError, match=rf"indices must be in \[0, {quantizer.codebook_size - 1}\]"
    ):
        quantizer.decode(too_big)


BAD_CONSTRUCTORS = [
    (lambda: FSQ([]), ValueError, r"levels must hold at least one level count"),
    (lambda: FSQ([8, 1]), ValueError, r"levels must each be >= 2, got \[8, 1\]"),
    (lambda: FSQ([8, 5.0]), TypeError, r"levels must be a sequence of ints, got float"),
    (lambda: FSQ(8), TypeError, r"levels must be a sequence of ints, got int"),
    (lambda: FSQ([8, 5], dim=0), ValueError, r"dim must be >= 1, got 0"),
    (lambda: LFQ(12), ValueError, r"codebook_size must be a power of 2 \(>= 2\), got 12"),
    (lambda: LFQ(1), ValueError, r"codebook_size must be a power of 2 \(>= 2\), got 1"),
    (lambda: LFQ(2**41), ValueError, r"codebook_size must be at most 2\*\*40, got 2\*\*41"),
    (lambda: LFQ(8.0), TypeError, r"codebook_size must be an int, got float"),
    (lambda: LFQ(8, entropy_weight=-1.0), ValueError, r"entropy_weight must be finite and >= 0"),
    (lambda: LFQ(8, diversity_gamma=math.nan), ValueError, r"diversity_gamma must be finite"),
    (lambda: LFQ(8, temperature=0.0), ValueError, r"temperature must be finite and > 0, got 0"),
    (lambda: LFQ(8, codebook_scale="1"), TypeError, r"codebook_scale must be a float, got str"),
    (lambda: ResidualVQ(0, 8, 3), ValueError, r"num_quantizers must be >= 1, got 0"),
    (lambda: ResidualVQ(2, 8, 3, decay=1.5), ValueError, r"decay must be in \(0\.0, 1\.0\)"),
    (lambda: ResidualVQ(2, 8, 3, colour="red"), TypeError, r"unexpected keyword argument 'colour'"),
    (lambda: RoundToGrid(3, 1), ValueError, r"grid_size must be an int >= 2, got 1"),
    (lambda: SimVQ(0, 3), ValueError, r"codebook_size must be >= 1, got 0"),
    (lambda: SimVQ(8, 3.0), TypeError, r"dim must be an int, got float"),
    (lambda: SimVQ(8, 3, commitment_weight=-1), ValueError, r"commitment_weight must be finite"),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD_CONSTRUCTORS)
def test_bad_constructor_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ------------------------------------------------------------------ FSQ against its maths


@SETTINGS
@given(
    seed=SEEDS,
    levels=st.lists(st.integers(2, 9), min_size=1, max_size=4),
    scale=st.floats(0.1, 20.0),
)
def test_fsq_codes_are_the_nearest_grid_point_after_the_bound(seed, levels, scale):
    z = scale * torch.randn(16, len(levels), generator=_gen(seed))
    bounded = fsq_bound(z, levels)
    # the bound is the paper's formula (float64 reference)
    torch.testing.assert_close(bounded, _bound_reference(z.double(), tuple(levels)).float())
    # brute force: the nearest of the L integers -floor(L/2) .. L - floor(L/2) - 1
    for c, level in enumerate(levels):
        grid = torch.arange(level, dtype=torch.float32) - level // 2
        fraction = bounded[:, c] - bounded[:, c].floor()
        assume(bool(((fraction - 0.5).abs() > 1e-5).all()))  # no ties at half-integers
    codes, indices = fsq_codes(z, levels)
    quantized = FSQ(levels, channel_last=True)(z)
    for c, level in enumerate(levels):
        grid = torch.arange(level, dtype=torch.float32) - level // 2
        nearest = grid[(bounded[:, c, None] - grid).abs().argmin(dim=1)]
        assert torch.equal(codes[:, c], nearest / (level // 2))
        assert torch.equal(quantized.quantized[:, c], nearest / (level // 2))
    # the index from the digits, written out
    half_width = torch.tensor([level // 2 for level in levels])
    digits = (codes * half_width + half_width).round().long()
    by_hand = sum(digits[:, c] * math.prod(levels[:c]) for c in range(len(levels)))
    assert torch.equal(indices, by_hand)
    assert torch.equal(quantized.indices, by_hand)


def test_fsq_even_levels_take_the_half_level_offset():
    z = torch.linspace(-12.0, 12.0, 20001).unsqueeze(1)
    codes, _ = fsq_codes(z, [4])
    values = torch.unique(codes)
    # four codes; rounded levels -2..1, which the half offset makes -1.5..1.5: symmetric
    assert torch.equal(values, torch.tensor([-1.0, -0.5, 0.0, 0.5]))
    shifted = values * 2 + 0.5
    assert torch.equal(shifted, -shifted.flip(0))
    assert fsq_codes(torch.zeros(1, 1), [4])[0].item() == 0.0  # z = 0 is code 0 (the shift)
    # odd levels need no offset: 5 codes symmetric around 0
    assert torch.equal(torch.unique(fsq_codes(z, [5])[0]), torch.tensor([-1, -0.5, 0, 0.5, 1]))


def test_fsq_two_levels_follow_the_reference_shift():
    # L = 2: h = 0.4995, o = 0.5, shift tan(o / h) ~ 1.5608 (artanh(o / h) does not exist);
    # the boundary between codes -1 and 0 is where the bound is -1/2: z = -shift
    shift = math.tan(0.5 / (0.5 * (1 - 1e-3)))
    z = torch.tensor([[-3.0], [-shift - 1e-3], [-shift + 1e-3], [0.0], [3.0]])
    codes, indices = fsq_codes(z, [2])
    assert torch.equal(codes.squeeze(1), torch.tensor([-1.0, -1.0, 0.0, 0.0, 0.0]))
    assert torch.equal(indices, torch.tensor([0, 0, 1, 1, 1]))


def test_fsq_mixed_radix_index_by_hand_and_bijection():
    levels = [3, 4, 5]
    fsq = FSQ(levels)
    # index 41 = 2 + 1 * 3 + 3 * (3 * 4): digits (2, 1, 3); codes (d - floor(L/2)) / floor(L/2)
    assert torch.equal(fsq.decode(torch.tensor([41])), torch.tensor([[1.0, -0.5, 0.5]]))
    assert fsq.encode(torch.tensor([[3.0, -0.75, 0.55]])).item() == 41  # digits (2, 1, 3)
    # every index: inputs built by inverting the bound inside each grid point's rounding
    # cell (0.3 towards 0 from the point, inside the bound's range) encode back
    codes = fsq.decode(torch.arange(fsq.codebook_size))
    assert torch.unique(codes, dim=0).shape[0] == 60
    columns = []
    for c, level in enumerate(levels):
        half_level = (level - 1) * (1 - 1e-3) / 2
        offset = 0.5 if level % 2 == 0 else 0.0
        shift = math.tan(offset / half_level)
        rounded = codes[:, c].double() * (level // 2)
        target = rounded - 0.3 * rounded.sign()
        columns.append(torch.atanh((target + offset) / half_level) - shift)
    inputs = torch.stack(columns, dim=1).float()
    assert torch.equal(fsq.encode(inputs), torch.arange(60))


def test_fsq_recommended_levels_give_the_codebook_sizes_of_the_paper():
    recommended = {8: [8, 6, 5], 10: [8, 5, 5, 5], 12: [7, 5, 5, 5, 5], 14: [8, 8, 8, 6, 5]}
    recommended[16] = [8, 8, 8, 5, 5, 5]
    for bits, levels in recommended.items():
        size = FSQ(levels).codebook_size
        assert size == math.prod(levels)
        assert abs(math.log2(size) - bits) < 0.1  # "about 2**bits" in the paper's table 1
    assert FSQ.__doc__ is not None
    assert "[8, 8, 8, 5, 5, 5]" in FSQ.__doc__  # the table is in the docstring


# ------------------------------------------------------------------ LFQ against its maths


@SETTINGS
@given(seed=SEEDS, bits=st.integers(1, 8), scale=st.floats(0.25, 4.0))
def test_lfq_index_is_the_binary_number_of_the_signs(seed, bits, scale):
    lfq = LFQ(2**bits, codebook_scale=scale, channel_last=True)
    z = torch.randn(10, bits, generator=_gen(seed))
    z[0] = 0.0  # zero is negative
    out = lfq(z)
    for row, index in zip(z.tolist(), out.indices.tolist(), strict=True):
        binary = "".join("1" if value > 0 else "0" for value in reversed(row))
        assert index == int(binary, 2)
    assert torch.equal(out.quantized, torch.where(z > 0, scale, -scale))


def _brute_entropy(z: torch.Tensor, temperature: float, scale: float, gamma: float):
    """Softmax over all 2**bits codes of -||z - c||^2 / tau, entropies in float64."""
    bits = z.shape[1]
    codes = torch.tensor(list(itertools.product([-scale, scale], repeat=bits)), dtype=z.dtype)
    probs = (-torch.cdist(z, codes).square() / temperature).softmax(dim=1)
    per_sample = -(probs * probs.clamp_min(1e-300).log()).sum(dim=1).mean()
    mean = probs.mean(dim=0)
    codebook = -(mean * mean.clamp_min(1e-300).log()).sum()
    return per_sample, codebook, per_sample - gamma * codebook + gamma * bits * math.log(2)


@SETTINGS
@given(
    seed=SEEDS,
    bits=st.integers(1, 6),
    rows=st.integers(1, 8),
    temperature=st.floats(0.05, 10.0),
    scale=st.floats(0.25, 2.0),
    gamma=st.floats(0.0, 2.0),
)
def test_lfq_entropy_equals_brute_force_over_all_codes(seed, bits, rows, temperature, scale, gamma):
    z = torch.randn(rows, bits, generator=_gen(seed), dtype=torch.float64).requires_grad_()
    got = lfq_entropy(z, temperature=temperature, scale=scale, diversity_gamma=gamma)
    per_sample, codebook, loss = _brute_entropy(z, temperature, scale, gamma)
    torch.testing.assert_close(got.per_sample_entropy, per_sample)
    torch.testing.assert_close(got.codebook_entropy, codebook)
    torch.testing.assert_close(got.loss, loss)
    # the gradient too (the shift is a constant); the KL's clamp is inactive here
    assume(bits * math.log(2) - float(got.codebook_entropy.detach()) > 1e-12)
    (grad,) = torch.autograd.grad(got.loss, z)
    (want,) = torch.autograd.grad(loss, z)
    torch.testing.assert_close(grad, want)
    # the module's entropy term is the same number, its loss the weighted sum
    lfq = LFQ(2**bits, temperature=temperature, codebook_scale=scale, diversity_gamma=gamma)
    out = lfq(z.detach().float().T.unsqueeze(0))  # (1, bits, rows): channel-first
    torch.testing.assert_close(out.terms["entropy"], loss.float(), rtol=1e-4, atol=1e-5)
    commitment = (z.detach().float() - torch.where(z > 0, scale, -scale).float()).square().mean()
    torch.testing.assert_close(out.terms["commitment"], commitment)
    torch.testing.assert_close(out.loss, 0.1 * out.terms["entropy"] + 0.25 * commitment)


@settings(deadline=None, max_examples=50)
@given(
    seed=SEEDS,
    bits=st.integers(1, 10),
    magnitude=st.sampled_from([0.0, 1e-3, 1.0, 100.0]),
    balanced=st.booleans(),
    dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32]),
)
def test_lfq_entropy_loss_is_never_negative(seed, bits, magnitude, balanced, dtype):
    if balanced:  # every sign pattern once: the minimum, where rounding could go below 0
        patterns = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=min(bits, 6))))
        z = torch.cat([patterns, torch.ones(len(patterns), bits - patterns.shape[1])], dim=1)
        z = magnitude * z
    else:
        z = magnitude * torch.randn(33, bits, generator=_gen(seed))
    out = lfq_entropy(z.to(dtype), temperature=0.01)
    assert float(out.loss) >= 0.0
    assert float(out.per_sample_entropy) >= 0.0
    assert 0.0 <= float(out.codebook_entropy) <= bits * math.log(2) + 1e-6
    lfq_out = LFQ(2**bits)(z.T.unsqueeze(0).to(dtype))
    assert float(lfq_out.loss) >= 0.0
    assert all(float(value) >= 0.0 for value in lfq_out.terms.values())


def test_lfq_sixteen_bits_fit_and_match_brute_force():
    # 2**16 codes: the batch distribution from two N x 256 factors, never N x 65536
    z = torch.randn(64, 16, generator=_gen(3), dtype=torch.float64)
    got = lfq_entropy(z, temperature=1.0)
    per_sample, codebook, loss = _brute_entropy(z, 1.0, 1.0, 1.0)
    torch.testing.assert_close(got.per_sample_entropy, per_sample)
    torch.testing.assert_close(got.codebook_entropy, codebook)
    torch.testing.assert_close(got.loss, loss)
    out = LFQ(2**16)(torch.randn(2, 16, 32, 32, generator=_gen(4)).requires_grad_())
    out.loss.backward()
    assert out.counts.shape == (2**16,)
    assert out.counts.sum() == 2 * 32 * 32


# ------------------------------------------------------------ ResidualVQ against its maths


@pytest.mark.parametrize("ema", [False, True])
def test_one_stage_residual_vq_equals_a_vector_quantizer(ema):
    rvq = _seeded(ResidualVQ(1, 6, 3, ema=ema), 11)
    vq = VectorQuantizer(6, 3, ema=ema)
    vq.load_state_dict({name.removeprefix("stages.0."): v for name, v in rvq.state_dict().items()})
    x = torch.randn(4, 3, 5, generator=_gen(12))
    results, grads = [], []
    for module in (rvq, vq):
        inputs = x.clone().requires_grad_()
        out = module(inputs)  # a training step: EMA and all
        (out.loss + out.quantized.square().sum()).backward()
        results.append(out)
        grads.append(inputs.grad)
    got, want = results
    assert torch.equal(got.quantized, want.quantized)
    assert torch.equal(got.indices[..., 0], want.indices)
    assert torch.equal(got.counts[0], want.counts)
    torch.testing.assert_close(got.loss, want.loss, rtol=0, atol=0)
    assert got.terms.keys() == want.terms.keys()
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    for name, value in vq.state_dict().items():
        assert torch.equal(rvq.state_dict()[f"stages.0.{name}"], value), name
    if not ema:
        assert torch.equal(rvq.stages[0].codebook.grad, vq.codebook.grad)


@SETTINGS
@given(seed=SEEDS, stages=st.integers(1, 4), shared=st.booleans())
def test_residual_vq_stages_quantize_the_residual_and_decode_sums_them(seed, stages, shared):
    rvq = _seeded(ResidualVQ(stages, 5, 2, shared_codebook=shared, channel_last=True), seed)
    x = torch.randn(3, 4, 2, generator=_gen(seed + 1))
    out = rvq.eval()(x)
    # brute force, stage by stage: the nearest code of what is left
    residual = x.reshape(-1, 2).double()
    total = torch.zeros_like(residual)
    for s in range(stages):
        codebook = rvq.stages[0 if shared else s].codebook.detach().double()
        chosen = out.indices.reshape(-1, stages)[:, s]
        distances = torch.cdist(residual, codebook).square()
        torch.testing.assert_close(
            distances.gather(1, chosen[:, None]).squeeze(1), distances.min(dim=1).values
        )
        residual = residual - codebook[chosen]
        total = total + codebook[chosen]
    torch.testing.assert_close(out.quantized.reshape(-1, 2).double(), total)
    # decode is the sum of the stages' lookups
    lookups = [rvq.stages[0 if shared else s].codebook[out.indices[..., s]] for s in range(stages)]
    assert torch.equal(rvq.decode(out.indices), sum(lookups[1:], lookups[0]))
    assert len(list(rvq.parameters())) == (1 if shared else stages)


def test_residual_vq_quantize_dropout_drops_trailing_stages():
    rvq = _seeded(ResidualVQ(4, 6, 3, quantize_dropout=True), 5)
    x = torch.randn(2, 3, 7, generator=_gen(6))
    seen = set()
    for draw in range(12):
        rvq.generator = _gen(draw)
        active = int(torch.randint(1, 5, (1,), generator=_gen(draw)))
        out = rvq(x.clone().requires_grad_())
        seen.add(active)
        assert (out.indices[..., active:] == -1).all()
        assert (out.indices[..., :active] >= 0).all()
        assert torch.equal(out.counts[active:], torch.zeros(4 - active, 6))
        assert torch.equal(out.counts[:active].sum(1), torch.full((active,), 14.0))
        # the kept stages are those of the full quantizer; decode reads -1 as no code
        full = rvq.eval()(x)
        rvq.train()
        assert torch.equal(out.indices[..., :active], full.indices[..., :active])
        assert torch.equal(rvq.decode(out.indices), out.quantized)
    assert seen == {1, 2, 3, 4}
    with pytest.raises(ValueError, match=r"or -1 for a dropped stage, got values from -2"):
        rvq.decode(torch.full((1, 4), -2))


def test_residual_vq_shared_ema_codebook_steps_once_over_all_stages():
    rvq = _seeded(ResidualVQ(3, 6, 2, ema=True, shared_codebook=True), 8)
    reference = VectorQuantizer(6, 2, ema=True)
    reference.load_state_dict({k.removeprefix("stages.0."): v for k, v in rvq.state_dict().items()})
    x = torch.randn(10, 2, generator=_gen(9))
    frozen = VectorQuantizer(6, 2, ema=True).eval()
    frozen.load_state_dict(reference.state_dict())
    residuals, residual = [], x
    for _ in range(3):  # the stages' inputs under the codebook before the step
        residuals.append(residual)
        residual = residual - frozen(residual).quantized
    rvq(x.clone().requires_grad_())
    reference(torch.cat(residuals).requires_grad_())  # one EMA step over all of them
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(rvq.state_dict()[f"stages.0.{name}"], value, msg=name)


def test_residual_hot_path_compiles_as_one_graph_with_gradients():
    torch._dynamo.reset()
    g = _gen(0)
    rows = torch.randn(12, 3, generator=g)
    codebooks = [torch.randn(5, 3, generator=g) * 0.5**s for s in range(3)]
    compiled = torch.compile(_residual_rows, fullgraph=True, backend="aot_eager")
    results, grads = [], []
    for fn in (_residual_rows, compiled):
        x = rows.clone().requires_grad_()
        books = [c.clone().requires_grad_() for c in codebooks]
        out = fn(x, books, active=2, commitment_weight=0.25, ema=False, chunk_size=2)
        (out.loss + out.total.square().sum()).backward()
        results.append(out)
        grads.append([x.grad, *(b.grad for b in books[:2])])
    eager, comp = results
    assert torch.equal(comp.indices, eager.indices)
    assert torch.equal(comp.counts, eager.counts)
    torch.testing.assert_close(comp.loss, eager.loss)
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want)


# --------------------------------------------------------- the functional layer's errors

FUNCTIONAL_ERRORS = [
    (lambda: fsq_bound(torch.zeros(2, 3), [5, 4]), ValueError, r"inputs must have C=2 channels"),
    (lambda: fsq_bound(torch.zeros(2), [5]), ValueError, r"inputs must have shape \(N, C\)"),
    (lambda: fsq_codes(torch.zeros(2, 1, dtype=torch.int64), [5]), TypeError, r"floating-point"),
    (lambda: fsq_codes(torch.zeros(2, 1), [1]), ValueError, r"levels must each be >= 2"),
    (
        lambda: fsq_codes_from_indices(torch.zeros(2), [5]),
        TypeError,
        r"indices must have an integer dtype, got torch\.float32",
    ),
    (lambda: lfq_codes(torch.zeros(2, 3), scale=0.0), ValueError, r"scale must be finite and > 0"),
    (
        lambda: lfq_codes(torch.zeros(2, 3), scale=True),
        TypeError,
        r"scale must be a float, got bool",
    ),
    (lambda: lfq_indices(torch.zeros(2, 63)), ValueError, r"at most 62 bits \(columns\), got 63"),
    (lambda: lfq_entropy(torch.zeros(2, 41)), ValueError, r"at most 40 bits \(columns\), got 41"),
    (lambda: lfq_entropy(torch.zeros(2, 3, 1)), ValueError, r"inputs must have shape \(N, n\)"),
    (
        lambda: lfq_entropy(torch.zeros(2, 3), temperature=-1.0),
        ValueError,
        r"temperature must be finite and > 0, got -1\.0",
    ),
    (
        lambda: lfq_entropy(torch.zeros(2, 3), diversity_gamma=-0.5),
        ValueError,
        r"diversity_gamma must be finite and >= 0, got -0\.5",
    ),
    (
        lambda: lfq_entropy(torch.zeros(2, 3), diversity_gamma="1"),
        TypeError,
        r"diversity_gamma must be a float, got str",
    ),
    (
        lambda: lfq_codes_from_indices(torch.zeros(2), 3),
        TypeError,
        r"indices must have an integer dtype, got torch\.float32",
    ),
    (
        lambda: ResidualVQ(3, 5, 2).decode(torch.zeros(4, 2, dtype=torch.int64)),
        ValueError,
        r"indices must have num_quantizers=3 in the last dim, got shape \(4, 2\)",
    ),
    (
        lambda: ResidualVQ(3, 5, 2).decode(torch.zeros(4, dtype=torch.int64)),
        ValueError,
        r"indices must have shape \(B, \*, 3\)",
    ),
    (
        lambda: ResidualVQ(3, 5, 2).decode([[0, 0, 0]]),
        TypeError,
        r"indices must be a torch\.Tensor, got list",
    ),
    (lambda: LFQ(8, dim=0), ValueError, r"dim must be >= 1, got 0"),
]


@pytest.mark.parametrize(("call", "error", "match"), FUNCTIONAL_ERRORS)
def test_functional_and_decode_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "make",
    [lambda: FSQ([8, 8, 8, 5, 5, 5], dim=32), lambda: LFQ(2**10, dim=32)],
    ids=["fsq", "lfq"],
)
def test_projected_quantizers_give_float32_tokens_under_bfloat16_autocast(make):
    # many rows through a wide projection: in bf16 some cross a code boundary (this
    # failed for both before the projection ran with autocast off)
    torch.manual_seed(0)
    quantizer = make().eval()
    x = torch.randn(4096, 32, generator=_gen(1))
    want = quantizer.encode(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(quantizer.encode(x), want)
        assert torch.equal(quantizer(x).indices, want)
