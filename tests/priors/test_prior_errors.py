"""Every error of the priors: one line, naming the argument, what was expected and what came."""

from __future__ import annotations

import pytest
import torch

from genlatent._validation import validate_args
from genlatent.priors import PixelCNNPrior, TransformerPrior

KINDS = ("transformer", "pixelcnn")
GRID = (3, 3)


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


def _one_line(error: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(error.value)


CALL_ERRORS = [
    # (conditional, indices, labels, exception, match)
    (False, [[0.0] * 3] * 3, None, TypeError, "indices must be a torch.Tensor, got list"),
    (False, torch.zeros(2, 3, 3), None, TypeError, r"indices must have an integer dtype .*float32"),
    (
        False,
        torch.zeros(2, 3, 3, dtype=torch.bool),
        None,
        TypeError,
        "indices must have an integer",
    ),
    (
        False,
        torch.zeros(2, 3, 4, dtype=torch.long),
        None,
        ValueError,
        r"indices must have shape \(B, 3, 3\) \(the prior's grid_shape\), got \(2, 3, 4\)",
    ),
    (False, torch.zeros(9, dtype=torch.long), None, ValueError, r"must have shape .* got \(9,\)"),
    (
        False,
        torch.full((2, 3, 3), 8),
        None,
        ValueError,
        r"indices must be in \[0, 8\), got values from 8 to 8",
    ),
    (
        False,
        torch.full((2, 3, 3), -1),
        None,
        ValueError,
        r"indices must be in \[0, 8\), got values from -1 to -1",
    ),
    (
        False,
        torch.zeros(2, 3, 3, dtype=torch.long),
        torch.zeros(2, dtype=torch.long),
        ValueError,
        r"labels must be None: this prior is unconditional \(num_classes=None\), got a Tensor",
    ),
    (
        True,
        torch.zeros(2, 3, 3, dtype=torch.long),
        None,
        ValueError,
        r"labels are required: this prior is class-conditional \(num_classes=4\), got None",
    ),
    (
        True,
        torch.zeros(2, 3, 3, dtype=torch.long),
        torch.tensor([0, 4]),
        ValueError,
        r"labels must be in \[0, 4\), got values from 0 to 4",
    ),
    (
        True,
        torch.zeros(2, 3, 3, dtype=torch.long),
        torch.tensor([0.0, 1.0]),
        TypeError,
        r"labels must have an integer dtype \(int64\), got torch.float32",
    ),
    (
        True,
        torch.zeros(2, 3, 3, dtype=torch.long),
        torch.tensor([0, 1, 2]),
        ValueError,
        r"labels must have shape \(B,\) = \(2,\), got \(3,\)",
    ),
    (
        True,
        torch.zeros(2, 3, 3, dtype=torch.long),
        [0, 1],
        TypeError,
        "labels must be a torch.Tensor, got list",
    ),
]


def _prior(kind: str, conditional: bool) -> TransformerPrior | PixelCNNPrior:
    num_classes = 4 if conditional else None
    if kind == "transformer":
        return TransformerPrior(8, GRID, layers=1, heads=1, dim=4, num_classes=num_classes)
    return PixelCNNPrior(8, GRID, channels=4, layers=1, num_classes=num_classes)


# an unconditional prior's loss ignores labels (see the test below); the rest refuse them
CALLS = [
    (method, *case)
    for method in ("logits", "log_prob", "loss")
    for case in CALL_ERRORS
    if not (method == "loss" and "unconditional" in case[-1])
]


@pytest.mark.parametrize(
    ("method", "conditional", "indices", "labels", "exception", "match"), CALLS
)
def test_bad_indices_and_labels(kind, method, conditional, indices, labels, exception, match):
    prior = _prior(kind, conditional)
    with pytest.raises(exception, match=match) as error:
        getattr(prior, method)(indices, labels)
    _one_line(error)


def test_unconditional_loss_ignores_the_labels_a_trainer_passes(kind):
    prior = _prior(kind, False)
    codes = torch.randint(8, (3, 3, 3), generator=torch.Generator().manual_seed(0))
    with_labels = prior.loss(codes, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(with_labels.loss, prior.loss(codes).loss)


def test_range_checks_follow_validate_args(kind):
    prior = _prior(kind, False)
    with validate_args(False), pytest.raises(IndexError):  # from nn.Embedding, unchecked
        prior.logits(torch.full((1, 3, 3), 8))


SAMPLE_ERRORS = [
    ({"num": 0}, ValueError, "num must be >= 1, got 0"),
    ({"num": 2.0}, TypeError, "num must be an int, got float"),
    ({"temperature": 0.0}, ValueError, r"temperature must be > 0 and finite, got 0.0"),
    ({"temperature": -1}, ValueError, r"temperature must be > 0 and finite, got -1"),
    ({"temperature": float("nan")}, ValueError, r"temperature must be > 0 and finite, got nan"),
    ({"temperature": "hot"}, TypeError, "temperature must be a float, got str"),
    ({"top_k": 0}, ValueError, "top_k must be >= 1, got 0"),
    ({"top_k": 1.5}, TypeError, "top_k must be an int or None, got float"),
    ({"top_p": 0.0}, ValueError, r"top_p must be in \(0, 1\], got 0.0"),
    ({"top_p": 1.5}, ValueError, r"top_p must be in \(0, 1\], got 1.5"),
    ({"top_p": True}, TypeError, "top_p must be a float or None, got bool"),
    ({"generator": 0}, TypeError, "generator must be a torch.Generator, got int"),
    ({"labels": torch.tensor([1, 2])}, ValueError, "labels must be None: this prior is uncond"),
]


@pytest.mark.parametrize(("options", "exception", "match"), SAMPLE_ERRORS)
def test_bad_sampling_options(kind, options, exception, match):
    options = {"num": 2, **options}
    with pytest.raises(exception, match=match) as error:
        _prior(kind, False).sample(options.pop("num"), **options)
    _one_line(error)


def test_missing_or_wrong_labels_when_sampling(kind):
    prior = _prior(kind, True)
    with pytest.raises(ValueError, match="labels are required"):
        prior.sample(2)
    with pytest.raises(ValueError, match=r"labels must have shape \(B,\) = \(2,\), got \(3,\)"):
        prior.sample(2, labels=torch.tensor([0, 1, 2]))


def test_bad_reduction(kind):
    with pytest.raises(ValueError, match=r"reduction must be one of .*got 'avg'"):
        _prior(kind, False).loss(torch.zeros(1, 3, 3, dtype=torch.long), reduction="avg")


CONSTRUCTOR_ERRORS = [
    ({"codebook_size": 0}, ValueError, "codebook_size must be >= 1, got 0"),
    ({"codebook_size": 8.0}, TypeError, "codebook_size must be an int, got float"),
    (
        {"grid_shape": (3,)},
        TypeError,
        r"grid_shape must be a pair \(h, w\) of ints, or a triple .*, got \(3,\)",
    ),
    (
        {"grid_shape": "33"},
        TypeError,
        r"grid_shape must be a pair \(h, w\) of ints, or a triple .*, got '33'",
    ),
    ({"grid_shape": (0, 3)}, ValueError, "grid_shape must be >= 1, got 0"),
    ({"num_classes": 0}, ValueError, "num_classes must be >= 1, got 0"),
]


@pytest.mark.parametrize(("options", "exception", "match"), CONSTRUCTOR_ERRORS)
def test_bad_constructor_arguments(kind, options, exception, match):
    arguments = {"codebook_size": 8, "grid_shape": GRID, **options}
    cls = TransformerPrior if kind == "transformer" else PixelCNNPrior
    with pytest.raises(exception, match=match):
        cls(arguments.pop("codebook_size"), arguments.pop("grid_shape"), **arguments)


@pytest.mark.parametrize(
    ("options", "exception", "match"),
    [
        ({"dim": 10, "heads": 4}, ValueError, "heads must divide dim, got dim=10 and heads=4"),
        ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1.0"),
        ({"dropout": "0.1"}, TypeError, "dropout must be a float, got str"),
        ({"layers": 0}, ValueError, "layers must be >= 1, got 0"),
    ],
)
def test_bad_transformer_arguments(options, exception, match):
    with pytest.raises(exception, match=match):
        TransformerPrior(8, GRID, **options)


@pytest.mark.parametrize(
    ("options", "exception", "match"),
    [
        ({"kernel_size": 4}, ValueError, "kernel_size must be odd, got 4"),
        ({"channels": 0}, ValueError, "channels must be >= 1, got 0"),
    ],
)
def test_bad_pixelcnn_arguments(options, exception, match):
    with pytest.raises(exception, match=match):
        PixelCNNPrior(8, GRID, **options)
