"""Two matrices over every run the library can produce.

1. For every preset and every option the command line accepts for it, ``config.json`` is
   what was trained: the model rebuilt from the record (`module_from_config`) takes the
   trained checkpoint exactly, has the shapes of a model built independently from the
   options given, and the record holds the options given and no others.
2. ``genlatent sample``, ``eval --samples``, ``plot`` and ``train prior`` work on every
   kind of run: presets, ``--model`` runs with each quantizer, and `fit` runs of
   library-composed models (whose data the run does not store: Python passes it again).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

import genlatent
from genlatent.cli import main
from genlatent.data import ImageDataset
from genlatent.models.presets import preset
from genlatent.models.quantizers import QUANTIZERS
from genlatent.pretrained import module_config, module_from_config
from genlatent.train.config import architecture_options

QUIET = ["--no-progress", "--device", "cpu"]
SMALL = ["--dataset", "digits", "--epochs", "1", "--train-limit", "64", "--test-limit", "32"]

# a value other than the default for every architecture option of every preset and quantizer
VALUES: dict[str, object] = {
    "latent_dim": 3,
    "hidden": (7, 5),
    "activation": "tanh",
    "likelihood": "gaussian",
    "vamp_components": 3,
    "output_bias_init": "zero",
    "hidden_channels": 8,
    "embedding_dim": 4,
    "codebook_size": 16,
    "commitment_weight": 0.5,
    "ema": True,
    "restart_dead_codes": 3,
    "distance": "cosine",
    "gradient": "rotation",
    "init": "kmeans",
    "levels": (5, 3, 3),
    "num_quantizers": 2,
    "disc_start": 2,
    "disc_weight": 0.5,
    "disc_channels": 8,
    "disc_layers": 1,
    "perceptual_weight": 0.5,
}
PRESET_RUNS = [
    ("vae", None),
    *(("vqvae", name) for name in QUANTIZERS),
    ("tokenizer", "fsq"),
    ("tokenizer", "vq"),
]


def _flag_value(value: object) -> list[str]:
    if value is True:
        return []
    if isinstance(value, tuple):
        return [",".join(map(str, value))]
    return [str(value)]


def _given(model: str, quantizer: str | None) -> dict[str, object]:
    options = architecture_options(model, quantizer)
    missing = sorted(set(options) - set(VALUES) - {"quantizer"})
    assert not missing, f"give the matrix a non-default value for {missing}"
    given = {name: VALUES[name] for name in options if name != "quantizer"}
    if quantizer is not None:
        given["quantizer"] = quantizer
    return given


@pytest.fixture(scope="module")
def preset_runs(tmp_path_factory) -> dict[tuple[str, str | None], tuple[Path, dict]]:
    runs = {}
    for model, quantizer in PRESET_RUNS:
        given = _given(model, quantizer)
        run = tmp_path_factory.mktemp("runs") / f"{model}-{quantizer}"
        flags = [
            part
            for name, value in given.items()
            for part in ("--" + name.replace("_", "-"), *_flag_value(value))
        ]
        assert main(["train", model, *SMALL, *flags, *QUIET, "--out", str(run)]) == 0
        runs[(model, quantizer)] = (run, given)
    return runs


@pytest.mark.parametrize(("model", "quantizer"), PRESET_RUNS)
def test_config_json_is_the_model_that_was_trained(preset_runs, model, quantizer):
    run, given = preset_runs[(model, quantizer)]
    record = json.loads((run / "config.json").read_text())
    # only the options given are recorded, with the values given
    recorded = {
        k: tuple(v) if isinstance(v, list) else v for k, v in record["architecture"].items()
    }
    assert recorded == given
    rebuilt = module_from_config(record["built"])
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]
    rebuilt.load_state_dict(state, strict=True)  # the record's model takes the trained weights
    assert module_config(rebuilt) == record["built"]
    # and it is the model those options ask for, built here independently
    reference = preset(model, (1, 8, 8), **given).state_dict()
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in reference.items()
    }
    loaded = genlatent.load_run(run)
    assert type(loaded.model) is type(rebuilt)


MODEL_FILE = """
from genlatent.models.presets import vqvae_preset

def build(image_shape, quantizer: str = "vq", codes: int = 16):
    options = {"levels": (5, 3)} if quantizer == "fsq" else {"codebook_size": codes}
    return vqvae_preset(image_shape, quantizer=quantizer, hidden_channels=8,
                        embedding_dim=4, **options)
