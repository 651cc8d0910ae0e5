"""Tests for genlatent.plotting: PNGs from synthetic inputs, PCA, interpolation, whole runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from genlatent import VAE, MLPDecoder, MLPEncoder
from genlatent.plotting import (
    code_usage_figure,
    interpolation_figure,
    latent_interpolation,
    latent_map_figure,
    loss_curves_figure,
    pca_2d,
    plot_code_usage,
    plot_interpolation,
    plot_latent_map,
    plot_loss_curves,
    plot_run,
)
from genlatent.train.rundir import RunDirectoryError

VAE_RECORDS = [
    {
        "epoch": e,
        "train_loss": 200.0 / e,
        "test_loss": 190.0 / e,
        "train_reconstruction_loss": 180.0 / e,
        "test_reconstruction_loss": 175.0 / e,
        "train_kl": 20.0,
        "test_kl": 15.0,
        "images_per_second": 1000.0,
    }
    for e in (1, 2, 3)
]
VQ_RECORDS = [
    {
        "epoch": e,
        "train_loss": 0.3 / e,
        "test_loss": 0.28 / e,
        "train_reconstruction_loss": 0.2 / e,
        "test_reconstruction_loss": 0.19 / e,
        "train_quantizer_loss": 0.0625,
        "train_codebook": 0.05,
        "train_commitment": 0.05,
        "train_codes_used": 0.1 * e,
        "train_usage_perplexity": 3.5 * e,
        "images_per_second": 500.0,
    }
    for e in (1, 2)
]


def assert_png(path) -> None:
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 0
        assert image.height > 0
        assert image.mode in ("RGB", "RGBA")


def tiny_vae() -> VAE:
    torch.manual_seed(0)
    return VAE(MLPEncoder(16, 8, 3), MLPDecoder(3, 8, 16, out_shape=(1, 4, 4)))


# ---------------------------------------------------------------- loss curves


@pytest.mark.parametrize("records", [VAE_RECORDS, VQ_RECORDS, VAE_RECORDS[:1]])
def test_plot_loss_curves_writes_png(tmp_path, records) -> None:
    path = plot_loss_curves(records, tmp_path / "sub" / "loss.png")
    assert path == tmp_path / "sub" / "loss.png"
    assert_png(path)


def test_plot_loss_curves_skips_missing_keys(tmp_path) -> None:
    records = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5, "test_loss": 0.6}]
    assert_png(plot_loss_curves(records, tmp_path / "loss.png"))


def test_plot_loss_curves_rejects_empty(tmp_path) -> None:
    with pytest.raises(ValueError, match="at least one epoch's metrics, got an empty list"):
        plot_loss_curves([], tmp_path / "loss.png")


def test_plot_loss_curves_rejects_record_without_epoch(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"records\[1\] must be a mapping with an 'epoch' key"):
        plot_loss_curves([{"epoch": 1, "train_loss": 1.0}, {"train_loss": 1.0}], tmp_path / "a.png")


def test_plot_loss_curves_needs_a_loss(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"'train_loss' or 'test_loss', got keys \['epoch', 'x'\]"):
        plot_loss_curves([{"epoch": 1, "x": 1.0}], tmp_path / "a.png")


# ---------------------------------------------------------------- PCA


@settings(deadline=None, max_examples=25)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(3, 40),
    dim=st.integers(2, 12),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_pca_2d_recovers_points_on_a_plane(seed, n, dim, dtype) -> None:
    generator = torch.Generator().manual_seed(seed)
    coords = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    basis = torch.linalg.qr(torch.randn(dim, 2, generator=generator, dtype=torch.float64)).Q.T
    offset = torch.randn(dim, generator=generator, dtype=torch.float64)
    x = (coords @ basis + offset).to(dtype)
    pca = pca_2d(x)
    assert pca.points.shape == (n, 2)
    assert pca.components.shape == (2, dim)
    assert pca.points.dtype == dtype
    # the plane holds all the variance, so the rank-2 reconstruction is exact
    torch.testing.assert_close(pca.points @ pca.components + pca.mean, x)
    torch.testing.assert_close(pca.explained_variance_ratio.sum(), torch.tensor(1.0, dtype=dtype))
    torch.testing.assert_close(pca.components @ pca.components.T, torch.eye(2, dtype=dtype))

    # up to a rotation (or reflection): all pairwise distances are the inputs' distances
    def distances(points):
        points = points.double()
        return torch.cdist(points, points, compute_mode="donot_use_mm_for_euclid_dist").to(dtype)

    torch.testing.assert_close(distances(pca.points), distances(x))


def test_pca_2d_orders_by_variance_and_is_deterministic() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=generator) * torch.tensor([5.0, 0.1, 2.0, 0.1, 0.1])
    pca = pca_2d(x)
    assert pca.explained_variance_ratio[0] > pca.explained_variance_ratio[1]
    assert pca.components[0].abs().argmax() == 0
    assert pca.components[1].abs().argmax() == 2
    torch.testing.assert_close(pca_2d(x).points, pca.points)
    torch.testing.assert_close(pca_2d(-x).points, -pca.points)


def test_pca_2d_one_dimensional_and_constant_data() -> None:
    x = torch.tensor([[1.0], [2.0], [4.0]])
    pca = pca_2d(x)
    torch.testing.assert_close(pca.points[:, 1], torch.zeros(3))
    torch.testing.assert_close(pca.points @ pca.components + pca.mean, x)
    constant = pca_2d(torch.ones(4, 3))
    torch.testing.assert_close(constant.explained_variance_ratio, torch.zeros(2))


def test_pca_2d_errors() -> None:
    with pytest.raises(TypeError, match="x must have a floating-point dtype"):
        pca_2d(torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"x must have shape \(N, D\)"):
        pca_2d(torch.ones(3))
    with pytest.raises(ValueError, match=r"x must hold at least 2 points, got shape \(1, 3\)"):
        pca_2d(torch.ones(1, 3))


# ---------------------------------------------------------------- latent map


@pytest.mark.parametrize("method", ["pca", "tsne", "auto"])
def test_plot_latent_map_writes_png(tmp_path, method) -> None:
    generator = torch.Generator().manual_seed(0)
    means = torch.randn(60, 4, generator=generator)
    labels = torch.arange(60) % 10
    assert_png(plot_latent_map(means, labels, tmp_path / "map.png", method=method))


def test_plot_latent_map_many_classes_subsample_and_names(tmp_path) -> None:
    generator = torch.Generator().manual_seed(0)
    means = torch.randn(300, 3, generator=generator)
    assert_png(plot_latent_map(means, torch.arange(300) % 15, tmp_path / "a.png", max_points=100))
    names = [f"class {i}" for i in range(3)]
    assert_png(
        plot_latent_map(
            means, torch.arange(300) % 3, tmp_path / "b.png", method="pca", class_names=names
        )
    )


def test_plot_latent_map_tsne_without_sklearn(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    means, labels = torch.randn(20, 3), torch.arange(20) % 2
    with pytest.raises(ImportError, match=r"needs scikit-learn.*genlatent\[demo\]"):
        plot_latent_map(means, labels, tmp_path / "m.png", method="tsne")
    # "auto" falls back to PCA
    assert_png(plot_latent_map(means, labels, tmp_path / "m.png"))


def test_plot_latent_map_errors(tmp_path) -> None:
    path = tmp_path / "m.png"
    means, labels = torch.randn(5, 2), torch.arange(5)
    with pytest.raises(TypeError, match="means must have a floating-point dtype"):
        plot_latent_map(labels.view(5, 1), labels, path)
    with pytest.raises(ValueError, match=r"means must have shape \(N, D\)"):
        plot_latent_map(means[0], labels, path)
    with pytest.raises(TypeError, match=r"labels must be a torch\.Tensor, got list"):
        plot_latent_map(means, [0, 1, 2, 3, 4], path)
    with pytest.raises(TypeError, match=r"labels must have an integer dtype, got torch\.float32"):
        plot_latent_map(means, labels.float(), path)
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\)"):
        plot_latent_map(means, labels.view(5, 1), path)
    with pytest.raises(ValueError, match="got 5 means and 4 labels"):
        plot_latent_map(means, labels[:4], path)
    with pytest.raises(ValueError, match=r"means must hold at least 2 points, got shape \(1, 2\)"):
        plot_latent_map(means[:1], labels[:1], path)
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'pca', 'tsne'\)"):
        plot_latent_map(means, labels, path, method="umap")
    with pytest.raises(ValueError, match="max_points must be >= 1, got 0"):
        plot_latent_map(means, labels, path, max_points=0)


# ---------------------------------------------------------------- interpolation


def test_latent_interpolation_endpoints_are_reconstructions() -> None:
    model = tiny_vae()
    generator = torch.Generator().manual_seed(1)
    x_a, x_b = torch.rand(2, 1, 4, 4, generator=generator)
    path = latent_interpolation(model, x_a, x_b, steps=7)
    assert path.shape == (7, 1, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(path[0], model.reconstruct(x_a[None])[0])
        torch.testing.assert_close(path[-1], model.reconstruct(x_b[None])[0])
        # the middle point decodes the midpoint of the means
        means = model.encode(torch.stack([x_a, x_b]))[0]
        middle = torch.sigmoid(model.decode(means.mean(0, keepdim=True)))[0]
    torch.testing.assert_close(path[3], middle)
    assert float(path.min()) >= 0
    assert float(path.max()) <= 1


def test_latent_interpolation_batched_inputs_and_mode() -> None:
    model = tiny_vae().train()
    x_a, x_b = torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4)
    out = latent_interpolation(model, x_a, x_b, steps=2)
    assert out.shape == (2, 1, 4, 4)
    assert model.training
    assert not out.requires_grad


def test_latent_interpolation_gaussian_and_duck_typed_models() -> None:
    model = tiny_vae()
    model.likelihood = "gaussian"
    x_a, x_b = torch.rand(1, 4, 4), torch.rand(1, 4, 4)
    with torch.no_grad():
        expected = model.decode(model.encode(x_a[None])[0])[0]
    torch.testing.assert_close(latent_interpolation(model, x_a, x_b)[0], expected)

    class Bare(torch.nn.Module):  # not a VAE: encode, decode and `likelihood` suffice
        likelihood = "bernoulli"

        def __init__(self, inner: VAE) -> None:
            super().__init__()
            self.inner = inner

        def encode(self, x):
            return self.inner.encode(x)

        def decode(self, z):
            return self.inner.decode(z)

    inner = tiny_vae()
    bare = latent_interpolation(Bare(inner), x_a, x_b, steps=3)
    torch.testing.assert_close(bare, latent_interpolation(inner, x_a, x_b, steps=3))


def test_latent_interpolation_errors() -> None:
    model, x = tiny_vae(), torch.rand(1, 4, 4)
    with pytest.raises(TypeError, match="latent_interpolation needs a model with an encode method"):
        latent_interpolation(torch.nn.Linear(2, 2), x, x)
    with pytest.raises(TypeError, match="x_a must have a floating-point dtype"):
        latent_interpolation(model, x.long(), x)
    with pytest.raises(ValueError, match=r"x_b must have shape \(C, H, W\) or \(1, C, H, W\)"):
        latent_interpolation(model, x, x[0])
    with pytest.raises(ValueError, match=r"x_a must be one image.*got shape \(2, 1, 4, 4\)"):
        latent_interpolation(model, torch.rand(2, 1, 4, 4), x)
    with pytest.raises(ValueError, match=r"same shape, got \(1, 4, 4\) and \(1, 4, 3\)"):
        latent_interpolation(model, x, torch.rand(1, 4, 3))
    with pytest.raises(TypeError, match="steps must be an int, got float"):
        latent_interpolation(model, x, x, steps=3.0)
    with pytest.raises(ValueError, match=r"steps must be >= 2 \(both ends are included\), got 1"):
        latent_interpolation(model, x, x, steps=1)


@pytest.mark.parametrize("shape", [(10, 1, 8, 8), (3, 3, 5, 7), (1, 1, 4, 4)])
def test_plot_interpolation_writes_png(tmp_path, shape) -> None:
    assert_png(plot_interpolation(torch.rand(shape), tmp_path / "i.png"))


def test_plot_interpolation_errors(tmp_path) -> None:
    path = tmp_path / "i.png"
    with pytest.raises(TypeError, match="images must have a floating-point dtype"):
        plot_interpolation(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), path)
    with pytest.raises(ValueError, match=r"images must have shape \(S, C, H, W\)"):
        plot_interpolation(torch.rand(1, 4, 4), path)
    with pytest.raises(ValueError, match=r"1 or 3 channels, got shape \(2, 2, 4, 4\)"):
        plot_interpolation(torch.rand(2, 2, 4, 4), path)


# ---------------------------------------------------------------- code usage


@pytest.mark.parametrize(
    "counts",
    [torch.tensor([10, 0, 3, 3, 1]), torch.ones(64), torch.tensor([0.0, 2.5])],
)
def test_plot_code_usage_writes_png(tmp_path, counts) -> None:
    assert_png(plot_code_usage(counts, tmp_path / "c.png"))
    assert_png(plot_code_usage(counts, tmp_path / "d.png", title="run"))


def test_plot_code_usage_errors(tmp_path) -> None:
    path = tmp_path / "c.png"
    with pytest.raises(TypeError, match=r"counts must be a torch\.Tensor, got list"):
        plot_code_usage([1, 2], path)
    with pytest.raises(ValueError, match=r"counts must have shape \(K,\) or \(S, K\)"):
        plot_code_usage(torch.ones(2, 2, 2), path)
    with pytest.raises(ValueError, match="one count per code, got an empty tensor"):
        plot_code_usage(torch.ones(0), path)
    with pytest.raises(ValueError, match="counts must be non-negative, got a minimum of -1"):
        plot_code_usage(torch.tensor([3, -1]), path)
    with pytest.raises(ValueError, match="at least one code assignment, got all zeros"):
        plot_code_usage(torch.zeros(4), path)
    with pytest.raises(ValueError, match="at least one code assignment, got all zeros"):
        plot_code_usage(torch.zeros(3, 4), path)


def test_code_usage_figure_draws_one_panel_per_residual_stage() -> None:
    counts = torch.tensor([[6, 0, 2, 2], [1, 1, 1, 1], [0, 0, 0, 0]])  # stage 3 dropped
    figure = code_usage_figure(counts, title="run")
    assert len(figure.axes) == 3
    first, second, third = figure.axes
    # each stage's bars are its own sorted shares, summing to 1
    assert [round(b.get_height(), 3) for b in first.patches] == [0.6, 0.2, 0.2, 0.0]
    assert [round(b.get_height(), 3) for b in second.patches] == [0.25] * 4
    assert first.get_title() == "run\nstage 1 of 3: 3/4 codes used (75%), perplexity 2.6"
    assert second.get_title() == "Code usage: stage 2 of 3: 4/4 codes used (100%), perplexity 4.0"
    assert third.get_title() == "stage 3 of 3: no assignments"
    assert not third.patches


# ---------------------------------------------------------------- missing matplotlib


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    message = r"needs matplotlib.*pip install 'genlatent\[plot\]'"
    with pytest.raises(ImportError, match=message):
        plot_loss_curves(VAE_RECORDS, tmp_path / "loss.png")
    with pytest.raises(ImportError, match=message):
        plot_code_usage(torch.ones(3), tmp_path / "c.png")
    assert not (tmp_path / "loss.png").exists()


# ---------------------------------------------------------------- whole runs


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    from genlatent.train.config import TrainConfig
    from genlatent.train.runner import train

    root = tmp_path_factory.mktemp("runs")
    common = {"dataset": "digits", "epochs": 1, "train_limit": 200, "test_limit": 100}
    configs = {
        "vae": TrainConfig(model="vae", device="cpu", latent_dim=8, **common),
        "vqvae": TrainConfig(
            model="vqvae", device="cpu", hidden_channels=8, codebook_size=16, **common
        ),
    }
    for name, config in configs.items():
        train(config, root / name, show_progress=False, log=lambda s: None)
    return root


def test_plot_run_vae(trained_runs) -> None:
    run_dir = trained_runs / "vae"
    written = plot_run(run_dir)
    assert [p.name for p in written] == ["loss_curves.png", "latent_map.png", "interpolation.png"]
    for path in written:
        assert path.parent == run_dir
        assert_png(path)


def test_plot_run_vqvae(trained_runs) -> None:
    run_dir = trained_runs / "vqvae"
    written = plot_run(run_dir, method="pca")
    assert [p.name for p in written] == ["loss_curves.png", "code_usage.png"]
    for path in written:
        assert_png(path)


def test_plot_run_falls_back_to_last_checkpoint(trained_runs, tmp_path) -> None:
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(trained_runs / "vqvae", run_dir)
    (run_dir / "checkpoints" / "best.pt").unlink()
    (run_dir / "metrics.jsonl").unlink()
    with pytest.warns(UserWarning, match=r"best\.pt does not exist; read last\.pt"):
        pictures = plot_run(run_dir)  # no log: the fallback is announced as a warning
    assert [p.name for p in pictures] == ["code_usage.png"]


class _Offset(NamedTuple):
    loss: torch.Tensor


class _OffsetModel(torch.nn.Module):
    """A model by protocol only: a loss, no encode, reconstruct, sample or code counts."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def loss(self, x: torch.Tensor) -> _Offset:
        return _Offset((x.flatten(1).mean(1) - self.offset).square().mean())


