r"""Adversarial losses of image tokenizers (VQGAN): hinge and non-saturating, and the
adaptive weight that balances the adversarial term against the reconstruction.

Every loss reads logit maps $(B, *)$ (a `PatchDiscriminator` gives $(B, 1, H', W')$),
averages each example's logits over its patches, then applies ``reduction`` over the
batch: ``"none"`` returns $(B,)$, ``"sum"`` its sum, ``"mean"`` its mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genlatent._validation import (
    check_floating,
    check_positive_float,
    check_reduction,
    check_same_shape,
    check_tensor,
)
from genlatent.functional._reduce import reduce_batch

__all__ = [
    "adaptive_weight",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "non_saturating_discriminator_loss",
    "non_saturating_generator_loss",
]


def _logits(name: str, logits: object) -> torch.Tensor:
    tensor = check_floating(name, logits)
    if tensor.ndim < 1:
        raise ValueError(f"{name} must have shape (B, *), got a scalar")
    return tensor


def _per_example(values: torch.Tensor) -> torch.Tensor:
    """The mean over every dim but the batch's, $(B,)$."""
    return values.flatten(1).mean(dim=1) if values.ndim > 1 else values


def _pair(real_logits: object, fake_logits: object) -> tuple[torch.Tensor, torch.Tensor]:
    real = _logits("real_logits", real_logits)
    fake = _logits("fake_logits", fake_logits)
    check_same_shape("real_logits", real, "fake_logits", fake)
    return real, fake


def hinge_discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    r"""The discriminator's hinge loss (Lim and Ye 2017; VQGAN's ``hinge_d_loss``).

    $$\mathcal{L}_D = \tfrac{1}{2}\Big(\overline{\max(0,\ 1 - D(x))}
      + \overline{\max(0,\ 1 + D(\hat x))}\Big),$$

    the bars averaging over each example's patches. Zero once real logits are $\ge 1$ and
    fake ones $\le -1$.

    Args:
        real_logits: $D(x)$, logits of real images.
        fake_logits: $D(\hat x)$, logits of generated images (detach them to train only
            the discriminator).
        reduction: ``"none"``, ``"sum"`` or ``"mean"`` over the batch.

    Returns:
        $(B,)$ for ``"none"``, else a scalar.

    Raises:
        TypeError: if a logit map is not a floating-point tensor.
        ValueError: if the shapes differ or ``reduction`` is unknown.

    Shape:
        - real_logits, fake_logits: $(B, *)$, e.g. $(B, 1, H', W')$

    Example:
        >>> import torch
        >>> hinge_discriminator_loss(torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [1.0]]))
        tensor(0.7500)
    """
    reduction = check_reduction(reduction)
    real, fake = _pair(real_logits, fake_logits)
    per_example = 0.5 * (_per_example(F.relu(1.0 - real)) + _per_example(F.relu(1.0 + fake)))
    return reduce_batch(per_example, reduction)


