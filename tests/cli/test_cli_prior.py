"""The second stage from the command line: ``train prior``, ``sample`` and ``eval --samples``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from genlatent.cli import main
from genlatent.data import data_home
from genlatent.metrics import (
    load_or_train_classifier,
    reconstruction_frechet_distance,
    unigram_bits_per_code,
)
from genlatent.train.build import load_datasets
from genlatent.train.prior import encode_codes, load_prior
from genlatent.train.runs import load_run

SMALL_VQ = [
    "train", "vqvae", "--dataset", "digits", "--epochs", "2", "--hidden-channels", "16",
    "--codebook-size", "16", "--embedding-dim", "4", "--ema", "--restart-dead-codes", "5",
    "--lr", "3e-3", "--no-progress", "--device", "cpu",
]  # fmt: skip
PRIOR = ["--epochs", "3", "--batch-size", "64", "--lr", "3e-3", "--no-progress"]


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("vq") / "run"
    assert main([*SMALL_VQ, "--out", str(run)]) == 0
    return run


def test_train_prior_then_sample_and_eval(vq_run, capsys, tmp_path):
    assert main(["train", "prior", str(vq_run), "--conditional", *PRIOR]) == 0
    out = capsys.readouterr().out
    folder = vq_run / "prior"
    assert f"prior run directory: {folder}" in out
    spec = json.loads((folder / "prior.json").read_text())
    assert spec["kind"] == "transformer"
    assert spec["num_classes"] == 10
    assert spec["grid_shape"] == [2, 2]  # 8x8 digits through two stride-2 convolutions
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["test_bits_per_code"] == pytest.approx(
        records[-1]["test_loss"] / torch.log(torch.tensor(2.0)).item()
    )

    # the codes the prior trained on are the VQ-VAE's, and encoding changed no state
    source = load_run(vq_run)
    state = {k: v.clone() for k, v in source.model.state_dict().items()}
    codes = encode_codes(source.model, torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8))
    assert codes.shape == (5, 2, 2)
    assert all(torch.equal(v, source.model.state_dict()[k]) for k, v in state.items())

    # sample decodes the prior's grids: one row of 8 per class
    grid = tmp_path / "prior.png"
    assert main(["sample", str(vq_run), "--out", str(grid)]) == 0
    with Image.open(grid) as image:
        assert image.size == ((8 * (8 + 2) + 2) * 8, (10 * (8 + 2) + 2) * 8)

    capsys.readouterr()
    assert main(["eval", str(vq_run), "--samples", "100", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["frechet_distance"] >= 0
    assert results["frechet_distance_floor"] < results["frechet_distance"]
    assert 0 <= results["class_consistency"] <= 1
    # the unigram baseline of the report is the formula's, on the run's own codes
    prior = load_prior(folder).model
    assert prior.num_classes == 10
    assert results["prior_test_bits_per_code"] > 0
    assert results["unigram_test_bits_per_code"] <= 4.0 + 1e-9  # log2(16): uniform use


def test_prior_resumes_exactly(vq_run, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", "prior", str(vq_run), "--out", str(whole), *PRIOR]) == 0
    short = [*PRIOR[:1], "1", *PRIOR[2:]]
    assert main(["train", "prior", str(vq_run), "--out", str(parts), *short]) == 0
    assert main(["train", "prior", str(vq_run), "--resume", str(parts), *PRIOR]) == 0
    a = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(parts / "checkpoints" / "last.pt", weights_only=True)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_bad_prior_commands_are_one_line(cli_error, vq_run, tmp_path):
    cli_error(["train", "prior"], "needs the VQ-VAE's run directory")
    cli_error(["train", "prior", str(vq_run), "--ema", "--out", str(tmp_path / "p")],
              "do not apply to train prior: --ema")  # fmt: skip
    cli_error(["train", "prior", str(tmp_path / "none")], "no config.json")
    cli_error(["train", "vae", str(vq_run)], "only train prior takes RUN_DIR")


def test_unigram_baseline_is_the_add_one_cross_entropy():
    train = torch.tensor([0, 0, 0, 1])  # counts 3, 1, 0 of K = 3
    test = torch.tensor([0, 2])
    # p = (n + 1) / (N + K): p0 = 4/7, p2 = 1/7
    expected = -(torch.log2(torch.tensor(4 / 7)) + torch.log2(torch.tensor(1 / 7))) / 2
    assert unigram_bits_per_code(train, test, 3) == pytest.approx(float(expected))


def test_sample_takes_a_number_classes_temperature_top_k_and_writes_a_folder(
    vq_run, cli_error, tmp_path
):
    if not (vq_run / "prior" / "prior.json").is_file():
        assert main(["train", "prior", str(vq_run), "--conditional", *PRIOR]) == 0
    for num, rows in ((5, 1), (25, 4)):  # -n is the number of images, 8 to a row
        grid = tmp_path / f"n{num}.png"
        assert main(["sample", str(vq_run), "-n", str(num), "--out", str(grid)]) == 0
        with Image.open(grid) as image:  # 8x8 digits, 2-pixel padding, scaled 8x
            assert image.size == ((8 * (8 + 2) + 2) * 8, (rows * (8 + 2) + 2) * 8)
    folder = tmp_path / "singles"
    argv = ["sample", str(vq_run), "-n", "6", "--label", "3", "--label", "7", "--out",
            str(folder), "--temperature", "0.5", "--top-k", "4", "--top-p", "0.9"]  # fmt: skip
    assert main(argv) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "0000-class3.png", "0001-class3.png", "0002-class3.png",
        "0003-class7.png", "0004-class7.png", "0005-class7.png",
    ]  # fmt: skip
    with Image.open(folder / names[0]) as image:
        assert image.size == (8, 8)  # one image, its own pixels, no padding
    cli_error(["sample", str(vq_run), "--label", "10", "--out", str(tmp_path / "x.png")],
              "labels must be classes in [0, 9], got [10]")  # fmt: skip
    cli_error(["sample", str(vq_run), "--no-prior", "--temperature", "0.5", "--out",
               str(tmp_path / "x.png")], "guidance_scale shape a prior")  # fmt: skip
    cli_error(["sample", str(vq_run), "--no-prior", "--label", "1", "--out",
               str(tmp_path / "x.png")], "labels apply to a class-conditional")  # fmt: skip


def test_a_failed_start_leaves_nothing_that_blocks_sample_or_eval(vq_run, tmp_path, capsys,
                                                                   monkeypatch):  # fmt: skip
    import genlatent.train.prior as prior_module

    real_fit = prior_module.fit

    def failing_fit(model, *args, **kwargs):
        real_fit(model, *args, **{**kwargs, "epochs": 0})  # writes config.json, then stops
        raise KeyboardInterrupt

    monkeypatch.setattr(prior_module, "fit", failing_fit)
    out = tmp_path / "prior"
    assert main(["train", "prior", str(vq_run), "--out", str(out), *PRIOR]) != 0
    assert not out.exists()  # made by this start, emptied and removed
    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's own")
    assert main(["train", "prior", str(vq_run), "--out", str(kept), *PRIOR]) != 0
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]  # only ours removed
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["sample", str(vq_run), "-n", "2", "--out", str(tmp_path / "s.png"),
                 "--prior-dir", str(out)]) == 2  # fmt: skip
    assert "holds no prior" in capsys.readouterr().err


def test_guided_sampling_from_the_command_line(vq_run, tmp_path, capsys, cli_error):
    out = tmp_path / "guided-prior"
    argv = ["train", "prior", str(vq_run), "--conditional", "--label-dropout", "0.2",
            "--out", str(out), *PRIOR]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((out / "prior.json").read_text())["options"] == {"label_dropout": 0.2}
    assert load_prior(out).model.null_class == 10
    grid = tmp_path / "guided"
    sample = ["sample", str(vq_run), "--prior-dir", str(out), "-n", "6", "--label", "3"]
    assert main([*sample, "--guidance-scale", "3", "--out", str(grid)]) == 0
    assert sorted(p.name for p in grid.iterdir()) == [f"000{i}-class3.png" for i in range(6)]
    scores = {}
    capsys.readouterr()
    for scale in ("1", "3"):
        assert main(["eval", str(vq_run), "--prior-dir", str(out), "--samples", "20",
                     "--guidance-scale", scale, "--json"]) == 0  # fmt: skip
        scores[scale] = json.loads(capsys.readouterr().out)
        assert scores[scale]["guidance_scale"] == float(scale)  # the result says how it was drawn
        assert scores[scale]["sampling_seconds"] > 0
        assert "steps" not in scores[scale]
    assert scores["1"]["class_consistency"] != scores["3"]["class_consistency"] or (
        scores["1"]["frechet_distance"] != scores["3"]["frechet_distance"]
    )  # the scale reaches the samples eval scores
    # guidance without a prior, and a flag for another command, are one line each
    unguided = ["sample", str(vq_run), "--no-prior", "--out", str(tmp_path / "x.png")]
    cli_error([*unguided, "--guidance-scale", "2"], "guidance_scale shape a prior's draws")
    cli_error(["train", "prior", str(vq_run), "--label-dropout", "0.2", *PRIOR],
              "--label-dropout applies to train prior --conditional only")  # fmt: skip
    cli_error(["train", "vae", "--label-dropout", "0.2"], "--label-dropout apply to train prior")


def test_a_maskgit_prior_trains_samples_in_steps_and_reports_no_likelihood(
    vq_run, tmp_path, capsys, cli_error
):
    out = tmp_path / "maskgit"
    argv = ["train", "prior", str(vq_run), "--prior", "maskgit", "--conditional",
            "--label-dropout", "0.2", "--out", str(out), *PRIOR]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((out / "prior.json").read_text())["kind"] == "maskgit"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["test_bits_per_masked_code"] == pytest.approx(
        records[-1]["test_loss"] / torch.log(torch.tensor(2.0)).item()
    )
    assert "test_bits_per_code" not in records[-1]  # a masked loss, not a likelihood
    assert (out / "samples.png").is_file()
    grid = tmp_path / "steps"
    sample = ["sample", str(out), "-n", "4", "--label", "5", "--out", str(grid)]
    assert main([*sample, "--steps", "2", "--guidance-scale", "2"]) == 0
    assert sorted(p.name for p in grid.iterdir()) == [f"000{i}-class5.png" for i in range(4)]
    capsys.readouterr()
    assert main(["eval", str(out), "--samples", "20", "--steps", "3", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert "prior_test_bits_per_code" not in results
    masked = [results[f"prior_test_masked_bits_per_code_at_{p}"] for p in (25, 50, 75)]
    assert all(0 < bits < 8 for bits in masked)  # finite, near log2(16) = 4 after 3 epochs
    assert results["frechet_distance"] >= 0
    assert (results["steps"], results["guidance_scale"]) == (3.0, 1.0)
    assert results["sampling_seconds"] > 0
    # the same seeded masks: eval reports the same numbers twice
    assert main(["eval", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [again[f"prior_test_masked_bits_per_code_at_{p}"] for p in (25, 50, 75)] == masked
    # steps are for a prior that samples in steps
    transformer = vq_run / "prior"
    if not (transformer / "prior.json").is_file():
        assert main(["train", "prior", str(vq_run), "--conditional", *PRIOR]) == 0
    cli_error(["sample", str(transformer), "--steps", "4", "--out", str(tmp_path / "t.png")],
              "steps applies to a prior that draws a grid in parallel steps")  # fmt: skip
    cli_error(["eval", str(out), "--steps", "4"], "--steps applies to eval --samples only")
    cli_error(["sample", str(out), "--steps", "0", "--out", str(tmp_path / "t.png")],
              "steps must be >= 1, got 0")  # fmt: skip


def test_eval_measures_every_number_with_the_checkpoint_asked_for(vq_run, tmp_path, capsys):
    # a run whose last checkpoint differs from its best: the decoder's weights moved
    run = tmp_path / "moved"
    shutil.copytree(vq_run, run)
    last = run / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    for name, value in state["model"].items():
        if name.startswith("decoder.") and value.is_floating_point():
            value.add_(0.05 * torch.randn(value.shape, generator=torch.Generator().manual_seed(0)))
    torch.save(state, last)
    scores = {}
    for checkpoint in ("best", "last"):
        capsys.readouterr()
        argv = ["eval", str(run), "--checkpoint", checkpoint, "--samples", "20", "--json"]
        assert main(argv) == 0
        scores[checkpoint] = json.loads(capsys.readouterr().out)
    # the Fréchet distance of the reconstructions is that of the checkpoint's own model
    train_set, test_set = load_datasets(load_run(run).config)
    classifier = load_or_train_classifier(train_set, data_home() / "classifiers", epochs=2)
    x = test_set.images[:20]
    for checkpoint, results in scores.items():
        model = load_run(run, checkpoint=checkpoint).model.eval()
        with torch.no_grad():
            reconstructions = model.reconstruct(x.float() / 255).clamp(0, 1)
        expected = reconstruction_frechet_distance(classifier, x, reconstructions)
        assert results["reconstruction_frechet_distance"] == pytest.approx(expected, rel=1e-5)
    assert (
        scores["best"]["reconstruction_frechet_distance"]
        != scores["last"]["reconstruction_frechet_distance"]
    )
