r"""Portable weights: the `PretrainedMixin` of every genlatent module, and `from_pretrained`.

A pretrained folder holds two files, the layout of huggingface_hub's
``PyTorchModelHubMixin``, so a folder can be pushed to and pulled from the Hub as it is:

- ``model.safetensors``: the model's whole ``state_dict`` (parameters and buffers) in the
  safetensors format: a JSON header and raw tensor bytes, no pickle, so loading runs no code;
- ``config.json``: the constructor arguments that rebuild the model, nested modules
  included (the schema is in `genlatent._pretrained_json`)::

      {"format": "genlatent.pretrained", "format_version": 1, "genlatent_version": "0.1.0",
       "class": "genlatent.VAE",
       "arguments": {"encoder": {"class": "genlatent.MLPEncoder", "arguments": {...}}, ...}}

`from_pretrained` builds the class that ``config.json`` names from its arguments alone,
then loads the weights strictly. A config can only build `PretrainedMixin` modules: it
never calls any other callable, and imports no module outside genlatent and torch.

This module is below `genlatent.nn` (which uses it): it imports torch, safetensors and
the standard library only.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import safetensors
import safetensors.torch
import torch
from torch import nn

import genlatent._hub as _hub
from genlatent._atomic import atomic_write
from genlatent._pretrained_json import (
    buildable,
    config_arguments,
    construct,
    decode_value,
    dotted_name,
    encode_value,
    resolve_class,
)
from genlatent._version import __version__

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "PretrainedMixin",
    "from_pretrained",
    "module_config",
    "module_from_config",
]

CONFIG_NAME = "config.json"
"""The constructor arguments (huggingface_hub's ``CONFIG_NAME``)."""
WEIGHTS_NAME = "model.safetensors"
"""The weights (huggingface_hub's ``SAFETENSORS_SINGLE_FILE``)."""
FORMAT = "genlatent.pretrained"
FORMAT_VERSION = 1
"""The version of the ``config.json`` schema this genlatent writes and the newest it reads."""

_RECORD = "_pretrained_init"  # in the instance __dict__, outside nn.Module's attributes
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_Model = TypeVar("_Model", bound="PretrainedMixin")


def _dropped(name: str, value: object, parameter: inspect.Parameter) -> bool:
    """Arguments not recorded: placement, random sources, and initial values of weights."""
    if name == "device" or isinstance(value, (torch.device, torch.Generator)):
        return True
    # e.g. VampPrior(init=...): the weights file restores the value
    return isinstance(value, torch.Tensor) and parameter.default is None


def _recorded(signature: inspect.Signature, bound: inspect.BoundArguments) -> dict[str, Any]:
    """The bound arguments by name, defaults filled in, ``**kwargs`` flattened."""
    recorded: dict[str, Any] = {}
    for name, parameter in list(signature.parameters.items())[1:]:  # past self
        value = bound.arguments[name]
        items = value.items() if parameter.kind is parameter.VAR_KEYWORD else [(name, value)]
        recorded |= {key: item for key, item in items if not _dropped(key, item, parameter)}
    return recorded


def _recording(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a constructor to record its arguments, in the outermost call only."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 (it is one)
        if _RECORD not in self.__dict__:  # not a super().__init__ inside another one
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError:
                pass  # a bad call: the constructor raises its own error
            else:
                bound.apply_defaults()
                self.__dict__[_RECORD] = _recorded(signature, bound)
        init(self, *args, **kwargs)

    return __init__


def _as_module(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"PretrainedMixin must be mixed into an nn.Module, got {type(model).__qualname__}"
        )
    return model


class PretrainedMixin:
    r"""Save a module as ``config.json`` + ``model.safetensors`` and rebuild it from them.

    Inherit it beside ``nn.Module`` (``class MyVAE(nn.Module, PretrainedMixin)``) and each
    instance records the arguments its class was constructed with (defaults filled in;
    ``device``, generators and tensor initial values that default to ``None`` are left
    out, since the weights restore them). Every genlatent module does.

    The arguments must fit the JSON schema: ``None``, bools, ints, finite floats, strings,
    lists, tuples and str-keyed dicts of them, a ``torch.dtype``, an ``nn.Module`` class,
    or a module that itself inherits `PretrainedMixin` (saved through its own arguments).
    Anything else (a lambda, a plain ``nn.Module``) raises ``TypeError`` at
    `save_pretrained`, not at construction.

    A module whose state grew after construction (`VQVAE` reads ``grid_shape`` off its
    first batch) overrides `pretrained_arguments` to report it.

    Example:
        >>> import tempfile, torch
        >>> from genlatent import MLPEncoder
        >>> encoder = MLPEncoder(6, (8,), 2, activation="tanh").eval()
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = encoder.save_pretrained(folder)
        ...     copy = MLPEncoder.from_pretrained(folder)
        >>> x = torch.rand(3, 6)
        >>> torch.equal(copy(x).mean, encoder(x).mean)
        True
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__init__)  # type: ignore[method-assign]

    def pretrained_arguments(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this module, by parameter name.

        Those given at construction with the defaults filled in (``**kwargs`` flattened).
        Override it, calling ``super()``, to add state gained since construction.

        Raises:
            TypeError: if no arguments were recorded (the object was not constructed
                through its class).
        """
        recorded = self.__dict__.get(_RECORD)
        if recorded is None:
            raise TypeError(
                f"{type(self).__qualname__} recorded no constructor arguments: it was not "
                "built by calling its class"
            )
        return dict(recorded)

    def _pretrained_config(self) -> dict[str, Any]:
        """``{"class": ..., "arguments": ...}``: this module in the JSON schema."""
        module = _as_module(self)
        owner = type(self).__qualname__
        arguments = self.pretrained_arguments()
        children = {id(child) for child in module.modules()}
        for name, value in arguments.items():
            if isinstance(value, PretrainedMixin) and id(value) not in children:
                raise ValueError(
                    f"{owner} argument {name!r} is no longer part of the model (was it "
                    "replaced after construction?): config.json would not describe it"
                )
        return {
            "class": dotted_name(type(self), owner=owner, argument="class"),
            "arguments": {
                name: encode_value(value, owner=owner, argument=name)
                for name, value in arguments.items()
            },
        }

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``.

        Each file is written atomically (a temporary file renamed over the old one); the
        folder is created if needed. The weights are the whole ``state_dict`` as
        contiguous CPU tensors, with no pickle.

        Args:
            directory: the folder to write.

        Returns:
            The folder, as a ``Path``.

        Raises:
            TypeError: if an argument (or a nested module's) does not fit the schema (see
                the class docstring), or the ``state_dict`` holds a non-tensor entry.
            ValueError: if a module argument was replaced after construction.
        """
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "genlatent_version": __version__,
            **self._pretrained_config(),
        }
        tensors = _state_tensors(_as_module(self))
        folder = Path(directory)
        with atomic_write(folder / WEIGHTS_NAME) as handle:
            handle.write(safetensors.torch.save(tensors, metadata={"format": "pt"}))
        with atomic_write(folder / CONFIG_NAME, text=True) as handle:
            json.dump(config, handle, indent=2, allow_nan=False)
            handle.write("\n")
        return folder

    @classmethod
    def from_pretrained(
        cls: type[_Model],
        path: str | os.PathLike[str],
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        revision: str | None = None,
    ) -> _Model:
        """Rebuild a model of this class from a pretrained folder or Hub repository.

        As `genlatent.from_pretrained`, and the folder must hold this class (or a
        subclass): ``VAE.from_pretrained`` of a folder holding a `VQVAE` raises.

        Raises:
            TypeError: if the folder holds another class; otherwise as
                `genlatent.from_pretrained`.
        """
        return _load(path, cls, device=device, dtype=dtype, revision=revision)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | None = None,
        commit_message: str = "Upload model with genlatent",
    ) -> Any:
        """Upload the pretrained folder to the Hugging Face Hub repository ``repo_id``.

        Needs ``huggingface_hub`` (``pip install 'genlatent[hub]'``). Creates the
        repository if it does not exist, then uploads what `save_pretrained` writes.

        Returns:
            What ``huggingface_hub.upload_folder`` returns (its commit information).

        Raises:
            ImportError: if ``huggingface_hub`` is not installed; otherwise as
                `save_pretrained` and huggingface_hub raise.
        """
        _hub.check_installed("push_to_hub")
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            return _hub.upload(
                folder, repo_id, private=private, token=token, commit_message=commit_message
            )


def _state_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The ``state_dict`` as contiguous CPU tensors sharing no memory (safetensors refuses it)."""
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for name, value in module.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{type(module).__qualname__}.state_dict() entry {name!r} must be a tensor to "
                f"be saved in {WEIGHTS_NAME}, got {type(value).__qualname__}"
            )
        tensor = value.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if tensor.numel() and storage in storages:
            tensor = tensor.clone()  # tied weights: each name gets its own copy
        storages.add(storage)
        tensors[name] = tensor
    return tensors


def from_pretrained(
    path: str | os.PathLike[str],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    revision: str | None = None,
) -> nn.Module:
    """Rebuild whichever model a pretrained folder (or Hugging Face Hub repository) holds.

    Builds the class ``config.json`` names from its arguments (only `PretrainedMixin`
    modules; a module outside genlatent and torch must already be imported), loads
    ``model.safetensors`` into it strictly, and returns it in eval mode, on the CPU unless
    ``device`` is given. The global random state is left as it was.

    Args:
        path: a folder written by `PretrainedMixin.save_pretrained`, or a Hub repository
            id ``"user/name"`` (not an existing path; needs ``huggingface_hub``).
        device: where to put the model.
        dtype: a floating dtype to cast the floating parameters and buffers to.
        revision: a branch, tag or commit of the Hub repository.

    Returns:
        The model, in eval mode.

    Raises:
        FileNotFoundError: if ``path`` is neither a folder nor a repository id, or a file
            is missing.
        ValueError: if a file is corrupt, from a newer format, or the weights do not fit
            the model the config describes; if ``revision`` is given for a local folder.
        TypeError: if the config names a class that is not a `PretrainedMixin` module.
        ImportError: for a repository id, if ``huggingface_hub`` is not installed.

    Example:
        >>> import tempfile, torch
        >>> from genlatent import mnist_vae
        >>> model = mnist_vae(latent_dim=4).eval()
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = model.save_pretrained(folder)
        ...     copy = from_pretrained(folder)
        >>> z = torch.ones(1, 4)
        >>> type(copy).__name__, torch.equal(copy.decode(z), model.decode(z))
        ('VAE', True)
    """
    return _load(path, PretrainedMixin, device=device, dtype=dtype, revision=revision)


def module_config(module: nn.Module) -> dict[str, Any] | None:
    """The constructor configuration of ``module`` (``{"class", "arguments"}``, the schema of
    ``config.json``), or ``None`` where it records none that JSON can hold.

    ``None`` for a module that does not inherit `PretrainedMixin`, or whose arguments do
    not fit the schema (a lambda, say): such a module is rebuilt by its own code only.

    Example:
        >>> from genlatent import MLPEncoder
        >>> module_config(MLPEncoder(4, 3, 2))["class"]
        'genlatent.MLPEncoder'
    """
    if not isinstance(module, PretrainedMixin):
        return None
    try:
        return module._pretrained_config()
    except (TypeError, ValueError):
        return None


def module_from_config(config: dict[str, Any]) -> nn.Module:
    """A fresh module built from a `module_config` (new weights, global RNG untouched).

    Raises:
        TypeError: if the config names a class that is not a `PretrainedMixin` module.
        ValueError: on arguments that class does not take.
    """
    cls = buildable(_named_class(config.get("class"), PretrainedMixin), PretrainedMixin, "config")
    return _build(cls, config_arguments(config, "the config"))


def _build(cls: type, arguments: dict[str, Any]) -> nn.Module:
    """``cls`` built from JSON ``arguments``; the fresh weights' draws touch no user RNG."""
    with torch.random.fork_rng(devices=[]):
        decoded = {k: decode_value(v, mixin=PretrainedMixin) for k, v in arguments.items()}
        return cast(nn.Module, construct(cls, decoded))


def _folder(path: str | os.PathLike[str], revision: str | None) -> Path:
    """The local folder of ``path``: itself, or a download of the Hub repository it names."""
    local = Path(path)
    if local.is_dir():
        if revision is not None:
            raise ValueError(
                f"revision applies to a Hub repository, not to the local folder {local}, "
                f"got revision={revision!r}"
            )
        return local
    if local.exists():
        raise FileNotFoundError(
            f"{local} is a file: from_pretrained takes the folder holding {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}"
        )
    if isinstance(path, str) and _REPO_ID.fullmatch(path):
        return Path(_hub.download(path, [CONFIG_NAME, WEIGHTS_NAME], revision=revision))
    raise FileNotFoundError(
        f"{path} is neither a folder (holding {CONFIG_NAME} and {WEIGHTS_NAME}) nor a "
        "Hugging Face Hub repository id 'user/name'"
    )


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: a pretrained folder holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is corrupt: not valid JSON ({error})") from error
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(
            f"{path} is not a genlatent pretrained config: expected 'format': {FORMAT!r}, "
            f"got {found!r}"
        )
    version = config.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version!r}; genlatent {__version__} reads 1 to "
            f"{FORMAT_VERSION} (a newer genlatent wrote it: upgrade to read it)"
        )
    return config


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    path = folder / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: a pretrained folder holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    try:
        return safetensors.torch.load_file(path, device="cpu")
    except (safetensors.SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path} is truncated or corrupt: {error}") from error


