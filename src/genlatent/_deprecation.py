"""Old names kept for one release after a rename: they warn and forward to the new name."""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["add_renamed_field", "renamed_attribute", "renamed_method"]


def _warn(owner: str, old: str, new: str) -> None:
    warnings.warn(
        f"{owner}.{old} is deprecated since genlatent 0.2 and will be removed in 0.3: "
        f"use {owner}.{new}",
        DeprecationWarning,
        stacklevel=3,
    )


def renamed_attribute(owner: str, old: str, new: str) -> property:
    """A read-only property ``old`` that warns and returns the attribute ``new``.

    Args:
        owner: the class's name, for the message.
        old: the attribute's former name.
        new: its name now.

    Returns:
        The property, to assign to ``old`` in the class body.
    """

    def get(self: Any) -> Any:
        _warn(owner, old, new)
        return getattr(self, new)

    return property(get, doc=f"Deprecated alias of `{new}` (renamed in 0.2).")


def renamed_method(owner: str, old: str, new: str) -> Any:
    """A method ``old`` that warns and calls the method ``new`` with the same arguments.

    Args:
        owner: the class's name, for the message.
        old: the method's former name.
        new: its name now.

    Returns:
        The function, to assign to ``old`` in the class body.
    """

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        _warn(owner, old, new)
        return getattr(self, new)(*args, **kwargs)

    method.__name__ = old
    method.__doc__ = f"Deprecated alias of `{new}` (renamed in 0.2)."
    return method


def add_renamed_field(cls: type, old: str, new: str) -> None:
    """Give the NamedTuple ``cls`` a read-only ``old`` that warns and returns field ``new``.

    A NamedTuple's body may hold fields only, so the alias is set on the class after it.

    Args:
        cls: the NamedTuple class.
        old: the field's former name.
        new: its name now.
    """
    setattr(cls, old, renamed_attribute(cls.__name__, old, new))
