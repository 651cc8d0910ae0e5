"""The training configuration: a frozen, self-validating dataclass."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from genlatent._validation import (
    check_choice,
    check_non_negative_float,
    check_optional_positive_int,
    check_positive_float,
    check_positive_int,
)

__all__ = ["TrainConfig"]

PRESETS = ("vae", "vqvae")
"""The reference models a config can name; ``"custom"`` and ``"FILE.py:FUNCTION"`` specs too."""
PRECISIONS = ("fp32", "bf16", "fp16")
DATASETS = ("mnist", "fashion-mnist", "cifar10", "digits", "custom")

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # The tutorial's MNIST VAE: Adam 1e-3, batch 100, 30 epochs.
    "vae": {"lr": 1e-3, "batch_size": 100, "epochs": 30},
    # The tutorial's CIFAR-10 VQ-VAE: Adam 2e-4, batch 128, 50 epochs.
    "vqvae": {"lr": 2e-4, "batch_size": 128, "epochs": 50},
    # A model from user code (a spec or fit()): Adam 1e-3, batch 128, 10 epochs.
    "custom": {"lr": 1e-3, "batch_size": 128, "epochs": 10},
}


PRESET_ONLY: dict[str, str] = {
    "latent_dim": "vae",
    "hidden": "vae",
    "activation": "vae",
    "likelihood": "vae",
    "vamp_components": "vae",
    "hidden_channels": "vqvae",
    "codebook_size": "vqvae",
    "embedding_dim": "vqvae",
    "commitment_weight": "vqvae",
    "ema": "vqvae",
    "restart_dead_codes": "vqvae",
    "quantizer": "vqvae",
    "levels": "vqvae",
    "num_quantizers": "vqvae",
    "distance": "vqvae",
    "gradient": "vqvae",
    "init": "vqvae",
}
"""Options of one preset's architecture: set away from their default for any other model
(the other preset, a ``--model`` spec, a `fit` model), they are refused, not ignored."""

QUANTIZER_CHOICES = {
    "quantizer": ("vq", "fsq", "lfq", "rvq"),
    "distance": ("l2", "cosine"),
    "gradient": ("straight_through", "rotation"),
    "init": ("uniform", "kmeans"),
}

VAE_CHOICES = {
    "activation": ("leaky_relu", "tanh", "relu"),
    "likelihood": ("bernoulli", "continuous_bernoulli", "gaussian"),
}

OBJECTIVE_OPTIONS: dict[str, object] = {
    "beta": 1.0,
    "free_bits": 0.0,
    "warmup_steps": 0,
    "capacity": None,
    "gamma": None,
    "iwae_samples": 1,
}
"""Keyword arguments of ``model.loss`` that shape the training objective, with the values
that leave it alone; set away from them, they are passed to every training step (never to
evaluation, which scores the model's true bound) and the model's ``loss`` must take them."""

RESUMABLE = ("epochs", "data_dir", "download", "device")
"""What may change when a run is resumed: how long, where its data is, where it runs."""


def inapplicable_options(model: str, values: Mapping[str, object]) -> list[str]:
    """The names in ``values`` that `PRESET_ONLY` keeps to a preset other than ``model``.

    Values equal to the field's default count as not set.

    Example:
        >>> inapplicable_options("vae", {"ema": True, "latent_dim": 8, "codebook_size": 512})
        ['ema']
    """
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    return [
        name
        for name, value in values.items()
        if name in PRESET_ONLY and PRESET_ONLY[name] != model and value != defaults[name]
    ]


def is_model_spec(model: str) -> bool:
    """Whether ``model`` names user code: ``"path/file.py:func"`` or ``"pkg.module:func"``."""
    if not isinstance(model, str):
        return False
    module, _, function = model.rpartition(":")
    return bool(module) and function.isidentifier()


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; written to ``config.json`` in the run directory.

    ``lr``, ``batch_size`` and ``epochs`` left as ``None`` take the reference experiment's
    value for ``model`` (see ``MODEL_DEFAULTS``).

    Example:
        >>> TrainConfig(model="vae", dataset="mnist").lr
        0.001
        >>> TrainConfig(model="vqvae", dataset="cifar10").batch_size
        128
    """

    model: str = "vae"
    """``"vae"`` (the MNIST MLP VAE), ``"vqvae"`` (the conv VQ-VAE), a spec of user code
    ``"path/file.py:function"`` or ``"package.module:function"`` that builds the model, or
    ``"custom"``: a model passed to `fit` (its run cannot rebuild it without it)."""
    dataset: str = "digits"
    """``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``, ``"digits"`` (from scikit-learn), or
    ``"custom"``: the datasets passed to `train` (recorded so whenever ``datasets=`` is given)."""
    data_dir: str | None = None
    """Folder of the dataset's official files; ``None``: ``$GENLATENT_DATA`` or the cache."""
    download: bool = False
    """Fetch missing dataset files (verified by SHA-256) into the data folder."""
    epochs: int | None = None
    """Passes over the training set."""
    batch_size: int | None = None
    """Examples per optimizer step."""
    lr: float | None = None
    """Adam learning rate."""
    seed: int = 0
    """Seeds the weights, the batch order and the model's noise."""
    device: str = "auto"
    """``"auto"`` (cuda, then mps, then cpu), or any torch device string."""
    precision: str = "fp32"
    """``"fp32"``, ``"bf16"`` (autocast) or ``"fp16"`` (autocast with a gradient scaler)."""
    grad_clip: float | None = None
    """Clip the gradient norm to this value; ``None`` disables clipping."""
    skip_nonfinite: bool = False
    """Skip (and count) steps whose loss or gradient is not finite instead of stopping."""
    compile: bool = False
    """Compile the model with ``torch.compile``."""
    latent_dim: int = 200
    """VAE latent size."""
    hidden: str | None = None
    """VAE hidden widths, comma-separated (``None``: ``"400,400"``, the tutorial's)."""
    activation: str = "leaky_relu"
    """VAE activation: ``"leaky_relu"`` (0.2, the tutorial's), ``"tanh"`` or ``"relu"``."""
    likelihood: str = "bernoulli"
    """VAE decoder likelihood: ``"bernoulli"``, ``"continuous_bernoulli"`` or ``"gaussian"``."""
    vamp_components: int | None = None
    """VAE prior: ``None`` for N(0, I), else a `VampPrior` with this many pseudo-inputs."""
    beta: float = 1.0
    """Weight of the KL term in training (`vae_loss`); evaluation always uses 1."""
    free_bits: float = 0.0
    """Free bits: nats per latent dimension below which its batch-mean KL is not penalised."""
    warmup_steps: int = 0
    """Linear KL warm-up: the KL weight grows from 0 to ``beta`` over this many steps."""
    capacity: float | None = None
    """Controlled capacity C (nats) of Burgess et al.: train on gamma * abs(KL - C)."""
    gamma: float | None = None
    """The weight gamma of the controlled-capacity term (``None``: 1000, Burgess et al.)."""
    iwae_samples: int = 1
    """Train on the IWAE bound with this many importance samples (1 is the ELBO)."""
    binarize: bool = False
    """Dynamically binarize: a fresh Bernoulli draw of each training image at every step,
    the test set drawn once with seed 0 (Burda et al. 2016)."""
    hidden_channels: int | None = None
    """VQ-VAE width; ``None`` gives 512 for CIFAR-10 and 64 for the small greyscale sets."""
    codebook_size: int = 512
    """VQ-VAE codebook size $K$."""
    embedding_dim: int = 16
    """VQ-VAE code dimension $D$."""
    commitment_weight: float = 0.25
    """VQ-VAE $\\beta$ (eq. 3)."""
    ema: bool = False
    """Update the codebook by exponential moving averages instead of gradients."""
    restart_dead_codes: int | None = None
    """Re-seed codes unused for this many steps; ``None`` disables it."""
    quantizer: str = "vq"
    """VQ-VAE quantizer: ``"vq"`` (`VectorQuantizer`), ``"fsq"``, ``"lfq"`` or ``"rvq"``."""
    levels: str | None = None
    """FSQ levels per channel, comma-separated (``None``: ``"8,5,5,5"``, 1,000 codes)."""
    num_quantizers: int = 4
    """Residual VQ stages."""
    distance: str = "l2"
    """VQ nearest-code distance: ``"l2"`` or ``"cosine"``."""
    gradient: str = "straight_through"
    """VQ gradient estimator: ``"straight_through"`` or ``"rotation"``."""
    init: str = "uniform"
    """VQ codebook initialisation: ``"uniform"`` or ``"kmeans"``."""
    train_limit: int | None = None
    """Use only the first N training examples (quick runs and tests)."""
    test_limit: int | None = None
    """Use only the first N test examples."""

    def __post_init__(self) -> None:
        if not (self.model in (*PRESETS, "custom") or is_model_spec(self.model)):
            raise ValueError(
                f"model must be one of {PRESETS}, 'custom' or a spec 'FILE.py:FUNCTION' / "
                f"'package.module:FUNCTION', got {self.model!r}"
            )
        wrong = inapplicable_options(self.model, dataclasses.asdict(self))
        if wrong:
            owners = ", ".join(f"{name} ({PRESET_ONLY[name]} only)" for name in wrong)
            raise ValueError(f"options that do not apply to model {self.model!r}: {owners}")
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("precision", self.precision, PRECISIONS)
        for name, allowed in (QUANTIZER_CHOICES | VAE_CHOICES).items():
            check_choice(name, getattr(self, name), allowed)
        if self.hidden is not None and not all(
            part.strip().isdigit() and int(part) >= 1 for part in str(self.hidden).split(",")
        ):
            raise ValueError(f"hidden must be ints >= 1 separated by commas, got {self.hidden!r}")
        self._check_objective()
        check_positive_int("num_quantizers", self.num_quantizers)
        if self.levels is not None and not all(
            part.strip().isdigit() and int(part) >= 2 for part in str(self.levels).split(",")
        ):
            raise ValueError(f"levels must be ints >= 2 separated by commas, got {self.levels!r}")
        for name, value in MODEL_DEFAULTS[self.defaults_key].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("epochs", "batch_size", "latent_dim", "codebook_size", "embedding_dim"):
            check_positive_int(name, getattr(self, name))
        for name in (
            "hidden_channels", "restart_dead_codes", "train_limit", "test_limit",
            "vamp_components",
        ):  # fmt: skip
            check_optional_positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        check_positive_float("lr", self.lr)
        if self.grad_clip is not None:
            check_positive_float("grad_clip", self.grad_clip)
        check_non_negative_float("commitment_weight", self.commitment_weight)
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a device string such as 'cpu', got {self.device!r}")

    def _check_objective(self) -> None:
        check_non_negative_float("beta", self.beta)
        check_non_negative_float("free_bits", self.free_bits)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int):
            raise TypeError(f"warmup_steps must be an int, got {type(self.warmup_steps).__name__}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.gamma is not None and self.capacity is None:
            raise ValueError(
                f"gamma={self.gamma!r} weights the capacity term gamma * |KL - capacity|: "
                "give capacity too"
            )
        if self.capacity is not None:
            check_non_negative_float("capacity", self.capacity)
        if self.gamma is not None:
            check_positive_float("gamma", self.gamma)
        check_positive_int("iwae_samples", self.iwae_samples)
        elbo_only = [name for name, value in self.loss_options().items() if name != "iwae_samples"]
        if self.iwae_samples > 1 and elbo_only:
            raise ValueError(
                f"the ELBO option(s) {', '.join(elbo_only)} cannot be combined with "
                f"iwae_samples={self.iwae_samples} (the IWAE bound has no KL term to weight)"
            )

    def loss_options(self) -> dict[str, object]:
        """The `OBJECTIVE_OPTIONS` set away from their neutral value, for ``model.loss``.

        Example:
            >>> TrainConfig(beta=4.0, warmup_steps=100).loss_options()
            {'beta': 4.0, 'warmup_steps': 100}
        """
        return {
            name: getattr(self, name)
            for name, neutral in OBJECTIVE_OPTIONS.items()
            if getattr(self, name) != neutral
        }

    @property
    def defaults_key(self) -> str:
        """``"vae"`` or ``"vqvae"`` for a preset, else ``"custom"`` (see ``MODEL_DEFAULTS``)."""
        return self.model if self.model in PRESETS else "custom"

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready primitives."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from `to_dict` output; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def merge_on_resume(
    stored: TrainConfig,
    given: Mapping[str, Any],
    *,
    flag: Callable[[str], str] = str,
) -> tuple[TrainConfig, list[str]]:
    """Apply the values given again on resume to the stored config.

    Values equal to the stored ones are fine; the `RESUMABLE` ones may change (each change
    is reported); any other change is refused, each conflict named.

    Args:
        stored: the run's config.
        given: field names and the values given now.
        flag: how to name a field in messages (e.g. ``--batch-size`` on the command line).

    Returns:
        The config to go on with, and one line per change.

    Raises:
        ValueError: naming every given value that differs from the stored one and cannot
            change on resume.

    Example:
        >>> stored = TrainConfig(model="vae", epochs=5)
        >>> config, changes = merge_on_resume(stored, {"epochs": 7, "lr": 1e-3})
        >>> config.epochs, changes
        (7, ['epochs: 5 -> 7'])
    """
    changes: dict[str, Any] = {}
    conflicts = []
    for name, value in given.items():
        old = getattr(stored, name)
        if value == old:
            continue
        if name in RESUMABLE:
            changes[name] = value
        else:
            conflicts.append(f"{flag(name)} {value!r} (the run has {old!r})")
    if conflicts:
        raise ValueError(
            "cannot change on resume: "
            + "; ".join(conflicts)
            + ". Resume with the run's values, or start a new run"
        )
    notes = [
        f"{flag(name)}: {getattr(stored, name)!r} -> {value!r}" for name, value in changes.items()
    ]
    return stored.replace(**changes), notes
