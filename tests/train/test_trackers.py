"""Trackers: what TensorBoard and W&B read back from a run equals its metrics.jsonl, and a
user's own tracker receives exactly those lines."""

from __future__ import annotations

import io
import json
import math
import re
import socket
import struct
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from genlatent import VAE, MLPDecoder, MLPEncoder, Tracker, fit
from genlatent.cli import main
from genlatent.train import RunDirectory
from genlatent.train.config import TRACKERS
from genlatent.train.trackers import _BUILT_IN

QUIET = {"log": lambda line: None, "show_progress": False, "device": "cpu"}
EXAMPLES, BATCH = 24, 8
STEPS_PER_EPOCH = math.ceil(EXAMPLES / BATCH)


def _model() -> VAE:
    torch.manual_seed(0)
    return VAE(MLPEncoder(64, 16, 2), MLPDecoder(2, 16, 64, out_shape=(1, 8, 8)))


def _images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (EXAMPLES, 1, 8, 8), dtype=torch.uint8, generator=generator)


def _fit(run: Path, epochs: int, trackers: list[Any], **options: Any) -> None:
    images = _images()
    fit(
        _model(), images, images[:8], run_dir=run, epochs=epochs, batch_size=BATCH, lr=1e-2,
        trackers=trackers, **QUIET, **options,
    )  # fmt: skip


def _steps(records: list[dict[str, Any]]) -> list[int]:
    """The global step of each line: whole epochs of ceil(N / B) steps."""
    return [record["epoch"] * STEPS_PER_EPOCH for record in records]


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _as_drawn(picture: np.ndarray, file: np.ndarray) -> np.ndarray:
    """The run's PNG file brought back to the size of ``picture`` (it enlarges each pixel)."""
    scale = file.shape[0] // picture.shape[0]
    assert file.shape[:2] == (picture.shape[0] * scale, picture.shape[1] * scale)
    return file[::scale, ::scale]


def _float32(value: float) -> float:
    return float(np.float32(value))  # TensorBoard keeps scalars in float32


# TensorBoard


