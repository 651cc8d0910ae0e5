"""A pickle reader for numpy-written files that never imports numpy or runs their code.

``pickle.load`` calls any global a file names, so a crafted file runs arbitrary code.
:class:`RestrictedUnpickler` resolves only an explicit allow-list of globals, each
mapped to a small stand-in of ours:

- ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct`` with
  ``numpy.ndarray``: how protocols 0 to 4 rebuild an array; the array's ``__setstate__``
  tuple ``(version, shape, dtype, is_fortran, raw_bytes)`` is captured by
  :class:`_NDArray`.
- ``numpy.core.numeric._frombuffer`` / ``numpy._core.numeric._frombuffer``: protocol 5.
- ``numpy.dtype``: captured by :class:`_DType` (a handful of plain numeric dtypes).
- ``_codecs.encode`` restricted to latin-1: how Python 3 writes ``bytes`` at protocol 2.
- ``builtins`` (or Python 2 ``__builtin__``) ``set`` and ``frozenset``, and ``bytes`` and
  ``bytearray`` from a byte sequence only (``bytes(n)`` would allocate ``n`` bytes).

Everything else raises ``pickle.UnpicklingError`` naming the refused global.
"""

from __future__ import annotations

import io
import pickle
import sys
from typing import Any, BinaryIO

import torch

__all__ = ["RestrictedUnpickler", "restricted_loads", "to_tensors"]

# numpy dtype string (kind + itemsize) -> torch dtype; all plain numbers, no objects.
_DTYPES = {
    "u1": torch.uint8,
    "i1": torch.int8,
    "i2": torch.int16,
    "i4": torch.int32,
    "i8": torch.int64,
    "f4": torch.float32,
    "f8": torch.float64,
    "b1": torch.bool,
}
_LITTLE = sys.byteorder == "little"


class _DType:
    """Stand-in for ``numpy.dtype(spec, align, copy)``; keeps the spec and byte order."""

    def __init__(self, spec: object, align: object = False, copy: object = False) -> None:
        if isinstance(spec, bytes):
            spec = spec.decode("ascii")
        if not isinstance(spec, str) or spec not in _DTYPES:
            raise pickle.UnpicklingError(
                f"refused numpy dtype {spec!r}: only {sorted(_DTYPES)} are supported"
            )
        self.spec = spec
        self.byteorder = "="

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) < 2:
            raise pickle.UnpicklingError(f"unexpected numpy dtype state {state!r}")
        order = state[1]
        self.byteorder = order.decode("ascii") if isinstance(order, bytes) else str(order)

    @property
    def torch_dtype(self) -> torch.dtype:
        little = self.byteorder == "<" or (self.byteorder == "=" and _LITTLE)
        if self.byteorder != "|" and not little and self.spec not in ("u1", "i1", "b1"):
            raise pickle.UnpicklingError(f"big-endian numpy dtype {self.spec!r} is not supported")
        return _DTYPES[self.spec]


