"""Read a run back: `load_run` for user code and notebooks, evaluation and sampling for the CLI."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlatent._atomic import previous_path
from genlatent._checkpoint import load_first_readable
from genlatent._device import module_device, seeded_generator
from genlatent._protocols import declared_keywords
from genlatent._sums import ExampleSums
from genlatent.data.batching import TensorBatches
from genlatent.data.dataset import ImageDataset
from genlatent.pretrained import module_from_config
from genlatent.train.build import as_scored, build_model, load_test_set, resolve_device
from genlatent.train.config import TrainConfig
from genlatent.train.progress import progress
from genlatent.train.rundir import RunDirectory, RunDirectoryError

__all__ = ["LoadedRun", "evaluate_run", "load_run"]


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """A trained run: its model (in eval mode), config, metrics and where they came from."""

    model: nn.Module
    """The trained module, in eval mode, on the chosen device."""
    config: TrainConfig
    """The run's settings (``config.json``)."""
    metrics: list[dict[str, Any]]
    """One record per completed epoch (``metrics.jsonl``)."""
    run_dir: Path
    """The run directory."""
    checkpoint: Path
    """The checkpoint file the weights were read from."""
    epoch: int
    """The epoch that checkpoint holds."""
    example_shape: tuple[int, ...]
    """The shape of one training example, e.g. ``(1, 28, 28)``."""
    num_classes: int | None
    """The number of classes of the training labels; ``None`` without labels."""
    note: str | None = None
    """Set when the checkpoint read is not the one asked for (a fallback), saying which."""


def load_run(
    run_dir: str | os.PathLike[str],
    *,
    checkpoint: str = "best",
    model: nn.Module | None = None,
    device: str | None = None,
    log: Callable[[str], None] | None = None,
) -> LoadedRun:
    """Load a run's trained model, config and metrics.

    Runs of a preset or of a ``--model`` spec are rebuilt from their config; a run of a
    model passed to `fit` from Python needs ``model=``: a fresh instance of the same
    architecture, into which the weights are loaded.

    Args:
        run_dir: a run directory written by `fit` or `train`.
        checkpoint: ``"best"`` (lowest test loss) or ``"last"``. A missing or unreadable
            file falls back to ``last.pt``, then to ``last.prev.pt``; ``note`` then says
            which file and epoch were read instead.
        model: the module to load the weights into (required for ``fit`` runs).
        device: where to put the model; defaults to the run's device setting.
        log: called with the ``note`` when the checkpoint read is not the one asked for;
            without it, the note is a `UserWarning`.

    Returns:
        `LoadedRun`.

    Raises:
        ValueError: on an unknown ``checkpoint``, or a ``fit`` run without ``model``.
        RunDirectoryError: if ``run_dir`` holds no run or no checkpoint yet.
        CheckpointError: if no checkpoint file can be read.

    Example:
        >>> import tempfile, torch
        >>> from genlatent import VAE, MLPDecoder, MLPEncoder, fit
        >>> def build():
        ...     return VAE(MLPEncoder(16, 8, 2), MLPDecoder(2, 8, 16, out_shape=(1, 4, 4)))
        >>> images = torch.rand(32, 1, 4, 4)
        >>> with tempfile.TemporaryDirectory() as run_dir:
        ...     _ = fit(build(), images, run_dir=run_dir, epochs=1, batch_size=8, lr=1e-3,
        ...             log=lambda line: None)
        ...     run = load_run(run_dir, model=build())
        >>> run.epoch, run.model.training
        (1, False)
    """
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    run = RunDirectory(run_dir)
    config = run.read_config()
    target = resolve_device(device if device is not None else config.device)
    wanted = run.best_checkpoint if checkpoint == "best" else run.last_checkpoint
    state, source = _first_readable(run, wanted, target)
    data = state.get("data", {})
    shape = tuple(data.get("example_shape", ()))
    num_classes = data.get("num_classes")
    if model is None:
        model = _rebuild(run, config, shape, num_classes, log)
    model.load_state_dict(state["model"])
    note = None
    if source != wanted:
        problem = "is unreadable" if wanted.exists() else "does not exist"
        note = f"{wanted} {problem}; read {source.name} (epoch {int(state['epoch'])}) instead"
        _announce(log)(note)  # never silently: without a log the fallback is a warning
    return LoadedRun(
        model.to(target).eval(), config, run.read_metrics(), run.path, source,
        int(state["epoch"]), shape, num_classes, note,
    )  # fmt: skip


def _rebuild(
    run: RunDirectory,
    config: TrainConfig,
    shape: tuple[int, ...],
    num_classes: int | None,
    log: Callable[[str], None] | None,
) -> nn.Module:
    """The run's model, fresh: from its preset or spec, else from the recorded construction."""
    if config.model != "custom":
        return build_model(
            config, shape, num_classes, source_dir=run.source_dir, log=_announce(log)
        )
    built = run.read_built()
    if built is None:
        raise ValueError(
            "this run trained a model passed to fit() that records no constructor "
            "configuration (it does not inherit genlatent.PretrainedMixin, or its arguments "
            "are not JSON values): pass a fresh instance, load_run(run_dir, model=model)"
        )
    return module_from_config(built)


