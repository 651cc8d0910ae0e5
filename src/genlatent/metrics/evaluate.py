"""Whole-dataset evaluation of a VAE (ELBO, IWAE, bits/dim) and of any model by protocol
(terms, MSE, PSNR, SSIM, codes)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import torch

from genlatent._deprecation import renamed_attribute
from genlatent._device import module_device
from genlatent._protocols import GaussianLatentModel, declared_keywords, loss_parts
from genlatent._sums import ExampleSums, accumulator_dtype
from genlatent._validation import (
    check_floating,
    check_optional_positive_int,
    require_methods,
)
from genlatent.losses.elbo import vae_loss
from genlatent.metrics.iwae import iwae_bound
from genlatent.metrics.reconstruction import SSIM_WINDOW, ssim
from genlatent.metrics.stats import bits_per_dim, code_usage

__all__ = ["Evaluation", "VAEEvaluation", "evaluate_model", "evaluate_vae"]


@dataclass(frozen=True)
class VAEEvaluation:
    """What `evaluate_vae` returns: dataset averages as Python floats, in nats per example.

    Every average is over examples (the sum over the whole set divided by the number of
    examples), not a mean of batch means, so a smaller last batch counts for what it holds.
    """

    negative_elbo: float
    r"""$-\mathrm{ELBO}$ = ``reconstruction_loss + kl`` $\ge -\log p(x)$, nats per example."""
    reconstruction_loss: float
    r"""$-\log p(x \mid z)$ for one $z \sim q(z \mid x)$ per example, nats per example."""
    kl: float
    r"""$\mathrm{KL}(q(z \mid x) \,\Vert\, \mathcal{N}(0, I))$ in closed form, nats per example."""
    bits_per_dim: float
    """``negative_elbo / (values_per_example * ln 2)``."""
    iwae_nll: float | None
    r"""$-\mathcal{L}_k$, the importance-weighted estimate of $-\log p(x)$ (an upper bound on
    it in expectation), nats per example; ``None`` when ``iwae_samples=0``."""
    iwae_bits_per_dim: float | None
    """``iwae_nll`` in bits per value; ``None`` when ``iwae_samples=0``."""
    iwae_samples: int
    """$k$, the importance samples per example (0: not computed)."""
    num_examples: int
    """How many examples were evaluated."""
    values_per_example: int
    r"""$D$, data values in one example ($C \cdot H \cdot W$)."""

    # Old names of 0.1, kept for one release (see docs/guides/migration.md).
    reconstruction = renamed_attribute("VAEEvaluation", "reconstruction", "reconstruction_loss")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """What `evaluate_model` returns: dataset averages as Python floats."""

    terms: dict[str, float]
    """Per-example means of ``loss`` and every term ``model.loss`` logs (see the model
    protocol), summed over all examples and divided by their number."""
    num_examples: int
    """How many examples were evaluated."""
    mse: float | None = None
    """Mean squared error of ``model.reconstruct(x)`` over every value; ``None`` for a
    model that cannot reconstruct."""
    psnr: float | None = None
    r"""$10 \log_{10}(R^2 / \text{mse})$ in dB from the dataset MSE ($R$ = ``data_range``);
    ``inf`` when the MSE is 0."""
    ssim: float | None = None
    """Mean over images of `ssim` (Wang et al. 2004, 11x11 Gaussian window, no padding);
    ``None`` for a model that cannot reconstruct, or data that are not images
    $(B, C, H, W)$ of at least 11x11 pixels."""
    fraction_used: float | None = None
    """Fraction of codes chosen at least once (mean over stages); ``None`` for a model that
    reports no ``code_counts``."""
    perplexity: float | None = None
    r"""Perplexity of the code usage over the whole set, in $[1, K]$ (mean over stages)."""
    counts: torch.Tensor | None = None
    """How often each code was chosen, on the CPU, $(K,)$ or $(S, K)$ (float64 from a CPU
    model, float32 from any other device: see `genlatent._sums`)."""

    def as_dict(self) -> dict[str, float | int]:
        """The numbers as one flat dict (terms by name, then the other fields that are set)."""
        values: dict[str, float | int] = {"num_examples": self.num_examples, **self.terms}
        for name in ("mse", "psnr", "ssim", "fraction_used", "perplexity"):
            value = getattr(self, name)
            if value is not None:
                values[name] = value
        return values


@contextmanager
def _evaluation_mode(model: torch.nn.Module) -> Iterator[None]:
    """``model.eval()`` and ``torch.no_grad()``; afterwards restore every submodule's mode."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _batch_data(batch: object, index: int, *, codes: bool = False) -> torch.Tensor:
    """``x`` from a batch ``x`` or ``(x, y, ...)``, checked to be a floating ``(B, *)``
    (or, with ``codes``, an integer one: the code grids a prior models)."""
    x = batch[0] if isinstance(batch, (tuple, list)) and len(batch) > 0 else batch
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"batches must yield tensors x or tuples (x, y), got {type(x).__name__} "
            f"in batch {index}"
        )
    if not (codes and not x.is_floating_point() and x.dtype != torch.bool):
        check_floating(f"x (batch {index})", x)
    if x.ndim < 2:
        raise ValueError(
            f"x (batch {index}) must have shape (B, *) with at least one data dim, "
            f"got shape {tuple(x.shape)}"
        )
    return x


