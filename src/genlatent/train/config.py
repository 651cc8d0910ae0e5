"""The training configuration: the trainer's settings, the objective's options and the
model's architecture, each a table defined once and read by the command line."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from genlatent._options import Option, dataclass_options, parameter_options
from genlatent._validation import (
    check_choice,
    check_non_negative_float,
    check_optional_positive_int,
    check_positive_float,
    check_positive_int,
)
from genlatent.data.augment import Augment
from genlatent.models.presets import PRESETS as PRESET_BUILDERS
from genlatent.models.quantizers import QUANTIZERS, quantizer_options
from genlatent.train.spec import absolute_spec

__all__ = ["ObjectiveOptions", "TrainConfig", "TrainerSettings"]

PRESETS = tuple(PRESET_BUILDERS)
"""The reference models a config can name; ``"custom"`` and ``"FILE.py:FUNCTION"`` specs too."""
Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
LRScheduleKind = Literal["constant", "cosine"]
DATASETS = ("mnist", "fashion-mnist", "cifar10", "digits", "folder", "custom")

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # The tutorial's MNIST VAE: Adam 1e-3, batch 100, 30 epochs.
    "vae": {"lr": 1e-3, "batch_size": 100, "epochs": 30},
    # The tutorial's CIFAR-10 VQ-VAE: Adam 2e-4, batch 128, 50 epochs.
    "vqvae": {"lr": 2e-4, "batch_size": 128, "epochs": 50},
    # An image tokenizer: VQGAN's Adam 4.5e-6 per image of a batch of 12 is about 5e-5;
    # the VQ-VAE's 2e-4 suits the small presets.
    "tokenizer": {"lr": 2e-4, "batch_size": 128, "epochs": 20},
    # A model from user code (a spec or fit()): Adam 1e-3, batch 128, 10 epochs.
    "custom": {"lr": 1e-3, "batch_size": 128, "epochs": 10},
}

RESUMABLE = ("epochs", "max_steps", "data_dir", "download", "device", "workers", "log")
"""What may change when a run is resumed: how long, where its data is, where it runs, how
many processes read it and where else its metrics go."""

TRACKERS = ("tensorboard", "wandb")
"""The built-in trackers ``log`` can name (see `genlatent.train.trackers`); each writes in
the run directory's folder of its name."""


def is_model_spec(model: object) -> bool:
    """Whether ``model`` names user code: ``"path/file.py:func"`` or ``"pkg.module:func"``."""
    if not isinstance(model, str):
        return False
    module, _, function = model.rpartition(":")
    return bool(module) and function.isidentifier()


