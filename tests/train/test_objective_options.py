"""The training objective's options (beta, warm-up, free bits, capacity, IWAE) and dynamic
binarization, through `fit`, `train` and the command line."""

import json

import pytest
import torch
from torch import nn

from genlatent import VAE, MLPDecoder, MLPEncoder, fit, load_run
from genlatent.cli.main import main
from genlatent.data import ImageDataset
from genlatent.data.binarize import binarized
from genlatent.models import VampPrior
from genlatent.models.presets import preset
from genlatent.train import TrainConfig, evaluate_run
from genlatent.train.loop import LossModule

QUIET = {"log": lambda line: None, "show_progress": False, "device": "cpu"}


def _vae(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(MLPEncoder(16, 8, 3), MLPDecoder(3, 8, 16, out_shape=(1, 4, 4)))


def _grey(n: int = 96, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 1, 4, 4), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# --- the config ------------------------------------------------------------------------------


def test_loss_options_are_the_objective_fields_set_away_from_their_neutral_value():
    assert TrainConfig().loss_options() == {}
    config = TrainConfig(beta=0.5, free_bits=0.25, warmup_steps=10, capacity=5.0, gamma=100.0)
    assert config.loss_options() == {
        "beta": 0.5, "free_bits": 0.25, "warmup_steps": 10, "capacity": 5.0, "gamma": 100.0,
    }  # fmt: skip
    assert TrainConfig(iwae_samples=5).loss_options() == {"iwae_samples": 5}


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"beta": -1.0}, ValueError, "beta must be finite and >= 0, got -1.0"),
        ({"beta": float("nan")}, ValueError, "beta must be finite"),
        ({"free_bits": -0.5}, ValueError, "free_bits must be finite and >= 0"),
        ({"warmup_steps": -3}, ValueError, "warmup_steps must be >= 0, got -3"),
        ({"warmup_steps": 2.5}, TypeError, "warmup_steps must be an int, got float"),
        ({"gamma": 10.0}, ValueError, "gamma=10.0 weights the capacity term"),
        ({"capacity": -1.0}, ValueError, "capacity must be finite and >= 0"),
        ({"capacity": 5.0, "gamma": 0.0}, ValueError, "gamma must be finite and > 0"),
        ({"iwae_samples": 0}, ValueError, "iwae_samples"),
        ({"iwae_samples": 5, "beta": 2.0}, ValueError, r"ELBO option\(s\) beta cannot be"),
        ({"hidden": "200,x"}, ValueError, "hidden takes ints >= 1 separated by commas"),
        ({"activation": "gelu"}, ValueError, "activation"),
        ({"likelihood": "poisson"}, ValueError, "likelihood"),
        ({"model": "vqvae", "activation": "tanh"}, ValueError, r"activation \(vae only\)"),
    ],
)
def test_bad_objective_and_architecture_options_are_refused_by_name(changes, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(**changes)


# --- the loss module -------------------------------------------------------------------------


def test_options_reach_the_loss_in_training_mode_only():
    seen = []

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def loss(self, x, *, beta=1.0, step=None):
            seen.append((beta, step))
            return self.w * 0 + beta

    module = LossModule(Model(), {"beta": 3.0})
    module.train()
    module(torch.zeros(2, 1), None, 7, None)
    module.eval()
    module(torch.zeros(2, 1), None, None, None)
    assert seen == [(3.0, 7), (1.0, None)]


def test_an_option_the_loss_does_not_take_is_an_error_not_ignored():
    class Model(nn.Module):
        def loss(self, x):
            return x.sum()

    with pytest.raises(TypeError, match=r"Model\.loss does not take the training option"):
        LossModule(Model(), {"beta": 2.0})
    with pytest.raises(ValueError, match="must not name step"):
        LossModule(_vae(), {"step": 3})


# --- through fit ------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 4.0])
def test_beta_weights_the_trained_kl_and_evaluation_scores_the_true_elbo(tmp_path, beta):
    fit(
        _vae(), _grey(), _grey(48, seed=1), run_dir=tmp_path, epochs=1, batch_size=32,
        lr=1e-3, loss_options={"beta": beta}, **QUIET,
    )  # fmt: skip
    (record,) = _records(tmp_path)
    # per-example means of a linear combination: the trained loss is recon + beta * KL
    expected = record["train_reconstruction_loss"] + beta * record["train_kl"]
    assert record["train_loss"] == pytest.approx(expected, rel=1e-6)
    assert record["train_elbo_loss"] == pytest.approx(
        record["train_reconstruction_loss"] + record["train_kl"], rel=1e-6
    )
    # evaluation: beta = 1, so the test loss is the true negative ELBO
    assert record["test_loss"] == pytest.approx(
        record["test_reconstruction_loss"] + record["test_kl"], rel=1e-6
    )
    assert record["test_loss"] == record["test_elbo_loss"]
    assert json.loads((tmp_path / "config.json").read_text())["objective"]["beta"] == beta


def test_warmup_reaches_beta_at_its_last_step(tmp_path):
    # 3 steps of warm-up over 3 steps: the weights are 1/3, 2/3 and 1, so the epoch's
    # trained loss lies strictly between the reconstruction term and the ELBO
    fit(
        _vae(), _grey(96), run_dir=tmp_path, epochs=1, batch_size=32, lr=1e-3,
        loss_options={"warmup_steps": 3}, **QUIET,
    )  # fmt: skip
    (record,) = _records(tmp_path)
    assert record["train_reconstruction_loss"] < record["train_loss"] < record["train_elbo_loss"]


def test_iwae_samples_train_the_importance_weighted_bound(tmp_path):
    fit(
        _vae(), _grey(), _grey(48, seed=1), run_dir=tmp_path, epochs=1, batch_size=32,
        lr=1e-3, loss_options={"iwae_samples": 8}, **QUIET,
    )  # fmt: skip
    (record,) = _records(tmp_path)
    # the trained loss is -L_8 <= -ELBO estimate; the test loss is the plain ELBO again
    assert record["train_loss"] <= record["train_elbo_loss"]
    assert record["test_loss"] == record["test_elbo_loss"]


def test_unknown_loss_options_are_refused_before_anything_is_written(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="loss_options may hold"):
        fit(_vae(), _grey(), run_dir=run_dir, epochs=1, batch_size=32, lr=1e-3,
            loss_options={"temperature": 2.0}, **QUIET)  # fmt: skip

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def loss(self, x):
            return (self.w - x.mean()) ** 2

    with pytest.raises(TypeError, match="does not take the training option"):
        fit(Plain(), _grey(), run_dir=run_dir, epochs=1, batch_size=32, lr=1e-3,
            loss_options={"beta": 2.0}, **QUIET)  # fmt: skip
    assert not run_dir.exists()


class _Recorder(nn.Module):
    """A VAE that keeps every batch it trains on and every batch it is evaluated on."""

    def __init__(self) -> None:
        super().__init__()
        self.vae = _vae()
        self.trained: list[torch.Tensor] = []
        self.tested: list[torch.Tensor] = []

    def loss(self, x, *, generator=None):
        (self.trained if self.training else self.tested).append(x.detach().clone())
        return self.vae.loss(x, generator=generator)


def test_binarize_draws_each_training_batch_afresh_and_the_test_set_once(tmp_path):
    images = torch.full((64, 1, 4, 4), 128, dtype=torch.uint8)  # p = 128/255 everywhere
    first, second = _Recorder(), _Recorder()
    for model, seed in ((first, 0), (second, 5)):
        fit(model, images, images[:32], run_dir=tmp_path / str(seed), epochs=2,
            batch_size=32, lr=1e-3, seed=seed, binarize=True, **QUIET)  # fmt: skip
    trained = torch.stack(first.trained)  # (steps, 32, 1, 4, 4)
    assert trained.shape[0] == 4
    assert set(trained.unique().tolist()) == {0.0, 1.0}
    # the same grey images give a different draw at every step, ones with p = 128/255
    assert all(not torch.equal(trained[i], trained[j]) for i in range(4) for j in range(i))
    assert abs(trained.mean().item() - 128 / 255) < 0.05
    # the test set: one draw, binarized(seed=0), the same in every epoch and every run
    expected = binarized(_as_dataset(images[:32]), seed=0).images.float() / 255
    for tested in (*first.tested, *second.tested):
        assert torch.equal(tested, expected)
    # and evaluation from the run directory scores that same draw (the KL is a
    # deterministic function of x, unlike the sampled reconstruction term)
    result = evaluate_run(tmp_path / "0", model=_Recorder(), test_set=_as_dataset(images[:32]))
    assert result["kl"] == pytest.approx(_records(tmp_path / "0")[-1]["test_kl"])


def _as_dataset(images):
    return ImageDataset(images, torch.zeros(len(images), dtype=torch.long))


def test_a_binarized_run_resumes_exactly(tmp_path):
    images = _grey(96)
    whole, split = tmp_path / "whole", tmp_path / "split"
    common = {"batch_size": 32, "lr": 1e-3, "binarize": True, **QUIET}
    fit(_vae(), images, images[:32], run_dir=whole, epochs=2, **common)
    fit(_vae(), images, images[:32], run_dir=split, epochs=1, **common)
    fit(_vae(), images, images[:32], run_dir=split, epochs=2, resume=True, **common)
    a = load_run(whole, model=_vae(), checkpoint="last").model.state_dict()
    b = load_run(split, model=_vae(), checkpoint="last").model.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)


