"""`SimVQ` and BSQ (`LFQ(spherical=True)`) against their papers' definitions.

Both join the contract suite in ``test_quantizer_contract.py``; here: SimVQ's codes are
$W c_k$ for a frozen basis $C$ that training never moves while $W$ learns, its indices
and losses those of a brute-force VQ against $CW^\\top$; BSQ's codes have unit norm, its
entropy estimate equals an independent computation from the full softmax over all
$2^n$ codes (the per-bit marginals of its batch mean).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.functional.bsq import bsq_entropy, to_sphere
from genlatent.functional.simvq import simvq_codebook
from genlatent.nn import LFQ, SimVQ

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(deadline=None, max_examples=10)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- SimVQ


@SETTINGS
@given(seed=SEEDS, beta=st.floats(0.0, 2.0))
def test_simvq_is_vq_against_the_mapped_basis(seed, beta):
    simvq = SimVQ(9, 3, commitment_weight=beta, channel_last=True)
    with torch.no_grad():
        simvq.transform.weight.copy_(torch.randn(3, 3, generator=_gen(seed)))
    z = torch.randn(11, 3, generator=_gen(seed + 1), dtype=torch.float64)
    out = simvq(z.float())
    codes = simvq.basis.double() @ simvq.transform.weight.detach().double().T  # E_k = W c_k
    distances = torch.cdist(z, codes).square()
    torch.testing.assert_close(
        distances.gather(1, out.indices[:, None]).squeeze(1), distances.min(dim=1).values
    )
    chosen = codes[out.indices]
    torch.testing.assert_close(out.quantized, chosen.float())
    mse = (z - chosen).square().mean()  # float64 reference, compared at float32 tolerance
    torch.testing.assert_close(out.terms["codebook"], mse.float())
    torch.testing.assert_close(out.loss, ((1 + beta) * mse).float())


def test_simvq_codebook_stays_frozen_while_the_map_trains():
    torch.manual_seed(0)
    simvq = SimVQ(16, 4)
    basis = simvq.basis.clone()
    weight = simvq.transform.weight.detach().clone()
    assert [name for name, _ in simvq.named_parameters()] == ["transform.weight"]
    assert "basis" in simvq.state_dict()  # saved with the model, so it is restored
    optimizer = torch.optim.Adam(simvq.parameters(), lr=1e-2)
    x = torch.randn(32, 4, 5, generator=_gen(1))
    losses = []
    for _ in range(20):
        out = simvq(x)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss.detach()))
    assert torch.equal(simvq.basis, basis)  # frozen
    assert not torch.allclose(simvq.transform.weight, weight)  # the map trained
    assert losses[-1] < losses[0]
    # every code moved (the map moves the whole codebook), not only the selected ones
    before = simvq_codebook(basis, weight)
    moved = (simvq.codebook.detach() - before).norm(dim=1)
    assert bool((moved > 0).all())


def test_simvq_codebook_function_maps_each_basis_row():
    g = _gen(2)
    basis, weight = torch.randn(5, 3, generator=g), torch.randn(3, 3, generator=g)
    codes = simvq_codebook(basis, weight)
    for k in range(5):
        torch.testing.assert_close(codes[k], weight @ basis[k])
    with pytest.raises(ValueError, match=r"weight must have shape \(D, D\) = \(3, 3\)"):
        simvq_codebook(basis, torch.zeros(2, 3))


# ------------------------------------------------------------------------------- BSQ


@SETTINGS
@given(seed=SEEDS, bits=st.integers(1, 8), scale=st.floats(0.01, 100.0))
def test_bsq_codes_have_unit_norm_and_the_signs_of_the_inputs(seed, bits, scale):
    bsq = LFQ(2**bits, spherical=True, channel_last=True)
    z = scale * torch.randn(16, bits, generator=_gen(seed))
    out = bsq(z)
    torch.testing.assert_close(out.quantized.norm(dim=1), torch.ones(16))
    value = 1 / math.sqrt(bits)  # rounded once to float32
    assert torch.equal(out.quantized, torch.where(z > 0, value, -value))
    assert torch.equal(out.indices, LFQ(2**bits, channel_last=True)(z).indices)
    decoded = bsq.decode(torch.arange(2**bits))
    torch.testing.assert_close(decoded.norm(dim=1), torch.ones(2**bits))


def _sphere_softmax(u: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The codes {+-1/sqrt n}^n and the softmax of -||u - c||^2 / tau over all of them."""
    bits = u.shape[1]
    codes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=bits)), dtype=u.dtype)
    codes = codes / math.sqrt(bits)
    return codes, (-torch.cdist(u, codes).square() / temperature).softmax(dim=1)


def _brute_bsq_entropy(u: torch.Tensor, temperature: float, gamma: float):
    """Softmax of -||u - c||^2 / tau over all 2**n codes c in {+-1/sqrt n}^n (float64);
    the codebook entropy as the sum of the entropies of its batch mean's bit marginals."""
    bits = u.shape[1]
    codes, probs = _sphere_softmax(u, temperature)
    per_sample = -(probs * probs.clamp_min(1e-300).log()).sum(dim=1).mean()
    mean = probs.mean(dim=0)
    marginals = torch.stack([mean[codes[:, b] > 0].sum() for b in range(bits)])
    entropy = -(
        marginals * marginals.clamp_min(1e-300).log()
        + (1 - marginals) * (1 - marginals).clamp_min(1e-300).log()
    ).sum()
    return per_sample, entropy, per_sample + gamma * (bits * math.log(2) - entropy)