@dataclass(frozen=True)
class TrainerSettings:
    """The trainer's settings: data, schedule, optimiser, device and precision of a run.

    ``lr``, ``batch_size`` and ``epochs`` left as ``None`` take the reference experiment's
    value for the model (see `TrainConfig`).
    """

    dataset: str = field(default="digits", metadata={"choices": DATASETS[:-1]})
    """The dataset: mnist, fashion-mnist, cifar10, digits (bundled with scikit-learn, no
    download) or folder (your image files under --data-dir, read as they are needed);
    custom marks data passed to fit() or train(datasets=...)."""
    data_dir: str | None = None
    """Folder of the dataset's official files (default: $GENLATENT_DATA or the cache); for
    --dataset folder, the folder of images (its train/ and test/ sub-folders where both
    exist, else every image, split by --test-fraction)."""
    image_size: int | None = None
    """--dataset folder: the side of the square images (shorter side resized, centre crop)."""
    test_fraction: float | None = None
    """--dataset folder without train/ and test/: the share of images held out as the test
    set, drawn with --seed (default 0.1)."""
    augment: str | None = None
    """--dataset folder: train-time augmentation of the training images, flip and/or crop
    (e.g. flip,crop): a mirror image half the time, a random window of the image resized
    to 1.125x the size; drawn from --seed, the epoch and the image, so resumes repeat them."""
    download: bool = False
    """Fetch missing dataset files (verified by SHA-256) into the data folder."""
    epochs: int | None = None
    """Passes over the training set (with --max-steps, the run ends at whichever bound
    comes first; left out with --max-steps, only the steps bound the run)."""
    max_steps: int | None = None
    """Optimizer steps to train for, counted over epochs (default: bounded by --epochs)."""
    eval_every: int | None = None
    """Evaluate (one metrics line, checkpoints) every N steps and at the run's end
    (default: at the end of each epoch)."""
    save_every: int | None = None
    """Also write checkpoints/last.pt every N steps, between evaluations."""
    log_every: int = 50
    """Write one line of steps.jsonl (step, epoch, lr, the step's loss terms) every N steps."""
    lr_schedule: LRScheduleKind = "constant"
    """The learning rate's schedule after the warm-up: constant, or cosine (decays to 0 at
    the run's last step)."""
    lr_warmup_steps: int = 0
    """Steps of linear learning-rate warm-up from 0 (not the KL warm-up, --warmup-steps)."""
    grad_accumulation: int = 1
    """Batches whose gradients make one optimizer step (each weighted by its share of the
    examples: k batches of --batch-size train as one batch k times as large)."""
    ema_decay: float | None = None
    """Keep an exponential moving average of the weights with this decay (e.g. 0.999):
    evaluation, pictures, best.pt and the loaded run use it."""
    batch_size: int | None = None
    """Examples per batch (an optimizer step takes --grad-accumulation batches)."""
    lr: float | None = None
    """Adam learning rate."""
    seed: int = 0
    """Seeds the weights, the batch order and the model's noise."""
    device: str = "auto"
    """Where to train: auto (cuda, then mps, then cpu), or any torch device string."""
    precision: Precision = "fp32"
    """Arithmetic: fp32, bf16 (autocast) or fp16 (autocast with a gradient scaler)."""
    grad_clip: float | None = None
    """Clip the gradient norm to this value (default: no clipping)."""
    skip_nonfinite: bool = False
    """Skip (and count) steps whose loss or gradient is not finite instead of stopping."""
    compile: bool = False
    """Compile the model with torch.compile."""
    binarize: bool = False
    """Dynamically binarize: a fresh Bernoulli draw of each training image at every step,
    the test set drawn once with seed 0 (Burda et al. 2016)."""
    workers: int = 0
    """Worker processes that read streamed data (a dataset read item by item; 0: the
    training process); data held in memory needs none."""
    train_limit: int | None = None
    """Use only the first N training examples (quick runs and tests)."""
    test_limit: int | None = None
    """Use only the first N test examples."""
    log: str | None = None
    """Also send the metrics, pictures and config to tensorboard, wandb or both
    (tensorboard,wandb), each an optional extra; metrics.jsonl is written all the same."""

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        tracker_names(self.log)
        check_choice("precision", self.precision, PRECISIONS)
        for name in ("epochs", "batch_size", "max_steps", "eval_every", "save_every"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        check_positive_int("log_every", self.log_every)
        check_positive_int("grad_accumulation", self.grad_accumulation)
        if self.ema_decay is not None and (
            isinstance(self.ema_decay, bool) or not isinstance(self.ema_decay, (int, float))
            or not 0 < self.ema_decay < 1
        ):  # fmt: skip
            raise ValueError(f"ema_decay must lie in (0, 1), got {self.ema_decay!r}")
        check_choice("lr_schedule", self.lr_schedule, typing.get_args(LRScheduleKind))
        if (
            isinstance(self.lr_warmup_steps, bool) or not isinstance(self.lr_warmup_steps, int)
            or self.lr_warmup_steps < 0
        ):  # fmt: skip
            raise ValueError(f"lr_warmup_steps must be an int >= 0, got {self.lr_warmup_steps!r}")
        for name in ("train_limit", "test_limit"):
            check_optional_positive_int(name, getattr(self, name))
        self._check_folder()
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers must be an int >= 0, got {self.workers!r}")
        if self.lr is not None:
            check_positive_float("lr", self.lr)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if self.grad_clip is not None:
            check_positive_float("grad_clip", self.grad_clip)
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a device string such as 'cpu', got {self.device!r}")

    def _check_folder(self) -> None:
        """--image-size and --test-fraction apply to --dataset folder only, which needs
        --data-dir and --image-size."""
        if self.dataset != "folder":
            for name in ("image_size", "test_fraction", "augment"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name} applies only to dataset='folder', got dataset={self.dataset!r}"
                    )
            return
        for name in ("data_dir", "image_size"):
            if getattr(self, name) is None:
                raise ValueError(f"dataset='folder' needs {name} (the folder and the size)")
        check_positive_int("image_size", self.image_size)
        fraction = self.test_fraction
        if fraction is not None and (
            isinstance(fraction, bool) or not isinstance(fraction, (int, float))
            or not 0 < fraction < 1
        ):  # fmt: skip
            raise ValueError(f"test_fraction must lie in (0, 1), got {fraction!r}")
        if self.augment is not None:
            Augment.from_names(self.augment)  # raises on a name it does not know