def _values_per_example(x: torch.Tensor, previous: int | None, index: int) -> int:
    values = math.prod(x.shape[1:])
    if previous is not None and values != previous:
        raise ValueError(
            f"every example must have the same number of values, got {previous} before "
            f"and {values} (shape {tuple(x.shape)}) in batch {index}"
        )
    return values


def evaluate_vae(
    model: torch.nn.Module,
    batches: Iterable[torch.Tensor | tuple[torch.Tensor | None, ...]],
    *,
    iwae_samples: int = 0,
    iwae_chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> VAEEvaluation:
    r"""Test negative ELBO, its parts, bits per dimension and optionally the IWAE bound.

    Over a dataset of $N$ examples of $D$ values each (batches of any sizes $B_j$):

    $$-\mathrm{ELBO} = \frac{1}{N}\sum_{n=1}^{N}\Big(-\log p(x_n \mid z_n)
      + \mathrm{KL}\big(q(z \mid x_n)\,\Vert\,\mathcal{N}(0, I)\big)\Big),
      \qquad \text{bits/dim} = \frac{-\mathrm{ELBO}}{D \ln 2},$$

    one $z_n \sim q(z \mid x_n)$ each and the KL in closed form (see `vae_loss`); the sums
    run over all examples and are divided by $N$, not averaged per batch. With
    ``iwae_samples`` $= k > 0$ it also reports $-\frac{1}{N}\sum_n \mathcal{L}_k(x_n)$,
    the IWAE estimate of $-\log p(x)$ (see `iwae_bound`), tighter than the ELBO as $k$ grows.

    The model runs in ``eval()`` mode under ``torch.no_grad()``; each submodule's
    previous mode is restored afterwards, also on an error. Each ``x`` is moved to the
    device of the model's first parameter (not converted to its dtype). Sums accumulate on
    the device, and the host synchronises once, at the end. For each batch, the ELBO's
    noise is drawn from ``generator`` first, then the IWAE noise.

    Args:
        model: a `VAE`, or any module with ``encode(x) -> (mean, log_var)``, ``decode``,
            ``likelihood`` and a forward taking ``generator=`` (asked by capability).
        batches: an iterable of float tensors ``x`` or tuples ``(x, y, ...)`` (labels are
            ignored), such as a ``DataLoader``; ``x`` in $[0, 1]$ for a Bernoulli likelihood.
        iwae_samples: $k$ for the importance-weighted bound; 0 skips it (5000 in
            Burda et al. 2016; cost grows linearly with $k$).
        iwae_chunk_size: samples decoded at once by `iwae_bound`; ``None`` lets it choose
            (about 16,384 decoder rows a chunk).
        generator: source of all the noise, on the model's device.

    Returns:
        `VAEEvaluation` of Python floats: ``negative_elbo``, ``reconstruction_loss``, ``kl``,
        ``bits_per_dim``, ``iwae_nll`` and ``iwae_bits_per_dim`` (``None`` without IWAE),
        and the counts.

    Raises:
        TypeError: if ``model`` lacks ``encode``, ``decode`` or ``likelihood``, a batch
            is not a float tensor, or ``iwae_samples`` is not an int.
        ValueError: if ``iwae_samples < 0``, the batches hold no example, or examples
            differ in size.

    Shape:
        - each x: $(B, *)$, e.g. $(B, 1, 28, 28)$; $B$ may vary between batches

    Example:
        >>> import torch
        >>> from genlatent import VAE, MLPDecoder, MLPEncoder
        >>> _ = torch.manual_seed(0)
        >>> vae = VAE(MLPEncoder(6, 8, 2), MLPDecoder(2, 8, 6))
        >>> batches = [torch.rand(5, 6), torch.rand(2, 6)]
        >>> result = evaluate_vae(vae, batches, iwae_samples=50)
        >>> result.num_examples, result.values_per_example
        (7, 6)
        >>> result.iwae_nll <= result.negative_elbo + 0.5  # IWAE is the tighter bound
        True
    """
    require_methods(model, ("encode", "decode"), "evaluate_vae", attributes=("likelihood",))
    latent = cast(GaussianLatentModel, model)  # by capability, checked just above
    if isinstance(iwae_samples, bool) or not isinstance(iwae_samples, int):
        raise TypeError(f"iwae_samples must be an int, got {type(iwae_samples).__name__}")
    if iwae_samples < 0:
        raise ValueError(f"iwae_samples must be >= 0 (0 skips the IWAE bound), got {iwae_samples}")
    check_optional_positive_int("iwae_chunk_size", iwae_chunk_size)
    device = module_device(model)
    sums = ExampleSums(device)
    values: int | None = None
    with _evaluation_mode(model):
        for index, batch in enumerate(batches):
            x = _batch_data(batch, index).to(device, non_blocking=True)
            values = _values_per_example(x, values, index)
            out = latent(x, generator=generator)
            elbo = vae_loss(
                x,
                out.decoder_output,
                out.mean,
                out.log_var,
                likelihood=latent.likelihood,
                reduction="sum",
            )
            totals = {"reconstruction": elbo.reconstruction_loss, "kl": elbo.kl}
            if iwae_samples > 0:
                totals["iwae"] = iwae_bound(
                    latent,
                    x,
                    num_samples=iwae_samples,
                    chunk_size=iwae_chunk_size,
                    generator=generator,
                    reduction="sum",
                )
            sums.add_sums(totals, x.shape[0])
    if sums.examples == 0 or values is None:
        raise ValueError("batches must yield at least one example, got none")
    means = sums.means()
    reconstruction, kl = means["reconstruction"], means["kl"]
    negative_elbo = reconstruction + kl
    iwae_nll = -means["iwae"] if iwae_samples > 0 else None
    return VAEEvaluation(
        negative_elbo=negative_elbo,
        reconstruction_loss=reconstruction,
        kl=kl,
        bits_per_dim=float(bits_per_dim(negative_elbo, values)),
        iwae_nll=iwae_nll,
        iwae_bits_per_dim=None if iwae_nll is None else float(bits_per_dim(iwae_nll, values)),
        iwae_samples=iwae_samples,
        num_examples=sums.examples,
        values_per_example=values,
    )


def _call(method: Any, x: torch.Tensor, labels: torch.Tensor | None, **extra: Any) -> Any:
    declared = declared_keywords(method)
    kwargs = {
        k: v for k, v in {"labels": labels, **extra}.items() if k in declared and v is not None
    }
    return method(x, **kwargs)


def evaluate_model(
    model: torch.nn.Module,
    batches: Iterable[torch.Tensor | tuple[torch.Tensor | None, ...]],
    *,
    data_range: float = 1.0,
    generator: torch.Generator | None = None,
) -> Evaluation:
    r"""Evaluate any model that follows the model protocol over a dataset.

    Over all $N$ examples: the per-example mean of ``loss`` and of every term
    ``model.loss`` logs; if the model has ``reconstruct``, the MSE over all $P$ values of
    every example and the PSNR from it,

    $$\text{mse} = \frac{1}{NP}\sum_{n,j} (\hat x_{nj} - x_{nj})^2, \qquad
      \text{psnr} = 10 \log_{10}\frac{R^2}{\text{mse}},$$

    and, for images of at least $11 \times 11$ pixels, the mean of each image's `ssim`;

    if ``model.loss`` reports ``code_counts``, the code usage of the whole set (see
    `code_usage`): the PSNR and perplexity come from dataset totals, not from means of
    per-batch values (the mean of per-image PSNRs is larger, by Jensen's inequality, and a
    batch sees fewer codes). Labels of ``(x, y)`` batches are passed to ``loss`` and
    ``reconstruct`` when they declare ``labels``; ``generator`` likewise.

    The model runs in ``eval()`` mode under ``torch.no_grad()`` (so an EMA codebook stays
    put); each submodule's previous mode is restored afterwards, also on an error.

    Args:
        model: an ``nn.Module`` with ``loss(x)``.
        batches: an iterable of tensors ``x`` or tuples ``(x, y, ...)``: float data, or
            integer code grids for a prior.
        data_range: $R$, the span of the data values: 1 for $[0, 1]$.
        generator: the noise source for models whose ``loss`` takes one.

    Returns:
        `Evaluation`.

    Raises:
        TypeError: if ``model`` has no ``loss`` method or a batch is not a float tensor.
        ValueError: if ``data_range <= 0``, the batches hold no example, or a
            reconstruction is not shaped like ``x``.

    Example:
        >>> import torch
        >>> from genlatent import VQVAE, ConvDecoder, ConvEncoder, VectorQuantizer
        >>> _ = torch.manual_seed(0)
        >>> model = VQVAE(ConvEncoder(3, 8, 4), VectorQuantizer(16, 4), ConvDecoder(4, 8, 3))
        >>> result = evaluate_model(model, [torch.rand(2, 3, 8, 8), torch.rand(1, 3, 8, 8)])
        >>> result.num_examples, int(result.counts.sum())  # 3 images x 2 x 2 positions
        (3, 12)
        >>> sorted(result.terms)
        ['codebook', 'commitment', 'loss', 'quantizer_loss', 'reconstruction_loss']
    """
    require_methods(model, ("loss",), "evaluation")
    if (
        isinstance(data_range, bool)
        or not isinstance(data_range, (int, float))
        or not (0.0 < data_range < math.inf)
    ):
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    device = module_device(model)
    reconstructs = callable(getattr(model, "reconstruct", None))
    sums = ExampleSums(device)
    counts: torch.Tensor | None = None
    squared_error = torch.zeros((), dtype=sums.dtype, device=device)
    ssim_total = torch.zeros((), dtype=sums.dtype, device=device)
    images = reconstructs
    num_values = 0
    with _evaluation_mode(model):
        for index, batch in enumerate(batches):
            x = _batch_data(batch, index, codes=True).to(device, non_blocking=True)
            if x.shape[0] == 0:  # nothing to add; a loss of no examples is NaN
                continue
            labels = _batch_labels(batch, device)
            parts = loss_parts(_call(model.loss, x, labels, generator=generator))
            sums.add({"loss": parts.loss, **parts.terms}, examples=x.shape[0])
            if parts.code_counts is not None:
                batch_counts = parts.code_counts.to(sums.dtype)
                counts = batch_counts if counts is None else counts + batch_counts
            if reconstructs:
                reconstruction = _call(model.reconstruct, x, labels)
                squared_error += _squared_error(reconstruction, x, index)
                images = images and x.ndim == 4 and min(x.shape[2:]) >= SSIM_WINDOW
                if images:
                    per_image = ssim(reconstruction, x, data_range=data_range)
                    ssim_total += per_image.to(sums.dtype).sum()
            num_values += x.numel()
    if sums.examples == 0:
        raise ValueError("batches must yield at least one example, got none")
    result = Evaluation(sums.means(), sums.examples)
    if reconstructs:
        mse = squared_error.item() / max(num_values, 1)
        psnr = 10.0 * math.log10(data_range**2 / mse) if mse > 0 else math.inf
        result = dataclasses.replace(result, mse=mse, psnr=psnr)
        if images:
            result = dataclasses.replace(result, ssim=ssim_total.item() / sums.examples)
    if counts is not None:
        used, perplexity = code_usage(counts)
        result = dataclasses.replace(
            result, fraction_used=used, perplexity=perplexity, counts=counts.cpu()
        )
    return result


def _batch_labels(batch: object, device: torch.device) -> torch.Tensor | None:
    if isinstance(batch, (tuple, list)) and len(batch) > 1 and isinstance(batch[1], torch.Tensor):
        return batch[1].to(device)
    return None


def _squared_error(reconstruction: torch.Tensor, x: torch.Tensor, index: int) -> torch.Tensor:
    if reconstruction.shape != x.shape:
        raise ValueError(
            f"the model's reconstruction must have the shape of x {tuple(x.shape)}, "
            f"got {tuple(reconstruction.shape)} in batch {index}"
        )
    dtype = accumulator_dtype(x.device)
    return (reconstruction.to(dtype) - x.to(dtype)).pow(2).sum()