def hinge_generator_loss(fake_logits: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    r"""The generator's side of the hinge game (VQGAN's ``g_loss``): $-\overline{D(\hat x)}$.

    Args:
        fake_logits: $D(\hat x)$, the discriminator's logits of generated images.
        reduction: ``"none"``, ``"sum"`` or ``"mean"`` over the batch.

    Returns:
        $(B,)$ for ``"none"``, else a scalar.

    Raises:
        TypeError: if ``fake_logits`` is not a floating-point tensor.
        ValueError: on an unknown ``reduction``.

    Shape:
        - fake_logits: $(B, *)$

    Example:
        >>> import torch
        >>> hinge_generator_loss(torch.tensor([[1.0, 3.0], [-2.0, 0.0]]), reduction="none")
        tensor([-2.,  1.])
    """
    reduction = check_reduction(reduction)
    return reduce_batch(-_per_example(_logits("fake_logits", fake_logits)), reduction)


def non_saturating_discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    r"""The discriminator's cross-entropy (Goodfellow et al. 2014; VQGAN's ``vanilla_d_loss``).

    $$\mathcal{L}_D = \tfrac{1}{2}\Big(\overline{-\log \sigma(D(x))}
      + \overline{-\log\big(1 - \sigma(D(\hat x))\big)}\Big)
      = \tfrac{1}{2}\Big(\overline{\operatorname{softplus}(-D(x))}
      + \overline{\operatorname{softplus}(D(\hat x))}\Big),$$

    computed in the softplus form, which neither overflows nor loses precision for large
    logits (``log(sigmoid(.))`` returns ``-inf`` below about -104 in float32).

    Args:
        real_logits: $D(x)$.
        fake_logits: $D(\hat x)$.
        reduction: ``"none"``, ``"sum"`` or ``"mean"`` over the batch.

    Returns:
        $(B,)$ for ``"none"``, else a scalar.

    Raises:
        TypeError: if a logit map is not a floating-point tensor.
        ValueError: if the shapes differ or ``reduction`` is unknown.

    Shape:
        - real_logits, fake_logits: $(B, *)$

    Example:
        >>> import torch
        >>> zero = torch.zeros(3, 1, 2, 2)
        >>> non_saturating_discriminator_loss(zero, zero)  # ln 2: a coin toss
        tensor(0.6931)
    """
    reduction = check_reduction(reduction)
    real, fake = _pair(real_logits, fake_logits)
    per_example = 0.5 * (_per_example(F.softplus(-real)) + _per_example(F.softplus(fake)))
    return reduce_batch(per_example, reduction)


def non_saturating_generator_loss(
    fake_logits: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    r"""The generator's non-saturating loss (Goodfellow et al. 2014, section 3).

    $$\mathcal{L}_G = \overline{-\log \sigma(D(\hat x))}
      = \overline{\operatorname{softplus}(-D(\hat x))},$$

    whose gradient stays large while the discriminator rejects the fakes (unlike
    $\log(1 - \sigma(D(\hat x)))$, which saturates there).

    Args:
        fake_logits: $D(\hat x)$.
        reduction: ``"none"``, ``"sum"`` or ``"mean"`` over the batch.

    Returns:
        $(B,)$ for ``"none"``, else a scalar.

    Raises:
        TypeError: if ``fake_logits`` is not a floating-point tensor.
        ValueError: on an unknown ``reduction``.

    Shape:
        - fake_logits: $(B, *)$

    Example:
        >>> import torch
        >>> non_saturating_generator_loss(torch.tensor([[-200.0], [0.0]]), reduction="none")
        tensor([200.0000,   0.6931])
    """
    reduction = check_reduction(reduction)
    fake = _logits("fake_logits", fake_logits)
    return reduce_batch(_per_example(F.softplus(-fake)), reduction)


def _gradient_norm(name: str, loss: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if loss.numel() != 1:
        raise ValueError(f"{name} must be a scalar loss, got shape {tuple(loss.shape)}")
    if not loss.requires_grad:
        raise ValueError(
            f"{name} must require grad (computed from last_layer_weight under autograd), "
            "got a tensor without a graph"
        )
    (gradient,) = torch.autograd.grad(loss, weight, retain_graph=True, allow_unused=True)
    if gradient is None:
        raise ValueError(f"{name} must depend on last_layer_weight, got no gradient")
    return torch.linalg.vector_norm(gradient)


def adaptive_weight(
    reconstruction_loss: torch.Tensor,
    adversarial_loss: torch.Tensor,
    last_layer_weight: torch.Tensor,
    *,
    eps: float = 1e-4,
    max_weight: float = 1e4,
) -> torch.Tensor:
    r"""VQGAN's adaptive weight of the adversarial term (Esser et al. 2021, eq. 7).

    $$\lambda = \operatorname{clip}\left(\frac{\lVert \nabla_{W} \mathcal{L}_{rec}\rVert_2}
      {\lVert \nabla_{W} \mathcal{L}_{GAN}\rVert_2 + \epsilon},\ 0,\ \lambda_{max}\right),$$

    with $W$ the weight of the decoder's last layer and $\lVert\cdot\rVert_2$ the norm of
    all its elements: the adversarial term then pushes the last layer as hard as the
    reconstruction does. $\lambda$ is returned detached (a constant for the backward
    pass); the graphs of both losses are kept, so ``backward`` can follow. Multiply it by
    a fixed weight (VQGAN's ``disc_weight``) before use.

    Args:
        reconstruction_loss: $\mathcal{L}_{rec}$, a scalar (VQGAN: the pixel plus
            perceptual loss).
        adversarial_loss: $\mathcal{L}_{GAN}$, the generator's scalar adversarial loss.
        last_layer_weight: $W$, a parameter both losses depend on.
        eps: $\epsilon$ (1e-4 in VQGAN).
        max_weight: $\lambda_{max}$ (1e4 in VQGAN).

    Returns:
        $\lambda$, a detached 0-dim tensor.

    Raises:
        TypeError: if an argument is not a tensor.
        ValueError: if a loss is not a scalar, has no graph or does not depend on
            ``last_layer_weight``, or ``eps`` or ``max_weight`` is not positive.

    Example:
        >>> import torch
        >>> weight = torch.tensor([3.0, 4.0], requires_grad=True)
        >>> reconstruction = 0.5 * weight.square().sum()  # gradient (3, 4): norm 5
        >>> adversarial = weight.sum()  # gradient (1, 1): norm sqrt(2)
        >>> adaptive_weight(reconstruction, adversarial, weight, eps=1e-12)
        tensor(3.5355)
    """
    check_tensor("reconstruction_loss", reconstruction_loss)
    check_tensor("adversarial_loss", adversarial_loss)
    check_tensor("last_layer_weight", last_layer_weight)
    eps = check_positive_float("eps", eps)
    max_weight = check_positive_float("max_weight", max_weight)
    reconstruction_norm = _gradient_norm("reconstruction_loss", reconstruction_loss,
                                         last_layer_weight)  # fmt: skip
    adversarial_norm = _gradient_norm("adversarial_loss", adversarial_loss, last_layer_weight)
    weight = reconstruction_norm / (adversarial_norm + eps)
    return weight.clamp(0.0, max_weight).detach()