def tracker_names(log: str | None) -> tuple[str, ...]:
    """The built-in trackers that a ``log`` setting names, in order.

    Raises:
        ValueError: on a name not in `TRACKERS`, a repeated or empty one.

    Example:
        >>> tracker_names("tensorboard,wandb"), tracker_names(None)
        (('tensorboard', 'wandb'), ())
    """
    if log is None:
        return ()
    names = tuple(part.strip() for part in str(log).split(","))
    if not isinstance(log, str) or not all(name in TRACKERS for name in names):
        raise ValueError(
            f"log must name trackers among {TRACKERS}, separated by commas, got {log!r}"
        )
    if len(set(names)) < len(names):
        raise ValueError(f"log must name each tracker once, got {log!r}")
    return names


@dataclass(frozen=True)
class ObjectiveOptions:
    """Options of the training objective, passed to ``model.loss`` on training steps only.

    Set away from their neutral defaults they go to every training step (never to
    evaluation, which scores the model's true bound), and the model's ``loss`` must take
    them (see `vae_loss` and `iwae_loss`).
    """

    beta: float = 1.0
    """Weight of the KL term in training (evaluation always uses 1)."""
    free_bits: float = 0.0
    """Free bits: nats per latent dimension below which its batch-mean KL is not penalised."""
    warmup_steps: int = 0
    """Linear KL warm-up: the KL weight grows from 0 to beta over this many steps."""
    capacity: float | None = None
    """Controlled capacity C in nats (Burgess et al. 2018): train on gamma * |KL - C|."""
    gamma: float | None = None
    """Weight gamma of the controlled-capacity term (default 1000, Burgess et al.; needs
    capacity)."""
    iwae_samples: int = 1
    """Train on the IWAE bound with this many importance samples (1 is the ELBO)."""

    def __post_init__(self) -> None:
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
        elbo_only = [name for name in self.active() if name != "iwae_samples"]
        if self.iwae_samples > 1 and elbo_only:
            raise ValueError(
                f"the ELBO option(s) {', '.join(elbo_only)} cannot be combined with "
                f"iwae_samples={self.iwae_samples} (the IWAE bound has no KL term to weight)"
            )

    def active(self) -> dict[str, object]:
        """The options set away from their neutral default, for ``model.loss``.

        Example:
            >>> ObjectiveOptions(beta=4.0, warmup_steps=100).active()
            {'beta': 4.0, 'warmup_steps': 100}
        """
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }


OBJECTIVE_OPTIONS: dict[str, object] = {
    f.name: f.default for f in dataclasses.fields(ObjectiveOptions)
}
"""The objective's options with the values that leave the objective alone."""


