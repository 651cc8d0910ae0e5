"""`ResidualQuantizer` and `GroupedQuantizer` against their definitions.

The contract suite (``test_quantizer_contract.py``) runs both over genlatent's and a
user's quantizers; here each is checked against an independent computation: the fused
`ResidualVQ` (and the old state-dict layout), the groups applied by hand to channel
slices, quantize dropout's draws, and the argument errors.
"""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.nn import (
    FSQ,
    LFQ,
    GroupedQuantizer,
    ResidualQuantizer,
    ResidualVQ,
    VectorQuantizer,
)

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomized(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = _gen(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith(("codebook", "embed_sum")) and tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=g))
    return module


@settings(deadline=None, max_examples=8)
@given(seed=SEEDS, ema=st.booleans(), channel_last=st.booleans())
def test_residual_quantizer_over_vector_quantizers_equals_residual_vq(seed, ema, channel_last):
    # the fused ResidualVQ and the composition over its own stages: one training step
    rvq = _randomized(ResidualVQ(3, 6, 4, ema=ema, channel_last=channel_last), seed)
    composed = ResidualQuantizer(copy.deepcopy(list(rvq.stages)))
    x = torch.randn(5, 4, 3, generator=_gen(seed + 1))
    x = x.movedim(1, -1) if channel_last else x
    outs, grads = [], []
    for module in (rvq, composed):
        inputs = x.clone().requires_grad_()
        out = module(inputs)
        (out.loss + (out.quantized * torch.arange(4.0).view(-1 if channel_last else 4, *(
            [1] if not channel_last else []))).sum()).backward()  # fmt: skip
        outs.append(out)
        grads.append(inputs.grad)
    fused, generic = outs
    assert torch.equal(generic.indices, fused.indices)
    assert torch.equal(generic.counts, fused.counts)
    torch.testing.assert_close(generic.quantized, fused.quantized, rtol=0, atol=0)
    torch.testing.assert_close(generic.loss, fused.loss)
    assert generic.terms.keys() == fused.terms.keys()
    # the fused path is one straight-through over the sum (dz_q/dz = I); the composition
    # sums its stages' own estimators (3 I for three straight-through stages): the input
    # gradients differ by exactly 2 w, w the weights of the quantized output above
    weights = torch.arange(4.0).view(-1 if channel_last else 4, *([1] if not channel_last else []))
    torch.testing.assert_close(grads[1], grads[0] + 2 * weights.expand_as(x))
    for name, value in rvq.state_dict().items():  # EMA statistics after the step
        torch.testing.assert_close(composed.state_dict()[name], value, msg=name)
    if not ema:
        for mine, theirs in zip(composed.stages, rvq.stages, strict=True):
            torch.testing.assert_close(mine.codebook.grad, theirs.codebook.grad)


def test_residual_vq_loads_a_state_dict_with_the_old_key_names():
    # the layout saved before ResidualVQ became a ResidualQuantizer, keys written out
    g = _gen(0)
    old = {}
    for stage in range(2):
        old[f"stages.{stage}.codebook"] = torch.randn(5, 3, generator=g)
        old[f"stages.{stage}.cluster_size"] = torch.rand(5, generator=g)
        old[f"stages.{stage}.embed_sum"] = torch.randn(5, 3, generator=g)
    rvq = ResidualVQ(2, 5, 3, ema=True)
    rvq.load_state_dict(old)  # strict
    indices = torch.tensor([[1, 4], [0, 2]])
    want = old["stages.0.codebook"][indices[:, 0]] + old["stages.1.codebook"][indices[:, 1]]
    assert torch.equal(rvq.decode(indices), want)
    shared = {f"stages.0.{k}": v for k, v in VectorQuantizer(5, 3).state_dict().items()}
    ResidualVQ(3, 5, 3, shared_codebook=True).load_state_dict(shared)


def test_residual_stages_quantize_what_the_stages_before_left():
    stages = [_randomized(VectorQuantizer(7, 2, channel_last=True), s) for s in range(3)]
    residual = ResidualQuantizer(stages).eval()
    x = torch.randn(9, 2, generator=_gen(4))
    out = residual(x)
    left, total = x.double(), torch.zeros_like(x.double())
    for s, stage in enumerate(stages):
        codebook = stage.codebook.detach().double()
        chosen = torch.cdist(left, codebook).argmin(dim=1)  # brute force
        assert torch.equal(out.indices[:, s], chosen)
        left, total = left - codebook[chosen], total + codebook[chosen]
    torch.testing.assert_close(out.quantized.double(), total)


def test_residual_input_gradient_is_the_sum_of_the_stages_estimators():
    # dz_q/dz = sum_s J_s, each J_s the stage's own gradient at its residual, computed
    # here stage by stage with torch.autograd.functional.vjp (projected FSQ stages, whose
    # J_s = W_out D W_in is far from I: the stack must not get -(S-1) I)
    torch.manual_seed(0)
    stages = [FSQ([5, 3], dim=4) for _ in range(3)]
    residual = ResidualQuantizer(stages)
    x = torch.randn(6, 4, 2, generator=_gen(8))
    v = torch.randn(6, 4, 2, generator=_gen(9))
    inputs = x.clone().requires_grad_()
    (residual(inputs).quantized * v).sum().backward()
    expected, left = torch.zeros_like(x), x.clone()
    for stage in stages:
        _, vjp = torch.autograd.functional.vjp(lambda r, q=stage: q(r).quantized, left, v)
        expected += vjp
        left = left - stage(left).quantized.detach()
    torch.testing.assert_close(inputs.grad, expected)