def test_plot_run_of_fit_models_draws_what_each_model_can(tmp_path) -> None:
    from genlatent import fit
    from genlatent.data import load_digits

    train_set, test_set = load_digits("train"), load_digits("test")
    quiet = {"epochs": 1, "batch_size": 100, "lr": 1e-3, "show_progress": False}

    def vae() -> VAE:
        torch.manual_seed(0)
        return VAE(MLPEncoder(64, 16, 2), MLPDecoder(2, 16, 64, out_shape=(1, 8, 8)))

    fit(vae(), train_set, test_set, run_dir=tmp_path / "vae", log=lambda s: None, **quiet)
    written = plot_run(tmp_path / "vae", model=vae(), test_set=test_set)
    assert [p.name for p in written] == ["loss_curves.png", "latent_map.png", "interpolation.png"]
    for path in written:
        assert_png(path)
    # a model with nothing but a loss gets its loss curves only
    fit(_OffsetModel(), train_set, test_set, run_dir=tmp_path / "bare", log=lambda s: None, **quiet)
    written = plot_run(tmp_path / "bare", model=_OffsetModel(), test_set=test_set)
    assert [p.name for p in written] == ["loss_curves.png"]
    # the run cannot rebuild a model passed to fit on its own
    with pytest.raises(ValueError, match=r"this run trained a model passed to fit\(\)"):
        plot_run(tmp_path / "bare", test_set=test_set)


