"""``genlatent train --model FILE.py:FUNCTION``: a model from user code, end to end."""

import json
from pathlib import Path

import pytest
from PIL import Image

from genlatent.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = f"{ROOT / 'examples' / 'conditional_vae.py'}:build"
QUIET = ["--no-progress", "--device", "cpu", "--dataset", "digits"]


def test_conditional_vae_from_user_code_trains_evaluates_samples_plots_and_resumes(
    capsys, tmp_path
):
    run = tmp_path / "cvae"
    assert main(["train", "--model", SPEC, *QUIET, "--epochs", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == SPEC
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # the user's NamedTuple fields are logged by name; labels reached the loss
    assert {"train_loss", "train_reconstruction", "train_kl", "test_loss"} <= set(records[-1])
    assert records[-1]["test_loss"] < records[0]["train_loss"]

    assert main(["eval", str(run), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["num_examples"] == 297
    assert results["loss"] == pytest.approx(results["reconstruction"] + results["kl"], rel=1e-6)
    assert 0 < results["mse"] < 0.25

    grid = tmp_path / "per_class.png"
    assert main(["sample", str(run), "--out", str(grid)]) == 0
    # 10 classes x 8 samples of 8x8 digits with 2-pixel padding, the whole grid scaled 8x
    per_class = ((8 * (8 + 2) + 2) * 8, (10 * (8 + 2) + 2) * 8)
    with Image.open(grid) as image:
        assert image.size == per_class
    with Image.open(run / "samples.png") as image:
        assert image.size == per_class  # the trainer's picture too

    assert main(["plot", str(run)]) == 0
    assert "loss_curves.png" in capsys.readouterr().out

    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_resumed_spec_run_equals_an_uninterrupted_one(capsys, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", "--model", SPEC, *QUIET, "--epochs", "2", "--out", str(whole)]) == 0
    assert main(["train", "--model", SPEC, *QUIET, "--epochs", "1", "--out", str(parts)]) == 0
    assert main(["train", "--resume", str(parts), "--epochs", "2", "--no-progress"]) == 0
    capsys.readouterr()
    import torch

    a = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(parts / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(
        "import torch\n"
        "def not_a_module():\n    return 3\n"
        "def no_loss():\n    return torch.nn.Linear(2, 2)\n"
    )
    return path


def test_bad_model_specs_are_one_clear_line(cli_error, user_file, tmp_path):
    out = ["--out", str(tmp_path / "run"), *QUIET]
    cli_error(["train", "--model", str(tmp_path / "nope.py:build"), *out], "no file", "nope.py")
    cli_error(["train", "--model", f"{user_file}:build", *out], "has no function 'build'")
    cli_error(
        ["train", "--model", f"{user_file}:not_a_module", *out], "returned int, not an nn.Module"
    )
    cli_error(
        ["train", "--model", f"{user_file}:no_loss", *out],
        "Linear does not follow the model protocol",
    )
    cli_error(["train", "--model", "no_such_package.mod:build", *out], "cannot import module")
    cli_error(["train", "vae", "--model", f"{user_file}:no_loss", *out], "not both")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ self-contained runs

USER_MODEL = """
from genlatent import VAE, MLPDecoder, MLPEncoder


def build(image_shape, *, latent_dim: int = 2, hidden: tuple[int, ...] = (16,)):
    features = image_shape[0] * image_shape[1] * image_shape[2]
    return VAE(
        MLPEncoder(features, hidden, latent_dim),
        MLPDecoder(latent_dim, hidden, features, out_shape=image_shape),
    )
"""


def test_a_model_run_works_from_any_directory_and_after_everything_moved(
    capsys, tmp_path, monkeypatch
):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "mymodel.py").write_text(USER_MODEL)
    monkeypatch.chdir(home)  # the user trains with a relative spec
    argv = ["train", "--model", "mymodel.py:build", "--model-arg", "latent_dim=3",
            "--model-arg", "hidden=12,10", *QUIET, "--epochs", "1", "--out", "run"]  # fmt: skip
    assert main(argv) == 0
    config = json.loads((home / "run" / "config.json").read_text())
    assert config["model"] == f"{home / 'mymodel.py'}:build"  # absolute
    assert config["architecture"] == {"latent_dim": 3, "hidden": [12, 10]}
    assert (home / "run" / "source" / "mymodel.py").read_text() == USER_MODEL

    monkeypatch.chdir(elsewhere)  # every command from another directory
    run = home / "run"
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["sample", str(run), "--out", "s.png", "-n", "8"]) == 0
    assert main(["plot", str(run)]) == 0

    from genlatent import load_run

    assert load_run(run).model.latent_dim == 3

    # the run directory and the user's file both move: the run's copy of the file is used
    moved = elsewhere / "moved-run"
    run.rename(moved)
    (home / "mymodel.py").rename(elsewhere / "renamed.py")
    capsys.readouterr()
    assert main(["eval", str(moved), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["loss"] == before["loss"]
    assert "is gone: loading the copy saved with the run" in captured.err
    with pytest.warns(UserWarning, match="is gone: loading the copy"):
        assert load_run(moved).model.latent_dim == 3


def test_model_arguments_are_typed_and_checked(cli_error, tmp_path, monkeypatch):
    (tmp_path / "mymodel.py").write_text(USER_MODEL)
    monkeypatch.chdir(tmp_path)
    base = ["train", "--model", "mymodel.py:build", *QUIET, "--out", "run"]
    cli_error([*base, "--model-arg", "width=3"], "does not take 'width'", "latent_dim, hidden")
    cli_error([*base, "--model-arg", "latent_dim=x"], "latent_dim takes int, got 'x'")
    cli_error([*base, "--model-arg", "latent_dim"], "must be NAME=VALUE")
    cli_error(["train", "vae", *QUIET, "--model-arg", "latent_dim=3"], "--model-arg applies to")
    cli_error([*base, "--latent-dim", "3"], "--latent-dim (vae only)")
    assert not (tmp_path / "run").exists()


USER_QUANTIZER = """
from genlatent import VectorQuantizer


def build(embedding_dim, codebook_size=8):
    return VectorQuantizer(codebook_size, embedding_dim, ema=True)
"""


def test_a_quantizer_from_the_users_file_trains_in_the_vqvae_preset(capsys, tmp_path):
    spec = f"{tmp_path / 'myq.py'}:build"
    (tmp_path / "myq.py").write_text(USER_QUANTIZER)
    run = tmp_path / "run"
    argv = ["train", "vqvae", "--quantizer", spec, "--codebook-size", "12", "--embedding-dim",
            "4", "--hidden-channels", "8", *QUIET, "--epochs", "1", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    from genlatent import load_run

    quantizer = load_run(run).model.quantizer
    assert (quantizer.codebook_size, quantizer.embedding_dim, quantizer.ema) == (12, 4, True)
    assert (run / "source" / "myq.py").is_file()
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert 0 < json.loads(capsys.readouterr().out)["fraction_used"] <= 1
    # an option the chosen builder does not declare is refused, not dropped
    assert main([*argv[:6], "--ema", *argv[6:-1], str(tmp_path / "other")]) == 2
    assert "--ema (vqvae, tokenizer with --quantizer vq, rvq only)" in capsys.readouterr().err


def test_a_library_preset_by_spec_takes_its_arguments_and_records_them(tmp_path):
    run = tmp_path / "conv"
    argv = ["train", "--model", "genlatent.models.presets:conv_vae", "--model-arg",
            "latent_dim=4", "--model-arg", "hidden_channels=8", "--model-arg", "num_mixtures=2",
            *QUIET, "--epochs", "1", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["architecture"] == {"latent_dim": 4, "hidden_channels": 8, "num_mixtures": 2}
    assert config["built"]["arguments"]["latent_dim"] == 4
    from genlatent import load_run

    assert load_run(run).model.latent_dim == 4


USER_FSQ_VQVAE = """
from genlatent import FSQ, VQVAE, ConvDecoder, ConvEncoder


def build(image_shape):
    channels = image_shape[0]
    return VQVAE(ConvEncoder(channels, 8, 4), FSQ((3, 3, 2), dim=4), ConvDecoder(4, 8, channels))
"""


def test_a_model_vqvae_without_grid_shape_samples_gets_a_prior_and_its_prior_loads(
    capsys, tmp_path
):
    (tmp_path / "fsq.py").write_text(USER_FSQ_VQVAE)
    run = tmp_path / "run"
    argv = ["train", "--model", f"{tmp_path / 'fsq.py'}:build", *QUIET, "--epochs", "1"]
    assert main([*argv, "--out", str(run)]) == 0
    # the grid shape seen in training is part of the trained state: sampling needs no forward
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png"), "-n", "8"]) == 0
    capsys.readouterr()
    assert main(["train", "prior", str(run), "--epochs", "1", "--no-progress", "--device",
                 "cpu"]) == 0  # fmt: skip
    from genlatent import load_run

    prior = load_run(run / "prior")  # a prior run is rebuilt from its record
    assert type(prior.model).__name__ == "TransformerPrior"
    built = json.loads((run / "prior" / "config.json").read_text())["built"]["arguments"]
    assert (built["codebook_size"], built["grid_shape"]) == (18, [2, 2])  # what it trained
    assert main(["sample", str(run), "--out", str(tmp_path / "p.png")]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    bits = json.loads(capsys.readouterr().out)["prior_test_bits_per_code"]
    assert 0 < bits < float("inf")