def test_residual_gradient_reaches_every_stage_projection():
    residual = ResidualQuantizer([FSQ([5, 3], dim=4) for _ in range(3)])
    out = residual(torch.randn(6, 4, 2, generator=_gen(5)).requires_grad_())
    out.quantized.square().sum().backward()
    for stage in residual.stages:
        for parameter in stage.parameters():
            assert parameter.grad is not None
            assert parameter.grad.abs().sum() > 0


@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_quantize_dropout_keeps_leading_stages_with_the_given_probability(probability):
    stages = [_randomized(VectorQuantizer(6, 3, ema=True), s) for s in range(4)]
    residual = ResidualQuantizer(stages, quantize_dropout=probability)
    x = torch.randn(2, 3, 5, generator=_gen(6))
    full = copy.deepcopy(residual).eval()(x)
    residual.generator = _gen(7)
    dropped_steps = 0
    for _ in range(40):
        before = copy.deepcopy(residual.state_dict())
        out = residual(x.clone().requires_grad_())
        active = int((out.indices[0, 0] >= 0).sum())
        assert (out.indices[..., active:] == -1).all()
        assert torch.equal(out.counts[active:], torch.zeros(4 - active, 6))
        for stage in range(active, 4):  # a dropped stage is not called: no EMA step
            for key, value in before.items():
                if key.startswith(f"stages.{stage}."):
                    assert torch.equal(residual.state_dict()[key], value), key
        dropped_steps += active < 4
        residual.load_state_dict(before)  # the codebooks this step quantized with
        assert torch.equal(residual.decode(out.indices), out.quantized)  # -1 adds nothing
        assert torch.equal(out.indices[..., :active], full.indices[..., :active])
    if probability == 0.0:
        assert dropped_steps == 0
    else:  # P(no drop) = 1 - p + p / 4 per step
        assert 0 < dropped_steps <= 40
        assert probability == 1.0 or dropped_steps < 40
    # the same seed gives the same draws; eval and no-grad calls never drop
    state, again = copy.deepcopy(residual.state_dict()), []
    for _ in range(2):
        residual.load_state_dict(state)
        residual.generator = _gen(7)
        again.append(torch.stack([residual(x.clone().requires_grad_()).indices for _ in range(5)]))
    assert torch.equal(again[0], again[1])
    with torch.no_grad():
        assert (residual(x).indices >= 0).all()


@settings(deadline=None, max_examples=8)
@given(seed=SEEDS, channel_last=st.booleans())
def test_grouped_quantizer_equals_its_groups_on_their_channel_slices(seed, channel_last):
    groups = [
        LFQ(16, dim=3, channel_last=channel_last),
        _randomized(VectorQuantizer(16, 3, channel_last=channel_last), seed),
    ]
    reference = copy.deepcopy(groups)
    grouped = GroupedQuantizer(groups)
    x = torch.randn(2, 6, 5, generator=_gen(seed + 1))
    x = x.movedim(1, -1) if channel_last else x
    out = grouped(x)
    slices = (x[..., :3], x[..., 3:]) if channel_last else (x[:, :3], x[:, 3:])
    parts = [group(part) for group, part in zip(reference, slices, strict=True)]
    dim = -1 if channel_last else 1
    assert torch.equal(out.quantized, torch.cat([p.quantized for p in parts], dim=dim))
    assert torch.equal(out.indices, torch.stack([p.indices for p in parts], dim=-1))
    assert torch.equal(out.counts, torch.stack([p.counts for p in parts]))
    torch.testing.assert_close(out.loss, parts[0].loss + parts[1].loss)
    assert out.terms.keys() == {"entropy", "commitment", "codebook"}
    torch.testing.assert_close(
        out.terms["commitment"], parts[0].terms["commitment"] + parts[1].terms["commitment"]
    )


ERRORS = [
    (lambda: ResidualQuantizer([]), ValueError, r"stages must hold at least one quantizer"),
    (lambda: ResidualQuantizer(FSQ([5])), TypeError, r"stages must be a sequence of quantizers"),
    (
        lambda: ResidualQuantizer([FSQ([5]), torch.nn.Linear(1, 1)]),
        TypeError,
        r"stages\[1\] \(Linear\) does not follow the quantizer contract",
    ),
    (
        lambda: ResidualQuantizer([FSQ([5, 5]), LFQ(32, dim=2)]),
        ValueError,
        r"stages must share one codebook_size .* got \[25, 32\]",
    ),
    (
        lambda: GroupedQuantizer([LFQ(8), LFQ(8, channel_last=True)]),
        ValueError,
        r"groups must share one layout, got channel_last=\[False, True\]",
    ),
    (
        lambda: ResidualQuantizer([FSQ([5])], quantize_dropout=1.5),
        ValueError,
        r"quantize_dropout must be in \[0, 1\], got 1\.5",
    ),
    (
        lambda: ResidualQuantizer([FSQ([5])], quantize_dropout="half"),
        TypeError,
        r"quantize_dropout must be a float, got str",
    ),
    (
        lambda: GroupedQuantizer([ResidualQuantizer([FSQ([5])])])(torch.zeros(2, 1)),
        ValueError,
        r"groups\[0\] must give one index per position \(counts of shape \(K,\)\), "
        r"got counts of shape \(1, 5\)",
    ),
    (
        lambda: GroupedQuantizer([LFQ(8), LFQ(8)]).decode(torch.zeros(4, 3, dtype=torch.int64)),
        ValueError,
        r"indices must have groups=2 in the last dim, got shape \(4, 3\)",
    ),
    (
        lambda: GroupedQuantizer([LFQ(8), LFQ(8)])(torch.zeros(2, 7)),
        ValueError,
        r"inputs must have a number of channels divisible by the 2 groups, got shape \(2, 7\)",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), ERRORS)
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
