r"""The rotation trick: a gradient estimator for vector quantization (Fifty et al. 2024).

"Restructuring Vector Quantization with the Rotation Trick" replaces the straight-through
copy of the gradient by a rotation and rescaling that carry the encoder output $e$ onto
its code $q$, treated as constants in the backward pass (their eq. 4 and section 4.2):

$$\tilde q = \operatorname{sg}\Big[\tfrac{\lVert q \rVert}{\lVert e \rVert} R\Big] e,
  \qquad R = I - 2 r r^\top + 2 \hat q \hat e^\top,
  \qquad r = \frac{\hat e + \hat q}{\lVert \hat e + \hat q \rVert},$$

with $\hat e = e / \lVert e \rVert$, $\hat q = q / \lVert q \rVert$. $R$ is the rotation in
the plane of $e$ and $q$ that takes $\hat e$ to $\hat q$ (a product of two Householder
reflections), so $\tilde q = q$ in value, and the gradient that reaches $e$ is
$\tfrac{\lVert q \rVert}{\lVert e \rVert} R^\top g$ rather than $g$: vectors in one
Voronoi cell are pushed apart or together according to the angle between them and the
code. $R e$ is applied without forming $R$: $R e = e - 2 r (r^\top e) + 2 \hat q \lVert e
\rVert$, $O(D)$ per row.
"""

from __future__ import annotations

import torch

from genlatent._validation import check_floating, check_same_shape
from genlatent.functional._dtype import compute_dtype

__all__ = ["rotation_trick"]


def rotation_trick(
    inputs: torch.Tensor, quantized: torch.Tensor, *, eps: float = 1e-6
) -> torch.Tensor:
    r"""Pass ``quantized`` forward and the rotated, rescaled gradient to ``inputs``.

    The value is ``quantized`` exactly (as `straight_through`); the gradient with respect
    to ``inputs`` is $\tfrac{\lVert q \rVert}{\lVert e \rVert} R^\top g$ per row (module
    docstring), with no gradient to ``quantized``. Where the rotation is undefined or
    unbounded, $\lVert e \rVert < \epsilon$, $\lVert q \rVert < \epsilon$ or
    $\lVert \hat e + \hat q \rVert < \epsilon$ (a code opposite the input), that row falls
    back to the straight-through gradient. Computed in at least float32 with autocast off.

    Args:
        inputs: the encoder output rows $e$.
        quantized: their codes $q$, same shape.
        eps: the norm below which a row falls back to straight-through.

    Returns:
        $\tilde q$: ``quantized`` in ``inputs``' dtype, differentiable with respect to
        ``inputs`` only.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if the shapes differ or are scalars.

    Shape:
        - inputs, quantized: $(*, D)$, e.g. $(N, D)$
        - output: $(*, D)$

    Example:
        >>> import torch
        >>> e = torch.tensor([[2.0, 0.0]], requires_grad=True)
        >>> q = torch.tensor([[0.0, 1.0]])  # a quarter turn away, half the length
        >>> out = rotation_trick(e, q)
        >>> out.detach()
        tensor([[0., 1.]])
        >>> out[0, 1].backward()  # the gradient (0, 1) rotated back and halved
        >>> e.grad.round(decimals=6)
        tensor([[0.5000, 0.0000]])
    """
    check_floating("inputs", inputs)
    check_floating("quantized", quantized)
    check_same_shape("inputs", inputs, "quantized", quantized)
    if inputs.ndim == 0:
        raise ValueError("inputs must have a vector dim (*, D), got a scalar")
    dtype = compute_dtype(inputs.dtype, quantized.dtype)
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        e = inputs.to(dtype)
        with torch.no_grad():
            q = quantized.detach().to(dtype)
            e_norm = e.norm(dim=-1, keepdim=True)
            q_norm = q.norm(dim=-1, keepdim=True)
            e_hat = e / e_norm.clamp_min(eps)
            q_hat = q / q_norm.clamp_min(eps)
            both = e_hat + q_hat
            both_norm = both.norm(dim=-1, keepdim=True)
            r = both / both_norm.clamp_min(eps)
            scale = q_norm / e_norm.clamp_min(eps)
            defined = (e_norm >= eps) & (q_norm >= eps) & (both_norm >= eps)
        # R e with R and the scale constant: e - 2 r (r.e) + 2 q_hat (e_hat.e)
        rotated = (
            e
            - 2 * r * (r * e).sum(-1, keepdim=True)
            + 2 * q_hat * (e_hat * e).sum(-1, keepdim=True)
        )
        surrogate = torch.where(defined, scale * rotated, e)
        # the value is exactly q; the gradient is the surrogate's
        return (q + (surrogate - surrogate.detach())).to(inputs.dtype)
