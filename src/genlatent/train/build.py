"""Turn a `TrainConfig` into a device, a model and data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from genlatent.data.augment import Augment
from genlatent.data.binarize import TEST_SEED, binarized
from genlatent.data.collect import as_tensors
from genlatent.data.dataset import ImageDataset
from genlatent.data.folder import FolderSplit, ImageFolder, folder_splits
from genlatent.data.registry import dataset_by_name
from genlatent.models.presets import preset
from genlatent.train.config import PRESETS, TrainConfig, is_model_spec
from genlatent.train.spec import build_from_spec, load_function

__all__ = ["build_model", "load_datasets", "load_training_sets", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is checked and returned."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device must be 'auto' or a torch device string, got {name!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available here")
    return device


def build_model(
    config: TrainConfig,
    image_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    source_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> nn.Module:
    """The model ``config`` names, for examples of ``image_shape`` (C, H, W).

    A preset is built by its builder (`vae_preset`, `vqvae_preset`) with the config's
    architecture options; a quantizer given as a spec ``FILE.py:FUNCTION`` is loaded from
    the user's file first; a model spec calls the user's function (see `build_from_spec`)
    with the architecture options as its keyword arguments. ``source_dir`` is the run's
    folder of copied user files, loaded where a spec's file is gone (``log`` hears of it).

    Raises:
        ValueError: for ``model="custom"``, which only the user's own code can build.
    """
    options = dict(config.architecture)
    if config.model in PRESETS:
        if is_model_spec(options.get("quantizer")):
            options["quantizer"] = load_function(
                options["quantizer"], option="--quantizer", source_dir=source_dir, log=log
            )
        return preset(config.model, image_shape, **options)
    if is_model_spec(config.model):
        return build_from_spec(
            config.model, image_shape=image_shape, num_classes=num_classes, arguments=options,
            source_dir=source_dir, log=log,
        )  # fmt: skip
    raise ValueError(
        "this run trained a model passed to fit(); rebuild it and pass it again "
        "(fit(model, ..., resume=True) or load_run(run_dir, model=model))"
    )


def load_test_set(config: TrainConfig) -> ImageDataset:
    """The test split named by ``config``, cut to its ``test_limit`` (the training split is
    not read: evaluation and plots need only this one); binarized with seed 0 when the run
    was (``config.binarize``), the draw its training scored."""
    _check_named(config)
    if config.dataset == "folder":
        return as_scored(config, _in_memory(_head(_folders(config)[1], config.test_limit)))
    test = dataset_by_name(
        config.dataset, split="test", root=config.data_dir, download=config.download
    )
    return as_scored(config, _head(test, config.test_limit))


def as_scored(config: TrainConfig, test: ImageDataset) -> ImageDataset:
    """``test`` as the run's evaluation saw it: one draw with `TEST_SEED` if it binarized."""
    return binarized(test, seed=TEST_SEED) if config.binarize else test


def _check_named(config: TrainConfig) -> None:
    if config.dataset == "custom":
        raise ValueError(
            "this run trained on data passed to fit() or train(datasets=...), which a run "
            "directory does not store: pass it again (fit(..., resume=True), "
            "evaluate_run(..., test_set=...), plot_run(..., test_set=...))"
        )


def load_datasets(config: TrainConfig) -> tuple[ImageDataset, ImageDataset]:
    """The train and test splits named by ``config``, cut to its limits, in memory (a
    ``dataset="folder"`` run's images decoded; `load_training_sets` reads them lazily)."""
    train, test = load_training_sets(config)
    return _in_memory(train), test


def load_training_sets(
    config: TrainConfig,
) -> tuple[ImageDataset | ImageFolder | FolderSplit, ImageDataset]:
    """What a run trains on: `load_datasets`, but a ``dataset="folder"`` run's training
    images are read lazily (`ImageFolder`); its test split is decoded into memory
    (evaluation and pictures read it whole: keep it small with ``test_fraction`` or
    ``test_limit``)."""
    _check_named(config)
    if config.dataset == "folder":
        train_split, test_split = _folders(config)
        test_set = _in_memory(_head(test_split, config.test_limit))
        return _head(train_split, config.train_limit), test_set
    root, download = config.data_dir, config.download
    train = dataset_by_name(config.dataset, split="train", root=root, download=download)
    test = dataset_by_name(config.dataset, split="test", root=root, download=download)
    return _head(train, config.train_limit), _head(test, config.test_limit)


def _folders(config: TrainConfig) -> tuple[ImageFolder | FolderSplit, ImageFolder | FolderSplit]:
    fraction = 0.1 if config.test_fraction is None else config.test_fraction
    augment = (
        None if config.augment is None else Augment.from_names(config.augment, seed=config.seed)
    )
    return folder_splits(
        str(config.data_dir), size=int(config.image_size or 0), test_fraction=fraction,
        seed=config.seed, augment=augment,
    )  # fmt: skip


def _in_memory(data: ImageDataset | ImageFolder | FolderSplit) -> ImageDataset:
    """A folder split decoded into one uint8 tensor (the test set: evaluation reads it whole)."""
    if isinstance(data, ImageDataset):
        return data
    images, labels = as_tensors(data, name="the folder's images")
    return ImageDataset(images, cast(torch.Tensor, labels), name="folder")  # items are pairs


def _head(data: Any, limit: int | None) -> Any:
    if limit is None or limit >= len(data):
        return data
    if isinstance(data, ImageDataset):
        name = f"{data.name}[:{limit}]"
        return ImageDataset(data.images[:limit], data.labels[:limit], name=name)
    return FolderSplit(data, list(range(limit)), classes=data.classes)
