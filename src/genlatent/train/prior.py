"""The second stage of a VQ-VAE: a prior over its code grids, fitted with the same trainer.

`fit_prior` encodes a trained run's training and test sets with its model (in eval mode,
under ``no_grad``: no quantizer state changes), fits a `TransformerPrior`,
`PixelCNNPrior` or `MaskGITPrior` to the code grids with `fit` in a run directory of its own
(``RUN_DIR/prior`` by default, resumable like any run), and draws its samples through the
VQ-VAE's decoder. `load_prior` reads it back.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from genlatent._atomic import atomic_write
from genlatent._device import module_device, seeded_generator
from genlatent._protocols import declared_keywords
from genlatent._validation import check_choice, require_methods
from genlatent.data.batching import TensorBatches
from genlatent.priors import MaskGITPrior, PixelCNNPrior, TransformerPrior
from genlatent.train.build import load_datasets
from genlatent.train.fit import RunData, RunSummary, fit
from genlatent.train.images import save_image_grid
from genlatent.train.rundir import RunDirectory, RunDirectoryError
from genlatent.train.runs import LoadedRun, load_run
from genlatent.train.sampling import prior_samples

__all__ = [
    "PRIOR_KINDS",
    "PriorSpec",
    "encode_codes",
    "evaluate_prior",
    "fit_prior",
    "load_prior",
    "prior_source",
]

PRIOR_KINDS: dict[str, type[nn.Module]] = {
    "transformer": TransformerPrior,
    "pixelcnn": PixelCNNPrior,
    "maskgit": MaskGITPrior,
}
"""The priors `fit_prior` can fit, by name."""

SPEC_FILE = "prior.json"


@dataclass(frozen=True)
class PriorSpec:
    """What rebuilds a fitted prior: kept as ``prior.json`` in its run directory."""

    kind: str
    codebook_size: int
    grid_shape: tuple[int, ...]
    """$(h, w)$, or $(h, w, s)$ for a quantizer that stacks $s$ codes per position."""
    num_classes: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    """The VQ-VAE run whose codes it models, relative to the prior's folder (``..`` for
    the default ``RUN_DIR/prior``); ``None`` in records older than this field."""

    def build(self) -> nn.Module:
        """A fresh prior of this architecture."""
        cls = PRIOR_KINDS[check_choice("prior", self.kind, tuple(PRIOR_KINDS))]
        return cls(
            self.codebook_size, self.grid_shape, num_classes=self.num_classes, **self.options
        )

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(folder / SPEC_FILE, text=True) as handle:
            handle.write(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, folder: Path) -> PriorSpec:
        path = folder / SPEC_FILE
        if not path.is_file():
            raise RunDirectoryError(f"{folder} holds no prior: no {SPEC_FILE} in it")
        values = json.loads(path.read_text(encoding="utf-8"))
        values["grid_shape"] = tuple(values["grid_shape"])
        return cls(**values)


def prior_source(run_dir: str | os.PathLike[str]) -> Path | None:
    """The VQ-VAE run whose codes the prior in ``run_dir`` models; ``None`` if ``run_dir``
    holds no prior (no ``prior.json``).

    Example:
        >>> prior_source("runs/vqvae") is None  # a folder without prior.json
        True
    """
    folder = Path(run_dir)
    if not (folder / SPEC_FILE).is_file():
        return None
    spec = PriorSpec.read(folder)
    return (folder / (spec.source or "..")).resolve()


@torch.no_grad()
def encode_codes(model: nn.Module, images: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """The code grids of ``images`` under ``model.encode``, int64 on the CPU.

    The input of a prior: fit a `TransformerPrior` or `PixelCNNPrior` to the grids of the
    training set. uint8 images are scaled to $[0, 1]$. The model runs in eval mode
    (restored after), so an EMA codebook and dead-code counters do not change.

    Args:
        model: a model with ``encode(images) -> indices``, such as a `VQVAE`.
        images: images $(N, C, H, W)$, float in $[0, 1]$ or uint8.
        batch_size: images encoded at once, on the model's device.

    Returns:
        The code indices $(N, *G)$, where $G$ is the model's code grid ($(h, w)$ for a
        convolutional encoder), int64 on the CPU.
    """
    require_methods(model, ("encode",), "encoding codes")
    was_training = model.training
    model.eval()
    device = module_device(model)
    grids = [
        model.encode(batch.images).long().cpu()  # type: ignore[operator]
        for batch in TensorBatches(images, batch_size=batch_size, device=device)
    ]
    model.train(was_training)
    return torch.cat(grids)


class _Codes(NamedTuple):
    train: torch.Tensor
    train_labels: torch.Tensor | None
    test: torch.Tensor
    test_labels: torch.Tensor | None


def _encoded_splits(
    source: LoadedRun, datasets: tuple[object, object] | None, data_dir: object = None
) -> _Codes:
    """The code grids of the source run's training and test sets: its named dataset's
    (from ``data_dir`` if given), or ``datasets`` for a run on data passed to `fit`."""
    if datasets is not None:
        data = RunData.from_user(*datasets)
        if data.test_images is None:
            raise ValueError("datasets must be a pair (train_data, test_data), got no test_data")
        train_images, train_labels = data.train_images, data.train_labels
        test_images, test_labels = data.test_images, data.test_labels
    else:
        config = source.config
        if data_dir is not None:
            config = config.replace(data_dir=str(data_dir))
        train_set, test_set = load_datasets(config)
        train_images, train_labels = train_set.images, train_set.labels
        test_images, test_labels = test_set.images, test_set.labels
    return _Codes(
        encode_codes(source.model, train_images), train_labels,
        encode_codes(source.model, test_images), test_labels,
    )  # fmt: skip


def _codebook_size(model: nn.Module) -> int:
    size = getattr(getattr(model, "quantizer", None), "codebook_size", None)
    if not isinstance(size, int):
        raise TypeError(
            f"fitting a prior needs a model whose quantizer has a codebook_size; "
            f"{type(model).__name__} has none"
        )
    return size


def fit_prior(
    run_dir: str | os.PathLike[str],
    *,
    prior: str = "transformer",
    conditional: bool = False,
    out: str | os.PathLike[str] | None = None,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    options: dict[str, Any] | None = None,
    datasets: tuple[object, object] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    show_progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Fit a prior over the code grids of a trained VQ-VAE run.

    Args:
        run_dir: the VQ-VAE's run directory (its best checkpoint is used).
        prior: ``"transformer"``, ``"pixelcnn"`` or ``"maskgit"``.
        conditional: condition the prior on the dataset's class labels.
        out: the prior's run directory; default ``run_dir/prior``.
        epochs: passes over the code grids, as for `fit`.
        batch_size: grids per step, as for `fit`.
        lr: the Adam learning rate, as for `fit`.
        seed: seeds the prior's weights and the batch order, as for `fit`.
        device: where to train, as for `fit`.
        options: keyword arguments of the prior's constructor (``layers``, ``dim``...).
        datasets: ``(train_data, test_data)`` (anything `fit` takes) for a run trained on
            data passed to `fit`, which its directory does not store; by default the
            run's named dataset is read again.
        resume: continue the prior's run in ``out``, as for `fit`.
        overwrite: replace a prior that has checkpoints, as for `fit`.
        show_progress: a progress bar, as for `fit`.
        log: hears each line of progress, as for `fit`.

    Returns:
        The prior's `RunSummary`; its run directory also holds ``prior.json`` and
        ``samples.png`` (prior samples decoded by the VQ-VAE, one row per class when
        conditional).

    Raises:
        TypeError: if the run's model cannot ``encode``/``decode`` code grids.
        ValueError: on an unknown ``prior``, or ``conditional`` for unlabelled data.
        RunDirectoryError: as for `fit`.
    """
    source = load_run(run_dir, log=log)
    require_methods(source.model, ("encode", "decode", "generate"), "fitting a prior")
    folder = Path(out) if out is not None else Path(run_dir) / "prior"
    if resume:
        spec = PriorSpec.read(folder)
    else:
        if RunDirectory(folder).checkpoints() and not overwrite:
            raise RunDirectoryError(
                f"{folder} already holds a prior with checkpoints; pass --resume to continue "
                "it or --overwrite to replace it"
            )
        if conditional and source.num_classes is None:
            raise ValueError("conditional=True needs labelled data; the run has no labels")
        check_choice("prior", prior, tuple(PRIOR_KINDS))
    codes = _encoded_splits(source, datasets)
    if not resume:
        grid = tuple(int(size) for size in codes.train.shape[1:])
        classes = source.num_classes if conditional else None
        relative = os.path.relpath(Path(run_dir).resolve(), folder.resolve())
        spec = PriorSpec(
            prior, _codebook_size(source.model), grid, classes, dict(options or {}), relative
        )
    torch.manual_seed(seed)
    model = spec.build()
    created = not folder.exists()
    if not resume:
        spec.save(folder)
    try:
        summary = fit(
            model, (codes.train, codes.train_labels), (codes.test, codes.test_labels),
            run_dir=folder, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
            device=device, resume=resume, overwrite=overwrite, show_progress=show_progress,
            log=log,
        )  # fmt: skip
    except BaseException:
        if not resume and not RunDirectory(folder).checkpoints():
            _remove_failed_start(folder, remove_folder=created)
        raise
    prior_run = load_prior(folder, device=str(module_device(source.model)))
    write_prior_samples(source, prior_run.model, folder / "samples.png", seed=seed)
    return summary


