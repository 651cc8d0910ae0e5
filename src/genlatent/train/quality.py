"""How good a run's samples and reconstructions are, measured offline: Fréchet distances
and class consistency.

Both use the small classifier that genlatent trains on the run's own dataset
(`load_or_train_classifier`, cached in ``data_home()/classifiers``), not Inception: the
numbers compare genlatent models with each other, not with published FID values.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch
from torch import nn

from genlatent._device import module_device, seeded_generator
from genlatent._protocols import declared_keywords
from genlatent.data.batching import TensorBatches
from genlatent.data.remote import data_home
from genlatent.metrics.classifier import class_consistency, load_or_train_classifier
from genlatent.metrics.frechet import frechet_distance
from genlatent.metrics.reconstruction import classifier_features, reconstruction_frechet_distance
from genlatent.train.build import load_datasets
from genlatent.train.pictures import sample_images
from genlatent.train.runs import LoadedRun, load_run
from genlatent.train.sampling import prior_samples

__all__ = ["sample_quality"]


@torch.no_grad()
def _reconstructions(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500
) -> torch.Tensor:
    """``model.reconstruct`` of ``images`` (with ``labels=`` where it takes them) in eval
    mode, clamped to [0, 1], on the CPU."""
    reconstruct: Callable[..., torch.Tensor] = getattr(model, "reconstruct")  # noqa: B009
    takes_labels = "labels" in declared_keywords(reconstruct)
    training = model.training
    model.eval()
    parts = []
    try:
        batches = TensorBatches(images, labels, batch_size=batch_size, device=module_device(model))
        for batch in batches:
            given = {"labels": batch.labels} if takes_labels else {}
            parts.append(reconstruct(batch.images, **given).float().clamp(0, 1).cpu())
    finally:
        model.train(training)
    return torch.cat(parts)


def _draw(
    loaded: LoadedRun,
    prior: nn.Module | None,
    num: int,
    seed: int,
    guidance_scale: float,
    steps: int | None,
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, float]]:
    """``num`` samples of the run (decoded from ``prior``'s grids when given), balanced over
    the classes where the sampler takes labels; their labels (``None``: unconditional); and
    how they were drawn, for a prior: ``sampling_seconds``, ``guidance_scale``, ``steps``."""
    classes = getattr(prior, "num_classes", None) if prior is not None else loaded.num_classes
    labels = None if classes is None else torch.arange(num) % classes
    if prior is None:
        sample = getattr(loaded.model, "sample", None)
        if not callable(sample) or "labels" not in declared_keywords(sample):
            labels = None
        device = module_device(loaded.model)
        images = sample_images(
            loaded.model, num, example_shape=loaded.example_shape,
            generator=seeded_generator(device, seed),
            labels=None if labels is None else labels.to(device),
        )  # fmt: skip
        return images, labels, {}
    started = time.perf_counter()
    images = prior_samples(
        loaded,
        prior,
        num,
        labels=labels,
        seed=seed,
        guidance_scale=guidance_scale,
        steps=steps,
    ).cpu()  # waits for the device, so that the time is the draws' own
    drawn = {
        "sampling_seconds": time.perf_counter() - started,
        "guidance_scale": float(guidance_scale),
    }
    if steps is not None:
        drawn["steps"] = float(steps)
    return images, labels, drawn


def sample_quality(
    run_dir: str | os.PathLike[str],
    num: int,
    *,
    prior: nn.Module | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    classifier_epochs: int = 2,
    guidance_scale: float = 1.0,
    steps: int | None = None,
    checkpoint: str = "best",
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Fréchet distances (and class consistency) of ``num`` samples and reconstructions of a run.

    Where the model reconstructs, ``reconstruction_frechet_distance`` compares the
    classifier's features of the first ``num`` test images with those of their
    reconstructions (`reconstruction_frechet_distance`; 0 for a perfect autoencoder).
    Where it samples, or with ``prior``, the samples come from ``model.sample``
    (balanced over the classes, ``labels[i] = i mod C``, when it takes ``labels``), or
    with ``prior`` from the prior's code grids decoded by the run's model. The
    classifier's features of the samples are compared with those of the first ``num``
    test images (`frechet_distance`); ``frechet_distance_floor`` is the same distance for
    ``num`` real training images, the value of a perfect model at this sample size.
    ``class_consistency`` is the fraction of class-conditional samples that the
    classifier assigns to the class asked for. ``guidance_scale`` is passed to the
    prior's draws (classifier-free guidance, see `TransformerPrior.sample`), and ``steps``
    to a prior that samples in parallel steps (`MaskGITPrior.sample`); with a prior the
    result also records both and ``sampling_seconds``, the wall time of drawing and
    decoding the ``num`` grids. The run's model is its ``checkpoint``, ``"best"`` or
    ``"last"``.

    Raises:
        TypeError: if the run's model can neither sample, take a prior, nor reconstruct.
        ValueError: if ``num`` < 2 or exceeds the test set, or ``steps`` without a prior.
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise ValueError(f"num must be an int >= 2 (a covariance needs two samples), got {num!r}")
    if steps is not None and prior is None:
        raise ValueError(
            f"steps applies to samples of a prior, and no prior is given, got steps={steps}"
        )
    loaded = load_run(run_dir, checkpoint=checkpoint, log=log)
    samples = prior is not None or callable(getattr(loaded.model, "sample", None))
    reconstructs = callable(getattr(loaded.model, "reconstruct", None))
    if not (samples or reconstructs):
        raise TypeError(
            f"{type(loaded.model).__name__} can neither sample (no sample method, no prior) "
            "nor reconstruct: there is nothing to score"
        )
    config = loaded.config if data_dir is None else loaded.config.replace(data_dir=data_dir)
    train_set, test_set = load_datasets(config)
    if num > len(test_set):
        raise ValueError(f"num must be at most the {len(test_set)} test images, got {num}")
    # cached in genlatent's own data folder ($GENLATENT_DATA or ~/.cache/genlatent), never
    # beside a dataset's official files, which may be read-only
    classifier = load_or_train_classifier(
        train_set, data_home() / "classifiers", epochs=classifier_epochs
    )
    result: dict[str, float] = {"samples": float(num)}
    if reconstructs:
        reconstructions = _reconstructions(
            loaded.model, test_set.images[:num], test_set.labels[:num]
        )
        result["reconstruction_frechet_distance"] = reconstruction_frechet_distance(
            classifier, test_set.images[:num], reconstructions
        )
    if not samples:
        return result
    images, labels, drawn = _draw(loaded, prior, num, seed, guidance_scale, steps)
    result |= drawn
    real = classifier_features(classifier, test_set.images[:num])
    result["frechet_distance"] = frechet_distance(real, classifier_features(classifier, images))
    result["frechet_distance_floor"] = frechet_distance(
        real, classifier_features(classifier, train_set.images[:num])
    )
    if labels is not None:
        result["class_consistency"] = class_consistency(classifier, images.cpu(), labels)
    return result