def test_plot_run_errors(tmp_path) -> None:
    with pytest.raises(RunDirectoryError, match=r"is not a run directory: no config\.json"):
        plot_run(tmp_path)
    from genlatent.train.config import TrainConfig

    (tmp_path / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    with pytest.raises(RunDirectoryError, match="has no checkpoint yet"):
        plot_run(tmp_path)


def test_plotting_is_lazy_and_not_imported_by_the_core() -> None:
    import subprocess

    code = (
        "import sys, genlatent, genlatent.data, genlatent.train.runner;"
        "assert 'genlatent.plotting' not in sys.modules, 'the core imports plotting';"
        "import genlatent.plotting;"
        "assert 'matplotlib' not in sys.modules, 'plotting imports matplotlib eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_loss_curves_draw_every_logged_term_and_no_unoptimised_one():
    from genlatent.plotting.curves import _panels

    ema = {"epoch", "train_loss", "test_loss", "train_reconstruction_loss", "train_commitment",
           "train_quantizer_loss", "train_codes_used", "train_examples", "my_term"}  # fmt: skip
    titles = [title for _, title, _ in _panels(ema)]
    assert "Codebook term" not in titles  # an EMA codebook's term is not logged, not drawn
    assert titles == ["Loss (minimised)", "Reconstruction loss", "Quantizer loss (added)",
                      "Commitment term (unweighted)", "Codes used in the epoch"]  # fmt: skip
    user = {"epoch", "train_loss", "train_label_mean"}  # a user model's own term gets a panel
    assert [title for _, title, _ in _panels(user)] == ["Loss (minimised)", "Label mean"]


def test_class_names_label_the_datasets_that_have_them():
    from genlatent.data import CIFAR10_CLASSES, class_names

    assert class_names("cifar10") == CIFAR10_CLASSES
    assert class_names("fashion-mnist")[0] == "T-shirt/top"
    assert class_names("mnist") is None


# ---------------------------------------------------------------- what the figures hold


def _lines(ax) -> dict[str, tuple[list[float], list[float]]]:
    return {
        line.get_label(): (
            [float(v) for v in line.get_xdata()],
            [float(v) for v in line.get_ydata()],
        )
        for line in ax.lines
    }


def test_loss_curves_figure_holds_every_series_of_the_records() -> None:
    figure = loss_curves_figure(VAE_RECORDS, title="my run")
    assert figure.get_suptitle() == "my run"
    panels = {ax.get_title(): ax for ax in figure.axes}
    assert list(panels) == [
        "Loss (minimised)", "Reconstruction loss", "KL to the prior", "Training throughput",
    ]  # fmt: skip
    epochs = [1.0, 2.0, 3.0]
    for title, key in [("Loss (minimised)", "loss"), ("Reconstruction loss",
                       "reconstruction_loss"), ("KL to the prior", "kl")]:  # fmt: skip
        ax = panels[title]
        assert ax.get_xlabel() == "epoch"
        assert _lines(ax) == {
            split: (epochs, [r[f"{split}_{key}"] for r in VAE_RECORDS])
            for split in ("train", "test")
        }
    assert panels["KL to the prior"].get_ylabel() == "nats per example"
    throughput = panels["Training throughput"]
    assert throughput.get_ylabel() == "images/s"
    assert [
        (line.get_xdata().tolist(), line.get_ydata().tolist()) for line in throughput.lines
    ] == [(epochs, [1000.0] * 3)]
    # a term only some records logged has points for those epochs only
    partial = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5, "test_loss": 0.6}]
    assert _lines(loss_curves_figure(partial).axes[0]) == {
        "train": ([1.0, 2.0], [1.0, 0.5]),
        "test": ([2.0], [0.6]),
    }


