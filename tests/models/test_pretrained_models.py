"""``from_pretrained(save_pretrained(model))`` is the same model, for every genlatent model."""

import json

import pytest
import torch

import genlatent
from genlatent import (
    FSQ,
    LFQ,
    VAE,
    VQVAE,
    ConvDecoder,
    ConvEncoder,
    GroupedQuantizer,
    MLPDecoder,
    MLPEncoder,
    PixelCNNPrior,
    ResidualQuantizer,
    ResidualVQ,
    SimVQ,
    TransformerPrior,
    VectorQuantizer,
)
from genlatent.models import VampPrior
from genlatent.models.presets import conditional_vae, conv_vae, mnist_vae


def _round_trip(model, folder):
    model.save_pretrained(folder)
    copy = genlatent.from_pretrained(folder)
    assert type(copy) is type(model)
    assert not copy.training
    return copy


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def _vae_outputs(model, x):
    g = torch.Generator().manual_seed(3)
    return (
        model.reconstruct(x),
        model.sample(5, generator=torch.Generator().manual_seed(1)),
        model.loss(x, generator=g).loss,
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: mnist_vae(latent_dim=8),
        lambda: VAE(
            MLPEncoder(784, 32, 4),
            MLPDecoder(4, 32, 784, out_shape=(1, 28, 28)),
            prior=VampPrior(6, (1, 28, 28), init=torch.rand(6, 1, 28, 28)),
        ),
        lambda: VAE(
            MLPEncoder(784, (32, 16), 4, activation="tanh"),
            MLPDecoder(4, (16, 32), 784, out_shape=(1, 28, 28), activation="tanh"),
        ),
        lambda: VAE(
            MLPEncoder(784, 16, 4, activation=torch.nn.ELU, dtype=torch.float64),
            MLPDecoder(4, 16, 784, out_shape=(1, 28, 28), dtype=torch.float64),
        ),
    ],
    ids=["mnist_vae", "vampprior", "tanh-by-name", "elu-class-float64"],
)
def test_vae_round_trips_exactly(build, tmp_path):
    torch.manual_seed(0)
    model = build().eval()
    copy = _round_trip(model, tmp_path)
    _same_state(model, copy)
    dtype = next(model.parameters()).dtype
    x = torch.rand(4, 1, 28, 28, dtype=dtype)
    for a, b in zip(_vae_outputs(model, x), _vae_outputs(copy, x), strict=True):
        assert torch.equal(a, b)


def test_vampprior_init_tensor_is_not_in_the_config_but_its_value_is_restored(tmp_path):
    init = torch.rand(3, 6)
    model = VAE(MLPEncoder(6, 8, 2), MLPDecoder(2, 8, 6), prior=VampPrior(3, (6,), init=init))
    copy = _round_trip(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert "init" not in config["arguments"]["prior"]["arguments"]
    assert torch.equal(copy.prior.pseudo_inputs, init)


def test_conditional_vae_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    model = conditional_vae((1, 8, 8), 10, latent_dim=4).eval()
    copy = _round_trip(model, tmp_path)
    x, labels = torch.rand(6, 1, 8, 8), torch.arange(6)
    assert torch.equal(copy.reconstruct(x, labels=labels), model.reconstruct(x, labels=labels))
    draws = [
        m.sample(6, labels=labels, generator=torch.Generator().manual_seed(2))
        for m in (model, copy)
    ]
    assert torch.equal(draws[0], draws[1])


def test_conv_vae_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    model = conv_vae((3, 8, 8), latent_dim=4, hidden_channels=8, num_mixtures=2).eval()
    copy = _round_trip(model, tmp_path)
    x = torch.rand(3, 3, 8, 8)
    for a, b in zip(_vae_outputs(model, x), _vae_outputs(copy, x), strict=True):
        assert torch.equal(a, b)


QUANTIZERS = {
    "vq": lambda: VectorQuantizer(16, 4),
    "vq-ema-restart": lambda: VectorQuantizer(16, 4, ema=True, restart_dead_codes=1),
    "vq-ema-bias-corrected": lambda: VectorQuantizer(16, 4, ema=True, bias_correction=True),
    "vq-cosine-kmeans": lambda: VectorQuantizer(16, 4, distance="cosine", init="kmeans"),
    "vq-rotation": lambda: VectorQuantizer(16, 4, gradient="rotation"),
    "fsq": lambda: FSQ((5, 3), dim=4),
    "lfq": lambda: LFQ(16, dim=4),
    "rvq": lambda: ResidualVQ(2, 16, 4, ema=True, restart_dead_codes=1),
    "rvq-shared-kmeans": lambda: ResidualVQ(3, 16, 4, shared_codebook=True, init="kmeans"),
    "residual-fsq": lambda: ResidualQuantizer([FSQ((5, 3), dim=4) for _ in range(3)]),
    "grouped-vq-ema-and-lfq": lambda: GroupedQuantizer(
        [VectorQuantizer(16, 2, ema=True), LFQ(16, dim=2)]
    ),
    "simvq": lambda: SimVQ(16, 4),
    "bsq": lambda: LFQ(16, dim=4, spherical=True),
}


@pytest.mark.parametrize("name", QUANTIZERS)
def test_vqvae_round_trips_exactly_after_training(name, tmp_path):
    torch.manual_seed(0)
    quantizer = QUANTIZERS[name]()
    model = VQVAE(ConvEncoder(1, 8, 4), quantizer, ConvDecoder(4, 8, 1))  # grid_shape unknown
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):  # EMA statistics, dead-code counters and k-means move the buffers
        optimizer.zero_grad(set_to_none=True)
        model.loss(torch.rand(8, 1, 8, 8)).loss.backward()
        optimizer.step()
    moved = [
        k for k, v in model.state_dict().items() if k in fresh and not torch.equal(v, fresh[k])
    ]
    assert moved, "training changed nothing"
    model.eval()
    copy = _round_trip(model, tmp_path)
    assert model.grid_shape is not None
    assert copy.grid_shape == model.grid_shape
    _same_state(model, copy)
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(copy.encode(x), model.encode(x))
    assert torch.equal(copy.reconstruct(x), model.reconstruct(x))
    samples = [m.sample(3, generator=torch.Generator().manual_seed(5)) for m in (model, copy)]
    assert torch.equal(samples[0], samples[1])


