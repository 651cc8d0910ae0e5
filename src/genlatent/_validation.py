"""Argument checks shared by every layer, and the switch for checks that read values.

Each check raises ``TypeError`` or ``ValueError`` with the argument's name, what was
expected and what came, so a bad call fails at the public boundary rather than deep
inside a matmul.

Two kinds of check:

- *Cheap* checks look only at metadata (type, dtype, rank, shape, Python numbers). They
  always run: they cost no device work.
- *Value* checks read tensor contents (NaN and infinity, targets outside $[0, 1]$). Each
  costs a reduction and a device-to-host synchronisation, so they run only while
  `get_validate_args` is true (`set_validate_args` switches them, as
  ``torch.distributions.Distribution.set_default_validate_args`` does).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch

__all__ = [
    "REDUCTIONS",
    "check_finite",
    "check_floating",
    "check_in_open_interval",
    "check_input_dtype",
    "check_ndim",
    "check_positive_int",
    "check_reduction",
    "check_same_shape",
    "check_tensor",
    "check_unit_interval",
    "get_validate_args",
    "set_validate_args",
    "validate_args",
]

# On unless Python runs with -O, as torch.distributions: see set_validate_args.
_VALIDATE_ARGS = __debug__


def set_validate_args(value: bool) -> None:
    """Switch the checks that read tensor values on or off, for the whole process.

    Shapes, dtypes and Python arguments are always checked: that costs nothing on the
    device. The *value* checks (NaN or infinite inputs where the maths needs finite ones,
    Bernoulli targets outside $[0, 1]$) read the tensors, one reduction and one
    device-to-host synchronisation per checked argument, which stalls a GPU pipeline.
    They sit behind this switch, as ``torch.distributions`` does with
    ``Distribution.set_default_validate_args``.

    **Default: on** (off under ``python -O``, like ``torch.distributions``). A wrong input
    found at the call that received it, with its name, beats a NaN found three layers
    later, and on a CPU or in a notebook the checks cost little. Turn them off in a
    tuned GPU training loop once it runs. The reference trainer
    (`genlatent.train.train`) runs its steps with them off: it checks every loss term for
    finiteness itself, once per step, without an extra synchronisation, and names the
    term that failed.

    Checked while on: `reparameterize`, `gaussian_kl`, `gaussian_log_likelihood`,
    `bernoulli_log_likelihood` (also targets in $[0, 1]$), `vae_loss`, `vq_losses`,
    `vqvae_loss`, `nearest_code` (and so `VectorQuantizer`'s forward and ``encode``).
    Inside a region that ``torch.compile`` traces they are skipped whatever the setting,
    so that checks never break the graph.

    Args:
        value: ``True`` to run the value checks, ``False`` to skip them.

    Raises:
        TypeError: if ``value`` is not a bool.

    Example:
        >>> import genlatent
        >>> genlatent.set_validate_args(False)  # a tuned training loop
        >>> genlatent.get_validate_args()
        False
        >>> genlatent.set_validate_args(True)
    """
    global _VALIDATE_ARGS
    if not isinstance(value, bool):
        raise TypeError(f"value must be a bool, got {type(value).__name__}")
    _VALIDATE_ARGS = value


def get_validate_args() -> bool:
    """Whether the checks that read tensor values run (see `set_validate_args`).

    Returns:
        The current setting, ``True`` by default.

    Example:
        >>> import genlatent
        >>> genlatent.get_validate_args()
        True
    """
    return _VALIDATE_ARGS


@contextlib.contextmanager
def validate_args(value: bool) -> Iterator[None]:
    """Set `set_validate_args` to ``value`` inside a ``with`` block, then restore it.

    For tests and scripts only: it flips the process-wide switch, so library code never
    enters it per call (pass ``validate=`` to the checking functions instead).
    """
    previous = get_validate_args()
    set_validate_args(value)
    try:
        yield
    finally:
        set_validate_args(previous)


def _checking_values(validate: bool | None = None) -> bool:
    """Value checks run: ``validate``, or the switch when it is ``None``; never while traced.

    ``validate`` is the explicit per-call choice of the functions that check values, so a
    caller that has checked its inputs already passes ``False`` instead of flipping the
    process-wide switch (thread-safe, and nothing for ``torch.compile`` to trace).
    """
    wanted = _VALIDATE_ARGS if validate is None else validate
    return wanted and not _compiling()


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(is_compiling()) if is_compiling is not None else False


def check_finite(name: str, tensor: torch.Tensor, validate: bool | None = None) -> None:
    """While value checks are on (``validate``, else the switch), require finite elements."""
    if not _checking_values(validate) or tensor.numel() == 0:
        return
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(
            f"{name} must be finite (no NaN or infinity), got {bad} non-finite of "
            f"{tensor.numel()} values in shape {tuple(tensor.shape)}"
        )


def check_unit_interval(name: str, tensor: torch.Tensor, validate: bool | None = None) -> None:
    """While value checks are on (``validate``, else the switch), require elements in [0, 1]."""
    if not _checking_values(validate) or tensor.numel() == 0:
        return
    low, high = torch.aminmax(tensor.detach())
    low_value, high_value = float(low), float(high)
    # NaN fails both comparisons, so it is reported here too
    if not (low_value >= 0.0 and high_value <= 1.0):
        raise ValueError(
            f"{name} must be in [0, 1] (Bernoulli targets), got values from "
            f"{low_value:.6g} to {high_value:.6g}"
        )


REDUCTIONS = ("none", "sum", "mean")


def check_tensor(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a tensor, else raise ``TypeError`` naming ``name``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_floating(name: str, value: object) -> torch.Tensor:
    """Require a real floating-point tensor (float16, bfloat16, float32, float64)."""
    tensor = check_tensor(name, value)
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {tensor.dtype}")
    return tensor


def check_input_dtype(name: str, value: torch.Tensor, parameter: torch.Tensor) -> None:
    """Require ``value`` to have ``parameter``'s dtype unless autocast casts them both.

    Without autocast a float64 batch into a float32 layer fails inside the matmul with a
    message that names neither; this names the argument and the fix. Autocast casts every
    floating tensor but float64, so mixed float16/bfloat16/float32 pass under it.
    """
    if value.dtype == parameter.dtype:
        return
    if torch.is_autocast_enabled(value.device.type) and torch.float64 not in (
        value.dtype,
        parameter.dtype,
    ):
        return
    raise TypeError(
        f"{name} must have the dtype of the module's parameters, {parameter.dtype}, got "
        f"{value.dtype} (convert it with .to({parameter.dtype}) or run under torch.autocast)"
    )


def check_ndim(name: str, tensor: torch.Tensor, allowed: Sequence[int], layout: str) -> None:
    """Require ``tensor.ndim`` to be one of ``allowed``; ``layout`` names the expected axes."""
    if tensor.ndim not in allowed:
        raise ValueError(
            f"{name} must have shape {layout} ({' or '.join(map(str, allowed))} dims), "
            f"got shape {tuple(tensor.shape)}"
        )


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Require two tensors of one shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_reduction(reduction: object) -> str:
    """Require one of ``"none"``, ``"sum"``, ``"mean"``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_positive_int(name: str, value: object) -> int:
    """Require an ``int`` (not ``bool``) that is at least 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_optional_positive_int(name: str, value: object) -> int | None:
    """Require ``None`` or an ``int`` (not ``bool``) that is at least 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1 or None, got {value}")
    return value


def check_non_negative_float(name: str, value: object) -> float:
    """Require a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return float(value)


def check_positive_float(name: str, value: object) -> float:
    """Require a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return float(value)


def check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """Require one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return str(value)


def check_in_open_interval(name: str, value: object, low: float, high: float) -> float:
    """Require a real number strictly between ``low`` and ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not low < value < high:
        raise ValueError(f"{name} must be in ({low}, {high}), got {value}")
    return float(value)


# Public as genlatent.set_validate_args / get_validate_args; the API reference lists them
# with the functional layer, whose value checks (and those above it) they switch.
set_validate_args.__module__ = get_validate_args.__module__ = "genlatent.functional"


def require_methods(
    obj: object,
    methods: Sequence[str],
    purpose: str,
    *,
    attributes: Sequence[str] = (),
) -> None:
    """Raise ``TypeError`` naming what ``obj`` lacks for ``purpose`` (capabilities, not classes).

    Example:
        >>> require_methods(object(), ("sample",), "sampling")
        Traceback (most recent call last):
        ...
        TypeError: sampling needs a model with a sample method; object has none
    """

    def article(name: str) -> str:
        return "an" if name[:1] in "aeiou" else "a"

    missing = [
        f"{article(name)} {name} method"
        for name in methods
        if not callable(getattr(obj, name, None))
    ]
    missing += [
        f"{article(name)} {name} attribute" for name in attributes if not hasattr(obj, name)
    ]
    if missing:
        raise TypeError(
            f"{purpose} needs a model with {' and '.join(missing)}; {type(obj).__name__} has none"
        )
