"""`genlatent.pretrained`: the file format, the config schema, its safety rule, errors, the Hub."""

import json
import struct
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import genlatent
from genlatent import VAE, MLPDecoder, MLPEncoder, PretrainedMixin, from_pretrained
from genlatent.models.presets import mnist_vae

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "BOOL": torch.bool}


class Scaler(nn.Module, PretrainedMixin):
    """A user's model: JSON arguments, a nested genlatent module, a buffer."""

    def __init__(self, features, widths=(3,), *, scale=2.0, name="s", options=None, dtype=None):
        super().__init__()
        self.options = options
        self.encoder = MLPEncoder(features, widths, 2, activation=nn.SiLU, dtype=dtype)
        self.scale = scale
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def forward(self, x):
        self.calls += 1
        return self.encoder(x).mean * self.scale


class Child(Scaler):
    """A subclass with its own constructor: the outermost call is the one recorded."""

    def __init__(self, features, *, extra=1):
        super().__init__(features, (4, 4), scale=float(extra))


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Parse the safetensors format by hand: 8-byte little-endian header size, JSON, bytes."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    body = data[8 + size :]
    header.pop("__metadata__", None)
    spans, tensors = [], {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        spans.append((start, end))
        dtype = _DTYPES[entry["dtype"]]
        raw = bytearray(body[start:end])
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(entry["shape"])
    covered = 0
    for start, end in sorted(spans):  # the tensors tile the body exactly, no gap, no overlap
        assert start == covered
        covered = end
    assert covered == len(body)
    return tensors


def test_weights_file_is_plain_safetensors_with_no_pickle(tmp_path):
    model = genlatent.VQVAE(
        genlatent.ConvEncoder(1, 8, 4),
        genlatent.VectorQuantizer(16, 4, ema=True, restart_dead_codes=2),
        genlatent.ConvDecoder(4, 8, 1),
    )
    model(torch.rand(2, 1, 8, 8))
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    data = (tmp_path / "model.safetensors").read_bytes()
    assert b"\x80\x04" not in data[:16]  # no pickle protocol marker at the start
    tensors = _read_safetensors(tmp_path / "model.safetensors")
    state = model.state_dict()
    assert tensors.keys() == state.keys()
    for name, tensor in state.items():
        assert torch.equal(tensors[name], tensor), name
    assert tensors["grid_shape"].tolist() == [2, 2]


def test_config_json_schema(tmp_path):
    VAE(
        MLPEncoder(6, (8,), 2, dtype=torch.float64),
        MLPDecoder(2, 8, 6, activation=nn.Tanh, dtype=torch.float64, device="cpu"),
    ).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["format"] == "genlatent.pretrained"
    assert config["format_version"] == 1
    assert config["genlatent_version"] == genlatent.__version__
    assert config["class"] == "genlatent.VAE"
    decoder = config["arguments"]["decoder"]
    assert decoder["class"] == "genlatent.MLPDecoder"
    assert decoder["arguments"]["activation"] == {"type": "torch.nn.Tanh"}
    assert decoder["arguments"]["dtype"] == {"dtype": "float64"}
    assert "device" not in decoder["arguments"]  # placement is not recorded
    assert config["arguments"]["encoder"]["arguments"]["hidden_features"] == [8]


def test_users_own_model_round_trips(tmp_path):
    torch.manual_seed(0)
    model = Scaler(5, [4, 3], scale=0.5, name="mine", options={"a": [1, 2], "b": None})
    model(torch.rand(2, 5))  # the buffer moves
    model.save_pretrained(tmp_path)
    copy = Scaler.from_pretrained(tmp_path)
    assert copy.options == {"a": (1, 2), "b": None}  # arrays come back as tuples
    assert int(copy.calls) == 1
    x = torch.rand(3, 5)
    assert torch.equal(copy(x), model(x))


def test_subclass_records_its_own_arguments_once(tmp_path):
    model = Child(5, extra=3)
    assert model.pretrained_arguments() == {"features": 5, "extra": 3}
    model.save_pretrained(tmp_path)
    copy = from_pretrained(tmp_path)
    assert type(copy) is Child
    assert copy.scale == 3.0
    Scaler(5).save_pretrained(tmp_path / "parent")
    with pytest.raises(TypeError, match=r"holds a .*Scaler, not a Child"):
        Child.from_pretrained(tmp_path / "parent")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: MLPEncoder(4, 3, 2, activation=lambda: nn.LeakyReLU(0.1)),
            r"MLPEncoder argument 'activation' must be a JSON value .* got the function "
            r".*<lambda>",
        ),
        (
            lambda: MLPEncoder(4, 3, 2, activation=nn.LeakyReLU(0.1)),
            r"MLPEncoder argument 'activation' must be .* got LeakyReLU, an nn.Module that "
            "does not inherit PretrainedMixin",
        ),
        (
            lambda: VAE(nn.Linear(4, 4), MLPDecoder(2, 3, 4)),
            r"VAE argument 'encoder' must be .* got Linear, an nn.Module",
        ),
        (lambda: Scaler(4, scale=float("nan")), r"Scaler argument 'scale' must be .* got nan"),
        (
            lambda: Scaler(4, options={1: 2}),
            r"Scaler argument 'options' must be .* got builtins.dict",
        ),
    ],
)
def test_arguments_outside_the_schema_raise_a_named_type_error(build, match, tmp_path):
    model = build()  # construction still works
    with pytest.raises(TypeError, match=match):
        model.save_pretrained(tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_a_replaced_submodule_is_refused(tmp_path):
    model = mnist_vae(latent_dim=2)
    model.encoder = MLPEncoder(784, 10, 2)
    with pytest.raises(ValueError, match=r"argument 'encoder' is no longer part of the model"):
        model.save_pretrained(tmp_path)


def _write_config(folder: Path, arguments_of: dict) -> None:
    mnist_vae(latent_dim=2).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(arguments_of)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"class": "os.system"}, TypeError, r"'os.system', which is not an nn.Module class: ref"),
        ({"class": "not_imported_pkg.Model"}, ValueError, r"not found: .* import its module"),
        (
            {"class": "torch.nn.Linear"},
            TypeError,
            "does not inherit genlatent.PretrainedMixin: refused",
        ),
        ({"class": "torch.save"}, TypeError, r"not an nn.Module class: refused .*function"),
        ({"class": "builtins.dict"}, TypeError, "got the class builtins.dict"),
        ({"class": "VAE"}, ValueError, "must be a dotted name"),
    ],
)
def test_configs_that_name_anything_but_a_mixin_module_are_refused(change, error, match, tmp_path):
    _write_config(tmp_path, change)
    with pytest.raises(error, match=match):
        from_pretrained(tmp_path)