class _NDArray:
    """Stand-in for ``numpy.ndarray``: captures shape, dtype and raw bytes."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] = (0,)
        self.dtype: _DType | None = None
        self.fortran = False
        self.data: bytes | bytearray = b""

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]  # drop the version number
        if not isinstance(state, tuple) or len(state) != 4:
            raise pickle.UnpicklingError("unexpected numpy.ndarray state")
        shape, dtype, fortran, data = state
        if isinstance(data, str):  # a Python 2 str read with encoding="latin1"
            data = data.encode("latin1")
        if not isinstance(dtype, _DType) or not isinstance(data, (bytes, bytearray)):
            raise pickle.UnpicklingError(
                "numpy.ndarray state must hold a plain dtype and raw bytes "
                "(object arrays are refused)"
            )
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.fortran = bool(fortran)
        self.data = data

    def to_tensor(self) -> torch.Tensor:
        """Copy the captured bytes into a tensor of the captured shape and dtype."""
        if self.dtype is None:
            raise pickle.UnpicklingError("numpy.ndarray was never given its state")
        dtype = self.dtype.torch_dtype
        count = 1
        for d in self.shape:
            count *= d
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(self.data) != count * itemsize:
            raise pickle.UnpicklingError(
                f"numpy.ndarray of shape {self.shape} and dtype {self.dtype.spec} needs "
                f"{count * itemsize} bytes, found {len(self.data)}"
            )
        if count == 0:
            return torch.empty(self.shape, dtype=dtype)
        data = self.data if isinstance(self.data, bytearray) else bytearray(self.data)
        flat = torch.frombuffer(data, dtype=dtype)
        if self.fortran:
            return flat.reshape(self.shape[::-1]).permute(*range(len(self.shape) - 1, -1, -1))
        return flat.reshape(self.shape)


def _reconstruct(subtype: object, shape: object, dtype: object) -> _NDArray:
    if subtype is not _NDArray:
        raise pickle.UnpicklingError("_reconstruct may only build numpy.ndarray")
    return _NDArray()


def _frombuffer(buf: object, dtype: object, shape: object, order: object) -> _NDArray:
    if not isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        raise pickle.UnpicklingError(f"_frombuffer needs a byte buffer, got {type(buf).__name__}")
    data = buf if isinstance(buf, bytearray) else bytearray(memoryview(buf))
    array = _NDArray()
    array.__setstate__((shape, dtype, order == "F", data))
    return array


def _encode(text: object, encoding: object = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(
            f"refused _codecs.encode with encoding {encoding!r}: only latin1 is allowed"
        )
    return text.encode("latin1")


def _bytes_like(kind: type) -> Any:
    """``bytes`` or ``bytearray`` from a byte sequence; refuse ``bytes(n)`` (allocates n)."""

    def build(source: object = b"", *args: object) -> bytes | bytearray:
        if isinstance(source, int) or len(args) > 1:
            raise pickle.UnpicklingError(f"refused {kind.__name__}() from {type(source).__name__}")
        if isinstance(source, str):
            return kind(source, *args)
        return kind(source)

    return build


_BYTES = _bytes_like(bytes)
_BYTEARRAY = _bytes_like(bytearray)

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): _NDArray,
    ("numpy", "dtype"): _DType,
    ("_codecs", "encode"): _encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytes"): _BYTES,
    ("builtins", "bytearray"): _BYTEARRAY,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "bytes"): _BYTES,
    ("__builtin__", "bytearray"): _BYTEARRAY,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-listed globals (see the module docstring).

    Arrays come back as stand-ins; :func:`to_tensors` turns them into tensors.

    Raises:
        pickle.UnpicklingError: on any other global, naming it.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: only numpy arrays of plain "
                f"numbers and builtin containers are allowed"
            ) from None


def to_tensors(obj: object) -> object:
    """Replace every captured array in nested dicts, lists and tuples by a tensor."""
    if isinstance(obj, _NDArray):
        return obj.to_tensor()
    if isinstance(obj, dict):
        return {key: to_tensors(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [to_tensors(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(to_tensors(value) for value in obj)
    return obj


def restricted_loads(data: bytes | BinaryIO) -> object:
    """Unpickle ``data`` (bytes or a binary file) safely; arrays become tensors.

    Strings written by Python 2 come back as ``bytes`` (``encoding="bytes"``), so the
    official CIFAR-10 batches have keys ``b"data"`` and ``b"labels"``.

    Example:
        >>> import pickle
        >>> from genlatent.data._unpickle import restricted_loads
        >>> restricted_loads(pickle.dumps({b"labels": [3, 1]}, protocol=2))
        {b'labels': [3, 1]}
        >>> restricted_loads(pickle.dumps(print))
        Traceback (most recent call last):
        ...
        _pickle.UnpicklingError: refused to load global builtins.print: ...
    """
    file = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return to_tensors(RestrictedUnpickler(file, encoding="bytes").load())
