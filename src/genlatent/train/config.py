"""The training configuration: a frozen, self-validating dataclass."""

from __future__ import annotations

import dataclasses
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


def is_model_spec(model: str) -> bool:
    """Whether ``model`` names user code: ``"path/file.py:func"`` or ``"pkg.module:func"``."""
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
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("precision", self.precision, PRECISIONS)
        for name, value in MODEL_DEFAULTS[self.defaults_key].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("epochs", "batch_size", "latent_dim", "codebook_size", "embedding_dim"):
            check_positive_int(name, getattr(self, name))
        for name in ("hidden_channels", "restart_dead_codes", "train_limit", "test_limit"):
            check_optional_positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        check_positive_float("lr", self.lr)
        if self.grad_clip is not None:
            check_positive_float("grad_clip", self.grad_clip)
        check_non_negative_float("commitment_weight", self.commitment_weight)
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a device string such as 'cpu', got {self.device!r}")

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