"""


def _cli(*argv: str) -> int:
    return main([*argv])


def _check_finishes(run: Path, tmp_path: Path, capsys, *, quantized: bool) -> None:
    """sample, eval --samples and plot work; a quantized run also gets a prior that they use."""
    assert _cli("sample", str(run), "-n", "5", "--out", str(tmp_path / "a.png")) == 0
    assert _cli("eval", str(run), "--samples", "8") == 0
    assert _cli("plot", str(run)) == 0
    assert (run / "loss_curves.png").is_file()
    if not quantized:
        return
    assert _cli("train", "prior", str(run), "--epochs", "1", *QUIET) == 0
    assert _cli("sample", str(run), "-n", "5", "--out", str(tmp_path / "b")) == 0
    assert len(list((tmp_path / "b").glob("*.png"))) == 5
    capsys.readouterr()
    assert _cli("eval", str(run), "--samples", "8") == 0
    assert "prior_test_bits_per_code" in capsys.readouterr().out
    # the prior's own run directory: evaluated, sampled and plotted as one
    assert _cli("eval", str(run / "prior")) == 0
    assert "prior_test_bits_per_code" in capsys.readouterr().out
    assert _cli("sample", str(run / "prior"), "-n", "3", "--out", str(tmp_path / "c.png")) == 0
    assert _cli("plot", str(run / "prior")) == 0
    assert (run / "prior" / "loss_curves.png").is_file()


@pytest.mark.parametrize(("model", "quantizer"), PRESET_RUNS)
def test_every_preset_run_samples_evaluates_plots_and_takes_a_prior(
    preset_runs, model, quantizer, tmp_path, capsys
):
    run, _ = preset_runs[(model, quantizer)]
    _check_finishes(run, tmp_path, capsys, quantized=model in ("vqvae", "tokenizer"))


@pytest.mark.parametrize("quantizer", list(QUANTIZERS))
def test_every_model_spec_run_with_each_quantizer_finishes(quantizer, tmp_path, capsys):
    source = tmp_path / "build.py"
    source.write_text(textwrap.dedent(MODEL_FILE))
    run = tmp_path / "run"
    argv = ["train", "--model", f"{source}:build", "--model-arg", f"quantizer={quantizer}",
            *SMALL, *QUIET, "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    source.unlink()  # the run keeps its own copy of the code
    _check_finishes(run, tmp_path, capsys, quantized=True)


def _fit_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    decoder = genlatent.MLPDecoder(3, 8, 64, out_shape=(1, 8, 8))
    vqvae = preset("vqvae", (1, 8, 8), hidden_channels=8, embedding_dim=4, quantizer="rvq",
                   codebook_size=8, num_quantizers=2)  # fmt: skip
    return {"vae": genlatent.VAE(genlatent.MLPEncoder(64, 8, 3), decoder), "vqvae-rvq": vqvae}


@pytest.mark.parametrize("name", ["vae", "vqvae-rvq"])
def test_fit_runs_of_library_models_finish_from_any_directory(name, tmp_path, capsys,
                                                               monkeypatch):  # fmt: skip
    from genlatent.data import load_digits
    from genlatent.train.prior import fit_prior

    train, test = load_digits(split="train"), load_digits(split="test")
    train_data = (train.images[:64], train.labels[:64])
    test_data = (test.images[:32], test.labels[:32])
    run = tmp_path / "run"
    genlatent.fit(_fit_models()[name], train_data, test_data, run_dir=run, epochs=1,
                  batch_size=16, lr=1e-3, show_progress=False, log=lambda line: None)  # fmt: skip
    monkeypatch.chdir(tmp_path)  # from another directory, with no model= or data
    assert _cli("sample", str(run), "-n", "4", "--out", "s.png") == 0
    capsys.readouterr()
    assert _cli("plot", str(run)) == 0  # the loss curves, and which plots need the data
    captured = capsys.readouterr()
    assert "loss_curves.png" in captured.out
    assert "plot_run(..., test_set=...)" in captured.err  # both encode: a latent plot needs it
    assert _cli("eval", str(run)) == 2  # the data is not stored: the message says how
    assert "evaluate_run(..., test_set=...)" in capsys.readouterr().err
    metrics = genlatent.train.evaluate_run(run, test_set=ImageDataset(*test_data, name="mine"))
    assert metrics["num_examples"] == 32
    if name == "vae":
        return
    fit_prior(run, datasets=(train_data, test_data), epochs=1, show_progress=False,
              log=lambda line: None)  # fmt: skip
    assert _cli("sample", str(run), "-n", "4", "--out", "p.png") == 0
    assert _cli("sample", str(run / "prior"), "-n", "4", "--out", "q.png") == 0
