"""Bad input by hand: the value-check switch, exact messages, and the command line."""

from __future__ import annotations

import math

import pytest
import torch

import genlatent
from genlatent import (
    VAE,
    VQVAE,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    ResidualBlock,
    VectorQuantizer,
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_likelihood,
    reparameterize,
    vae_loss,
    vqvae_loss,
)
from genlatent._validation import validate_args
from genlatent.cli import main
from genlatent.functional import nearest_code, vq_losses
from genlatent.train import TrainConfig, image_grid
from genlatent.train.config import option_owners

NAN = float("nan")


# ------------------------------------------------------------------ the validate_args switch


def test_switch_is_on_by_default_and_restored_by_the_context():
    assert genlatent.get_validate_args() is True  # the documented default (not under -O)
    with validate_args(False):
        assert genlatent.get_validate_args() is False
    assert genlatent.get_validate_args() is True
    with pytest.raises(TypeError, match="value must be a bool, got int"):
        genlatent.set_validate_args(1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: reparameterize(torch.tensor([[NAN]]), torch.zeros(1, 1)), r"mean must be finite"),
        (lambda: gaussian_kl(torch.zeros(2, 3), torch.full((2, 3), math.inf)), "log_var must be"),
        (
            lambda: gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 3), log_var=NAN),
            r"log_var must be finite \(no NaN or infinity\), got 1 non-finite of 1 values",
        ),
        (
            lambda: bernoulli_log_likelihood(torch.full((1, 2), 2.0), torch.zeros(1, 2)),
            r"x must be in \[0, 1\] \(Bernoulli targets\), got values from 2 to 2$",
        ),
        (
            lambda: bernoulli_log_likelihood(torch.zeros(1, 2), torch.tensor([[0.0, -math.inf]])),
            r"logits must be finite .* got 1 non-finite of 2 values in shape \(1, 2\)",
        ),
        (
            lambda: vae_loss(
                torch.tensor([[-0.5, 0.5]]), torch.zeros(1, 2), torch.zeros(1, 3), torch.zeros(1, 3)
            ),
            r"x must be in \[0, 1\]",
        ),
        (
            lambda: nearest_code(torch.tensor([[NAN, 0.0]]), torch.zeros(3, 2)),
            "inputs must be finite",
        ),
        (lambda: vq_losses(torch.zeros(2, 3), torch.full((2, 3), NAN)), "quantized must be finite"),
        (
            lambda: vqvae_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor(math.inf)),
            "quantizer_loss must be finite",
        ),
        (
            lambda: VectorQuantizer(4, 2)(torch.tensor([[0.0, NAN]])),
            "inputs must be finite",
        ),
    ],
)
def test_value_checks_run_only_while_switched_on(call, message):
    with pytest.raises(ValueError, match=message):
        call()
    with validate_args(False):
        call()  # no check, no error: the hot path reads no values


def test_value_checks_cost_nothing_when_off():
    # The switch decides whether a value is read at all: with it off a tensor whose values
    # would fail every check goes through, and the result is the plain formula's.
    with validate_args(False):
        value = bernoulli_log_likelihood(torch.tensor([[2.0]]), torch.tensor([[0.0]]))
    assert value.item() == pytest.approx(-math.log(2.0))