def _announce(log: Callable[[str], None] | None) -> Callable[[str], None]:
    """``log``, or a `UserWarning` where no ``log`` is given: a fallback is never silent."""
    if log is not None:
        return log
    return lambda message: warnings.warn(message, UserWarning, stacklevel=3)


def _first_readable(
    run: RunDirectory, wanted: Path, device: torch.device
) -> tuple[dict[str, Any], Path]:
    """Read ``wanted``, else ``last.pt``, else ``last.prev.pt``: the first that loads."""
    candidates = list(
        dict.fromkeys([wanted, run.last_checkpoint, previous_path(run.last_checkpoint)])
    )
    present = [path for path in candidates if path.is_file()]
    if not present:
        raise RunDirectoryError(
            f"{run.path} has no checkpoint yet (no checkpoints/best.pt or last.pt): "
            "it has not reached its first evaluation or --save-every step"
        )
    return load_first_readable(present, map_location=device)


def _test_set(
    loaded: LoadedRun, data_dir: str | None, test_set: ImageDataset | None
) -> ImageDataset:
    if test_set is None:
        config = loaded.config if data_dir is None else loaded.config.replace(data_dir=data_dir)
        return load_test_set(config)
    return as_scored(loaded.config, test_set)


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    iwae_k: int = 0,
    checkpoint: str = "best",
    data_dir: str | None = None,
    test_set: ImageDataset | None = None,
    model: nn.Module | None = None,
    log: Callable[[str], None] | None = None,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Test-set metrics of a run, by capability (see `evaluate_model`).

    Every term ``model.loss`` logs, the reconstruction MSE, PSNR and SSIM (images of at
    least 11x11 pixels) where the model can reconstruct, code usage where it reports
    codes; for a Gaussian-latent model (``encode``, ``decode`` and ``likelihood``, a
    `VAE`) also its ``active_units`` (`active_units` of the test set's posterior means)
    and, with ``iwae_k`` > 0, the negative importance-weighted bound with ``iwae_k``
    samples, ``iwae_nll`` (`iwae_bound`, in inference mode, 100 examples a batch, with a
    progress bar on stderr when ``show_progress`` is true or, for ``None``, when stderr is
    a terminal). ``log`` hears of a checkpoint fallback (see `load_run`). The run of a
    prior (`fit_prior`) is evaluated as one: its test bits per code beside the unigram
    baseline (`evaluate_prior`).
    """
    from genlatent.metrics import evaluate_model
    from genlatent.train.prior import evaluate_prior, prior_source

    source = prior_source(run_dir)
    if source is not None and model is None and test_set is None:
        return evaluate_prior(source, run_dir, data_dir=data_dir, log=log)
    loaded = load_run(run_dir, checkpoint=checkpoint, model=model, log=log)
    test = _test_set(loaded, data_dir, test_set)
    device = module_device(loaded.model)
    generator = seeded_generator(device, loaded.config.seed)
    batches = TensorBatches(test, batch_size=500 if iwae_k == 0 else 100, device=device)
    values: dict[str, Any] = {"epoch": loaded.epoch}
    values |= evaluate_model(loaded.model, batches, generator=generator).as_dict()
    units = _active_units(loaded.model, batches) if _is_gaussian_latent(loaded.model) else None
    if units is not None:
        values["active_units"] = units
    if iwae_k > 0:  # iwae_bound names what a model without the capability lacks
        values["iwae_nll"] = _iwae_nll(loaded.model, batches, iwae_k, generator, show_progress)
    return values


def _is_gaussian_latent(model: nn.Module) -> bool:
    return all(callable(getattr(model, name, None)) for name in ("encode", "decode")) and (
        hasattr(model, "likelihood")
    )


def _active_units(model: nn.Module, batches: TensorBatches) -> int | None:
    """`active_units` of the posterior means over ``batches`` (labels passed where
    ``encode`` declares them); ``None`` for fewer than two examples."""
    from genlatent.metrics import active_units

    encode = model.encode
    labelled = "labels" in declared_keywords(encode, ("labels",))  # type: ignore[arg-type]
    with torch.inference_mode():
        means = [
            encode(batch.images, labels=batch.labels) if labelled else encode(batch.images)  # type: ignore[operator]
            for batch in batches
        ]
    stacked = torch.cat([mean for mean, _ in means])
    return active_units(stacked) if stacked.shape[0] >= 2 else None


def _iwae_nll(
    model: nn.Module,
    batches: TensorBatches,
    num_samples: int,
    generator: torch.Generator,
    show_progress: bool | None,
) -> float:
    r"""$-\frac{1}{N}\sum_n \mathcal{L}_k(x_n)$ over ``batches``: `iwae_bound` batch by batch,
    in inference mode (no autograd bookkeeping on the $k B$ decoder rows)."""
    from genlatent.metrics import iwae_bound

    sums = ExampleSums(module_device(model))
    bar = progress(
        batches, total=len(batches), description=f"IWAE bound, k = {num_samples}",
        enabled=show_progress,
    )  # fmt: skip
    with torch.inference_mode():
        for batch in bar:
            bound = iwae_bound(model, batch.images, num_samples=num_samples,  # type: ignore[arg-type]
                               generator=generator, reduction="sum")  # fmt: skip
            sums.add_sums({"iwae": bound}, batch.images.shape[0])
    bar.close()
    return -sums.means()["iwae"]
