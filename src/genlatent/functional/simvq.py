r"""SimVQ maths (Zhu et al. 2024, "Addressing Representation Collapse in Vector Quantized
Models with One Linear Layer"): the codebook as a frozen basis through a learned map.

Vanilla VQ moves only the codes that the nearest-code search selects, so unselected codes
stay where they are and die. SimVQ reparameterizes the codebook as

$$E = C W^\top, \qquad C \in \mathbb{R}^{K \times D} \text{ frozen (random)}, \quad
  W \in \mathbb{R}^{D \times D} \text{ learned},$$

(the paper writes $CW$ with $W$ acting on the right; here $W$ is stored as a linear
layer's weight, $E_k = W c_k$), and quantizes against $E$ with the usual VQ losses
(`genlatent.functional.quantize.vq_losses`): the codebook term
$\lVert \operatorname{sg}[z] - E_k \rVert^2$ trains $W$, which moves the *whole* codebook
(every code is $W c_k$), and the commitment term trains the encoder. $C$ never changes.
"""

from __future__ import annotations

import torch

from genlatent._validation import check_floating, check_ndim
from genlatent.functional._dtype import compute_dtype

__all__ = ["simvq_codebook"]


def simvq_codebook(basis: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""The implied codebook $E = C W^\top$: each frozen basis row $c_k$ mapped to $W c_k$.

    Computed in at least float32 with autocast off, so the codes (and the nearest-code
    search against them) are the same under mixed precision as in float32.

    Args:
        basis: the frozen codebook $C$.
        weight: the learned map $W$ (a linear layer's weight, output by input).

    Returns:
        $E$, differentiable with respect to ``weight`` (and ``basis``, which a module
        keeps frozen by holding it in a buffer).

    Raises:
        TypeError: on a non-float argument.
        ValueError: on shapes other than $(K, D)$ and $(D, D)$.

    Shape:
        - basis: $(K, D)$
        - weight: $(D, D)$
        - output: $(K, D)$

    Example:
        >>> import torch
        >>> simvq_codebook(torch.eye(2), torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
        tensor([[0., 2.],
                [1., 0.]])
    """
    check_floating("basis", basis)
    check_floating("weight", weight)
    check_ndim("basis", basis, (2,), "(K, D)")
    dim = basis.shape[1]
    if weight.shape != (dim, dim):
        raise ValueError(
            f"weight must have shape (D, D) = ({dim}, {dim}) for a basis of shape "
            f"{tuple(basis.shape)}, got shape {tuple(weight.shape)}"
        )
    dtype = compute_dtype(basis.dtype, weight.dtype)
    with torch.autocast(device_type=basis.device.type, enabled=False):
        return basis.to(dtype) @ weight.to(dtype).T