def _named_class(name: object, expected: type) -> type[nn.Module]:
    """The class ``name`` names: ``expected`` itself when it is that class (found or not)."""
    if (
        isinstance(expected, type)
        and issubclass(expected, nn.Module)
        and "<locals>" not in expected.__qualname__
        and name == dotted_name(expected, owner=expected.__qualname__, argument="class")
    ):
        return expected
    return resolve_class(name)


def _load(
    path: str | os.PathLike[str],
    expected: type[_Model],
    *,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
    revision: str | None,
) -> Any:
    """Build the config's class (checked against ``expected``) and load the weights into it."""
    folder = _folder(path, revision)
    config = _read_config(folder)
    cls = buildable(_named_class(config.get("class"), expected), PretrainedMixin, str(folder))
    if not issubclass(cls, expected):
        raise TypeError(
            f"{folder} holds a {config['class']}, not a {expected.__qualname__}: load it with "
            f"{cls.__qualname__}.from_pretrained or genlatent.from_pretrained"
        )
    model = _build(cls, config_arguments(config, str(folder / CONFIG_NAME)))
    weights = _read_weights(folder)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        message = " ".join(str(error).split())
        raise ValueError(
            f"{folder / WEIGHTS_NAME} does not fit the {cls.__qualname__} that {CONFIG_NAME} "
            f"describes: {message}"
        ) from error
    if device is not None or dtype is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()
