"""Classifier-free guidance against its definition (Ho and Salimans 2022).

A prior trained with ``label_dropout`` models $p(x \\mid y)$ and, through the null class,
$p(x)$; guided sampling draws each code from
$\\ell(\\varnothing) + s\\,(\\ell(y) - \\ell(\\varnothing))$. The references below are
computed from `logits` position by position, never from the sampling code.
"""

from __future__ import annotations

import itertools

import pytest
import torch

KINDS = ("transformer", "pixelcnn")
GRID, K, CLASSES = (2, 3), 5, 3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _prior(make_prior, kind, **options):
    prior = make_prior(kind, K, GRID, seed=4, num_classes=CLASSES, label_dropout=0.2, **options)
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.mul_(3.0)  # far from uniform, so the scales lead to different codes
    return prior.eval()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [0.0, 0.5, 2.0, 3.0])
def test_greedy_guided_samples_follow_the_guided_logits(make_prior, kind, scale):
    prior = _prior(make_prior, kind)
    labels = torch.tensor([0, 1, 2, 1])
    samples = prior.sample(4, labels=labels, top_k=1, guidance_scale=scale, generator=_gen(0))
    # reference: code by code, the argmax of the guided logits given the codes before it
    null = torch.full_like(labels, CLASSES)
    codes = torch.zeros(4, *GRID, dtype=torch.long)
    with torch.no_grad():
        for i, j in itertools.product(range(GRID[0]), range(GRID[1])):
            conditional = prior.logits(codes, labels)[:, :, i, j]
            unconditional = prior.logits(codes, null)[:, :, i, j]
            codes[:, i, j] = (unconditional + scale * (conditional - unconditional)).argmax(1)
    assert torch.equal(samples, codes)


@pytest.mark.parametrize("kind", KINDS)
def test_scale_one_is_the_conditional_model_and_zero_the_unconditional_one(make_prior, kind):
    prior = _prior(make_prior, kind)
    labels = torch.tensor([2, 0, 1, 2, 0, 1])
    plain = prior.sample(6, labels=labels, generator=_gen(1))
    assert torch.equal(prior.sample(6, labels=labels, guidance_scale=1.0, generator=_gen(1)), plain)
    unconditional = prior.sample(6, labels=torch.full_like(labels, CLASSES), generator=_gen(1))
    guided = prior.sample(6, labels=labels, guidance_scale=0.0, generator=_gen(1))
    assert torch.equal(guided, unconditional)
    assert not torch.equal(unconditional, plain)  # the two models differ: a real check


@pytest.mark.parametrize("kind", KINDS)
def test_the_null_class_is_an_exact_likelihood(make_prior, kind):
    """K = 3 codes on a 2x2 grid: the unconditional model's 81 probabilities sum to one."""
    prior = make_prior(kind, 3, (2, 2), seed=2, num_classes=2, label_dropout=0.1)
    every = torch.tensor(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2)
    with torch.no_grad():
        log_prob = prior.log_prob(every, torch.full((81,), 2))  # the null class
    torch.testing.assert_close(
        torch.logsumexp(log_prob, 0), torch.tensor(0.0, dtype=log_prob.dtype)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_training_drops_each_label_with_its_probability(make_prior, kind):
    prior = make_prior(kind, K, GRID, seed=6, num_classes=CLASSES, label_dropout=0.5)
    indices = torch.randint(K, (64, *GRID), generator=_gen(0))
    labels = torch.randint(CLASSES, (64,), generator=_gen(1))
    trained = prior.train().loss(indices, labels, generator=_gen(7), reduction="none").loss
    # reference: the same uniforms, drawn here, decide which labels become the null class
    dropped = torch.where(torch.rand(64, generator=_gen(7)) < 0.5, CLASSES, labels)
    assert 0 < int((dropped == CLASSES).sum()) < 64
    prior.eval()
    torch.testing.assert_close(trained, prior.loss(indices, dropped, reduction="none").loss)
    # in eval mode the loss is the exact conditional likelihood of the labels given
    torch.testing.assert_close(
        prior.loss(indices, labels, reduction="none").loss,
        -prior.log_prob(indices, labels) / 6,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_guidance_needs_a_null_class_and_a_sane_scale(make_prior, kind):
    plain = make_prior(kind, K, GRID, num_classes=CLASSES)
    labels = torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"guidance_scale=2.0 needs .* label_dropout > 0"):
        plain.sample(2, labels=labels, guidance_scale=2.0)
    assert plain.null_class is None
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        plain.log_prob(torch.zeros(1, *GRID, dtype=torch.long), torch.tensor([3]))
    guided = _prior(make_prior, kind)
    assert guided.null_class == CLASSES
    with pytest.raises(ValueError, match=r"guidance_scale must be >= 0 and finite, got -1"):
        guided.sample(2, labels=labels, guidance_scale=-1.0)
    with pytest.raises(TypeError, match="guidance_scale must be a float, got str"):
        guided.sample(2, labels=labels, guidance_scale="2")
    with pytest.raises(ValueError, match=r"label_dropout=0.1 needs num_classes"):
        make_prior(kind, K, GRID, label_dropout=0.1)
    with pytest.raises(ValueError, match=r"label_dropout must be in \[0, 1\), got 1"):
        make_prior(kind, K, GRID, num_classes=2, label_dropout=1)
