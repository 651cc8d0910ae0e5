"""Tests for atomic checkpoints and safe loading."""

import os
import pickle

import pytest
import torch

from genlatent.train.checkpoint import (
    CheckpointError,
    atomic_save,
    load_checkpoint,
    load_latest_checkpoint,
)


def test_round_trip_and_previous_kept(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    atomic_save({"epoch": 1, "w": torch.ones(3)}, path, keep_previous=True)
    atomic_save({"epoch": 2, "w": torch.zeros(3)}, path, keep_previous=True)
    assert load_checkpoint(path)["epoch"] == 2
    assert load_checkpoint(tmp_path / "ck" / "last.prev.pt")["epoch"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.prev.pt", "last.pt"]
    mode = path.stat().st_mode & 0o777
    assert mode & 0o044, f"checkpoint should be readable like a normal file, mode {oct(mode)}"


def test_failed_save_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle this")

    with pytest.raises(RuntimeError, match="cannot pickle this"):
        atomic_save({"epoch": 2, "bad": Unsaveable()}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_truncated_checkpoint_is_named_and_falls_back(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path, keep_previous=True)
    atomic_save({"epoch": 2}, path, keep_previous=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"last\.pt is truncated or corrupt"):
        load_checkpoint(path)
    state, source = load_latest_checkpoint(path)
    assert state["epoch"] == 1
    assert source.name == "last.prev.pt"


def test_no_usable_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=r"no readable checkpoint: .*last\.pt does not exist"):
        load_latest_checkpoint(tmp_path / "last.pt")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt holds objects other than tensors"):
        load_checkpoint(path)
    assert not marker.exists()
    # and a plain pickle file (not torch's zip format) carrying the same payload
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(CheckpointError, match=r"raw\.pt"):
        load_checkpoint(raw)
    assert not marker.exists()


def test_non_dict_checkpoint(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match="must hold a dict, got list"):
        load_checkpoint(path)