def test_vqvae_grid_shape_travels_in_the_state_dict_and_old_states_still_load():
    model = VQVAE(ConvEncoder(1, 8, 4), VectorQuantizer(16, 4), ConvDecoder(4, 8, 1))
    assert "grid_shape" not in model.state_dict()  # unknown yet
    model(torch.rand(2, 1, 12, 8))
    state = model.state_dict()
    assert state["grid_shape"].tolist() == [3, 2]
    fresh = VQVAE(ConvEncoder(1, 8, 4), VectorQuantizer(16, 4), ConvDecoder(4, 8, 1))
    fresh.load_state_dict(state)
    assert fresh.grid_shape == (3, 2)
    old = {k: v for k, v in state.items() if k != "grid_shape"}  # a checkpoint from before
    kept = VQVAE(
        ConvEncoder(1, 8, 4), VectorQuantizer(16, 4), ConvDecoder(4, 8, 1), grid_shape=(7, 7)
    )
    kept.load_state_dict(old)
    assert kept.grid_shape == (7, 7)


@pytest.mark.parametrize("num_classes", [None, 3])
@pytest.mark.parametrize(
    "build",
    [
        lambda c: TransformerPrior(16, (3, 3), layers=1, heads=2, dim=8, num_classes=c),
        lambda c: PixelCNNPrior(16, (3, 3), channels=8, layers=2, num_classes=c),
    ],
    ids=["transformer", "pixelcnn"],
)
def test_priors_round_trip_exactly(build, num_classes, tmp_path):
    torch.manual_seed(0)
    model = build(num_classes).eval()
    copy = _round_trip(model, tmp_path)
    indices = torch.randint(16, (4, 3, 3))
    labels = None if num_classes is None else torch.tensor([0, 1, 2, 0])
    assert torch.equal(copy.log_prob(indices, labels), model.log_prob(indices, labels))
    samples = [
        m.sample(4, labels=labels, generator=torch.Generator().manual_seed(7))
        for m in (model, copy)
    ]
    assert torch.equal(samples[0], samples[1])


def test_from_pretrained_of_a_class_checks_the_class_and_takes_device_and_dtype(tmp_path):
    model = VQVAE(ConvEncoder(1, 8, 4), FSQ((3, 3), dim=4), ConvDecoder(4, 8, 1), grid_shape=(2, 2))
    model.save_pretrained(tmp_path)
    assert type(VQVAE.from_pretrained(tmp_path)) is VQVAE
    with pytest.raises(TypeError, match=r"holds a genlatent\.VQVAE, not a VAE"):
        VAE.from_pretrained(tmp_path)
    cast = VQVAE.from_pretrained(tmp_path, device="cpu", dtype=torch.float64)
    assert next(cast.parameters()).dtype == torch.float64


def test_from_pretrained_leaves_the_global_random_state_alone(tmp_path):
    mnist_vae(latent_dim=2).save_pretrained(tmp_path)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    genlatent.from_pretrained(tmp_path)
    assert torch.equal(torch.rand(3), expected)


def test_every_public_module_class_can_be_saved():
    import genlatent.models
    import genlatent.nn
    import genlatent.priors

    classes = [
        getattr(package, name)
        for package in (genlatent.nn, genlatent.models, genlatent.priors)
        for name in package.__all__
    ]
    modules = [c for c in classes if isinstance(c, type) and issubclass(c, torch.nn.Module)]
    assert len(modules) >= 15
    for cls in modules:
        assert issubclass(cls, genlatent.PretrainedMixin), cls
        assert callable(getattr(cls, "save_pretrained", None)), cls
