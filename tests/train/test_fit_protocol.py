"""`fit` trains any model that follows the protocol: user models, user quantizers, user data."""

import json
import re
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from torch import nn

import genlatent
from genlatent import VQVAE, ConvDecoder, ConvEncoder, QuantizerOutput, fit, load_run
from genlatent.data import load_digits
from genlatent.metrics import evaluate_model
from genlatent.plotting import plot_run
from genlatent.train import RunDirectoryError

SRC = Path(genlatent.__file__).parent
QUIET = {"log": lambda line: None, "show_progress": False, "device": "cpu"}


class RoundToGrid(nn.Module):
    """A user's quantizer, written against the contract only: round each channel to a grid.

    Each of the D channels snaps to the nearest of G evenly spaced values in [-1, 1]; the
    code of a vector is its grid position in mixed radix, so there are G**D codes.
    """

    def __init__(self, dim: int, levels: int) -> None:
        super().__init__()
        self.dim, self.levels = dim, levels
        self.codebook_size = levels**dim
        self.register_buffer("radix", levels ** torch.arange(dim))

    def _digits(self, x: torch.Tensor) -> torch.Tensor:
        steps = (torch.tanh(x) + 1) / 2 * (self.levels - 1)  # (B, D, ...) in [0, G-1]
        return steps.round().long()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        digits = self._digits(x).movedim(1, -1)
        return (digits * self.radix).sum(-1)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        digits = (indices.unsqueeze(-1) // self.radix) % self.levels
        return (digits.float() / (self.levels - 1) * 2 - 1).movedim(-1, 1)

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        indices = self.encode(x)
        values = self.decode(indices)
        bounded = torch.tanh(x)
        quantized = bounded + (values - bounded).detach()  # straight-through
        counts = torch.bincount(indices.flatten(), minlength=self.codebook_size).float()
        return QuantizerOutput(quantized, indices, x.new_zeros(()).float(), {}, counts)


def _vqvae_with(quantizer: nn.Module) -> VQVAE:
    return VQVAE(ConvEncoder(1, 8, 2), quantizer, ConvDecoder(2, 8, 1))


def test_a_user_quantizer_trains_inside_vqvae_and_shows_in_evaluation_and_plots(tmp_path):
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    model = _vqvae_with(RoundToGrid(dim=2, levels=4))
    summary = fit(model, train, test, run_dir=tmp_path, epochs=3, batch_size=64, lr=3e-3, **QUIET)
    first = load_run(tmp_path, model=_vqvae_with(RoundToGrid(2, 4))).metrics[0]
    last = summary.last_metrics
    assert last["test_reconstruction_loss"] < first["test_reconstruction_loss"]
    assert 0 < last["train_codes_used"] <= 1
    assert 1 <= last["train_usage_perplexity"] <= 16

    result = evaluate_model(summary.model, [(test.images[:100].float() / 255, None)])
    assert int(result.counts.sum()) == 100 * 2 * 2  # 8x8 digits give 2x2 code grids
    assert result.fraction_used is not None
    assert result.mse is not None

    written = plot_run(tmp_path, test_set=test, model=_vqvae_with(RoundToGrid(2, 4)))
    assert [p.name for p in written] == ["loss_curves.png", "code_usage.png"]
    assert (tmp_path / "samples.png").is_file()  # uniform codes through the user quantizer


class Step(NamedTuple):
    loss: torch.Tensor
    label_mean: torch.Tensor
    step: torch.Tensor


class Recorder(nn.Module):
    """A model that records what the trainer passed to its loss."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.steps: list[int] = []

    def loss(self, x: torch.Tensor, *, labels: torch.Tensor, step: int) -> Step:
        self.steps.append(step)
        value = (x.flatten(1).mean(1) - self.weight).pow(2).mean()
        return Step(value, labels.float().mean(), torch.tensor(float(step)))


@pytest.mark.parametrize("form", ["pair", "dataset", "image_dataset"])
def test_labels_and_step_reach_a_loss_that_declares_them(form, tmp_path):
    images = torch.rand(20, 3)
    labels = torch.arange(20) % 4

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return images[i], int(labels[i])

    data = {"pair": (images, labels), "dataset": Items()}.get(form)
    if form == "image_dataset":
        data = genlatent.data.ImageDataset(
            torch.randint(0, 256, (20, 1, 1, 3), dtype=torch.uint8), labels
        )
    model = Recorder()
    fit(model, data, run_dir=tmp_path, epochs=2, batch_size=8, lr=0.1, **QUIET)
    assert model.steps == [1, 2, 3, 4, 5, 6]  # global steps: 3 batches per epoch
    record = load_run(tmp_path, model=Recorder()).metrics[-1]
    assert record["train_label_mean"] == pytest.approx(float(labels.float().mean()))
    assert record["train_step"] == pytest.approx((4 * 8 + 5 * 8 + 6 * 4) / 20)


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def loss(self, x: torch.Tensor) -> Step:
        value = (self.linear(x) - x).pow(2).mean()
        return Step(value, value.detach(), value.detach())


def test_fit_resumes_a_custom_model_exactly(tmp_path):
    data = torch.rand(50, 3, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    whole = Plain()
    start = {k: v.clone() for k, v in whole.state_dict().items()}
    fit(whole, data, run_dir=tmp_path / "whole", epochs=3, batch_size=8, lr=0.01, **QUIET)
    first = Plain()
    first.load_state_dict(start)
    fit(first, data, run_dir=tmp_path / "parts", epochs=1, batch_size=8, lr=0.01, **QUIET)
    again = Plain()  # the same constructor, fresh weights: resume loads the checkpoint
    fit(again, data, run_dir=tmp_path / "parts", epochs=3, batch_size=8, lr=0.01,
        resume=True, **QUIET)  # fmt: skip
    for key, value in whole.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_fit_refuses_what_it_cannot_train(tmp_path):
    with pytest.raises(TypeError, match=r"model \(Linear\) does not follow the model protocol"):
        fit(nn.Linear(2, 2), torch.rand(4, 2), run_dir=tmp_path / "a", epochs=1, batch_size=2,
            lr=1e-3, **QUIET)  # fmt: skip
    with pytest.raises(TypeError, match=r"train_data must be an ImageDataset, .* got int"):
        fit(Plain(), 3, run_dir=tmp_path / "b", epochs=1, batch_size=2, lr=1e-3, **QUIET)
    with pytest.raises(ValueError, match=r"test_data examples must have the shape of train_data"):
        fit(Plain(), torch.rand(4, 3), torch.rand(4, 5), run_dir=tmp_path / "c", epochs=1,
            batch_size=2, lr=1e-3, **QUIET)  # fmt: skip
    assert not any((tmp_path / name).exists() for name in "abc")
    fit(Plain(), torch.rand(4, 3), run_dir=tmp_path / "d", epochs=1, batch_size=2, lr=1e-3, **QUIET)
    with pytest.raises(
        ValueError, match=r"trained a model passed to fit\(\) that records no constructor"
    ):
        load_run(tmp_path / "d")
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        fit(Plain(), torch.rand(4, 3), run_dir=tmp_path / "d", epochs=1, batch_size=2, lr=1e-3,
            **QUIET)  # fmt: skip


@pytest.mark.parametrize("shape", [(3, 784), (3, 1, 28, 28)])
def test_mnist_vae_takes_flat_and_image_inputs(shape):
    model = genlatent.mnist_vae()
    x = torch.rand(*shape)
    out = model.loss(x)
    assert out.loss.shape == ()
    assert model(x).decoder_output.shape == x.shape
    assert model.reconstruct(x).shape == x.shape
    # the same images give the same bound whatever their layout
    flat, image = (model.loss(x.reshape(s), generator=torch.Generator().manual_seed(0)).loss
                   for s in ((3, 784), (3, 1, 28, 28)))  # fmt: skip
    torch.testing.assert_close(flat, image)


def test_an_encoder_that_returns_one_tensor_is_named():
    vae = genlatent.VAE(
        nn.Sequential(nn.Flatten(), nn.Linear(784, 8)), genlatent.MLPDecoder(8, 16, 784)
    )
    with pytest.raises(
        TypeError,
        match=r"the encoder \(Sequential\) must return a pair .* one tensor of shape \(2, 8\)",
    ):
        vae.loss(torch.rand(2, 784))


# what may name a concrete model or branch on a config's model: the presets alone
_BRANCH = re.compile(r"isinstance\([^)]*\b(VAE|VQVAE|VectorQuantizer)\b|config\.model\s*==")


def test_nothing_above_the_models_branches_on_a_model_class():
    offenders = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path.parent.name != "models"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if _BRANCH.search(line)
    ]
    assert offenders == []


def test_a_fit_run_records_the_model_as_built_and_reloads_without_model(tmp_path):
    from genlatent import VectorQuantizer

    def vqvae() -> VQVAE:
        return VQVAE(
            ConvEncoder(1, 8, 4),
            VectorQuantizer(32, 4, ema=True, commitment_weight=0.5),
            ConvDecoder(4, 8, 1),
        )

    torch.manual_seed(0)
    images = torch.rand(64, 1, 8, 8)
    summary = fit(vqvae(), images, run_dir=tmp_path / "run", epochs=1, batch_size=16, lr=1e-3,
                  device="cpu", show_progress=False, log=lambda line: None)  # fmt: skip
    built = json.loads((tmp_path / "run" / "config.json").read_text())["built"]
    quantizer = built["arguments"]["quantizer"]["arguments"]
    assert (quantizer["codebook_size"], quantizer["ema"], quantizer["commitment_weight"]) == (
        32,
        True,
        0.5,
    )
    loaded = load_run(tmp_path / "run")  # no model= needed
    trained = summary.model.state_dict()
    assert loaded.model.state_dict().keys() == trained.keys()
    assert loaded.model.quantizer.codebook_size == 32
    assert loaded.model.quantizer.ema
    x = images[:4]
    assert torch.equal(
        loaded.model.cpu().eval()(x).reconstruction, summary.model.eval()(x).reconstruction
    )