# -------------------------------------------------------------------- cheap checks, by hand


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: MLPEncoder(4, 3, 2)(torch.zeros(2, 4, dtype=torch.float64)),
            TypeError,
            r"x must have the dtype of the module's parameters, torch.float32, got "
            r"torch.float64 \(convert it with .to\(torch.float32\) or run under torch.autocast\)",
        ),
        (
            lambda: MLPDecoder(2, 3, 4)(torch.zeros(2, 2, dtype=torch.float16)),
            TypeError,
            r"z must have the dtype of the module's parameters",
        ),
        (
            lambda: ResidualBlock(2, 3)(torch.zeros(1, 3, 4, 4)),
            ValueError,
            r"x must have 2 channels, shape \(B, 2, H, W\), got \(1, 3, 4, 4\)",
        ),
        (
            lambda: ConvEncoder(1, 4, 2)(torch.zeros(1, 1, 3, 8)),
            ValueError,
            r"x must have height and width >= 4, shape \(B, 1, H, W\), got \(1, 1, 3, 8\)",
        ),
        (
            lambda: ConvDecoder(2, 4, 1)(torch.zeros(1, 2, 0, 2)),
            ValueError,
            r"z must have height and width >= 1",
        ),
        (
            lambda: gaussian_log_likelihood(
                torch.zeros(2, 3), torch.zeros(2, 3), log_var=torch.zeros(1, 2, 3)
            ),
            ValueError,
            r"log_var must be a float or a tensor broadcastable to x \(2, 3\), "
            r"got shape \(1, 2, 3\)",
        ),
        (
            lambda: gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 3), log_var="1"),
            TypeError,
            "log_var must be a float or a tensor, got str",
        ),
        (
            lambda: vq_losses(torch.zeros(2, 0), torch.zeros(2, 0)),
            ValueError,
            r"inputs must have at least one value per example, .* got \(2, 0\)",
        ),
        (
            lambda: VAE(lambda x: x, MLPDecoder(2, 3, 4)),  # type: ignore[arg-type]
            TypeError,
            "encoder must be an nn.Module, got function",
        ),
        (
            lambda: VQVAE(ConvEncoder(1, 4, 2), "vq", ConvDecoder(2, 4, 1)),  # type: ignore[arg-type]
            TypeError,
            "quantizer must be an nn.Module, got str",
        ),
        (
            lambda: image_grid(torch.zeros(2, 1, 3, 3), nrow=0),
            ValueError,
            "nrow must be >= 1, got 0",
        ),
        (
            lambda: image_grid(torch.zeros(2, 1, 3, 3), padding=-1),
            ValueError,
            "padding must be an int >= 0, got -1",
        ),
        (
            lambda: VectorQuantizer(0, 4),
            ValueError,
            "codebook_size must be >= 1, got 0",
        ),
        (
            lambda: VectorQuantizer(4, 4, ema=True, decay=1.0),
            ValueError,
            r"decay must be in \(0.0, 1.0\), got 1.0",
        ),
    ],
)
def test_cheap_checks_name_argument_expectation_and_value(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_modules_accept_other_dtypes_under_autocast():
    # The dtype check steps aside where autocast does the casting (all but float64).
    encoder = MLPEncoder(4, 3, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder(torch.zeros(2, 4, dtype=torch.float16))
        assert out.mean.dtype == torch.bfloat16
        with pytest.raises(TypeError, match="x must have the dtype of the module's parameters"):
            encoder(torch.zeros(2, 4, dtype=torch.float64))


# ------------------------------------------------------------------------ the command line


TRAIN = ["--dataset", "digits", "--device", "cpu", "--no-progress"]


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (["--batch-size", "0"], ("batch_size", "got 0")),
        (["--epochs", "-3"], ("epochs", "got -3")),
        (["--codebook-size", "0"], ("codebook_size", "got 0")),
        (["--embedding-dim", "0"], ("embedding_dim", "got 0")),
        (["--latent-dim", "-1"], ("latent_dim", "got -1")),
        (["--hidden-channels", "0"], ("hidden_channels", "got 0")),
        (["--restart-dead-codes", "0"], ("restart_dead_codes", "got 0")),
        (["--train-limit", "0"], ("train_limit", "got 0")),
        (["--grad-clip", "0"], ("grad_clip", "got 0")),
        (["--grad-clip", "nan"], ("grad_clip", "got nan")),
        (["--lr", "inf"], ("lr", "got inf")),
        (["--commitment-weight", "-1"], ("commitment_weight", "got -1")),
        (["--seed", "-1"], ("seed", "got -1")),
        (["--device", "nonsense"], ("device", "nonsense")),
    ],
)
def test_cli_train_rejects_each_bad_option_in_one_line(cli_error, tmp_path, options, fragments):
    out = tmp_path / "run"
    # each option on the preset it applies to (the other one refuses it as inapplicable)
    preset = option_owners().get(fragments[0], "vqvae").split()[0].rstrip(",")
    cli_error(["train", preset, *TRAIN, *options, "--out", str(out)], *fragments)
    assert not (out / "checkpoints").exists()  # nothing was trained


def test_cli_argparse_rejects_unknown_choices_and_non_numbers(capsys):
    for argv, fragment in [
        (["train", "vae", "--precision", "fp8"], "invalid choice: 'fp8'"),
        (["train", "vae", "--epochs", "two"], "invalid int value: 'two'"),
        (["eval", "run", "--checkpoint", "first"], "invalid choice: 'first'"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert fragment in capsys.readouterr().err


def test_cli_corrupt_checkpoint_is_named(cli_error, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(
        __import__("json").dumps(TrainConfig(model="vae", latent_dim=2, device="cpu").to_dict())
    )
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04 not really a zip file")
    cli_error(["eval", str(run), "--checkpoint", "last"], "last.pt is truncated or corrupt")
    cli_error(["sample", str(run), "--out", str(tmp_path / "s.png")], "no readable checkpoint")


def test_switch_docstring_examples_run():
    # Their __module__ names the layer they are documented under, so pytest's doctest
    # collection of _validation.py skips them: run them here.
    import doctest

    from genlatent import _validation

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for function in (genlatent.set_validate_args, genlatent.get_validate_args):
        for test in doctest.DocTestFinder().find(function, globs=vars(_validation).copy()):
            assert test.examples, function.__name__
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert genlatent.get_validate_args() is True