def _tensorboard(run: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    everything = {"scalars": 0, "images": 0, "tensors": 0}
    events = EventAccumulator(str(run / "tensorboard"), size_guidance=everything)
    events.Reload()
    return events


def test_tensorboard_holds_every_metrics_line_at_its_step_the_pictures_and_config(tmp_path):
    run = tmp_path / "run"
    _fit(run, 2, ["tensorboard"])
    records = RunDirectory(run).read_metrics()
    events = _tensorboard(run)
    assert set(events.Tags()["scalars"]) == set(records[0])
    for name in records[0]:
        points = events.Scalars(name)
        assert [p.step for p in points] == _steps(records)
        assert [p.value for p in points] == [_float32(r[name]) for r in records]
    for name in ("reconstructions", "samples"):
        drawn = events.Images(name)
        assert [image.step for image in drawn] == _steps(records)
        last = np.asarray(Image.open(io.BytesIO(drawn[-1].encoded_image_string)))
        file = _png(run / f"{name}.png")
        np.testing.assert_array_equal(last, _as_drawn(last, file))
    (text,) = events.Tensors("config/text_summary")
    written = text.tensor_proto.string_val[0].decode()
    assert json.loads(written) == json.loads((run / "config.json").read_text())


def test_tensorboard_after_a_resume_shows_each_step_once(tmp_path):
    run = tmp_path / "run"
    _fit(run, 3, ["tensorboard"])
    # the third epoch's checkpoint is lost: resume goes back to the second and trains the
    # third again, whose points TensorBoard already holds
    (run / "checkpoints" / "last.pt").write_bytes(b"torn")
    _fit(run, 4, ["tensorboard"], resume=True)
    records = RunDirectory(run).read_metrics()
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    events = _tensorboard(run)
    for name in ("train_loss", "test_loss", "epoch"):
        points = events.Scalars(name)
        assert [p.step for p in points] == _steps(records)
        assert [p.value for p in points] == [_float32(r[name]) for r in records]
    assert [image.step for image in events.Images("samples")] == _steps(records)


def test_an_overwritten_run_starts_its_tensorboard_afresh(tmp_path):
    run = tmp_path / "run"
    _fit(run, 2, ["tensorboard"])
    _fit(run, 1, ["tensorboard"], overwrite=True)
    records = RunDirectory(run).read_metrics()
    assert len(records) == 1
    assert [p.step for p in _tensorboard(run).Scalars("train_loss")] == _steps(records)


# Weights & Biases, offline


def _wandb_records(path: Path) -> list[Any]:
    """The records of a W&B offline file (``run-ID.wandb``), read with W&B's own protobuf
    classes from its framing: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then
    LevelDB log blocks of 32 KiB holding chunks (crc32, length, type: 1 full, 2 first,
    3 middle, 4 last) of serialised ``Record`` messages."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0)
    block, header = 32768, 7
    position, chunks, records = header, [], []
    while position + header <= len(data):
        left = block - position % block
        if left < header:  # a block's tail too short for a chunk is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + header])
        if kind == 0:  # zeros: the rest of the block is padding
            position += left
            continue
        chunks.append(data[position + header : position + header + length])
        position += header + length
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(b"".join(chunks))
            records.append(record)
            chunks = []
    return records


def _wandb_run(run: Path) -> tuple[set[str], dict[int, dict[str, Any]], list[Path]]:
    """The run ids, the logged history by step, and the offline folders, of every process."""
    ids, history, folders = set(), {}, sorted((run / "wandb").glob("offline-run-*"))
    for folder in folders:
        for record in _wandb_records(next(folder.glob("run-*.wandb"))):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                ids.add(record.run.run_id)
            elif kind == "history":
                row = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                       for i in record.history.item}  # fmt: skip
                history.setdefault(row["_step"], {}).update(row, folder=folder)
    return ids, history, folders


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    # no network: a connection beyond this machine (W&B's own service runs on it) fails
    connect = socket.socket.connect

    def local_only(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"W&B offline opened a network connection to {address}")
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


def test_wandb_offline_files_hold_every_metrics_line_and_a_resume_continues_the_run(
    tmp_path, offline
):
    run = tmp_path / "run"
    _fit(run, 2, ["wandb"])
    _fit(run, 3, ["wandb"], resume=True)
    import wandb

    wandb.teardown()  # W&B's service writes the files: wait for it, as a process's exit does
    records = RunDirectory(run).read_metrics()
    ids, history, folders = _wandb_run(run)
    assert len(folders) == 2  # one per process, under the one W&B run id kept in the run
    assert ids == {(run / "wandb" / "run-id.txt").read_text().strip()}
    assert sorted(history) == _steps(records)
    for record, step in zip(records, _steps(records), strict=True):
        assert {k: history[step][k] for k in record} == record
    last = history[_steps(records)[-1]]
    image = _png(last["folder"] / "files" / last["samples/path"])
    np.testing.assert_array_equal(image, _as_drawn(image, _png(run / "samples.png")))


# your own tracker


class Recorder:
    """A user's tracker: keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, ...]] = []

    def start(self, run_dir: Path, config: Any, *, step: int) -> None:
        self.calls.append(("start", Path(run_dir), dict(config), step))

    def log_metrics(self, metrics: Any, step: int) -> None:
        self.calls.append(("metrics", dict(metrics), step))

    def log_images(self, name: str, image: torch.Tensor, step: int) -> None:
        self.calls.append(("images", name, image.clone(), step))

    def finish(self) -> None:
        self.calls.append(("finish",))


def test_your_own_tracker_receives_exactly_the_metrics_lines_pictures_and_config(tmp_path):
    run, first, second = tmp_path / "run", Recorder(), Recorder()
    assert isinstance(first, Tracker)
    _fit(run, 2, [first])
    _fit(run, 3, [second], resume=True)
    records = RunDirectory(run).read_metrics()
    config = json.loads((run / "config.json").read_text())
    assert config["trainer"]["log"] is None  # a tracker object is not a setting
    for recorder, lines, start in ((first, records[:2], 0), (second, records[2:], 6)):
        calls = recorder.calls
        assert calls[0][:2] == ("start", run)
        assert calls[0][3] == start == (lines[0]["epoch"] - 1) * STEPS_PER_EPOCH
        assert calls[-1] == ("finish",)
        metrics = [(c[1], c[2]) for c in calls if c[0] == "metrics"]
        assert metrics == list(zip(lines, _steps(lines), strict=True))
        images = [c for c in calls if c[0] == "images"]
        assert [(c[1], c[3]) for c in images] == [
            (name, step) for step in _steps(lines) for name in ("reconstructions", "samples")
        ]
    assert first.calls[0][2]["trainer"]["epochs"] == 2  # the config.json of its time
    assert second.calls[0][2] == config
    for name in ("reconstructions", "samples"):
        image = next(c[2] for c in reversed(second.calls) if c[:2] == ("images", name))
        assert image.dtype == torch.uint8
        picture = image.numpy().repeat(3, axis=-1)
        np.testing.assert_array_equal(picture, _as_drawn(picture, _png(run / f"{name}.png")))


def test_a_tracker_is_finished_when_training_stops_on_an_error(tmp_path):
    class Failing(Recorder):
        def log_metrics(self, metrics: Any, step: int) -> None:
            raise RuntimeError("the tracking server is down")

    failing = Failing()
    with pytest.raises(RuntimeError, match="server is down"):
        _fit(tmp_path / "run", 1, [failing])
    assert [c[0] for c in failing.calls] == ["start", "finish"]


def test_the_guides_mlflow_tracker_receives_every_line_and_resumes_its_run(tmp_path, monkeypatch):
    calls: list[tuple[Any, ...]] = []

    def start_run(run_id: str | None = None, run_name: str | None = None) -> Any:
        calls.append(("start_run", run_id, run_name))
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id or "new-id"))

    mlflow = types.SimpleNamespace(  # records what the guide's tracker asks of MLflow
        start_run=start_run,
        log_dict=lambda values, file: calls.append(("log_dict", file, values)),
        log_metrics=lambda values, step: calls.append(("log_metrics", values, step)),
        log_image=lambda image, key, step: calls.append(("log_image", key, step)),
        end_run=lambda: calls.append(("end_run",)),
    )
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    page = (Path(__file__).parents[2] / "docs" / "guides" / "trackers.md").read_text()
    (code,) = re.findall(r"^```python\n(.*?)^```$", page, re.M | re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, "trackers.md", "exec"), namespace)
    run = tmp_path / "run"
    _fit(run, 2, [namespace["MLflowTracker"]()])
    _fit(run, 3, [namespace["MLflowTracker"]()], resume=True)
    records = RunDirectory(run).read_metrics()
    assert [c for c in calls if c[0] == "start_run"] == [
        ("start_run", None, "run"),
        ("start_run", "new-id", "run"),  # the resumed run continues the MLflow run
    ]
    logged = [(c[1], c[2]) for c in calls if c[0] == "log_metrics"]
    assert logged == list(zip(records, _steps(records), strict=True))
    assert [c[1:] for c in calls if c[0] == "log_image"] == [
        (name, step) for step in _steps(records) for name in ("reconstructions", "samples")
    ]
    assert calls[-1] == ("end_run",)


