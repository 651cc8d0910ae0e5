"""The restricted unpickler reads numpy arrays without numpy and refuses everything else."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from genlatent.data._unpickle import _DType, _NDArray, restricted_loads


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.arange(5, dtype=np.int64),
        np.arange(6, dtype=np.float32).reshape(3, 2),
        np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        np.zeros((0, 3), dtype=np.uint8),
    ],
    ids=["uint8", "int64", "float32", "fortran", "empty"],
)
def test_arrays_round_trip(protocol: int, array: np.ndarray) -> None:
    blob = pickle.dumps({b"data": array, b"labels": [1, 2], "set": {3}}, protocol=protocol)
    out = restricted_loads(blob)
    assert isinstance(out, dict)
    expected = torch.from_numpy(np.ascontiguousarray(array))
    assert out[b"data"].dtype == expected.dtype
    assert torch.equal(out[b"data"], expected)
    assert out[b"labels"] == [1, 2]
    assert out["set"] == {3}


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_bytes_values(protocol: int) -> None:
    blob = pickle.dumps({"b": b"xy", "e": b"", "ba": bytearray(b"q")}, protocol=protocol)
    assert restricted_loads(blob) == {"b": b"xy", "e": b"", "ba": bytearray(b"q")}


class _Evil:
    """Pickles to a call of ``func(*args)``."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, object]:
    touch = f"touch {marker}"
    return {
        "os.system": _Evil(os.system, touch),
        "eval": _Evil(eval, f"open({str(marker)!r}, 'w').close()"),
        "exec": _Evil(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess": _Evil(subprocess.call, ["touch", str(marker)]),
        "open": _Evil(open, str(marker), "w"),
    }


@pytest.mark.parametrize("kind", ["os.system", "eval", "exec", "subprocess", "open"])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_malicious_payload_is_refused(tmp_path: Path, kind: str, protocol: int) -> None:
    marker = tmp_path / "pwned"
    payload = {b"data": np.zeros((1, 3072), np.uint8), b"labels": _payloads(marker)[kind]}
    blob = pickle.dumps(payload, protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load global"):
        restricted_loads(blob)
    assert not marker.exists()


def test_refused_global_is_named() -> None:
    blob = b"cposix\nsystem\n(S'echo hi'\ntR."
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load global posix\.system"):
        restricted_loads(blob)
    py2_eval = b"c__builtin__\neval\n(S'1+1'\ntR."
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load global __builtin__\.eval"):
        restricted_loads(py2_eval)


def test_other_numpy_globals_are_refused() -> None:
    blob = pickle.dumps(np.float64(1.5), protocol=2)  # a numpy scalar, not an array
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load global numpy\..*scalar"):
        restricted_loads(blob)


def test_object_arrays_are_refused() -> None:
    blob = pickle.dumps(np.array([None, 1], dtype=object), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refused numpy dtype 'O8'"):
        restricted_loads(blob)


def test_codecs_encode_other_encoding_refused() -> None:
    blob = b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00abX\x05\x00\x00\x00utf-8\x86R."
    with pytest.raises(pickle.UnpicklingError, match=r"only latin1 is allowed"):
        restricted_loads(blob)


def test_bytes_of_int_refused() -> None:
    blob = b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x7f\x85R."  # bytes(2**31 - 2**24)
    with pytest.raises(pickle.UnpicklingError, match=r"refused bytes\(\) from int"):
        restricted_loads(blob)


def test_big_endian_refused() -> None:
    blob = pickle.dumps(np.arange(3, dtype=">i4"), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"big-endian numpy dtype 'i4'"):
        restricted_loads(blob)["x"]  # type: ignore[index]


def test_size_mismatch_refused() -> None:
    array = _NDArray()
    array.__setstate__((1, (4,), _DType("u1"), False, b"abc"))
    with pytest.raises(pickle.UnpicklingError, match=r"needs 4 bytes, found 3"):
        array.to_tensor()


def test_object_state_refused() -> None:
    with pytest.raises(pickle.UnpicklingError, match=r"object arrays are refused"):
        _NDArray().__setstate__((1, (2,), _DType("u1"), False, [None, 1]))


def test_frombuffer_needs_bytes() -> None:
    # _frombuffer(10**6, ...) would otherwise allocate a buffer from an int.
    from numpy._core.numeric import _frombuffer

    blob = pickle.dumps(_Evil(_frombuffer, 10**6, np.dtype("u1"), (10**6,), "C"), protocol=5)
    with pytest.raises(pickle.UnpicklingError, match=r"_frombuffer needs a byte buffer, got int"):
        restricted_loads(blob)