def test_loss_curves_of_a_run_evaluated_within_epochs_are_drawn_by_step() -> None:
    # eval_every 5 steps with 8 steps per epoch: two evaluations share epoch 2
    records = [
        {"epoch": 1, "step": 5, "train_loss": 3.0},
        {"epoch": 2, "step": 10, "train_loss": 2.0},
        {"epoch": 2, "step": 15, "train_loss": 1.5},
    ]
    ax = loss_curves_figure(records).axes[0]
    assert ax.get_xlabel() == "step"
    assert _lines(ax) == {"train": ([5.0, 10.0, 15.0], [3.0, 2.0, 1.5])}
    # one evaluation per epoch keeps the epoch axis, steps or not
    by_epoch = [{**r, "epoch": i + 1} for i, r in enumerate(records)]
    assert loss_curves_figure(by_epoch).axes[0].get_xlabel() == "epoch"


def test_loss_curves_figure_of_a_vq_run() -> None:
    figure = loss_curves_figure(VQ_RECORDS)
    assert figure.get_suptitle() == "Training curves"
    panels = {ax.get_title(): ax for ax in figure.axes}
    assert _lines(panels["Codes used in the epoch"]) == {"train": ([1.0, 2.0], [0.1, 0.2])}
    assert _lines(panels["Epoch code-usage perplexity"]) == {"train": ([1.0, 2.0], [3.5, 7.0])}
    assert _lines(panels["Codebook term"])["train"] == ([1.0, 2.0], [0.05, 0.05])
    assert len(figure.axes) == 8  # 7 terms and the throughput: the ninth grid cell removed


