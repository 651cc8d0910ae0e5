"""Hypothesis drives malformed inputs into every public entry point.

Each case is a valid call of one public function, constructor or forward, and a list of
faults per argument that make the call invalid: a wrong rank, channel or feature count, a
batch size that disagrees with another argument, an integer, boolean or complex dtype, an
empty dimension, NaN or infinity, Bernoulli targets outside [0, 1], an unknown
``reduction``, a non-positive size, a ``decay`` outside (0, 1). Every declared
(case, argument, fault) combination is its own parametrized test, so every run tries all
of them; Hypothesis draws only the values inside a case (the seed of its tensors, and the
`set_validate_args` switch for valid calls). It checks:

- no fault: the call succeeds, at each batch size the case declares (0, 1 and 3);
- a fault, with the switch on and off: the call raises ``ValueError`` or ``TypeError``
  (never ``RuntimeError``, ``IndexError`` or a crash deep in torch) whose message names
  the broken argument;
- a value fault (NaN, infinity, a target outside [0, 1]) with the switch off: the call
  does not raise, since value checks are exactly what the switch turns off.

The command line gets the same treatment: a bad number for any numeric ``train`` option
is one line on stderr, exit status 2, naming the option.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import genlatent.functional as F
from genlatent import (
    VAE,
    VQVAE,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    ResidualBlock,
    VectorQuantizer,
    mnist_vae,
    vae_loss,
    vqvae_loss,
)
from genlatent._validation import validate_args
from genlatent.cli import main
from genlatent.data import ImageDataset, TensorBatches
from genlatent.functional.quantize import code_sums
from genlatent.metrics import bits_per_dim, code_usage, evaluate_model, evaluate_vae, iwae_bound
from genlatent.train import TrainConfig, image_grid
from genlatent.train.config import option_owners

B, FEAT, LATENT, K, C = 3, 4, 2, 5, 2  # fault draws use batch B; valid draws also 0 and 1

# ------------------------------------------------------------------------------- faults


def _set_one(value: float) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    def fault(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        out = t.clone()
        index = int(torch.randint(out.numel(), (), generator=gen))
        out.view(-1)[index] = value
        return out

    return fault


TENSOR_FAULTS: dict[str, Callable[[torch.Tensor, torch.Generator], Any]] = {
    "int": lambda t, g: t.to(torch.int64),
    "float": lambda t, g: t.float(),
    "bool": lambda t, g: t.bool(),
    "complex": lambda t, g: t.to(torch.complex64),
    "float64": lambda t, g: t.double(),
    "list": lambda t, g: t.tolist(),
    "extra_dim": lambda t, g: t.unsqueeze(0),
    "drop_dim": lambda t, g: t[0],
    "flat": lambda t, g: t.flatten(),
    "grow_batch": lambda t, g: torch.cat([t, t[:1]], 0),
    "grow_channel": lambda t, g: torch.cat([t, t[:, :1]], 1),
    "grow_last": lambda t, g: torch.cat([t, t[..., :1]], -1),
    "empty_batch": lambda t, g: t[:0],
    "empty_last": lambda t, g: t[..., :0],
    "small_spatial": lambda t, g: t[..., :2, :2],
    "nan": _set_one(math.nan),
    "inf": _set_one(math.inf),
    "-inf": _set_one(-math.inf),
    "above_one": _set_one(1.5),
    "below_zero": _set_one(-0.25),
    "index_too_big": _set_one(10**6),
    "index_negative": _set_one(-1),
}
# read tensor values: raised only while set_validate_args is on
VALUE_FAULTS = {"nan", "inf", "-inf", "above_one", "below_zero"}

SCALAR_FAULTS: dict[str, Any] = {
    "zero": 0,
    "negative": -2,
    "half": 1.5,
    "true": True,
    "text": "3",
    "none": None,
    "one": 1.0,
    "nan_number": math.nan,
    "inf_number": math.inf,
    "unknown": "avg",
    "upper": "MEAN",
    "empty_text": "",
    "module_list": [nn.Linear(1, 1)],
    "linear": nn.Linear(2, 2),
    "function": lambda x: x,
}
SIZE = ("zero", "negative", "half", "true", "text")
RATE = ("zero", "one", "negative", "nan_number", "text", "true")  # decay-like, in (0, 1)
POSITIVE = ("zero", "negative", "nan_number", "inf_number", "text")
REDUCTION = ("unknown", "upper", "empty_text", "none", "half")
CHOICE = ("unknown", "upper", "empty_text", "none")
FLOAT_TENSOR = ("int", "bool", "complex", "list")


@dataclass(frozen=True)
class Case:
    """A valid call built from a generator and a batch size, and its invalid variants."""

    name: str
    build: Callable[[torch.Generator, int], dict[str, Any]]
    call: Callable[..., Any]
    faults: dict[str, tuple[str, ...]]
    batches: tuple[int, ...] = (0, 1, B)
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # other names in messages


def _rand(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=gen)


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen)


def _vae() -> VAE:
    torch.manual_seed(0)
    return VAE(MLPEncoder(FEAT, 3, LATENT), MLPDecoder(LATENT, 3, FEAT))


def _vqvae() -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(ConvEncoder(1, 4, LATENT), VectorQuantizer(K, LATENT), ConvDecoder(LATENT, 4, 1))


def _quantizer(**kwargs: Any) -> VectorQuantizer:
    torch.manual_seed(0)
    return VectorQuantizer(K, FEAT, ema=True, **kwargs)


CASES = [
    # ---------------------------------------------------------------------- functional
    Case(
        "reparameterize",
        lambda g, b: {"mean": _randn(g, b, FEAT), "log_var": _randn(g, b, FEAT)},
        lambda **kw: F.reparameterize(**kw, generator=torch.Generator().manual_seed(0)),
        dict.fromkeys(
            ("mean", "log_var"),
            (*FLOAT_TENSOR, "extra_dim", "drop_dim", "grow_batch", "grow_last", "nan", "inf"),
        ),
    ),
    Case(
        "gaussian_kl",
        lambda g, b: {
            "mean": _randn(g, b, FEAT),
            "log_var": _randn(g, b, FEAT),
            "reduction": "sum",
        },
        F.gaussian_kl,
        {
            "mean": (*FLOAT_TENSOR, "extra_dim", "grow_batch", "grow_last", "nan", "-inf"),
            "log_var": (*FLOAT_TENSOR, "drop_dim", "grow_last", "nan", "inf"),
            "reduction": REDUCTION,
        },
    ),
    Case(
        "gaussian_log_likelihood",
        lambda g, b: {
            "x": _randn(g, b, FEAT),
            "mean": _randn(g, b, FEAT),
            "log_var": _randn(g, b, FEAT),
            "reduction": "mean",
        },
        F.gaussian_log_likelihood,
        {
            "x": (*FLOAT_TENSOR, "extra_dim", "grow_batch", "grow_last", "nan", "inf"),
            "mean": (*FLOAT_TENSOR, "drop_dim", "grow_last", "nan"),
            "log_var": (*FLOAT_TENSOR, "extra_dim", "grow_last", "nan", "inf"),
            "reduction": REDUCTION,
        },
    ),
    Case(
        "bernoulli_log_likelihood",
        lambda g, b: {"x": _rand(g, b, FEAT), "logits": _randn(g, b, FEAT) * 50},
        F.bernoulli_log_likelihood,
        {
            "x": (*FLOAT_TENSOR, "extra_dim", "grow_batch", "above_one", "below_zero", "nan"),
            "logits": (*FLOAT_TENSOR, "grow_last", "nan", "inf", "-inf"),
            "reduction": REDUCTION,
        },
    ),
    Case(
        "nearest_code",
        lambda g, b: {"inputs": _randn(g, b, FEAT), "codebook": _randn(g, K, FEAT)},
        F.nearest_code,
        {
            "inputs": (*FLOAT_TENSOR, "extra_dim", "drop_dim", "grow_last", "nan", "inf"),
            "codebook": (*FLOAT_TENSOR, "extra_dim", "grow_last", "empty_batch", "nan"),
            "chunk_size": SIZE,
        },
    ),
    Case(
        "straight_through",
        lambda g, b: {"inputs": _randn(g, b, FEAT), "quantized": _randn(g, b, FEAT)},
        F.straight_through,
        {
            "inputs": (*FLOAT_TENSOR, "extra_dim", "grow_batch"),
            "quantized": (*FLOAT_TENSOR, "drop_dim", "grow_last"),
        },
    ),
    Case(
        "vq_losses",
        lambda g, b: {
            "inputs": _randn(g, b, FEAT, 2),
            "quantized": _randn(g, b, FEAT, 2),
            "reduction": "none",
        },
        F.vq_losses,
        {
            "inputs": (*FLOAT_TENSOR, "extra_dim", "grow_last", "empty_last", "nan", "inf"),
            "quantized": (*FLOAT_TENSOR, "grow_batch", "grow_channel", "nan"),
            "reduction": REDUCTION,
        },
    ),
    Case(
        "code_counts",
        lambda g, b: {"indices": torch.randint(K, (b, 2), generator=g), "codebook_size": K},
        F.code_counts,
        {"indices": ("float", "complex", "list"), "codebook_size": SIZE},
    ),
    Case(
        "code_sums",
        lambda g, b: {
            "inputs": _randn(g, b, FEAT),
            "indices": torch.randint(K, (b,), generator=g),
            "codebook_size": K,
        },
        code_sums,
        {
            "inputs": (*FLOAT_TENSOR, "extra_dim", "drop_dim", "grow_batch"),
            "indices": ("float", "complex", "list", "extra_dim", "grow_batch"),
            "codebook_size": SIZE,
        },
    ),
    Case(
        "counts_perplexity",
        lambda g, b: {"counts": _rand(g, K + b)},
        F.counts_perplexity,
        {"counts": (*FLOAT_TENSOR, "extra_dim", "empty_batch")},
    ),
    Case(
        "ema_codebook_update",
        lambda g, b: {
            "cluster_size": _rand(g, K),
            "embed_sum": _randn(g, K, FEAT),
            "counts": _rand(g, K) * b,
            "sums": _randn(g, K, FEAT),
            "decay": 0.9,
            "eps": 1e-5,
        },
        F.ema_codebook_update,
        {
            "cluster_size": (*FLOAT_TENSOR, "extra_dim", "grow_batch"),
            "embed_sum": (*FLOAT_TENSOR, "drop_dim", "grow_last", "grow_batch"),
            "counts": (*FLOAT_TENSOR, "grow_batch"),
            "sums": (*FLOAT_TENSOR, "grow_last"),
            "decay": RATE,
            "eps": POSITIVE,
        },
    ),
    # -------------------------------------------------------------------------- losses
    Case(
        "vae_loss",
        lambda g, b: {
            "x": _rand(g, b, FEAT),
            "decoder_output": _randn(g, b, FEAT),
            "mean": _randn(g, b, LATENT),
            "log_var": _randn(g, b, LATENT),
        },
        vae_loss,
        {
            "x": (*FLOAT_TENSOR, "grow_batch", "above_one", "below_zero", "nan"),
            "decoder_output": (*FLOAT_TENSOR, "grow_last", "nan", "inf"),
            "mean": (*FLOAT_TENSOR, "extra_dim", "grow_batch", "grow_last", "nan"),
            "log_var": (*FLOAT_TENSOR, "grow_last", "nan", "inf"),
            "reduction": REDUCTION,
            "likelihood": CHOICE,
            "beta": ("nan_number", "text", "inf_number"),
        },
    ),
    Case(
        "vqvae_loss",
        lambda g, b: {
            "x": _rand(g, b, 1, 4, 4),
            "reconstruction": _rand(g, b, 1, 4, 4),
            "quantizer_loss": torch.rand((), generator=g),
        },
        vqvae_loss,
        {
            "x": (*FLOAT_TENSOR, "extra_dim", "grow_last", "nan"),
            "reconstruction": (*FLOAT_TENSOR, "grow_batch", "inf", "nan"),
            "quantizer_loss": (*FLOAT_TENSOR, "extra_dim", "nan"),
            "reduction": REDUCTION,
        },
    ),
    # ------------------------------------------------------------------------------ nn
    Case(
        "MLPEncoder",
        lambda g, b: {"in_features": FEAT, "hidden_features": (3, 2), "latent_dim": LATENT},
        MLPEncoder,
        {"in_features": SIZE, "hidden_features": ("zero", "negative", "text"), "latent_dim": SIZE},
        batches=(B,),
    ),
    Case(
        "MLPEncoder.forward",
        lambda g, b: {"x": _rand(g, b, FEAT)},
        lambda x: _vae().encoder(x),
        {"x": (*FLOAT_TENSOR, "float64", "grow_last", "empty_last")},
    ),
    Case(
        "MLPDecoder",
        lambda g, b: {
            "latent_dim": LATENT,
            "hidden_features": 3,
            "out_features": FEAT,
            "out_shape": (2, 2),
        },
        MLPDecoder,
        {"latent_dim": SIZE, "hidden_features": SIZE, "out_features": SIZE},
        batches=(B,),
    ),
    Case(
        "MLPDecoder.forward",
        lambda g, b: {"z": _randn(g, b, LATENT)},
        lambda z: _vae().decoder(z),
        {"z": (*FLOAT_TENSOR, "float64", "grow_last", "empty_last")},
    ),
    Case(
        "ResidualBlock",
        lambda g, b: {"channels": C, "kernel_size": 3},
        ResidualBlock,
        {"channels": SIZE, "kernel_size": (*SIZE, "one")},
        batches=(B,),
    ),
    Case(
        "ResidualBlock.forward",
        lambda g, b: {"x": _randn(g, b, C, 3, 3)},
        lambda x: ResidualBlock(C, 3)(x),
        {
            "x": (*FLOAT_TENSOR, "float64", "extra_dim", "drop_dim", "grow_channel"),
        },
    ),
    Case(
        "ConvEncoder",
        lambda g, b: {"in_channels": 1, "hidden_channels": 4, "out_channels": LATENT},
        ConvEncoder,
        {"in_channels": SIZE, "hidden_channels": SIZE, "out_channels": SIZE},
        batches=(B,),
    ),
    Case(
        "ConvEncoder.forward",
        lambda g, b: {"x": _rand(g, b, 1, 8, 8)},
        lambda x: _vqvae().encoder(x),
        {
            "x": (
                *FLOAT_TENSOR,
                *("float64", "extra_dim", "drop_dim", "grow_channel", "small_spatial"),
                "empty_last",
            ),
        },
    ),
    Case(
        "ConvDecoder.forward",
        lambda g, b: {"z": _randn(g, b, LATENT, 2, 2)},
        lambda z: _vqvae().decoder(z),
        {"z": (*FLOAT_TENSOR, "float64", "extra_dim", "grow_channel", "empty_last")},
    ),
    Case(
        "VectorQuantizer",
        lambda g, b: {"codebook_size": K, "embedding_dim": FEAT},
        VectorQuantizer,
        {
            "codebook_size": SIZE,
            "embedding_dim": SIZE,
            "decay": RATE,
            "eps": POSITIVE,
            "commitment_weight": ("negative", "nan_number", "inf_number", "text"),
            "restart_dead_codes": SIZE,
            "chunk_size": SIZE,
        },
        batches=(B,),
    ),
    Case(
        "VectorQuantizer.forward",
        lambda g, b: {"inputs": _randn(g, b, FEAT, 2, 2)},
        lambda inputs: _quantizer(restart_dead_codes=1)(inputs),
        {
            "inputs": (*FLOAT_TENSOR, "extra_dim", "drop_dim", "grow_channel", "nan", "inf"),
        },
    ),
    Case(
        "VectorQuantizer.decode",
        lambda g, b: {"indices": torch.randint(K, (b, 2, 2), generator=g)},
        lambda indices: _quantizer().decode(indices),
        {"indices": ("float", "complex", "list", "index_too_big", "index_negative")},
    ),
    # -------------------------------------------------------------------------- models
    Case(
        "VAE",
        lambda g, b: {
            "encoder": MLPEncoder(FEAT, 3, LATENT),
            "decoder": MLPDecoder(LATENT, 3, FEAT),
            "likelihood": "gaussian",
            "latent_dim": LATENT,
        },
        VAE,
        {
            "encoder": ("text", "function", "none"),
            "decoder": ("text", "function"),
            "likelihood": CHOICE,
            "latent_dim": SIZE,
        },
        batches=(B,),
    ),
    Case(
        "VAE.forward",
        lambda g, b: {"x": _rand(g, b, FEAT)},
        lambda x: _vae()(x),
        {"x": (*FLOAT_TENSOR, "float64", "grow_last")},
    ),
    Case(
        "VAE.sample",
        lambda g, b: {"num_samples": b + 1},
        lambda num_samples: _vae().sample(num_samples),
        {"num_samples": SIZE},
    ),
    Case(
        "VQVAE",
        lambda g, b: {
            "encoder": ConvEncoder(1, 4, LATENT),
            "quantizer": VectorQuantizer(K, LATENT),
            "decoder": ConvDecoder(LATENT, 4, 1),
        },
        VQVAE,
        {
            "encoder": ("text", "function"),
            "quantizer": ("text", "none", "function"),
            "decoder": ("text",),
        },
        batches=(B,),
    ),
    Case(
        "VQVAE.forward",
        lambda g, b: {"x": _rand(g, b, 1, 4, 4)},
        lambda x: _vqvae()(x),
        {"x": (*FLOAT_TENSOR, "float64", "grow_channel", "small_spatial")},
    ),
    Case(
        "mnist_vae",
        lambda g, b: {"latent_dim": 2, "hidden_features": (3,)},
        mnist_vae,
        {"latent_dim": SIZE, "hidden_features": ("zero", "negative", "text")},
        batches=(B,),
    ),
    # ------------------------------------------------------------------------- metrics
    Case(
        "bits_per_dim",
        lambda g, b: {"nats": _rand(g, b), "num_values": FEAT},
        bits_per_dim,
        {"nats": ("int", "list"), "num_values": SIZE},
    ),
    Case(
        "code_usage",
        lambda g, b: {"counts": torch.randint(4, (K + b,), generator=g)},
        code_usage,
        {"counts": ("bool", "complex", "list", "empty_batch")},
    ),
    Case(
        "code_usage (S, K)",
        lambda g, b: {"counts": torch.rand(2, K + b, generator=g)},
        code_usage,
        {"counts": ("bool", "complex", "list", "extra_dim", "empty_batch", "empty_last")},
    ),
    Case(
        "iwae_bound",
        lambda g, b: {"x": _rand(g, b, FEAT), "num_samples": 3, "chunk_size": 2},
        lambda **kw: iwae_bound(_vae(), **kw),
        {
            "x": (*FLOAT_TENSOR, "float64", "grow_last"),
            "num_samples": SIZE,
            "chunk_size": SIZE,
            "reduction": REDUCTION,
        },
    ),
    Case(
        "evaluate_vae",
        lambda g, b: {"x": _rand(g, b, FEAT), "iwae_samples": 2},
        lambda x, **kw: evaluate_vae(_vae(), [x], **kw),
        {
            "x": (*FLOAT_TENSOR, "float64", "grow_last", "drop_dim", "empty_batch"),
            "iwae_samples": ("negative", "half", "true", "text"),
        },
        batches=(1, B),
        names={"x": ("batch", "batches")},
    ),
    Case(
        "evaluate_model",
        lambda g, b: {"x": _rand(g, b, 1, 4, 4), "data_range": 1.0},
        lambda x, **kw: evaluate_model(_vqvae(), [x], **kw),
        {
            "x": (*FLOAT_TENSOR, "float64", "grow_channel", "small_spatial", "empty_batch"),
            "data_range": POSITIVE,
        },
        batches=(1, B),
        names={"x": ("batch", "batches")},
    ),
    # ---------------------------------------------------------------------- data, train
    Case(
        "ImageDataset",
        lambda g, b: {
            "images": torch.randint(256, (b, 1, 3, 3), generator=g, dtype=torch.uint8),
            "labels": torch.randint(10, (b,), generator=g),
        },
        ImageDataset,
        {
            "images": ("float", "complex", "list", "extra_dim", "drop_dim", "grow_batch"),
            "labels": ("float", "complex", "list", "extra_dim", "grow_batch"),
        },
    ),
    Case(
        "TensorBatches",
        lambda g, b: {"data": _rand(g, b, 1, 3, 3), "batch_size": 2},
        lambda data, **kw: list(TensorBatches(data, **kw)),
        # images of any rank >= 2 are (N, *): only a flat tensor has no example shape
        {"data": ("complex", "list", "flat"), "batch_size": SIZE},
        names={"data": ("images",)},
    ),
    Case(
        "image_grid",
        lambda g, b: {"images": _rand(g, b + 1, 1, 3, 3), "nrow": 2, "padding": 1},
        image_grid,
        {
            "images": (*FLOAT_TENSOR, "extra_dim", "grow_channel", "empty_batch"),
            "nrow": SIZE,
            "padding": ("negative", "half", "true", "text"),
        },
    ),
    Case(
        "TrainConfig",
        lambda g, b: {"model": "vqvae", "epochs": 2, "lr": 1e-3, "precision": "bf16"},
        TrainConfig,
        {
            "model": CHOICE,
            "dataset": CHOICE,
            "precision": CHOICE,
            "epochs": SIZE,
            "batch_size": SIZE,
            "codebook_size": SIZE,
            "embedding_dim": SIZE,
            "lr": POSITIVE,
            "grad_clip": POSITIVE,
            "commitment_weight": ("negative", "text", "nan_number"),
        },
        batches=(B,),
    ),
]


FAULTS = [
    pytest.param(case, arg, fault, id=f"{case.name}-{arg}-{fault}")
    for case in CASES
    for arg, faults in case.faults.items()
    for fault in faults
]
VALID = [
    pytest.param(case, batch, id=f"{case.name}-batch{batch}")
    for case in CASES
    for batch in case.batches
]
SEEDS = st.integers(0, 2**16)  # the values inside a case; the fault itself is not drawn


def _inputs(case: Case, seed: int, batch: int) -> tuple[dict[str, Any], torch.Generator]:
    gen = torch.Generator().manual_seed(seed)
    return case.build(gen, batch), gen


def test_the_matrix_declares_every_fault_it_uses() -> None:
    known = set(TENSOR_FAULTS) | set(SCALAR_FAULTS)
    unknown = {(case.name, arg, f) for case in CASES for arg, fs in case.faults.items() for f in fs}
    assert {entry for entry in unknown if entry[2] not in known} == set()
    assert len(FAULTS) == len(unknown) > 600  # no combination declared twice, none dropped


@pytest.mark.parametrize(("case", "batch"), VALID)
@settings(deadline=None, max_examples=2)
@given(seed=SEEDS, validate=st.booleans())
def test_valid_input_is_accepted(case: Case, batch: int, seed: int, validate: bool) -> None:
    kwargs, _ = _inputs(case, seed, batch)
    with validate_args(validate):
        case.call(**kwargs)


@pytest.mark.parametrize(("case", "arg", "fault"), FAULTS)
@settings(deadline=None, max_examples=2)
@given(seed=SEEDS)
def test_bad_input_raises_value_or_type_error_naming_the_argument(
    case: Case, arg: str, fault: str, seed: int
) -> None:
    for validate in (True, False):
        kwargs, gen = _inputs(case, seed, B)
        if fault in TENSOR_FAULTS:
            kwargs[arg] = TENSOR_FAULTS[fault](kwargs[arg], gen)
        else:
            kwargs[arg] = SCALAR_FAULTS[fault]
        with validate_args(validate):
            if fault in VALUE_FAULTS and not validate:
                case.call(**kwargs)  # value checks are exactly what the switch turns off
                continue
            with pytest.raises((ValueError, TypeError)) as caught:
                case.call(**kwargs)
        message = str(caught.value)
        names = (arg, *case.names.get(arg, ()))
        assert any(re.search(rf"\b{re.escape(n)}\b", message) for n in names), (
            f"{case.name}: {fault} in {arg!r} (validate_args={validate}) raised "
            f"{type(caught.value).__name__}({message!r}), which does not name {arg!r}"
        )


CLI_OPTIONS = {  # option -> the config field its error names
    "--epochs": "epochs",
    "--batch-size": "batch_size",
    "--latent-dim": "latent_dim",
    "--hidden-channels": "hidden_channels",
    "--codebook-size": "codebook_size",
    "--embedding-dim": "embedding_dim",
    "--restart-dead-codes": "restart_dead_codes",
    "--train-limit": "train_limit",
    "--test-limit": "test_limit",
    "--lr": "lr",
    "--grad-clip": "grad_clip",
    "--commitment-weight": "commitment_weight",
    "--seed": "seed",
}
FLOAT_OPTIONS = {"--lr", "--grad-clip", "--commitment-weight"}


@settings(deadline=None, max_examples=25)
@given(
    option=st.sampled_from(sorted(CLI_OPTIONS)),
    value=st.integers(-(10**6), 0),
    model=st.sampled_from(["vae", "vqvae"]),
)
def test_cli_bad_numbers_fail_in_one_line_naming_the_option(option, value, model):
    if option == "--commitment-weight" and value == 0:
        value = -1  # 0 is a valid commitment weight
    if option == "--seed" and value == 0:
        value = -1  # and 0 a valid seed
    text = f"{value}.5" if option in FLOAT_OPTIONS and value < 0 else str(value)
    err = io.StringIO()
    owner = option_owners().get(CLI_OPTIONS[option])  # the preset the option applies to
    model = model if owner is None else owner.split()[0].rstrip(",")
    argv = ["train", model, option, text, "--device", "cpu", "--out", "/nonexistent/never"]
    with contextlib.redirect_stderr(err):
        status = main(argv)
    assert status == 2
    message = err.getvalue()
    assert message.count("\n") == 1, message  # one line, no traceback
    assert message.startswith("genlatent train: error: ")
    assert re.search(rf"\b{CLI_OPTIONS[option]}\b", message), message
