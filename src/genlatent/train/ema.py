"""The exponential moving average of a model's weights (timm's ``ModelEmaV2``, as a state).

After each optimizer step every floating parameter $w$ moves its average $\\bar w$ by

$$\\bar w \\leftarrow d\\,\\bar w + (1 - d)\\,w,$$

and every buffer (EMA codebook statistics, batch-norm counts...) is copied as it is.
The average starts at the weights the run starts from. The trainer evaluates, draws and
saves as ``best.pt`` the averaged weights; ``last.pt`` holds both, for an exact resume.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from genlatent._validation import check_in_open_interval

__all__ = ["WeightEMA"]


class WeightEMA:
    """The moving average of ``model``'s state (parameters averaged, buffers copied).

    Args:
        model: the trained model (its ``state_dict`` names and shapes are kept).
        decay: $d$ in $(0, 1)$; 0.999 averages over about the last 1,000 steps.

    Raises:
        ValueError: if ``decay`` is not in $(0, 1)$.

    Example:
        >>> model = nn.Linear(1, 1, bias=False)
        >>> _ = model.weight.data.fill_(0.0)
        >>> ema = WeightEMA(model, decay=0.5)
        >>> _ = model.weight.data.fill_(1.0)
        >>> ema.update(model)
        >>> ema.state_dict()["weight"].item()
        0.5
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = check_in_open_interval("ema_decay", decay, 0.0, 1.0)
        parameters = {id(p) for p in model.parameters()}
        self.averaged: dict[str, torch.Tensor] = {}
        self.copied: dict[str, torch.Tensor] = {}
        for name, value in _named_state(model).items():
            target = self.averaged if id(value) in parameters else self.copied
            target[name] = value.detach().clone()
        self.names = list(_named_state(model))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average towards ``model``'s current weights (no host sync)."""
        state = _named_state(model)
        floating = [n for n, t in self.averaged.items() if t.is_floating_point()]
        if floating:
            torch._foreach_lerp_(
                [self.averaged[n] for n in floating],
                [state[n].detach() for n in floating],
                1.0 - self.decay,
            )
        for name, value in self.averaged.items():
            if not value.is_floating_point():
                value.copy_(state[name])
        for name, value in self.copied.items():
            value.copy_(state[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged state, in ``model.state_dict()``'s order and names."""
        merged = self.averaged | self.copied
        return {name: merged[name] for name in self.names}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Take up an average `state_dict` returned (from a checkpoint)."""
        for table in (self.averaged, self.copied):
            for name, value in table.items():
                value.copy_(state[name])


def _named_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and persistent buffer by its ``state_dict`` name (the tensors
    themselves, not detached copies)."""
    state = dict(model.named_parameters())
    persistent = model.state_dict(keep_vars=True)
    for name, value in persistent.items():
        state.setdefault(name, value)
    return {name: state[name] for name in persistent}