def test_code_usage_figure_bars_are_the_sorted_shares_of_the_counts() -> None:
    counts = torch.tensor([10, 0, 3, 3, 1, 0, 7])
    figure = code_usage_figure(counts, title="run")
    [ax] = figure.axes
    heights = torch.tensor([bar.get_height() for bar in ax.patches], dtype=torch.float64)
    assert len(ax.patches) == 7  # one bar per code, unused ones included
    # the histogram holds all the counts: shares sum to 1, and times the total give them back
    total = float(counts.sum())
    torch.testing.assert_close(heights.sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(heights * total, counts.double().sort(descending=True).values)
    positions = [bar.get_x() + bar.get_width() / 2 for bar in ax.patches]
    assert positions == pytest.approx(list(range(7)))
    [uniform] = ax.lines
    assert list(uniform.get_ydata()) == pytest.approx([1 / 7, 1 / 7])
    assert uniform.get_label() == "uniform (1/7)"
    assert ax.get_xlabel() == "code rank (most used first)"
    assert ax.get_ylabel() == "share of assignments"
    # p = (10, 7, 3, 3, 1) / 24; exp(H(p)), by hand
    p = torch.tensor([10, 7, 3, 3, 1], dtype=torch.float64) / 24
    perplexity = float(torch.exp(-(p * p.log()).sum()))
    assert ax.get_title() == f"run\n5/7 codes used (71%), perplexity {perplexity:.1f}"


def test_latent_map_figure_draws_each_point_once_in_its_class() -> None:
    # points already in a plane through the origin: PCA keeps them (up to rotation), so
    # each class's scatter must hold its own points' pairwise distances
    generator = torch.Generator().manual_seed(0)
    means = torch.randn(40, 2, generator=generator) * torch.tensor([3.0, 1.0])
    labels = torch.arange(40) % 3
    figure = latent_map_figure(means, labels, method="pca", class_names=["a", "b", "c"])
    [ax] = figure.axes
    assert ax.get_xlabel() == "PC 1"
    assert ax.get_ylabel() == "PC 2"
    assert ax.get_title() == "Posterior means, 2-D latent (PCA, 100% of the variance; 40 points)"
    assert [c.get_label() for c in ax.collections] == ["a", "b", "c"]
    expected = pca_2d(means).points
    for label, scatter in enumerate(ax.collections):
        drawn = torch.tensor(scatter.get_offsets().data, dtype=torch.float32)
        torch.testing.assert_close(drawn, expected[labels == label])
    assert sum(len(c.get_offsets()) for c in ax.collections) == 40


def test_latent_map_figure_subsamples_and_colours_many_classes() -> None:
    generator = torch.Generator().manual_seed(1)
    means = torch.randn(300, 3, generator=generator)
    labels = torch.arange(300) % 15
    figure = latent_map_figure(means, labels, method="pca", max_points=100)
    ax, colorbar = figure.axes
    [scatter] = ax.collections  # more than 10 classes: one scatter coloured by label
    assert len(scatter.get_offsets()) == 100
    assert colorbar.get_ylabel() == "class"
    # the same fixed subset on every call, and its colours are its labels
    keep = torch.randperm(300, generator=torch.Generator().manual_seed(0))[:100].sort().values
    assert scatter.get_array().tolist() == labels[keep].tolist()
    torch.testing.assert_close(
        torch.tensor(scatter.get_offsets().data, dtype=torch.float32), pca_2d(means).points[keep]
    )
    assert "100 of 300 points" in ax.get_title()


@pytest.mark.parametrize("channels", [1, 3])
def test_interpolation_figure_strip_holds_each_image_in_order(channels) -> None:
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(4, channels, 5, 7, generator=generator) * 1.4 - 0.2  # some clipped
    figure = interpolation_figure(images)
    [ax] = figure.axes
    [strip] = ax.images
    data = torch.as_tensor(strip.get_array().data)
    pad = 1  # max(1, 7 // 14)
    assert data.shape[:2] == (5, 4 * 7 + 3 * pad)
    for i in range(4):
        cell = data[:, i * (7 + pad) : i * (7 + pad) + 7]
        expected = images[i].clamp(0, 1)
        expected = expected[0] if channels == 1 else expected.permute(1, 2, 0)
        torch.testing.assert_close(cell.float(), expected)
        if i < 3:  # white separators
            assert (data[:, i * (7 + pad) + 7] == 1).all()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.00", "0.33", "0.67", "1.00"]
    assert ax.get_xlabel() == "t"
    assert ax.get_title() == "Latent interpolation (4 steps)"
    if channels == 1:
        assert strip.get_cmap().name == "gray"
        assert strip.get_clim() == (0, 1)


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures the ``plot_*`` functions save, in order (each still written)."""
    import genlatent.plotting.codes as codes
    import genlatent.plotting.curves as curves
    import genlatent.plotting.interpolation as interpolation
    import genlatent.plotting.latent as latent

    figures = []
    for module in (codes, curves, interpolation, latent):
        save = module.save_png

        def capture(figure, path, _save=save):
            figures.append((Path(path).name, figure))
            return _save(figure, path)

        monkeypatch.setattr(module, "save_png", capture)
    return figures


def test_plot_run_vqvae_draws_the_run_metrics_and_the_test_code_histogram(
    trained_runs, drawn
) -> None:
    from genlatent.train import load_run
    from genlatent.train.build import load_test_set

    run_dir = trained_runs / "vqvae"
    plot_run(run_dir, method="pca")
    assert [name for name, _ in drawn] == ["loss_curves.png", "code_usage.png"]
    figures = dict(drawn)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    panels = {ax.get_title(): ax for ax in figures["loss_curves.png"].axes}
    assert _lines(panels["Loss (minimised)"]) == {
        split: ([float(r["epoch"]) for r in records], [r[f"{split}_loss"] for r in records])
        for split in ("train", "test")
    }
    # the histogram is of the best checkpoint's codes for every position of every test image
    loaded = load_run(run_dir)
    test = load_test_set(loaded.config)
    with torch.no_grad():
        indices = loaded.model.encode(test.images.float() / 255)
    counts = torch.bincount(indices.flatten(), minlength=16).double()
    [ax] = figures["code_usage.png"].axes
    heights = torch.tensor([bar.get_height() for bar in ax.patches], dtype=torch.float64)
    assert len(heights) == 16
    torch.testing.assert_close(heights * counts.sum(), counts.sort(descending=True).values)
    assert ax.get_title().startswith(f"digits test set ({len(test)} images), epoch 1\n")


def test_plot_run_vae_draws_every_test_point_and_ten_steps(trained_runs, drawn) -> None:
    plot_run(trained_runs / "vae", method="pca")
    figures = dict(drawn)
    assert list(figures) == ["loss_curves.png", "latent_map.png", "interpolation.png"]
    [ax] = figures["latent_map.png"].axes
    assert sum(len(c.get_offsets()) for c in ax.collections) == 100  # test_limit
    assert ax.get_title().startswith("Posterior means, 8-D latent (PCA, ")
    [strip_ax] = figures["interpolation.png"].axes
    assert len(strip_ax.get_xticklabels()) == 10
    assert strip_ax.get_title().startswith("Latent interpolation: test image 0 (label ")
