"""Deprecated: the model protocol moved to `genlatent._protocols` (public as `genlatent.Model`).

Importing this module warns; it re-exports `Model`, `LossParts`, `loss_parts` and
`declared_keywords` from their new place for one more release.
"""

from __future__ import annotations

import warnings

from genlatent._protocols import LossParts, Model, declared_keywords, loss_parts

__all__ = ["LossParts", "Model", "declared_keywords", "loss_parts"]

warnings.warn(
    "genlatent.models.protocol is deprecated: the model protocol moved to "
    "genlatent._protocols; use genlatent.Model, and import loss_parts and "
    "declared_keywords from genlatent._protocols",
    DeprecationWarning,
    stacklevel=2,
)
