r"""MaskGIT (Chang et al. 2022): a bidirectional transformer that fills in masked codes in
parallel, a few steps per grid instead of one step per code."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange

from genlatent._device import module_device
from genlatent._validation import check_positive_int, check_reduction, check_tensor
from genlatent.functional._reduce import reduce_batch
from genlatent.pretrained import PretrainedMixin
from genlatent.priors._base import _CodeGridModel
from genlatent.priors._masking import gumbel_noise, random_mask, remaining_masked
from genlatent.priors._sampling import check_sampling_args, draw
from genlatent.priors.transformer import _TransformerLayers

__all__ = ["MaskGITLoss", "MaskGITPrior"]

_LN_2 = math.log(2.0)


class MaskGITLoss(NamedTuple):
    """What `MaskGITPrior.loss` returns; ``loss`` is minimised, every field is logged."""

    loss: torch.Tensor
    r"""Cross-entropy of the masked codes in nats per masked code, reduced over the batch.
    Not a likelihood: MaskGIT has none."""
    bits_per_masked_code: torch.Tensor
    r"""The same in bits: ``loss / ln 2``."""


class MaskGITPrior(_CodeGridModel, _TransformerLayers, PretrainedMixin):
    r"""A masked parallel prior over a grid of codes: MaskGIT (Chang et al. 2022).

    A bidirectional transformer (pre-norm blocks, attention over every position) reads the
    $T = hw$ codes with some replaced by a mask token $m$ and predicts every code:

    $$h^{(0)} = \big[\, s \text{ or } e_y,\; E[\tilde x_0] + P_0, \dots,
      E[\tilde x_{T-1}] + P_{T-1} \big], \qquad
      p(x_t \mid \tilde x, y) = \operatorname{softmax}\big(W \mathrm{LN}(h^{(L)}_{t+1})\big),$$

    with $\tilde x_t = m$ where masked and $x_t$ elsewhere, and a first token that is a
    learned vector $s$ (unconditional) or the class embedding $e_y$.

    Training (sec. 3.2) draws $r \sim U(0, 1)$ per grid, masks $\lceil \gamma(r) T \rceil$
    codes chosen uniformly, $\gamma(r) = \cos(\pi r / 2)$, and minimises the cross-entropy
    of the masked codes only:

    $$\mathcal{L} = -\frac{1}{|M|} \sum_{t \in M} \log p(x_t \mid \tilde x, y).$$

    `sample` starts from an all-masked grid and, at each of $S$ steps, draws every masked
    code from its predicted distribution, keeps the most confident and re-masks the rest
    (sec. 3.3). There is no exact likelihood (no `log_prob`): `loss` at a fixed
    ``mask_ratio`` is the measure to compare MaskGIT priors with each other, not with the
    bits per code of an autoregressive prior.

    A class-conditional prior built with ``label_dropout`` $p > 0$ replaces each training
    label by a null class $\varnothing$ (index ``num_classes``) with probability $p$, and
    samples with classifier-free guidance from
    $\ell(\varnothing) + s\,(\ell(y) - \ell(\varnothing))$, as the autoregressive priors.

    Args:
        codebook_size: $K$, the number of codes (the mask token is index $K$ of the
            embedding).
        grid_shape: $(h, w)$ of one grid of codes; or $(h, w, s)$ for $s$ stacked codes
            per position (residual stages or groups), $T = hws$ positions.
        layers: number of transformer blocks.
        heads: attention heads per block; must divide ``dim``.
        dim: width of the embeddings and the residual stream.
        dropout: dropout on attention weights and residual branches while training.
        num_classes: number of classes for a class-conditional prior; ``None`` for an
            unconditional one.
        label_dropout: the probability that a training label becomes the null class, for
            classifier-free guidance; 0 (the default) adds no null class.
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a non-int size or a ``grid_shape`` that is not a pair or a triple.
        ValueError: on a size below 1, ``heads`` not dividing ``dim``, or ``dropout``
            outside $[0, 1)$.

    Shape:
        - indices: $(B, h, w)$ integer codes (or $(B, h, w, s)$); labels: $(B,)$.
        - `logits`: $(B, K, h, w)$; `sample`: $(N, h, w)$ int64.

    Example:
        >>> import torch
        >>> prior = MaskGITPrior(16, (3, 3), layers=1, heads=2, dim=8)
        >>> indices = torch.randint(16, (4, 3, 3))
        >>> prior.loss(indices).loss.shape
        torch.Size([])
        >>> prior.sample(2, steps=3, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 3])
    """

    loss_unit = "nats/masked code"
    """What the loss terms are measured in: nats per masked code (not a likelihood)."""

    def __init__(
        self,
        codebook_size: int,
        grid_shape: Sequence[int],
        *,
        layers: int = 4,
        heads: int = 4,
        dim: int = 128,
        dropout: float = 0.0,
        num_classes: int | None = None,
        label_dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(codebook_size, grid_shape, num_classes, label_dropout)
        self.mask_token = self.codebook_size
        self._build_layers(
            self.codebook_size + 1, layers=layers, heads=heads, dim=dim, dropout=dropout,
            causal=False, device=device, dtype=dtype,
        )  # fmt: skip

    def _network(self, tokens: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Logits $(B, T, K)$ from flat tokens $(B, T)$ in $[0, K]$ ($K$: masked)."""
        return self.head(self._features(tokens, labels))

    def _features(self, tokens: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The normalised last hidden states $(B, T, D)$, the input of the head."""
        first = self._start_token(labels, tokens.shape[0])
        codes = self.code_embedding(tokens) + self.position_embedding
        x = self.embedding_dropout(torch.cat([first, codes], dim=1))
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x[:, 1:])

    def _tokens(self, indices: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Flat tokens $(B, T)$: the codes, with the mask token where ``mask`` is set."""
        flat = indices.reshape(indices.shape[0], -1)
        if mask is None:
            return flat
        mask = check_tensor("mask", mask)
        if mask.dtype != torch.bool or tuple(mask.shape) != tuple(indices.shape):
            raise ValueError(
                f"mask must be a bool tensor shaped like indices {tuple(indices.shape)}, "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
        return flat.masked_fill(mask.reshape(flat.shape), self.mask_token)

    def forward(
        self,
        indices: torch.Tensor,
        labels: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The logits of every code given the unmasked ones; see `logits`."""
        indices = self._check_indices(indices)
        batch = indices.shape[0]
        labels = self._check_labels(labels, batch)
        logits = self._network(self._tokens(indices, mask), labels)
        return rearrange(logits, "b t k -> b k t").reshape(
            batch, self.codebook_size, *self.grid_shape
        )

    def logits(
        self,
        indices: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r"""The logits of $p(x_t \mid \tilde x, y)$ at every position, in one pass.

        Every position attends to every other: the logits at one position depend on the
        codes before and after it, but not on the codes under ``mask`` (those are read as
        the mask token).

        Args:
            indices: the codes $x$, integers in $[0, K)$.
            labels: the class $y$ of each grid, required exactly when ``num_classes`` is set.
            mask: ``True`` where a code is hidden from the network; ``None`` hides none.

        Returns:
            Unnormalised log-probabilities over the codebook at every position.

        Raises:
            TypeError: if ``indices`` or ``labels`` is not an integer tensor.
            ValueError: on a shape other than $(B, h, w)$, codes or labels out of range
                (while value checks are on), labels given to an unconditional prior or
                missing for a conditional one, or a ``mask`` not bool and shaped like
                ``indices``.

        Shape:
            - indices, mask: $(B, h, w)$, or $(B, h, w, s)$ for stacked codes
            - labels: $(B,)$
            - output: $(B, K, h, w)$, or $(B, K, h, w, s)$
        """
        return self(indices, labels, mask)

    def loss(
        self,
        indices: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
        generator: torch.Generator | None = None,
        mask_ratio: float | None = None,
    ) -> MaskGITLoss:
        r"""Cross-entropy of the masked codes, in nats per masked code.

        $$\mathcal{L}(x) = -\frac{1}{|M|} \sum_{t \in M} \log p(x_t \mid \tilde x, y),$$

        with $M$ the masked positions of the grid (see `random_mask`), averaged over the
        batch for ``reduction="mean"``, summed for ``"sum"``, one per grid for ``"none"``.

        Args:
            indices: the codes $(B, h, w)$.
            labels: the classes $(B,)$, required when ``num_classes`` is set (an
                unconditional prior ignores them, as the other priors do).
            reduction: ``"mean"``, ``"sum"`` or ``"none"``.
            generator: draws the label dropout (in training mode), then the masks, on
                the indices' device.
            mask_ratio: mask $\max(1, \operatorname{round}(\rho T))$ codes of every grid
                instead of the cosine schedule's random count: a fixed-ratio measure
                for evaluation.

        Raises:
            ValueError: on an unknown ``reduction`` or a ``mask_ratio`` outside $(0, 1]$;
                otherwise as `logits`.
        """
        reduction = check_reduction(reduction)
        if mask_ratio is not None and not 0.0 < mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1] or None, got {mask_ratio}")
        indices = self._check_indices(indices)
        batch = indices.shape[0]
        labels = self._drop_labels(labels, batch, generator)
        mask = random_mask(
            batch, self.num_positions, mask_ratio=mask_ratio, generator=generator,
            device=indices.device,
        ).reshape(indices.shape)  # fmt: skip
        logits = self._network(self._tokens(indices, mask), labels)
        if logits.dtype not in (torch.float32, torch.float64):
            logits = logits.float()
        targets = indices.reshape(batch, -1)
        nll = F.cross_entropy(rearrange(logits, "b t k -> b k t"), targets, reduction="none")
        flat_mask = mask.reshape(batch, -1)
        loss = reduce_batch((nll * flat_mask).sum(dim=1) / flat_mask.sum(dim=1), reduction)
        return MaskGITLoss(loss, loss / _LN_2)

    @torch.no_grad()
    def sample(
        self,
        num: int,
        *,
        labels: torch.Tensor | None = None,
        steps: int = 8,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        guidance_scale: float = 1.0,
        choice_temperature: float = 4.5,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        r"""Draw ``num`` grids in ``steps`` parallel steps (MaskGIT sec. 3.3).

        From an all-masked grid, step $s = 1, \dots, S$: run the network once; draw every
        masked code from its logits (filtered by ``temperature``, ``top_k``, ``top_p``,
        see `filter_logits`; one uniform per code from ``generator``); score each drawn
        code by its confidence $c_t = \log p(\hat x_t) + \tau_c (1 - s/S)\, g_t$, with
        $g_t$ standard Gumbel noise and $\tau_c$ ``choice_temperature``; keep all but the
        $n_s = \min(\lceil \gamma(s / S) T \rceil, n_{s-1} - 1)$ least confident, which
        are masked again ($n_S = 0$: every code is drawn after $S$ steps). Codes kept at
        one step are never redrawn. With guidance, the logits are
        $\ell(\varnothing) + s_g(\ell(y) - \ell(\varnothing))$ at every step. Runs without
        gradients, on the parameters' device; call ``eval()`` first if ``dropout > 0``.

        Args:
            num: the number of grids $N$.
            labels: the class of each grid, $(N,)$, exactly when ``num_classes`` is set.
            steps: $S \ge 1$, network passes per grid; more than the $T$ codes of a grid
                run $T$ steps (each step draws at least one code).
            temperature: $\tau > 0$ of each draw; towards 0 the most likely code.
            top_k: draw among the ``top_k`` most likely codes only.
            top_p: draw among the smallest set of codes holding mass ``top_p`` only.
            guidance_scale: classifier-free guidance $s_g \ge 0$; 1 is the conditional
                model, 0 the unconditional one; needs ``label_dropout > 0``.
            choice_temperature: $\tau_c \ge 0$, the scale of the Gumbel noise in the
                confidence (4.5 in the MaskGIT code), annealed to 0 at the last step.
            generator: the source of randomness, on the parameters' device.

        Returns:
            The codes, int64 $(N, h, w)$.

        Raises:
            TypeError: on a wrong argument type.
            ValueError: if ``num < 1``, ``steps < 1``, ``temperature <= 0``,
                ``choice_temperature < 0``, or as the autoregressive priors' ``sample``.
        """
        check_positive_int("num", num)
        steps = min(check_positive_int("steps", steps), self.num_positions)
        if isinstance(choice_temperature, bool) or not isinstance(choice_temperature, (int, float)):
            raise TypeError(
                f"choice_temperature must be a float, got {type(choice_temperature).__name__}"
            )
        if not (choice_temperature >= 0 and math.isfinite(choice_temperature)):
            raise ValueError(
                f"choice_temperature must be >= 0 and finite, got {choice_temperature}"
            )
        labels = self._check_labels(labels, num)
        temperature, top_k, top_p = check_sampling_args(temperature, top_k, top_p)
        scale = self._check_guidance(guidance_scale)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        guided = scale != 1.0 and labels is not None
        if labels is not None and guided:  # one batch: the labels' rows, then the null class's
            labels = torch.cat([labels, torch.full_like(labels, self._embedded_classes - 1)])
        device = module_device(self)
        codes = torch.zeros(num, self.num_positions, dtype=torch.long, device=device)
        masked = torch.ones(num, self.num_positions, dtype=torch.bool, device=device)
        for step, remaining in enumerate(remaining_masked(self.num_positions, steps), start=1):
            tokens = codes.masked_fill(masked, self.mask_token)
            features = self._features(tokens.repeat(2, 1) if guided else tokens, labels)
            # the head runs on the masked positions only: (M, K) for M masked codes
            if guided:
                conditional, unconditional = (
                    self.head(f[masked]).float() for f in features.chunk(2)
                )
                logits = unconditional + scale * (conditional - unconditional)
            else:
                logits = self.head(features[masked]).float()
            drawn = draw(
                logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            codes = codes.masked_scatter(masked, drawn)
            if remaining == 0:
                break
            log_prob = torch.log_softmax(logits, dim=-1).gather(-1, drawn.unsqueeze(-1))[:, 0]
            noise_scale = choice_temperature * (1 - step / steps)
            if noise_scale > 0:
                noise = gumbel_noise(
                    tuple(masked.shape), generator=generator, device=device, dtype=log_prob.dtype
                )[masked]
                log_prob = log_prob + noise_scale * noise
            # kept codes have confidence +inf: only masked ones are masked again
            confidence = torch.full(masked.shape, math.inf, device=device, dtype=log_prob.dtype)
            confidence = confidence.masked_scatter(masked, log_prob)
            ranks = confidence.argsort(dim=1).argsort(dim=1)
            masked = ranks < remaining
        return codes.reshape(num, *self.grid_shape)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._layers_repr()}"