def architecture_options(model: str, quantizer: object = None) -> dict[str, Option]:
    """The architecture options ``model`` takes: its preset builder's (and quantizer's).

    A ``vqvae`` takes its own options and those of the quantizer ``quantizer`` names (a
    quantizer from user code, ``FILE.py:FUNCTION``, is offered ``codebook_size``); a
    ``--model`` spec's arguments are checked against its function when it is built; a
    model passed to `fit` takes none.

    Example:
        >>> sorted(architecture_options("vqvae", "fsq"))
        ['embedding_dim', 'hidden_channels', 'levels', 'quantizer']
    """
    if model not in PRESET_BUILDERS:
        return {}
    options = parameter_options(PRESET_BUILDERS[model], skip=("image_shape",))
    if takes_quantizer(model):
        chosen = "vq" if quantizer is None else quantizer
        if isinstance(chosen, str) and chosen in QUANTIZERS:
            options |= quantizer_options(chosen)
        elif is_model_spec(chosen):
            options["codebook_size"] = Option(
                "codebook_size", int, inspect.Parameter.empty,
                "number of codes, passed to your quantizer builder if it declares it",
            )  # fmt: skip
        else:
            raise ValueError(
                f"quantizer must be one of {tuple(QUANTIZERS)} or a spec FILE.py:FUNCTION, "
                f"got {chosen!r}"
            )
    return options


def takes_quantizer(model: object) -> bool:
    """Whether the preset ``model`` is built around a quantizer (its builder takes one).

    Example:
        >>> takes_quantizer("vqvae"), takes_quantizer("vae")
        (True, False)
    """
    builder = PRESET_BUILDERS.get(model) if isinstance(model, str) else None
    return builder is not None and "quantizer" in parameter_options(builder)


def option_owners() -> dict[str, str]:
    """What takes each architecture option, e.g. ``{"levels": "vqvae with --quantizer fsq"}``.

    Read from the preset builders and the quantizer registry, so it cannot drift.

    Example:
        >>> option_owners()["latent_dim"], option_owners()["ema"]
        ('vae', 'vqvae, tokenizer with --quantizer vq, rvq')
    """
    models: dict[str, list[str]] = {}
    quantizers: dict[str, list[str]] = {}
    for model in PRESET_BUILDERS:
        for name in parameter_options(PRESET_BUILDERS[model], skip=("image_shape",)):
            models.setdefault(name, []).append(model)
    for quantizer in QUANTIZERS:
        for name in quantizer_options(quantizer):
            quantizers.setdefault(name, []).append(quantizer)
    owners = {name: ", ".join(found) for name, found in models.items()}
    quantized = ", ".join(m for m in PRESET_BUILDERS if takes_quantizer(m))
    for name, found in quantizers.items():
        if name not in owners:
            owners[name] = f"{quantized} with --quantizer {', '.join(found)}"
    return owners


def inapplicable_options(
    model: str, values: Mapping[str, object], quantizer: object = None
) -> list[str]:
    """The architecture options in ``values`` that ``model`` (with ``quantizer``) does not take.

    Names of the trainer's settings and the objective's options always apply.

    Example:
        >>> inapplicable_options("vae", {"ema": True, "latent_dim": 8, "epochs": 3})
        ['ema']
        >>> inapplicable_options("vqvae", {"codebook_size": 64}, quantizer="fsq")
        ['codebook_size']
    """
    return _not_taken(values, architecture_options(model, quantizer))


def _not_taken(values: Iterable[str], options: Mapping[str, Option]) -> list[str]:
    """The names in ``values`` that are neither general settings nor in ``options``."""
    general = set(TRAINER_FIELDS) | set(OBJECTIVE_OPTIONS) | {"model"}
    return [name for name in values if name not in general and name not in options]


def describe_inapplicable(
    model: str, names: list[str], quantizer: object = None, flag: Callable[[str], str] = str
) -> str:
    """One line naming each option that does not apply and what it applies to."""
    owners = option_owners()
    parts = [f"{flag(name)} ({owners.get(name, 'no model')} only)" for name in names]
    target = f"model {model!r}" + (
        f" with quantizer {quantizer!r}" if takes_quantizer(model) and quantizer is not None else ""
    )
    return f"options that do not apply to {target}: {', '.join(parts)}"


TRAINER_FIELDS = tuple(f.name for f in dataclasses.fields(TrainerSettings))


