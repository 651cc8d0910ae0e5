"""Whole-dataset evaluation of a VAE (ELBO, IWAE, bits/dim) and a VQ-VAE (MSE, PSNR, codes)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from einops import rearrange

from genlatent._validation import check_floating, check_positive_int
from genlatent.losses.elbo import vae_loss
from genlatent.metrics.iwae import iwae_bound
from genlatent.metrics.stats import bits_per_dim, perplexity_from_counts
from genlatent.models.vae import VAE
from genlatent.models.vqvae import VQVAE

__all__ = ["VAEEvaluation", "VQVAEEvaluation", "evaluate_vae", "evaluate_vqvae"]


@dataclass(frozen=True)
class VAEEvaluation:
    """What `evaluate_vae` returns: dataset averages as Python floats, in nats per example.

    Every average is over examples (the sum over the whole set divided by the number of
    examples), not a mean of batch means, so a smaller last batch counts for what it holds.
    """

    negative_elbo: float
    r"""$-\mathrm{ELBO} = \text{reconstruction} + \text{kl} \ge -\log p(x)$, nats per example."""
    reconstruction: float
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


@dataclass(frozen=True, eq=False)
class VQVAEEvaluation:
    """What `evaluate_vqvae` returns: dataset-level reconstruction and codebook statistics."""

    mse: float
    """Mean squared error over every value of every example."""
    psnr: float
    r"""$10 \log_{10}(R^2 / \text{mse})$ in dB from the dataset MSE ($R$ = ``data_range``);
    ``inf`` when the MSE is 0."""
    perplexity: float
    r"""Perplexity of the code usage over the whole set, in $[1, K]$."""
    fraction_used: float
    """Fraction of the $K$ codes chosen at least once."""
    counts: torch.Tensor
    """How often each code was chosen, int64 on the CPU, shape $(K,)$ (for a histogram)."""
    num_examples: int
    """How many examples were evaluated."""


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


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        raise ValueError("model must have at least one parameter to infer its device") from None


def _batch_data(batch: object, index: int) -> torch.Tensor:
    """``x`` from a batch ``x`` or ``(x, y, ...)``, checked to be a floating ``(B, *)``."""
    x = batch[0] if isinstance(batch, (tuple, list)) and len(batch) > 0 else batch
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"batches must yield tensors x or tuples (x, y), got {type(x).__name__} "
            f"in batch {index}"
        )
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


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    # float64 sums stay exact to ~1e-16 over any dataset; MPS has no float64.
    return torch.float32 if device.type == "mps" else torch.float64


def evaluate_vae(
    model: VAE,
    batches: Iterable[torch.Tensor | tuple[torch.Tensor | None, ...]],
    *,
    iwae_samples: int = 0,
    iwae_chunk_size: int = 64,
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
        model: the VAE.
        batches: an iterable of float tensors ``x`` or tuples ``(x, y, ...)`` (labels are
            ignored), such as a ``DataLoader``; ``x`` in $[0, 1]$ for a Bernoulli likelihood.
        iwae_samples: $k$ for the importance-weighted bound; 0 skips it (5000 in
            Burda et al. 2016; cost grows linearly with $k$).
        iwae_chunk_size: samples decoded at once by `iwae_bound`.
        generator: source of all the noise, on the model's device.

    Returns:
        `VAEEvaluation` of Python floats: ``negative_elbo``, ``reconstruction``, ``kl``,
        ``bits_per_dim``, ``iwae_nll`` and ``iwae_bits_per_dim`` (``None`` without IWAE),
        and the counts.

    Raises:
        TypeError: if ``model`` is not a `VAE`, a batch is not a float tensor, or
            ``iwae_samples`` is not an int.
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
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a genlatent VAE, got {type(model).__name__}")
    if isinstance(iwae_samples, bool) or not isinstance(iwae_samples, int):
        raise TypeError(f"iwae_samples must be an int, got {type(iwae_samples).__name__}")
    if iwae_samples < 0:
        raise ValueError(f"iwae_samples must be >= 0 (0 skips the IWAE bound), got {iwae_samples}")
    check_positive_int("iwae_chunk_size", iwae_chunk_size)
    device = _model_device(model)
    dtype = _accumulator_dtype(device)
    # rows: reconstruction, kl, iwae bound (summed over examples)
    sums = torch.zeros(3, dtype=dtype, device=device)
    num_examples = 0
    values: int | None = None
    with _evaluation_mode(model):
        for index, batch in enumerate(batches):
            x = _batch_data(batch, index).to(device, non_blocking=True)
            values = _values_per_example(x, values, index)
            out = model(x, generator=generator)
            elbo = vae_loss(
                x, out.logits, out.mean, out.log_var, likelihood=model.likelihood, reduction="sum"
            )
            if iwae_samples > 0:
                iwae = iwae_bound(
                    model,
                    x,
                    num_samples=iwae_samples,
                    chunk_size=iwae_chunk_size,
                    generator=generator,
                    reduction="sum",
                )
            else:
                iwae = elbo.kl.new_zeros(())
            sums += torch.stack([elbo.reconstruction, elbo.kl, iwae]).to(dtype)
            num_examples += x.shape[0]
    if num_examples == 0 or values is None:
        raise ValueError("batches must yield at least one example, got none")
    reconstruction, kl, iwae_sum = (sums / num_examples).tolist()
    negative_elbo = reconstruction + kl
    iwae_nll = -iwae_sum if iwae_samples > 0 else None
    return VAEEvaluation(
        negative_elbo=negative_elbo,
        reconstruction=reconstruction,
        kl=kl,
        bits_per_dim=float(bits_per_dim(negative_elbo, values)),
        iwae_nll=iwae_nll,
        iwae_bits_per_dim=None if iwae_nll is None else float(bits_per_dim(iwae_nll, values)),
        iwae_samples=iwae_samples,
        num_examples=num_examples,
        values_per_example=values,
    )


def evaluate_vqvae(
    model: VQVAE,
    batches: Iterable[torch.Tensor | tuple[torch.Tensor | None, ...]],
    *,
    data_range: float = 1.0,
) -> VQVAEEvaluation:
    r"""Reconstruction error, PSNR and codebook usage of a VQ-VAE over a dataset.

    Over all $N$ examples of $P$ values each and the $M$ latent positions they produce,
    with $n_i$ the number of positions assigned to code $i$ of $K$:

    $$\text{mse} = \frac{1}{NP}\sum_{n,j} (\hat x_{nj} - x_{nj})^2, \qquad
      \text{psnr} = 10 \log_{10}\frac{R^2}{\text{mse}}, \qquad
      \text{perplexity} = \exp\Big(-\sum_i p_i \log p_i\Big),\; p_i = \frac{n_i}{M},$$

    and ``fraction_used`` $= |\{i : n_i > 0\}| / K$. The PSNR comes from the dataset MSE.
    It is *not* the mean of per-image PSNRs: since $-\log$ is convex, the mean of
    per-image PSNRs is greater than or equal to this value (Jensen), by more the more the
    per-image errors vary, and it is dominated by the easiest images. Report which one a
    number is. The perplexity likewise comes from the usage counts of the whole set, not
    from the mean of the per-batch perplexities of `VQVAE.forward` (a batch sees fewer
    codes, so those are lower).

    The model runs in ``eval()`` mode under ``torch.no_grad()`` (so an EMA codebook, which
    updates only in training, stays put); each submodule's previous mode is restored
    afterwards. ``x`` is moved to the model's device; sums and counts stay on it until a
    single synchronisation at the end.

    Args:
        model: the VQ-VAE; $K$ is read from ``model.quantizer.codebook.shape[0]``.
        batches: an iterable of float tensors ``x`` or tuples ``(x, y, ...)``.
        data_range: $R$, the span of the data values: 1 for $[0, 1]$, 2 for $[-1, 1]$.

    Returns:
        `VQVAEEvaluation` ``(mse, psnr, perplexity, fraction_used, counts, num_examples)``.

    Raises:
        TypeError: if ``model`` is not a `VQVAE`, its quantizer has no $(K, D)$
            ``codebook`` tensor, or a batch is not a float tensor.
        ValueError: if ``data_range <= 0``, the batches hold no example, the
            reconstruction is not shaped like ``x``, or the model returned code indices
            outside $[0, K)$.

    Shape:
        - each x: $(B, C, H, W)$; indices from the model $(B, h, w)$
        - counts: $(K,)$

    Example:
        >>> import torch
        >>> from genlatent import VQVAE, ConvDecoder, ConvEncoder
        >>> from genlatent.nn.quantize import VectorQuantizer
        >>> _ = torch.manual_seed(0)
        >>> model = VQVAE(ConvEncoder(3, 8, 4), VectorQuantizer(16, 4), ConvDecoder(4, 8, 3))
        >>> result = evaluate_vqvae(model, [torch.rand(2, 3, 8, 8), torch.rand(1, 3, 8, 8)])
        >>> result.counts.shape, int(result.counts.sum())  # 3 images x 2 x 2 positions
        (torch.Size([16]), 12)
        >>> 1.0 <= result.perplexity <= 16.0
        True
    """
    if not isinstance(model, VQVAE):
        raise TypeError(f"model must be a genlatent VQVAE, got {type(model).__name__}")
    if (
        isinstance(data_range, bool)
        or not isinstance(data_range, (int, float))
        or not (0.0 < data_range < math.inf)
    ):
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    device = _model_device(model)
    dtype = _accumulator_dtype(device)
    codebook = getattr(model.quantizer, "codebook", None)
    if not isinstance(codebook, torch.Tensor) or codebook.ndim != 2:
        raise TypeError(
            "model.quantizer.codebook must be a (K, D) tensor, "
            f"got {type(codebook).__name__}"
            + (f" of shape {tuple(codebook.shape)}" if isinstance(codebook, torch.Tensor) else "")
        )
    num_codes = codebook.shape[0]
    squared_error = torch.zeros((), dtype=dtype, device=device)
    # one extra bin, K, collects out-of-range indices so a bad index is reported, not a
    # device-side assertion, without reading the values batch by batch
    counts = torch.zeros(num_codes + 1, dtype=torch.int64, device=device)
    num_examples = 0
    num_values = 0
    with _evaluation_mode(model):
        for index, batch in enumerate(batches):
            x = _batch_data(batch, index).to(device, non_blocking=True)
            out = model(x)
            if out.reconstruction.shape != x.shape:
                raise ValueError(
                    f"the model's reconstruction must have the shape of x {tuple(x.shape)}, "
                    f"got {tuple(out.reconstruction.shape)} in batch {index}"
                )
            error = (out.reconstruction.to(dtype) - x.to(dtype)).pow(2).sum()
            squared_error += error
            flat = rearrange(out.indices, "... -> (...)").long()
            flat = torch.where((flat >= 0) & (flat < num_codes), flat, num_codes)
            counts.index_add_(0, flat, torch.ones_like(flat))
            num_examples += x.shape[0]
            num_values += x.numel()
    if num_examples == 0:
        raise ValueError("batches must yield at least one example, got none")
    counts = counts.cpu()
    if int(counts[num_codes]) > 0:
        raise ValueError(
            f"the model returned {int(counts[num_codes])} code indices outside "
            f"[0, {num_codes}) (K = model.quantizer.codebook.shape[0] = {num_codes})"
        )
    counts = counts[:num_codes]
    mse = squared_error.item() / num_values if num_values > 0 else math.nan
    psnr = 10.0 * math.log10(data_range**2 / mse) if mse > 0 else math.inf
    return VQVAEEvaluation(
        mse=mse,
        psnr=psnr,
        perplexity=float(perplexity_from_counts(counts)),
        fraction_used=float((counts > 0).sum()) / num_codes,
        counts=counts,
        num_examples=num_examples,
    )
