"""A small causal transformer over a grid of codes, with a key/value cache for sampling."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from genlatent._validation import check_positive_int
from genlatent.pretrained import PretrainedMixin
from genlatent.priors._base import _GridPrior

__all__ = ["TransformerPrior"]


class _KVCache:
    """Keys and values of every position seen so far, ``(B, heads, T, head_dim)`` each."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys = keys
        self.values = values


class _SelfAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017) through SDPA: causal, or over every
    position (``causal=False``, a bidirectional encoder)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
        *,
        causal: bool = True,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.causal = causal
        self.qkv = nn.Linear(dim, 3 * dim, device=device, dtype=dtype)
        self.proj = nn.Linear(dim, dim, device=device, dtype=dtype)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = rearrange(
            self.qkv(x), "b t (three heads d) -> three b heads t d", three=3, heads=self.heads
        )
        return q, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(x)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=self.causal)
        return self.proj(rearrange(y, "b heads t d -> b t (heads d)"))

    def step(self, x: torch.Tensor, cache: _KVCache, position: int) -> torch.Tensor:
        """Attend from the one new position ``x`` $(B, 1, D)$ to itself and the cached ones."""
        q, k, v = self._split(x)
        cache.keys[:, :, position : position + 1] = k
        cache.values[:, :, position : position + 1] = v
        keys = cache.keys[:, :, : position + 1]
        values = cache.values[:, :, : position + 1]
        # one query over the past and itself: nothing to mask
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, keys, values, dropout_p=dropout)
        return self.proj(rearrange(y, "b heads t d -> b t (heads d)"))


class _Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
        *,
        causal: bool = True,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.attention_norm = nn.LayerNorm(dim, **factory)
        self.attention = _SelfAttention(dim, heads, dropout, device, dtype, causal=causal)
        self.mlp_norm = nn.LayerNorm(dim, **factory)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim, **factory),
            nn.GELU(),
            nn.Linear(4 * dim, dim, **factory),
        )
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.residual_dropout(self.attention(self.attention_norm(x)))
        return x + self.residual_dropout(self.mlp(self.mlp_norm(x)))

    def step(self, x: torch.Tensor, cache: _KVCache, position: int) -> torch.Tensor:
        x = x + self.residual_dropout(self.attention.step(self.attention_norm(x), cache, position))
        return x + self.residual_dropout(self.mlp(self.mlp_norm(x)))


