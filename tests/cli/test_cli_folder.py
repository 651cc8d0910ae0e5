"""``--dataset folder``: train on a folder of JPEGs, then eval, sample, plot and load_run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from genlatent.cli import main
from genlatent.data import Augment, ImageFolder
from genlatent.data.folder import folder_splits
from genlatent.train import TrainConfig
from genlatent.train.build import load_training_sets
from genlatent.train.runs import load_run

QUIET = ["--no-progress", "--device", "cpu"]


def _jpegs(root, classes: dict[str, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.jpg")


def test_a_vqvae_trains_on_a_folder_of_jpegs_and_every_command_reads_the_run(tmp_path, capsys):
    images = tmp_path / "images"
    _jpegs(images, {"a": 13, "b": 12})
    run = tmp_path / "run"
    argv = [
        "train", "vqvae", "--dataset", "folder", "--data-dir", str(images), "--image-size",
        "16", "--test-fraction", "0.2", "--epochs", "2", "--batch-size", "8",
        "--hidden-channels", "8", "--codebook-size", "8", "--embedding-dim", "4",
        "--workers", "2", *QUIET, "--out", str(run),
    ]  # fmt: skip
    assert main(argv) == 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["train_examples"] for line in lines] == [20, 20]  # 25 less 5 held out
    config = json.loads((run / "config.json").read_text())["trainer"]
    assert config["dataset"] == "folder"
    assert config["data_dir"] == str(images.resolve())
    assert (config["image_size"], config["test_fraction"]) == (16, 0.2)

    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_examples"] == 5
    assert main(["plot", str(run)]) == 0
    assert capsys.readouterr().out.strip()
    loaded = load_run(run)
    assert loaded.example_shape == (3, 16, 16)
    assert loaded.num_classes == 2


def test_a_vae_on_train_and_test_folders_samples(tmp_path, capsys):
    images = tmp_path / "images"
    _jpegs(images / "train", {"x": 9})
    _jpegs(images / "test", {"x": 3}, seed=1)
    run = tmp_path / "run"
    argv = [
        "train", "vae", "--dataset", "folder", "--data-dir", str(images), "--image-size", "8",
        "--epochs", "1", "--batch-size", "4", *QUIET, "--out", str(run),
    ]  # fmt: skip
    assert main(argv) == 0
    line = json.loads((run / "metrics.jsonl").read_text())
    assert line["train_examples"] == 9
    grid = tmp_path / "samples.png"
    assert main(["sample", str(run), "-n", "4", "--out", str(grid)]) == 0
    with Image.open(grid) as picture:
        assert picture.width > 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_examples"] == 3


def test_the_seeded_split_holds_out_the_permutation_head(tmp_path):
    _jpegs(tmp_path, {"a": 7, "b": 3})
    train, test = folder_splits(tmp_path, size=8, test_fraction=0.3, seed=4)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(4))
    assert test.indices == sorted(order[:3].tolist())
    assert sorted(train.indices + test.indices) == list(range(10))


def test_folder_options_are_checked():
    with pytest.raises(ValueError, match="dataset='folder' needs image_size"):
        TrainConfig(dataset="folder", data_dir="x")
    with pytest.raises(ValueError, match="image_size applies only to dataset='folder'"):
        TrainConfig(dataset="digits", image_size=8)
    with pytest.raises(ValueError, match=r"test_fraction must lie in \(0, 1\)"):
        TrainConfig(dataset="folder", data_dir="x", image_size=8, test_fraction=1.5)
    with pytest.raises(ValueError, match="augment applies only to dataset='folder'"):
        TrainConfig(dataset="digits", augment="flip")
    with pytest.raises(
        ValueError, match="augment takes flip and/or crop separated by commas, got 'rotate'"
    ):
        TrainConfig(dataset="folder", data_dir="x", image_size=8, augment="rotate")


def test_augment_reaches_the_training_images_only(tmp_path, cli_error):
    images = tmp_path / "images"
    _jpegs(images, {"a": 10})
    run = tmp_path / "run"
    argv = [
        "train", "vae", "--dataset", "folder", "--data-dir", str(images), "--image-size", "8",
        "--augment", "flip,crop", "--test-fraction", "0.2", "--epochs", "1",
        "--batch-size", "4", *QUIET, "--out", str(run),
    ]  # fmt: skip
    assert main(argv) == 0
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert config.augment == "flip,crop"
    train, test = load_training_sets(config)
    assert train.folder.augment == Augment(flip=True, crop=True, seed=config.seed)
    plain = ImageFolder(images, size=8)
    train.set_epoch(1)
    assert any(not torch.equal(train[i][0], plain[j][0]) for i, j in enumerate(train.indices))
    assert torch.equal(test.images, torch.stack([plain[j][0] for j in folder_splits(
        images, size=8, test_fraction=0.2)[1].indices]))  # fmt: skip
    cli_error(["train", "vae", "--augment", "flip", *QUIET], "augment applies only")


def test_a_perceptual_tokenizer_on_a_folder_is_refused_and_leaves_no_run(
    tmp_path, cli_error, monkeypatch
):
    # its classifier trains on data held in memory: refused before anything is written
    monkeypatch.setenv("GENLATENT_DATA", str(tmp_path / "home"))
    images = tmp_path / "images"
    _jpegs(images, {"a": 6, "b": 6})
    run = tmp_path / "run"
    argv = [
        "train", "tokenizer", "--dataset", "folder", "--data-dir", str(images), "--image-size",
        "8", "--test-fraction", "0.25", "--max-steps", "2", "--batch-size", "4",
        "--hidden-channels", "8", "--codebook-size", "8", "--embedding-dim", "4",
        "--disc-channels", "8", "--disc-layers", "1", "--perceptual-weight", "1", *QUIET,
        "--out", str(run),
    ]  # fmt: skip
    cli_error(argv, "perceptual features", "got a streamed dataset",
              "ClassifierFeatureMaps.from_classifier")  # fmt: skip
    assert not (run / "checkpoints").exists()
    assert not (run / "config.json").exists()