@SETTINGS
@given(
    seed=SEEDS,
    bits=st.integers(1, 6),
    rows=st.integers(1, 8),
    temperature=st.floats(0.05, 5.0),
    gamma=st.floats(0.0, 2.0),
)
def test_bsq_entropy_equals_the_papers_estimate_from_the_full_softmax(
    seed, bits, rows, temperature, gamma
):
    z = torch.randn(rows, bits, generator=_gen(seed), dtype=torch.float64)
    u = to_sphere(z)
    torch.testing.assert_close(u, z / z.norm(dim=1, keepdim=True))
    got = bsq_entropy(u, temperature=temperature, diversity_gamma=gamma)
    per_sample, codebook, loss = _brute_bsq_entropy(u, temperature, gamma)
    torch.testing.assert_close(got.per_sample_entropy, per_sample)
    torch.testing.assert_close(got.codebook_entropy, codebook)
    torch.testing.assert_close(got.loss, loss)
    # the module's entropy term is the same number on the sphere
    bsq = LFQ(2**bits, spherical=True, factorized_entropy=True, temperature=temperature,
              diversity_gamma=gamma)  # fmt: skip
    out = bsq(z.float().T.unsqueeze(0))  # (1, bits, rows): channel-first
    torch.testing.assert_close(out.terms["entropy"], loss.float(), rtol=1e-4, atol=1e-5)
    commitment = (u - torch.where(z > 0, 1.0, -1.0) / math.sqrt(bits)).square().mean()
    torch.testing.assert_close(out.terms["commitment"], commitment.float())


def test_bsq_entropy_is_zero_at_its_optimum_and_never_negative():
    # every sign pattern once, confident (a tiny temperature): both parts vanish
    patterns = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4))) / 2.0
    assert float(bsq_entropy(patterns, temperature=1e-3).loss) == pytest.approx(0.0, abs=1e-6)
    for seed in range(5):
        u = to_sphere(torch.randn(33, 6, generator=_gen(seed)))
        out = bsq_entropy(u.bfloat16(), temperature=0.01)
        assert float(out.loss) >= 0.0
        assert 0.0 <= float(out.codebook_entropy) <= 6 * math.log(2) + 1e-5


@SETTINGS
@given(
    seed=SEEDS,
    bits=st.integers(1, 6),
    rows=st.integers(1, 8),
    temperature=st.floats(0.05, 5.0),
    gamma=st.floats(0.0, 2.0),
)
def test_bsq_exact_entropy_is_the_entropy_of_the_batch_mean_code_distribution(
    seed, bits, rows, temperature, gamma
):
    z = torch.randn(rows, bits, generator=_gen(seed), dtype=torch.float64)
    _, probs = _sphere_softmax(to_sphere(z), temperature)
    per_sample = -(probs * probs.clamp_min(1e-300).log()).sum(dim=1).mean()
    mean = probs.mean(dim=0)
    joint = -(mean * mean.clamp_min(1e-300).log()).sum()  # H(p-bar) over all 2^n codes
    expected = per_sample + gamma * (bits * math.log(2) - joint)
    bsq = LFQ(2**bits, spherical=True, temperature=temperature, diversity_gamma=gamma)
    out = bsq(z.float().T.unsqueeze(0))
    torch.testing.assert_close(out.terms["entropy"], expected.float(), rtol=1e-4, atol=1e-5)
    # the factorized estimate is an upper bound of the joint entropy (subadditivity), so
    # its loss is never above the exact one's
    factorized = LFQ(2**bits, spherical=True, factorized_entropy=True, temperature=temperature,
                     diversity_gamma=gamma)  # fmt: skip
    assert (
        float(factorized(z.float().T.unsqueeze(0)).terms["entropy"])
        <= float(out.terms["entropy"]) + 1e-5
    )
    # quantization itself does not depend on the estimate
    assert torch.equal(out.quantized, factorized(z.float().T.unsqueeze(0)).quantized)


def test_the_factorized_estimate_cannot_see_correlated_bits():
    # two bits always equal, each balanced over the batch: the factorized codebook
    # entropy is at its optimum (2 log 2), the exact one says half the codes are unused
    u = torch.tensor([[1.0, 1.0], [-1.0, -1.0]]).repeat(8, 1) / math.sqrt(2)
    exact = LFQ(4, spherical=True, temperature=1e-3)
    factorized = LFQ(4, spherical=True, factorized_entropy=True, temperature=1e-3)
    inputs = u.T.unsqueeze(0)
    assert float(factorized(inputs).terms["entropy"]) == pytest.approx(0.0, abs=1e-6)
    assert float(exact(inputs).terms["entropy"]) == pytest.approx(math.log(2), abs=1e-5)


def test_factorized_entropy_is_bsqs_option():
    assert LFQ(8, spherical=True).factorized_entropy is False  # exact, as LFQ's
    assert "factorized_entropy=True" in repr(LFQ(8, spherical=True, factorized_entropy=True))
    with pytest.raises(ValueError, match=r"factorized_entropy=True applies only with spherical"):
        LFQ(8, factorized_entropy=True)
    with pytest.raises(TypeError, match=r"factorized_entropy must be a bool, got str"):
        LFQ(8, spherical=True, factorized_entropy="yes")


def test_spherical_lfq_refuses_a_codebook_scale():
    with pytest.raises(ValueError, match=r"codebook_scale applies only with spherical=False"):
        LFQ(8, spherical=True, codebook_scale=2.0)