# errors


@pytest.mark.parametrize(("name", "module"), [("tensorboard", "torch.utils.tensorboard"),
                                              ("wandb", "wandb")])  # fmt: skip
def test_a_missing_package_names_its_extra_before_anything_is_written(
    tmp_path, monkeypatch, name, module
):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    run = tmp_path / "run"
    with pytest.raises(
        ImportError, match=rf"\(--log {name}\) needs .* pip install 'genlatent\[{name}\]'"
    ):
        _fit(run, 1, [name])
    assert not run.exists()


def test_the_command_line_names_the_missing_extra(tmp_path, monkeypatch, cli_error):
    monkeypatch.setitem(sys.modules, "wandb", None)
    run = tmp_path / "run"
    argv = ["train", "vae", "--dataset", "digits", "--epochs", "1", "--train-limit", "32",
            "--log", "wandb", "--no-progress", "--out", str(run)]  # fmt: skip
    cli_error(argv, "genlatent[wandb]")
    assert not run.exists()


def test_bad_trackers_are_refused_by_name(tmp_path):
    with pytest.raises(TypeError, match=r"trackers\[1\] must be one of .* got object"):
        _fit(tmp_path / "a", 1, ["tensorboard", object()])
    with pytest.raises(ValueError, match=r"log must name trackers among .* got 'mlflow'"):
        _fit(tmp_path / "b", 1, ["mlflow"])
    with pytest.raises(ValueError, match="log must name each tracker once"):
        _fit(tmp_path / "c", 1, ["wandb", "wandb"])
    assert not any(tmp_path.iterdir())


def test_every_name_log_takes_has_a_tracker() -> None:
    assert set(_BUILT_IN) == set(TRACKERS)
    assert all(issubclass(tracker, Tracker) for tracker in _BUILT_IN.values())


# the command line


def test_log_is_recorded_and_kept_on_resume(tmp_path, capsys):
    run = tmp_path / "run"
    small = ["--dataset", "digits", "--train-limit", "32", "--test-limit", "16",
             "--batch-size", "16", "--no-progress"]  # fmt: skip
    assert main(["train", "vae", *small, "--epochs", "1", "--log", "tensorboard",
                 "--out", str(run)]) == 0  # fmt: skip
    assert json.loads((run / "config.json").read_text())["trainer"]["log"] == "tensorboard"
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    records = RunDirectory(run).read_metrics()
    steps = [p.step for p in _tensorboard(run).Scalars("train_loss")]
    assert steps == [r["epoch"] * 2 for r in records] == [2, 4]  # 32 examples, batch 16
    capsys.readouterr()
