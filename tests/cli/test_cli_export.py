"""``genlatent export RUN_DIR --out DIR``: a run's model as a pretrained folder."""

import json

import torch

import genlatent
from genlatent.cli import main
from genlatent.train import load_run

QUIET = ["--no-progress", "--device", "cpu"]
SMALL_VAE = ["train", "vae", "--dataset", "digits", "--epochs", "1", "--latent-dim", "4"]


def test_export_writes_a_folder_that_rebuilds_the_runs_model(capsys, tmp_path):
    run, out = tmp_path / "run", tmp_path / "exported"
    assert main([*SMALL_VAE, *QUIET, "--out", str(run)]) == 0
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["class"] == "genlatent.VAE"
    model = genlatent.from_pretrained(out)
    best = load_run(run, device="cpu").model
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(model.reconstruct(x), best.reconstruct(x))
    draws = [m.sample(4, generator=torch.Generator().manual_seed(0)) for m in (model, best)]
    assert torch.equal(draws[0], draws[1])
    assert main(["export", str(run), "--out", str(out / "last"), "--checkpoint", "last"]) == 0
    last = load_run(run, checkpoint="last", device="cpu").model
    assert torch.equal(genlatent.from_pretrained(out / "last").reconstruct(x), last.reconstruct(x))


PLAIN_MODEL = """
from typing import NamedTuple

import torch


class Loss(NamedTuple):
    loss: torch.Tensor


class Plain(torch.nn.Module):
    def __init__(self, features):
        super().__init__()
        self.layer = torch.nn.Linear(features, features)

    def loss(self, x):
        flat = x.flatten(1)
        return Loss((self.layer(flat) - flat).square().mean())


def build(image_shape):
    return Plain(image_shape[0] * image_shape[1] * image_shape[2])
"""


def test_export_of_a_model_without_the_mixin_is_one_clear_line(cli_error, tmp_path):
    user_file = tmp_path / "plain.py"
    user_file.write_text(PLAIN_MODEL)
    run = tmp_path / "run"
    argv = ["train", "--model", f"{user_file}:build", "--dataset", "digits", "--epochs", "1"]
    assert main([*argv, *QUIET, "--out", str(run)]) == 0
    cli_error(
        ["export", str(run), "--out", str(tmp_path / "out")],
        "Plain does not record its constructor arguments",
        "inherit genlatent.PretrainedMixin",
    )
    assert not (tmp_path / "out").exists()
    cli_error(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "out")], "missing")