def test_nested_classes_and_types_are_checked_too(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(torch, "_pretrained_probe", lambda *a: called.append(a), raising=False)
    _write_config(tmp_path, {})
    config = json.loads((tmp_path / "config.json").read_text())
    config["arguments"]["encoder"] = {"class": "torch._pretrained_probe", "arguments": {}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(TypeError, match=r"not an nn.Module class: refused"):
        from_pretrained(tmp_path)
    config["arguments"]["encoder"] = {"class": "torch.nn.Linear", "arguments": {}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(TypeError, match=r"does not inherit genlatent.PretrainedMixin"):
        from_pretrained(tmp_path)
    config["arguments"]["encoder"]["arguments"] = {}
    config["arguments"]["encoder"] = {
        "class": "genlatent.MLPEncoder",
        "arguments": {"in_features": 784, "hidden_features": [4], "latent_dim": 2,
                      "activation": {"type": "torch._pretrained_probe"}},
    }  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(TypeError, match=r"not an nn.Module class"):
        from_pretrained(tmp_path)
    assert called == []


def test_missing_and_corrupt_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"neither a folder"):
        from_pretrained(tmp_path / "nowhere")
    mnist_vae(latent_dim=2).save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"is a file"):
        from_pretrained(tmp_path / "config.json")
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model.safetensors is truncated or corrupt"):
        from_pretrained(tmp_path)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match=r"model.safetensors does not exist"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json is corrupt: not valid JSON"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match=r"not a genlatent pretrained config"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps({"format": "genlatent.pretrained", "format_version": 2})
    )
    with pytest.raises(ValueError, match=r"format_version 2; .* upgrade"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config.json does not exist"):
        from_pretrained(tmp_path)


def test_weights_that_do_not_fit_the_config_are_a_clear_error(tmp_path):
    mnist_vae(latent_dim=2).save_pretrained(tmp_path / "a")
    mnist_vae(latent_dim=3).save_pretrained(tmp_path / "b")
    (tmp_path / "b" / "model.safetensors").replace(tmp_path / "a" / "model.safetensors")
    fits = r"does not fit the VAE that config.json describes: .*size mismatch"
    with pytest.raises(ValueError, match=fits):
        from_pretrained(tmp_path / "a")
    with pytest.raises(ValueError, match=r"revision applies to a Hub repository"):
        from_pretrained(tmp_path / "a", revision="main")


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """A ``huggingface_hub`` that keeps repositories in a folder: no network."""
    store = tmp_path / "hub"
    calls = []
    hub = types.ModuleType("huggingface_hub")

    def create_repo(repo_id, *, private=None, token=None, exist_ok=False):
        calls.append(("create_repo", repo_id, private, token, exist_ok))
        (store / repo_id).mkdir(parents=True, exist_ok=True)

    def upload_folder(*, repo_id, folder_path, commit_message, token=None):
        calls.append(("upload_folder", repo_id, commit_message, token))
        for path in Path(folder_path).iterdir():
            (store / repo_id / path.name).write_bytes(path.read_bytes())
        return f"https://huggingface.co/{repo_id}/commit/1"

    def snapshot_download(*, repo_id, revision=None, allow_patterns=None):
        calls.append(("snapshot_download", repo_id, revision, tuple(allow_patterns)))
        return str(store / repo_id)

    hub.create_repo, hub.upload_folder, hub.snapshot_download = (
        create_repo, upload_folder, snapshot_download,
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    return calls


def test_push_to_hub_and_from_pretrained_of_a_repo_id(fake_hub, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # "someone/tiny-vae" is no local folder
    torch.manual_seed(0)
    model = mnist_vae(latent_dim=3).eval()
    commit = model.push_to_hub("someone/tiny-vae", private=True, token="t")
    assert commit.endswith("/commit/1")
    copy = from_pretrained("someone/tiny-vae", revision="v1")
    z = torch.randn(2, 3)
    assert torch.equal(copy.decode(z), model.decode(z))
    assert [call[0] for call in fake_hub] == ["create_repo", "upload_folder", "snapshot_download"]
    assert fake_hub[0][1:] == ("someone/tiny-vae", True, "t", True)
    assert fake_hub[2] == (
        "snapshot_download", "someone/tiny-vae", "v1", ("config.json", "model.safetensors"),
    )  # fmt: skip


def test_hub_without_huggingface_hub_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install 'genlatent\[hub\]'"):
        from_pretrained("someone/tiny-vae")
    with pytest.raises(ImportError, match=r"push_to_hub needs huggingface_hub"):
        mnist_vae(latent_dim=2).push_to_hub("someone/tiny-vae")
    assert not any(tmp_path.iterdir())