def _remove_failed_start(folder: Path, *, remove_folder: bool) -> None:
    """Undo a start that wrote no checkpoint, so no half-made prior blocks `sample`/`eval`.

    Only the files a start writes are removed, and the folder only if this start made it
    and that empties it.
    """
    RunDirectory(folder).clear()
    (folder / SPEC_FILE).unlink(missing_ok=True)
    for empty in (folder / "checkpoints", folder) if remove_folder else (folder / "checkpoints",):
        with contextlib.suppress(OSError):
            empty.rmdir()


def load_prior(
    prior_dir: str | os.PathLike[str],
    *,
    checkpoint: str = "best",
    device: str | None = None,
    log: Callable[[str], None] | None = None,
) -> LoadedRun:
    """Read a prior fitted by `fit_prior` back: its `LoadedRun` (``.model`` is the prior)."""
    folder = Path(prior_dir)
    spec = PriorSpec.read(folder)
    return load_run(folder, checkpoint=checkpoint, model=spec.build(), device=device, log=log)


MASK_RATIOS = (0.25, 0.5, 0.75)
"""The fixed mask ratios at which `evaluate_prior` scores a prior without a likelihood."""


def evaluate_prior(
    run_dir: str | os.PathLike[str],
    prior_dir: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    datasets: tuple[object, object] | None = None,
    checkpoint: str = "best",
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """The prior's test negative log-likelihood in bits per code, beside the unigram baseline.

    Returns ``unigram_test_bits_per_code`` (`unigram_bits_per_code` of the training codes'
    frequencies) and, for a prior with an exact likelihood (``log_prob``),
    ``prior_test_bits_per_code``. A prior without one whose ``loss`` takes a
    ``mask_ratio`` (`MaskGITPrior`) gets instead
    ``prior_test_masked_bits_per_code_at_25``, ``_at_50`` and ``_at_75``: the
    cross-entropy of the masked codes with that percentage of every grid masked (seeded
    masks), which is not a likelihood and not comparable with the bits per code of the
    other priors. All over the run's test set encoded by its model at ``checkpoint``
    (``"best"`` or ``"last"``; its dataset's files from ``data_dir`` if given, else where
    the run read them; or ``datasets``, as for `fit_prior`).

    Raises:
        TypeError: if the prior has neither ``log_prob`` nor a ``loss`` with ``mask_ratio``.
    """
    from genlatent.metrics import evaluate_model, unigram_bits_per_code

    source = load_run(run_dir, checkpoint=checkpoint, log=log)
    folder = Path(prior_dir) if prior_dir is not None else Path(run_dir) / "prior"
    fitted = load_prior(folder, device=str(module_device(source.model)), log=log)
    codes = _encoded_splits(source, datasets, data_dir)
    size = _codebook_size(source.model)
    labels = codes.test_labels
    batches = [
        (codes.test[i : i + 500], None if labels is None else labels[i : i + 500])
        for i in range(0, len(codes.test), 500)
    ]
    baseline = {"unigram_test_bits_per_code": unigram_bits_per_code(codes.train, codes.test, size)}
    prior = fitted.model
    if callable(getattr(prior, "log_prob", None)):
        result = evaluate_model(prior, batches)
        return {"prior_test_bits_per_code": result.terms["bits_per_code"], **baseline}
    loss = getattr(prior, "loss", None)
    if not callable(loss) or "mask_ratio" not in declared_keywords(loss, ("mask_ratio",)):
        raise TypeError(
            f"{type(prior).__name__} has neither log_prob (an exact likelihood) nor a loss "
            "with mask_ratio (a masked prior): there is nothing to evaluate it on"
        )
    scores: dict[str, float] = {}
    for ratio in MASK_RATIOS:
        device = module_device(prior)
        masked = _AtMaskRatio(prior, ratio)
        result = evaluate_model(masked, batches, generator=seeded_generator(device, 0))
        scores[f"prior_test_masked_bits_per_code_at_{round(100 * ratio)}"] = result.terms[
            "bits_per_masked_code"
        ]
    return {**scores, **baseline}


class _AtMaskRatio(nn.Module):
    """A masked prior whose ``loss`` masks a fixed ratio of every grid."""

    def __init__(self, prior: nn.Module, ratio: float) -> None:
        super().__init__()
        self.prior = prior
        self.ratio = ratio

    def loss(
        self,
        indices: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Any:
        return self.prior.loss(  # type: ignore[operator]
            indices, labels, generator=generator, mask_ratio=self.ratio
        )


def write_prior_samples(source: LoadedRun, prior: nn.Module, path: Path, *, seed: int) -> Path:
    """The prior's samples, decoded, as an image grid of 8 per row."""
    images = prior_samples(source, prior, 64, seed=seed)
    return save_image_grid(images, path, nrow=8, scale=max(1, 64 // images.shape[-1]))
