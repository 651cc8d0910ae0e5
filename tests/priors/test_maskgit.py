"""MaskGIT against its definition (Chang et al. 2022).

A bidirectional transformer; training masks $\\lceil \\cos(\\pi r / 2) T \\rceil$ codes,
$r \\sim U(0, 1)$, and scores the masked codes only; sampling in $S$ steps leaves
$n_s = \\min(\\lceil \\cos(\\pi s / 2S) T \\rceil, n_{s-1} - 1)$ codes masked after step
$s$, re-masking the least confident. The references below are computed here from the
formulas and from `logits`, never from the sampling code.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genlatent import MaskGITPrior
from genlatent.priors._masking import random_mask

K, GRID, CLASSES = 7, (3, 3), 3
T = math.prod(GRID)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _prior(seed: int = 0, *, grid=GRID, **options) -> MaskGITPrior:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prior = MaskGITPrior(K, grid, layers=2, heads=2, dim=16, dtype=torch.float64, **options)
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.mul_(3.0)  # far from uniform, so that the logits differ between codes
    return prior.eval()


def _schedule(positions: int, steps: int) -> list[int]:
    """Codes left masked after each step, from the cosine formula (MaskGIT eq. 3)."""
    left, counts = positions, []
    for s in range(1, steps + 1):
        formula = 0 if s == steps else math.ceil(math.cos(math.pi * s / (2 * steps)) * positions)
        left = min(formula, left - 1)
        counts.append(left)
    return counts


def _recording(prior: MaskGITPrior) -> list[torch.Tensor]:
    """Record the tokens of every pass of the transformer (the mask token is ``K``)."""
    calls: list[torch.Tensor] = []
    features = prior._features

    def recorded(tokens, labels):
        calls.append(tokens.clone())
        return features(tokens, labels)

    prior._features = recorded  # type: ignore[method-assign]
    return calls


def test_every_code_sees_the_codes_after_it_but_not_the_masked_ones():
    prior = _prior(1)
    indices = torch.randint(K, (2, *GRID), generator=_gen(0))
    later = indices.clone()
    later[:, -1, -1] = (later[:, -1, -1] + 1) % K
    with torch.no_grad():
        before, after = prior.logits(indices), prior.logits(later)
    # the first position's logits move when the last code changes: attention is bidirectional
    assert not torch.allclose(before[:, :, 0, 0], after[:, :, 0, 0])
    # under a mask the code is hidden: changing it changes nothing
    mask = torch.zeros(2, *GRID, dtype=torch.bool)
    mask[:, -1, -1] = True
    with torch.no_grad():
        torch.testing.assert_close(prior.logits(indices, mask=mask), prior.logits(later, mask=mask))


def test_the_loss_is_the_cross_entropy_of_the_masked_codes_only():
    prior = _prior(2)
    indices = torch.randint(K, (16, *GRID), generator=_gen(1))
    loss = prior.loss(indices, generator=_gen(5), reduction="none").loss
    # reference: the same mask (drawn from the same generator), the logits given it
    mask = random_mask(16, T, generator=_gen(5)).reshape(16, *GRID)
    with torch.no_grad():
        logits = prior.logits(indices, mask=mask)
    nll = F.cross_entropy(logits, indices, reduction="none").flatten(1)
    flat = mask.flatten(1)
    expected = (nll * flat).sum(1) / flat.sum(1)
    torch.testing.assert_close(loss.detach(), expected)
    assert not torch.allclose(expected, nll.mean(1))  # the unmasked codes would change it
    mean = prior.loss(indices, generator=_gen(5)).bits_per_masked_code
    torch.testing.assert_close(mean.detach(), expected.mean() / math.log(2))


def test_training_masks_the_cosine_count_of_uniformly_chosen_codes():
    batch, positions = 4000, 49
    mask = random_mask(batch, positions, generator=_gen(3))
    counts = mask.sum(1)
    # the same generator's first draws are the ratios r: each grid masks ceil(cos(pi r / 2) T)
    ratios = torch.rand(batch, generator=_gen(3)).tolist()
    expected = [math.ceil(math.cos(math.pi * r / 2) * positions) for r in ratios]
    assert counts.tolist() == expected
    # and whatever the draws: P(n <= k) = P(cos(pi r / 2) <= k / T) = 1 - (2 / pi) acos(k / T)
    for k in (10, 25, 40, 48):
        cdf = 1 - 2 / math.pi * math.acos(k / positions)
        sigma = math.sqrt(cdf * (1 - cdf) / batch)
        assert abs((counts <= k).double().mean().item() - cdf) < 4 * sigma
    # every position is masked equally often: the mean count spread uniformly
    per_position = mask.double().mean(0)
    share = counts.double().mean().item() / positions
    sigma = math.sqrt(share * (1 - share) / batch)
    assert (per_position - share).abs().max().item() < 4.5 * sigma


def test_a_fixed_mask_ratio_masks_that_share_of_every_grid():
    mask = random_mask(50, 49, mask_ratio=0.5, generator=_gen(0))
    assert mask.sum(1).tolist() == [round(0.5 * 49)] * 50
    assert random_mask(3, 49, mask_ratio=0.001, generator=_gen(0)).sum(1).tolist() == [1] * 3


@pytest.mark.parametrize(("steps", "runs"), [(1, 1), (4, 4), (T, T), (T + 3, T)])
def test_sampling_leaves_the_cosine_count_masked_after_each_step(steps, runs):
    prior = _prior(3)
    calls = _recording(prior)
    samples = prior.sample(5, steps=steps, generator=_gen(2))
    assert len(calls) == runs  # more steps than codes: one code per step
    masked_before = [T, *_schedule(T, runs)[:-1]]
    assert [(call == K).sum(1).tolist() for call in calls] == [[n] * 5 for n in masked_before]
    # a code unmasked at one step is kept to the end
    final = samples.flatten(1)
    for call in calls:
        shown = call != K
        assert torch.equal(call[shown], final[shown])
    assert samples.shape == (5, *GRID)
    assert int(samples.max()) < K


def test_the_most_confident_codes_are_kept():
    """Greedy draws and no Gumbel noise: the kept codes are those of largest max-probability."""
    prior = _prior(4)
    calls = _recording(prior)
    prior.sample(3, steps=3, temperature=1e-6, choice_temperature=0.0, generator=_gen(0))
    with torch.no_grad():
        confidence = prior.logits(
            torch.zeros(3, *GRID, dtype=torch.long), mask=torch.ones(3, *GRID, dtype=torch.bool)
        )
    best = torch.log_softmax(confidence, 1).amax(1).flatten(1)  # (3, T)
    kept = calls[1] != K
    count = T - _schedule(T, 3)[0]
    expected = torch.zeros_like(kept)
    expected.scatter_(1, best.topk(count, dim=1).indices, True)
    assert torch.equal(kept, expected)


def test_one_step_at_low_temperature_is_the_argmax_of_the_logits():
    prior = _prior(5)
    samples = prior.sample(4, steps=1, temperature=1e-6, generator=_gen(9))
    hidden = torch.ones(4, *GRID, dtype=torch.bool)
    with torch.no_grad():
        logits = prior.logits(torch.zeros(4, *GRID, dtype=torch.long), mask=hidden)
    assert torch.equal(samples, logits.argmax(1))


@pytest.mark.parametrize("scale", [0.0, 2.0, 3.0])
def test_guidance_draws_from_the_guided_logits(scale):
    prior = _prior(6, num_classes=CLASSES, label_dropout=0.2)
    labels = torch.tensor([0, 1, 2, 1])
    samples = prior.sample(
        4, labels=labels, steps=1, temperature=1e-6, guidance_scale=scale, generator=_gen(0)
    )
    zeros, hidden = torch.zeros(4, *GRID, dtype=torch.long), torch.ones(4, *GRID, dtype=torch.bool)
    with torch.no_grad():
        conditional = prior.logits(zeros, labels, mask=hidden)
        unconditional = prior.logits(zeros, torch.full_like(labels, CLASSES), mask=hidden)
    assert torch.equal(samples, (unconditional + scale * (conditional - unconditional)).argmax(1))


def test_guidance_scale_one_is_the_conditional_sample_and_seeds_reproduce():
    prior = _prior(7, num_classes=CLASSES, label_dropout=0.2)
    labels = torch.tensor([2, 0, 1, 2, 0, 1])
    plain = prior.sample(6, labels=labels, generator=_gen(1), steps=4)
    again = prior.sample(6, labels=labels, generator=_gen(1), steps=4, guidance_scale=1.0)
    assert torch.equal(plain, again)
    assert not torch.equal(plain, prior.sample(6, labels=labels, generator=_gen(2), steps=4))
    unconditional = prior.sample(
        6, labels=torch.full_like(labels, CLASSES), generator=_gen(1), steps=4
    )
    guided = prior.sample(6, labels=labels, guidance_scale=0.0, generator=_gen(1), steps=4)
    assert torch.equal(guided, unconditional)


def test_stacked_codes_train_and_sample():
    prior = _prior(8, grid=(2, 2, 3))
    indices = torch.randint(K, (5, 2, 2, 3), generator=_gen(0))
    assert prior.logits(indices).shape == (5, K, 2, 2, 3)
    assert prior.loss(indices, generator=_gen(1)).loss.isfinite()
    assert prior.sample(2, steps=5, generator=_gen(2)).shape == (2, 2, 2, 3)


def test_a_train_step_learns_and_label_dropout_trains_the_null_class():
    prior = _prior(9, num_classes=CLASSES, label_dropout=0.5).train()
    indices = torch.randint(K, (32, *GRID), generator=_gen(0))
    labels = torch.randint(CLASSES, (32,), generator=_gen(1))
    prior.loss(indices, labels, generator=_gen(2)).loss.backward()
    null_row = prior.class_embedding.weight.grad[CLASSES]
    assert null_row.abs().sum() > 0  # some labels were dropped to the null class
    assert prior.position_embedding.grad.abs().sum() > 0


def test_pretrained_round_trip(tmp_path):
    prior = _prior(10, num_classes=CLASSES, label_dropout=0.1)
    prior.save_pretrained(tmp_path / "maskgit")
    loaded = MaskGITPrior.from_pretrained(tmp_path / "maskgit")
    indices = torch.randint(K, (3, *GRID), generator=_gen(0))
    labels = torch.tensor([0, 1, 3])
    with torch.no_grad():
        torch.testing.assert_close(loaded.logits(indices, labels), prior.logits(indices, labels))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: p.sample(2, steps=0), "steps must be >= 1"),
        (lambda p: p.sample(2, choice_temperature=-1.0), "choice_temperature must be >= 0"),
        (lambda p: p.sample(2, guidance_scale=2.0), "guidance_scale=2.0 needs a class-conditional"),
        (
            lambda p: p.loss(torch.zeros(2, *GRID, dtype=torch.long), mask_ratio=0.0),
            "mask_ratio must be in",
        ),
        (
            lambda p: p.logits(torch.zeros(2, *GRID, dtype=torch.long), mask=torch.ones(2, 3)),
            "mask must be a bool tensor shaped like indices",
        ),
    ],
)
def test_bad_arguments_say_what_was_expected(call, match):
    with pytest.raises(ValueError, match=match):
        call(_prior(0))