class _TransformerLayers(nn.Module):
    """What the transformer priors share: argument checks, embeddings (codes, positions, a
    start vector or the classes), pre-norm blocks and the head, GPT-2 initialisation.

    A base of `_CodeGridModel` subclasses, built by `_build_layers` after their own
    ``__init__`` (it reads ``codebook_size``, ``num_positions``, ``num_classes`` and
    ``_embedded_classes``); ``input_codes`` rows of code embeddings (MaskGIT adds a mask
    token), ``causal`` attention or not.
    """

    codebook_size: int
    num_classes: int | None
    if TYPE_CHECKING:  # properties of `_CodeGridModel`

        @property
        def num_positions(self) -> int: ...

        @property
        def _embedded_classes(self) -> int: ...

    def _build_layers(
        self,
        input_codes: int,
        *,
        layers: int,
        heads: int,
        dim: int,
        dropout: float,
        causal: bool,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        self.layers = check_positive_int("layers", layers)
        self.heads = check_positive_int("heads", heads)
        self.dim = check_positive_int("dim", dim)
        if dim % heads:
            raise ValueError(f"heads must divide dim, got dim={dim} and heads={heads}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise TypeError(f"dropout must be a float, got {type(dropout).__name__}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.code_embedding = nn.Embedding(input_codes, dim, **factory)
        self.position_embedding = nn.Parameter(torch.empty(self.num_positions, dim, **factory))
        self.start: nn.Parameter | None = None
        self.class_embedding: nn.Embedding | None = None
        if self.num_classes is None:
            self.start = nn.Parameter(torch.empty(dim, **factory))
        else:
            self.class_embedding = nn.Embedding(self._embedded_classes, dim, **factory)
        self.embedding_dropout = nn.Dropout(self.dropout)
        self.blocks = nn.ModuleList(
            _Block(dim, heads, self.dropout, device, dtype, causal=causal) for _ in range(layers)
        )
        self.final_norm = nn.LayerNorm(dim, **factory)
        self.head = nn.Linear(dim, self.codebook_size, bias=False, **factory)
        self._init_weights()

    def _init_weights(self) -> None:
        """N(0, 0.02) weights and zero biases, as GPT-2 (without its scaled residual init)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.position_embedding, std=0.02)
        if self.start is not None:
            nn.init.normal_(self.start, std=0.02)

    def _start_token(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor:
        """The input at position 0, ``(B, 1, D)``."""
        if self.class_embedding is not None and labels is not None:
            return rearrange(self.class_embedding(labels), "b d -> b 1 d")
        if self.start is not None and labels is None:
            return self.start.expand(batch, 1, self.dim)
        raise RuntimeError("labels must match num_classes (checked by _check_labels)")

    def _layers_repr(self) -> str:
        return f"layers={self.layers}, heads={self.heads}, dim={self.dim}, dropout={self.dropout}"


class TransformerPrior(_GridPrior, _TransformerLayers, PretrainedMixin):
    r"""A causal transformer prior over a grid of code indices, in raster order.

    A decoder-only transformer (Vaswani et al. 2017; the GPT-2 layout, pre-norm blocks)
    over the $T = hw$ codes flattened row by row. The input at position $t$ is the
    embedding of the previous code plus a learned position embedding; a learned start
    vector (the class embedding $e_y$ when ``num_classes`` is set) takes the place of
    the code before the first:

    $$h^{(0)}_t = \begin{cases} s \text{ or } e_y & t = 0 \\
        E[x_{t-1}] & t > 0 \end{cases} \; + P_t, \qquad
      p(x_t \mid x_{<t}, y) = \operatorname{softmax}\big(W\,
        \mathrm{LN}(h^{(L)}_t)\big),$$

    with causal self-attention (``F.scaled_dot_product_attention(is_causal=True)``), so
    the logits at $t$ see only $x_{<t}$. `sample` keeps each layer's keys and values, so
    each step runs the network on one new position: $O(T)$ positions in all instead of
    $O(T^2)$.

    Args:
        codebook_size: $K$, the number of codes.
        grid_shape: $(h, w)$ of one grid of codes, e.g. ``(8, 8)``; or $(h, w, s)$ for
            $s$ stacked codes per position (residual stages or groups), modelled as one
            sequence of $T = hws$ codes with the stage fastest.
        layers: number of transformer blocks.
        heads: attention heads per block; must divide ``dim``.
        dim: width of the embeddings and the residual stream.
        dropout: dropout on attention weights and residual branches while training.
        num_classes: number of classes for a class-conditional prior; ``None`` for an
            unconditional one.
        label_dropout: the probability that a training label is replaced by the null
            class (index ``num_classes``, an extra embedding row), which makes the prior
            also model the unconditional distribution, for classifier-free guidance
            (``sample(..., guidance_scale=)``); 0 (the default) adds no null class.
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a non-int size or a ``grid_shape`` that is not a pair or a triple.
        ValueError: on a size below 1, ``heads`` not dividing ``dim``, or ``dropout``
            outside $[0, 1)$. For the methods, see `logits`.

    Shape:
        - indices: $(B, h, w)$ integer codes (or $(B, h, w, s)$); labels: $(B,)$.
        - `logits`: $(B, K, h, w)$; `log_prob`: $(B,)$; `sample`: $(N, h, w)$ int64.

    Example:
        >>> import torch
        >>> prior = TransformerPrior(16, (3, 3), layers=1, heads=2, dim=8)
        >>> indices = torch.randint(16, (4, 3, 3))
        >>> prior.logits(indices).shape
        torch.Size([4, 16, 3, 3])
        >>> prior.log_prob(indices).shape
        torch.Size([4])
        >>> prior.loss(indices).bits_per_code.shape
        torch.Size([])
        >>> prior.sample(2, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 3])
    """

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
        self._build_layers(
            self.codebook_size, layers=layers, heads=heads, dim=dim, dropout=dropout,
            causal=True, device=device, dtype=dtype,
        )  # fmt: skip

    def _run(self, inputs: torch.Tensor) -> torch.Tensor:
        """Blocks and head over a sequence ``(B, t, D)`` of inputs at positions ``0..t-1``."""
        x = self.embedding_dropout(inputs + self.position_embedding[: inputs.shape[1]])
        for block in self.blocks:
            x = block(x)
        return self.head(self.final_norm(x))

    def _forward_logits(self, indices: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        codes = rearrange(self.code_embedding(indices), "b h w d -> b (h w) d")
        start = self._start_token(labels, indices.shape[0])
        # the input at t is the code at t - 1: the last code is never an input
        logits = self._run(torch.cat([start, codes[:, :-1]], dim=1))
        return rearrange(logits, "b (h w) k -> b k h w", h=self._plane[0])

    def _sequential_logits(
        self, codes: torch.Tensor, labels: torch.Tensor | None, *, use_cache: bool
    ) -> Iterator[torch.Tensor]:
        batch = codes.shape[0]
        start = self._start_token(labels, batch)
        if not use_cache:
            # the reference path: the whole prefix again at every step
            for t in range(self.num_positions):
                previous = self.code_embedding(codes[:, :t])
                yield self._run(torch.cat([start, previous], dim=1))[:, -1]
            return
        reference = self.position_embedding
        shape = (batch, self.heads, self.num_positions, self.dim // self.heads)
        caches = [
            _KVCache(
                torch.zeros(shape, device=reference.device, dtype=reference.dtype),
                torch.zeros(shape, device=reference.device, dtype=reference.dtype),
            )
            for _ in self.blocks
        ]
        blocks = cast("list[_Block]", list(self.blocks))
        for t in range(self.num_positions):
            token = start if t == 0 else self.code_embedding(codes[:, t - 1 : t])
            x = self.embedding_dropout(token + self.position_embedding[t : t + 1])
            for block, cache in zip(blocks, caches, strict=True):
                x = block.step(x, cache, t)
            yield self.head(self.final_norm(x))[:, 0]

    def sample(
        self,
        num: int,
        *,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        r"""Draw ``num`` grids of codes, one position at a time in raster order.

        At each position the logits are filtered (temperature, then top-k, then top-p;
        see `filter_logits`) and one code is drawn by inverting the cumulative
        distribution with one uniform from ``generator``. Dropout applies in training
        mode: call ``eval()`` first if ``dropout > 0``. Runs without gradients, on the
        parameters' device.

        Args:
            num: the number of grids $N$.
            labels: the class of each grid, $(N,)$, exactly when ``num_classes`` is set.
            temperature: $\tau > 0$; towards 0 the draw tends to the most likely code.
            top_k: draw among the ``top_k`` most likely codes only.
            top_p: draw among the smallest set of codes holding mass ``top_p`` only.
            generator: the source of randomness, on the parameters' device.
            guidance_scale: classifier-free guidance $s \ge 0$: each code is drawn from
                $\ell(\varnothing) + s(\ell(y) - \ell(\varnothing))$, the labels' logits
                and the null class's (see the module); 1 draws from the conditional
                model exactly as without guidance, 0 from the unconditional one. Needs
                a prior built with ``label_dropout > 0``.
            use_cache: keep keys and values between steps (one new position per step);
                ``False`` recomputes the whole prefix at each step, the slow reference.

        Returns:
            The codes, int64 $(N, h, w)$.

        Raises:
            TypeError: on a wrong argument type.
            ValueError: if ``num < 1``, ``temperature <= 0``, ``top_k < 1``, ``top_p``
                outside $(0, 1]$, or on bad ``labels`` (see `logits`).
        """
        return self._sample(
            num, labels, temperature, top_k, top_p, generator, use_cache=bool(use_cache),
            guidance_scale=guidance_scale,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._layers_repr()}"
