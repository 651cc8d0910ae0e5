"""The ``genlatent`` command line: help, one-line errors, and train/eval/sample/plot end to end."""

import json
import re
import subprocess
import sys

import pytest
import torch
from PIL import Image

import genlatent
from genlatent import __version__
from genlatent.cli import main

SMALL_VAE = ["train", "vae", "--dataset", "digits", "--epochs", "2", "--latent-dim", "4"]
SMALL_VQ = [
    "train", "vqvae", "--dataset", "digits", "--epochs", "1", "--hidden-channels", "8",
    "--codebook-size", "16", "--embedding-dim", "4", "--ema", "--restart-dead-codes", "5",
]  # fmt: skip
QUIET = ["--no-progress", "--device", "cpu"]


def _width(path) -> int:
    with Image.open(path) as image:
        return image.size[0]


def test_help_lists_commands_and_train_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "eval", "sample", "plot"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for option in ("--dataset", "--ema", "--restart-dead-codes", "--resume", "--precision"):
        assert option in out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"genlatent {__version__}"


def test_entry_points_run_as_modules():
    for module in ("genlatent", "genlatent.cli"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--version"], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"genlatent {__version__}"


def test_bad_input_is_one_clear_line(cli_error, capsys, tmp_path):
    cli_error(["train", "--dataset", "digits"], "needs a model: vae, vqvae, tokenizer or --model")
    cli_error([*SMALL_VAE, "--epochs", "0", "--out", str(tmp_path / "a")], "epochs", "got 0")
    cli_error([*SMALL_VAE, "--lr", "-1", "--out", str(tmp_path / "b")], "lr")
    cli_error(["eval", str(tmp_path / "missing")], str(tmp_path / "missing"))
    cli_error(["sample", str(tmp_path / "missing"), "--out", "x.png"], "missing")
    cli_error(["train", "--resume", str(tmp_path / "none")], "no config.json")
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects unknown choices itself
        main(["train", "vae", "--dataset", "imagenet"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def _check_active_units(run, reported):
    """Burda et al.'s count from the best checkpoint's posterior means, computed here."""
    from genlatent import load_run
    from genlatent.data import TensorBatches
    from genlatent.train.build import load_test_set

    loaded = load_run(run)
    test = TensorBatches(load_test_set(loaded.config), batch_size=1000)
    with torch.no_grad():
        means = torch.cat([loaded.model.encode(batch.images)[0] for batch in test])
    centred = means.double() - means.double().mean(dim=0)
    variance = centred.square().sum(dim=0) / (means.shape[0] - 1)
    assert reported == int((variance > 1e-2).sum())


def test_train_eval_sample_plot_resume(cli_error, capsys, tmp_path):
    run = tmp_path / "run"
    assert main([*SMALL_VAE, *QUIET, "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"run directory: {run}" in out
    for name in ("metrics.jsonl", "reconstructions.png", "samples.png", "config.json"):
        assert (run / name).is_file(), name

    assert main(["eval", str(run), "--iwae-k", "8", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["num_examples"] == 297
    assert "examples" not in results  # one count, under one name
    # the VAE's loss is the negative ELBO; the IWAE bound is tighter
    assert results["loss"] == pytest.approx(results["reconstruction_loss"] + results["kl"])
    assert results["iwae_nll"] <= results["loss"] + 1e-6
    _check_active_units(run, results["active_units"])
    from genlatent.train import evaluate_run

    again = evaluate_run(run, iwae_k=8, show_progress=True)
    assert "IWAE bound, k = 8" in capsys.readouterr().err  # the bar, on stderr
    assert again["iwae_nll"] == results["iwae_nll"]  # the same seeded noise: the same bound
    assert main(["eval", str(run), "--checkpoint", "last"]) == 0
    table = capsys.readouterr().out
    assert "reconstruction_loss" in table

    grid = tmp_path / "samples.png"
    assert main(["sample", str(run), "-n", "12", "--out", str(grid)]) == 0
    assert _width(grid) > 0
    cli_error(["sample", str(run), "-n", "0", "--out", str(grid)], "num", "got 0")

    assert main(["plot", str(run)]) == 0
    written = [line.removeprefix("wrote ") for line in capsys.readouterr().out.splitlines()]
    assert written
    assert all(_width(path) > 0 for path in written)

    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    capsys.readouterr()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_vqvae_train_and_eval(capsys, tmp_path):
    run = tmp_path / "vq"
    assert main([*SMALL_VQ, *QUIET, "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert 0 < results["fraction_used"] <= 1
    assert 1 <= results["perplexity"] <= 16
    assert results["psnr"] > 0


def test_restart_dead_codes_beyond_the_run_is_warned(capsys, tmp_path):
    # digits: 1,500 training images at batch 128 are 12 steps an epoch, 12 in the run
    argv = [*SMALL_VQ[:-2], "--restart-dead-codes", "50", *QUIET, "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "warning: --restart-dead-codes 50 exceeds the run's 12 training steps (12 per epoch)" in out
    )
    assert (
        main([*SMALL_VQ[:-2], "--restart-dead-codes", "5", *QUIET, "--out", str(tmp_path / "s")])
        == 0
    )
    assert "warning" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "codes"),
    [
        (["--quantizer", "fsq", "--levels", "3,3,2"], 18),
        (["--quantizer", "lfq", "--codebook-size", "16"], 16),
        (["--quantizer", "rvq", "--num-quantizers", "2", "--ema", "--codebook-size", "16"], 16),
        (
            [
                "--distance",
                "cosine",
                "--gradient",
                "rotation",
                "--init",
                "kmeans",
                "--ema",
                "--codebook-size",
                "16",
            ],
            16,
        ),
    ],
)
def test_each_quantizer_trains_evaluates_and_plots_from_the_cli(options, codes, capsys, tmp_path):
    run = tmp_path / "q"
    argv = ["train", "vqvae", "--dataset", "digits", "--epochs", "1", "--hidden-channels", "8"]
    argv += ["--embedding-dim", "4", *options, *QUIET, "--out", str(run)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert 0 < results["fraction_used"] <= 1
    assert 1 <= results["perplexity"] <= codes
    assert main(["plot", str(run)]) == 0
    assert "code_usage.png" in capsys.readouterr().out
    with Image.open(run / "code_usage.png") as picture:
        # residual VQ: one panel per stage, stacked (2.4 in each and 0.6 in margins)
        stages = 2 if "rvq" in options else 1
        assert picture.size[1] / picture.size[0] == pytest.approx(
            (3.6 if stages == 1 else 2.4 * stages + 0.6) / 7.0, rel=0.02
        )
    recorded = json.loads((run / "config.json").read_text())["architecture"]
    assert recorded.get("quantizer", "vq") == (options[1] if options[0] == "--quantizer" else "vq")


def test_bad_quantizer_options_are_one_line(cli_error, tmp_path):
    out = ["--out", str(tmp_path / "q")]
    cli_error(["train", "vqvae", "--quantizer", "fsq", "--levels", "8,1", *out], "levels", "8, 1")
    cli_error(["train", "vae", "--quantizer", "fsq", *out], "--quantizer (vqvae, tokenizer only)")
    # each option the chosen quantizer does not take is refused, naming what takes it
    cli_error(
        ["train", "vqvae", "--quantizer", "fsq", "--codebook-size", "64", *out],
        "--codebook-size (vqvae, tokenizer with --quantizer vq, lfq, rvq, simvq, bsq only)",
    )
    cli_error(
        ["train", "vqvae", "--quantizer", "fsq", "--ema", *out], "--ema (vqvae, tokenizer with"
    )
    cli_error(
        ["train", "vqvae", "--levels", "8,5,5", *out],
        "--levels (vqvae, tokenizer with --quantizer fsq",
    )
    cli_error(
        ["train", "vqvae", "--num-quantizers", "3", *out], "--num-quantizers (vqvae, tokenizer with"
    )
    cli_error(
        ["train", "vqvae", "--quantizer", "lfq", "--restart-dead-codes", "5", *out],
        "--restart-dead-codes (vqvae, tokenizer with --quantizer vq, rvq only)",
    )
    cli_error(["train", "vae", "--conditional", *out], "--conditional apply to train prior")
    cli_error(["train", "vqvae", "--prior", "pixelcnn", *out], "--prior apply to train prior")
    assert not (tmp_path / "q").exists()


def test_malformed_values_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "vqvae", "--quantizer", "fsq", "--levels", "8,x"])
    assert exit_info.value.code == 2
    assert "levels takes ints separated by commas, got '8,x'" in capsys.readouterr().err


def test_a_registered_quantizer_is_one_registration_away_from_the_command_line(capsys, tmp_path):
    from genlatent import VectorQuantizer
    from genlatent.models.quantizers import QUANTIZERS, register_quantizer

    def halved(embedding_dim: int, *, codebook_size: int = 8, code_scale: float = 1.0):
        """A VQ whose codebook starts scaled (a user's quantizer).

        Args:
            embedding_dim: code dimension.
            codebook_size: number of codes.
            code_scale: factor of the initial codebook.
        """
        quantizer = VectorQuantizer(codebook_size, embedding_dim)
        with torch.no_grad():
            quantizer.codebook.mul_(code_scale)
        return quantizer

    register_quantizer("halved", halved)
    try:
        capsys.readouterr()
        with pytest.raises(SystemExit):
            main(["train", "--help"])
        assert "--code-scale" in capsys.readouterr().out  # its flag, from its signature
        run = tmp_path / "run"
        argv = ["train", "vqvae", "--dataset", "digits", "--epochs", "1", "--hidden-channels",
                "8", "--embedding-dim", "4", "--quantizer", "halved", "--code-scale", "0.5",
                "--codebook-size", "12", *QUIET, "--out", str(run)]  # fmt: skip
        assert main(argv) == 0
        recorded = json.loads((run / "config.json").read_text())
        assert recorded["architecture"] == {
            "hidden_channels": 8, "embedding_dim": 4, "quantizer": "halved", "code_scale": 0.5,
            "codebook_size": 12,
        }  # fmt: skip
        assert recorded["built"]["arguments"]["quantizer"]["arguments"]["codebook_size"] == 12
        assert main([*argv[:-2], "--ema", "--out", str(tmp_path / "x")]) == 2
        assert "--ema (vqvae, tokenizer with --quantizer vq, rvq only)" in capsys.readouterr().err
    finally:
        del QUANTIZERS["halved"]


def test_printed_numbers_say_what_they_are(capsys, tmp_path):
    run = tmp_path / "iwae"
    argv = ["train", "vae", "--dataset", "digits", "--epochs", "1", "--latent-dim", "4",
            "--iwae-samples", "3", *QUIET, "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("epoch 1 "))
    # the IWAE objective is not printed as if it were the test ELBO beside it
    assert " | train objective " in line
    assert " | train elbo " in line
    assert " | test elbo " in line
    # each loss with its unit: a VAE's are nats per image
    assert re.search(r"train objective [0-9.]+ nats/image \| train elbo [0-9.]+ nats/image "
                     r"\| test elbo [0-9.]+ nats/image \|", line), line  # fmt: skip
    assert main(["eval", str(run), "--samples", "20"]) == 0
    table = {row.split()[0]: row.split()[1:] for row in capsys.readouterr().out.splitlines()}
    assert table["samples"] == ["20"]  # a count, not 20.0000, and no unit
    assert table["epoch"] == ["1"]
    assert table["kl"][1:] == ["nats/image"]
    assert table["psnr"][1:] == ["dB"]
    assert table["mse"][1:] == ["per", "pixel"]


def test_each_model_prints_its_own_loss_unit(capsys, tmp_path):
    """A VQ-VAE's losses are mean squared errors, a prior's nats per code; a model of
    the user's that names no unit prints bare numbers."""
    run = tmp_path / "vq"
    argv = ["train", "vqvae", "--dataset", "digits", "--epochs", "1", "--hidden-channels", "8",
            "--embedding-dim", "4", "--codebook-size", "8", *QUIET, "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("epoch 1 "))
    assert re.search(r"\| train [0-9.]+ MSE \| test [0-9.]+ MSE \|", line), line
    assert main(["train", "prior", str(run), "--epochs", "1", *QUIET]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("epoch 1 "))
    assert re.search(r"\| train [0-9.]+ nats/code \| test [0-9.]+ nats/code \|", line), line
    assert main(["eval", str(run)]) == 0
    table = {row.split()[0]: row.split()[1:] for row in capsys.readouterr().out.splitlines()}
    assert table["commitment"][1:] == ["MSE"]
    assert table["prior_test_bits_per_code"][1:] == ["bits/code"]
    model = genlatent.VAE(genlatent.nn.MLPEncoder(64, 8, 4), genlatent.nn.MLPDecoder(4, 8, 64))
    model.loss_unit = None  # a user's model without a unit
    genlatent.fit(model, torch.rand(32, 64), epochs=1, batch_size=16, lr=1e-3,
                  run_dir=tmp_path / "own", show_progress=False)  # fmt: skip
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("epoch 1 "))
    assert re.search(r"\| train [0-9.]+ \| [0-9]+ img/s", line), line


def test_fashion_mnist_files_given_as_mnist_are_refused_by_name(tmp_path, capsys):
    import struct

    labels = torch.arange(60000) % 10
    labels[:10] = torch.tensor([9, 0, 0, 3, 0, 2, 7, 2, 5, 5])  # Fashion-MNIST's first
    for name, values in (("train-images-idx3-ubyte", torch.zeros(60000, 1, 1)),
                         ("train-labels-idx1-ubyte", labels)):  # fmt: skip
        header = struct.pack(">BBBB", 0, 0, 8, values.ndim)
        header += struct.pack(f">{values.ndim}I", *values.shape)
        (tmp_path / name).write_bytes(header + values.to(torch.uint8).numpy().tobytes())
    argv = ["train", "vae", "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1",
            *QUIET, "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds the fashion-mnist train labels, not mnist's" in err
    assert "--dataset fashion-mnist" in err
    assert not (tmp_path / "run").exists()