# --- the preset and the command line ---------------------------------------------------------


def test_the_vae_preset_builds_burda_et_al_s_one_layer_model_and_a_vampprior():
    model = preset("vae", (1, 28, 28), hidden="200,200", latent_dim=50, activation="tanh")
    # 784-200-200-(50+50) and 50-200-200-784 with biases
    encoder = 784 * 200 + 200 + 200 * 200 + 200 + 2 * (200 * 50 + 50)
    decoder = 50 * 200 + 200 + 200 * 200 + 200 + 200 * 784 + 784
    assert sum(p.numel() for p in model.parameters()) == encoder + decoder
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 4
    vamp = preset("vae", (1, 28, 28), vamp_components=7, likelihood="continuous_bernoulli")
    assert isinstance(vamp.prior, VampPrior)
    assert vamp.prior.pseudo_inputs.shape == (7, 1, 28, 28)
    assert vamp.likelihood == "continuous_bernoulli"


def test_the_command_line_trains_the_iwae_model_on_binarized_data(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main([
        "train", "vae", "--hidden", "16", "--latent-dim", "4", "--activation", "tanh",
        "--iwae-samples", "3", "--binarize", "--epochs", "1", "--train-limit", "64",
        "--test-limit", "32", "--out", str(run_dir), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    config = json.loads((run_dir / "config.json").read_text())
    recorded = (
        config["objective"]["iwae_samples"],
        config["trainer"]["binarize"],
        config["architecture"]["hidden"],
    )
    assert recorded == (3, True, [16])
    (record,) = _records(run_dir)
    assert record["train_loss"] <= record["train_elbo_loss"]
    capsys.readouterr()
    assert main(["train", "vqvae", "--beta", "2", "--out", str(tmp_path / "vq")]) == 2
    assert "VQVAE.loss does not take the training option(s) beta" in capsys.readouterr().err
    assert not (tmp_path / "vq").exists()