def train_options() -> dict[str, tuple[Option, str | None]]:
    """Every option of a training run, with what it applies to (``None``: every model).

    The trainer's settings and the objective's options come from their dataclasses, the
    architecture options from the preset builders and the registered quantizers: the one
    source of the command line's flags, their help and their checks.

    Example:
        >>> options = train_options()
        >>> options["epochs"][1], options["levels"][1]
        (None, 'vqvae, tokenizer with --quantizer fsq')
    """
    options: dict[str, tuple[Option, str | None]] = {}
    for name, option in dataclass_options(TrainerSettings).items():
        options[name] = (option, None)
    for name, option in dataclass_options(ObjectiveOptions).items():
        options[name] = (option, "models whose loss takes it")
    owners = option_owners()
    for builder in PRESET_BUILDERS.values():
        for name, option in parameter_options(builder, skip=("image_shape",)).items():
            options.setdefault(name, (option, owners[name]))
    for quantizer in QUANTIZERS:
        for name, option in quantizer_options(quantizer).items():
            options.setdefault(name, (option, owners[name]))
    return options


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _tupled(value: Any) -> Any:
    """Lists (as JSON holds them) as tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(_tupled(v) for v in value)
    return value


@dataclass(frozen=True, init=False)
class TrainConfig:
    """Everything that defines a training run; written to ``config.json`` in the run directory.

    Three tables, each defined once: the trainer's settings (`TrainerSettings`), the
    objective's options (`ObjectiveOptions`) and the model's architecture (the keyword
    arguments of the preset builder, `vae_preset` or `vqvae_preset` with its quantizer's
    options, or of a ``--model`` spec's function). Keyword arguments may be given flat
    (``TrainConfig(model="vae", epochs=3, latent_dim=8)``): each goes to the table that
    defines it, and an architecture option the model does not take is refused. Fields of
    the trainer and objective read flat too (``config.epochs``). ``lr``, ``batch_size`` and
    ``epochs`` left as ``None`` take the reference experiment's value for ``model`` (see
    ``MODEL_DEFAULTS``).

    Example:
        >>> TrainConfig(model="vae", dataset="mnist").lr
        0.001
        >>> TrainConfig(model="vqvae", dataset="cifar10", quantizer="fsq").architecture
        {'quantizer': 'fsq'}
    """

    model: str
    """``"vae"``, ``"vqvae"``, a spec of user code ``"path/file.py:function"`` or
    ``"package.module:function"`` that builds the model, or ``"custom"``: a model passed
    to `fit` (its run rebuilds it from the recorded model configuration, or with
    ``model=``)."""
    trainer: TrainerSettings
    """The trainer's settings."""
    objective: ObjectiveOptions
    """The training objective's options."""
    architecture: dict[str, Any]
    """The model builder's arguments as given (a preset's options, a spec's ``--model-arg``
    values); what was not given takes the builder's default."""

    def __init__(
        self,
        model: str = "vae",
        *,
        trainer: TrainerSettings | None = None,
        objective: ObjectiveOptions | None = None,
        architecture: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> None:
        if not (model in (*PRESETS, "custom") or is_model_spec(model)):
            raise ValueError(
                f"model must be one of {PRESETS}, 'custom' or a spec 'FILE.py:FUNCTION' / "
                f"'package.module:FUNCTION', got {model!r}"
            )
        flat_trainer = {k: v for k, v in values.items() if k in TRAINER_FIELDS}
        flat_objective = {k: v for k, v in values.items() if k in OBJECTIVE_OPTIONS}
        arch = {k: _tupled(v) for k, v in (architecture or {}).items()}
        arch |= {k: _tupled(v) for k, v in values.items() if k not in TRAINER_FIELDS}
        arch = {k: v for k, v in arch.items() if k not in OBJECTIVE_OPTIONS}
        trainer = dataclasses.replace(trainer or TrainerSettings(), **flat_trainer)
        key = model if model in PRESETS else "custom"
        filled = {k: v for k, v in MODEL_DEFAULTS[key].items() if getattr(trainer, k) is None}
        if trainer.max_steps is not None:  # the steps bound the run; epochs only if given
            filled.pop("epochs", None)
        objective = dataclasses.replace(objective or ObjectiveOptions(), **flat_objective)
        if not is_model_spec(model) or architecture is None:
            options = architecture_options(model, arch.get("quantizer"))
            wrong = _not_taken(arch, options)
            if wrong:
                raise ValueError(describe_inapplicable(model, wrong, arch.get("quantizer")))
            _check_values(arch, options)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "trainer", dataclasses.replace(trainer, **filled))
        object.__setattr__(self, "objective", objective)
        object.__setattr__(self, "architecture", arch)

    def __getattr__(self, name: str) -> Any:
        if name in TRAINER_FIELDS:
            return getattr(self.trainer, name)
        if name in OBJECTIVE_OPTIONS:
            return getattr(self.objective, name)
        if not name.startswith("_") and name in option_owners():
            return self._architecture_value(name)
        raise AttributeError(f"TrainConfig has no field {name!r}")

    def _architecture_value(self, name: str) -> Any:
        """genlatent 0.1's flat read of an architecture option (deprecated): the value given,
        else the builder's default for this model, else ``None``."""
        warnings.warn(
            f"TrainConfig.{name} is deprecated: read config.architecture.get({name!r}) (the "
            "options given) or the run's recorded model",
            DeprecationWarning,
            stacklevel=3,
        )
        if name in self.architecture:
            return self.architecture[name]
        option = architecture_options(self.model, self.architecture.get("quantizer")).get(name)
        if option is None or option.default is inspect.Parameter.empty:
            return None
        return option.default

    def value_of(self, name: str) -> Any:
        """The value of any option by name: a field, or an architecture option (None if not
        given)."""
        if name == "model":
            return self.model
        if name in TRAINER_FIELDS or name in OBJECTIVE_OPTIONS:
            return getattr(self, name)
        return self.architecture.get(name)

    def flat(self) -> dict[str, Any]:
        """Every option by its flat name: model, the trainer's, the objective's, the given
        architecture's (what `replace` and resume compare)."""
        return (
            {"model": self.model}
            | dataclasses.asdict(self.trainer)
            | dataclasses.asdict(self.objective)
            | dict(self.architecture)
        )

    def specs(self) -> list[str]:
        """The specs of user code this config names: the model's, the quantizer's."""
        found = [self.model, self.architecture.get("quantizer")]
        return [spec for spec in found if isinstance(spec, str) and is_model_spec(spec)]

    def with_absolute_specs(self) -> TrainConfig:
        """This config with every file spec's path made absolute (see `absolute_spec`), and
        the folder of a ``dataset="folder"`` run (eval and plots read it from anywhere)."""
        model = absolute_spec(self.model) if is_model_spec(self.model) else self.model
        quantizer = self.architecture.get("quantizer")
        arch = dict(self.architecture)
        if isinstance(quantizer, str) and is_model_spec(quantizer):
            arch["quantizer"] = absolute_spec(quantizer)
        trainer = self.trainer
        if trainer.dataset == "folder" and trainer.data_dir is not None:
            folder = str(Path(trainer.data_dir).expanduser().resolve())
            trainer = dataclasses.replace(trainer, data_dir=folder)
        return TrainConfig(model, trainer=trainer, objective=self.objective, architecture=arch)

    def loss_options(self) -> dict[str, object]:
        """The objective's options set away from their neutral value, for ``model.loss``.

        Example:
            >>> TrainConfig(beta=4.0, warmup_steps=100).loss_options()
            {'beta': 4.0, 'warmup_steps': 100}
        """
        return self.objective.active()

    @property
    def defaults_key(self) -> str:
        """``"vae"`` or ``"vqvae"`` for a preset, else ``"custom"`` (see ``MODEL_DEFAULTS``)."""
        return self.model if self.model in PRESETS else "custom"

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready primitives: ``model`` and one object per table."""
        return {
            "model": self.model,
            "trainer": dataclasses.asdict(self.trainer),
            "objective": dataclasses.asdict(self.objective),
            "architecture": {k: _jsonable(v) for k, v in self.architecture.items()},
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Rebuild a config from `to_dict` output, or a run's ``config.json`` (its ``"built"``
        record of the model is left to `RunDirectory.read_built`), or the flat records of
        genlatent 0.1.

        Raises:
            ValueError: on unknown keys, naming them and the known ones.
        """
        values = {k: v for k, v in values.items() if k != "built"}  # the model's own record
        if "trainer" not in values:
            return cls(**_from_flat_record(values))
        unknown = sorted(set(values) - {"model", "trainer", "objective", "architecture"})
        if unknown:
            raise ValueError(
                f"unknown config keys {unknown}; known keys are "
                "['architecture', 'model', 'objective', 'trainer']"
            )
        return cls(
            values.get("model", "vae"),
            trainer=_table(TrainerSettings, values.get("trainer", {}), "trainer"),
            objective=_table(ObjectiveOptions, values.get("objective", {}), "objective"),
            architecture=values.get("architecture", {}),
        )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some options changed, each by its flat name (validated again)."""
        model = changes.pop("model", self.model)
        arch = dict(self.architecture) | {
            k: v
            for k, v in changes.items()
            if k not in TRAINER_FIELDS and k not in OBJECTIVE_OPTIONS
        }
        trainer = {k: v for k, v in changes.items() if k in TRAINER_FIELDS}
        objective = {k: v for k, v in changes.items() if k in OBJECTIVE_OPTIONS}
        return TrainConfig(
            model,
            trainer=dataclasses.replace(self.trainer, **trainer),
            objective=dataclasses.replace(self.objective, **objective),
            architecture=arch,
        )


def _table(cls: Any, values: Mapping[str, Any], name: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {name} keys {unknown}; known keys are {sorted(known)}")
    return cls(**values)


def _check_values(arch: dict[str, Any], options: Mapping[str, Option]) -> None:
    """Choices and simple types of the architecture options (``options``: those the model
    takes), checked before any build; a tuple written as text (``"8,5,5"``) is read in
    place."""
    for name, value in arch.items():
        option = options[name]
        if option.kind is tuple:
            if isinstance(value, str):  # "8,5,5", as the command line writes it
                with contextlib.suppress(ValueError):
                    value = arch[name] = tuple(int(part) for part in value.split(","))
            if not isinstance(value, tuple) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
            ):
                raise ValueError(f"{name} takes ints >= 1 separated by commas, got {value!r}")
        elif option.choices is not None:
            check_choice(name, value, option.choices)
        elif option.kind is int and option.optional:
            check_optional_positive_int(name, value)
        elif option.kind is int:
            check_positive_int(name, value)
        elif option.kind is float and not (value is None and option.optional):
            check_non_negative_float(name, value)


_LEGACY_COMMA = ("hidden", "levels")


def _from_flat_record(values: Mapping[str, Any]) -> dict[str, Any]:
    """A flat record (genlatent 0.1's ``config.json``) as flat keyword arguments.

    Such a record holds every option with its default; the architecture options that the
    model did not take, and those left at ``None``, are dropped (they were not used).
    """
    owners = option_owners()  # read from the builders' signatures: once, not per key
    known = set(TRAINER_FIELDS) | set(OBJECTIVE_OPTIONS) | {"model"} | set(owners)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
    model = values.get("model", "vae")
    flat = {k: v for k, v in values.items() if k in known and k not in owners}
    arch = {k: v for k, v in values.items() if k in owners and v is not None}
    for name in _LEGACY_COMMA:
        if isinstance(arch.get(name), str):
            arch[name] = tuple(int(part) for part in arch[name].split(","))
    if takes_quantizer(model) and is_model_spec(arch.get("quantizer")):
        arch.pop("codebook_size", None)
    applicable = architecture_options(model, arch.get("quantizer"))
    return flat | {k: v for k, v in arch.items() if k in applicable}


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
        old = stored.value_of(name)
        if _tupled(value) == old:
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
        f"{flag(name)}: {stored.value_of(name)!r} -> {value!r}" for name, value in changes.items()
    ]
    return stored.replace(**changes), notes
