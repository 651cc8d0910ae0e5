"""The layers of docs/architecture.md, enforced: who may import whom, read with ``ast``.

Code above the models speaks the protocols of `genlatent._protocols`, never a concrete
model class; the building blocks import only the layers below them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "genlatent"

# Below every layer: imported by anyone, importing nothing of genlatent but each other.
GROUND = (
    "_atomic", "_checkpoint", "_deprecation", "_device", "_hub", "_options", "_pretrained_json",
    "_protocols",
    "_sums", "_validation", "_version", "errors", "pretrained",
)  # fmt: skip

ABOVE_MODELS = ("metrics", "plotting", "train", "data", "cli")
MODEL_LAYERS = ("genlatent.models", "genlatent.priors")
# What turns a config's names into objects: train/build.py asks the presets for a model by
# name, train/config.py reads the preset and quantizer registries' signatures (the options
# each takes), train/prior.py builds the second-stage prior of a kind. Everything else
# (fit, evaluation, sampling, plots) works by protocol.
ALLOWED_MODEL_IMPORTS = {"train/build.py", "train/config.py", "train/prior.py"}

# What each lower layer may import besides the ground floor.
BELOW_MODELS = {
    "functional": ("genlatent.functional",),
    "nn": ("genlatent.functional", "genlatent.nn"),
    "losses": ("genlatent.functional", "genlatent.losses"),
}


def _imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """Every ``genlatent`` module ``path`` imports, absolute or relative, at any depth."""
    package = ["genlatent", *path.relative_to(SRC).parent.parts]
    source = path.read_text(encoding="utf-8") if source is None else source
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from genlatent import models` names a module too
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "genlatent"]


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _modules(layer: str) -> list[Path]:
    return sorted((SRC / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", ABOVE_MODELS + tuple(BELOW_MODELS))
def test_no_layer_but_the_models_imports_a_model_class(layer: str) -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{line} imports {name}"
        for path in _modules(layer)
        if str(path.relative_to(SRC).as_posix()) not in ALLOWED_MODEL_IMPORTS
        for line, name in _imports(path)
        if _within(name, MODEL_LAYERS)
    ]
    assert not offenders, "import the protocols (genlatent._protocols) instead:\n" + "\n".join(
        offenders
    )


@pytest.mark.parametrize("layer", tuple(BELOW_MODELS))
def test_lower_layers_import_nothing_above_them(layer: str) -> None:
    allowed = BELOW_MODELS[layer] + tuple(f"genlatent.{name}" for name in GROUND)
    offenders = [
        f"{path.relative_to(SRC)}:{line} imports {name}"
        for path in _modules(layer)
        for line, name in _imports(path)
        if name != "genlatent" and not _within(name, allowed)
    ]
    assert not offenders, "\n".join(offenders)


def test_the_ground_floor_imports_only_itself() -> None:
    allowed = tuple(f"genlatent.{name}" for name in GROUND)
    offenders = [
        f"{path.name}:{line} imports {name}"
        for name_ in GROUND
        if (path := SRC / f"{name_}.py").exists()
        for line, name in _imports(path)
        if not _within(name, allowed)
    ]
    assert not offenders, "\n".join(offenders)


def test_the_allowed_exceptions_still_exist() -> None:
    """An exception that is no longer needed is removed from the list, not kept as a hole."""
    for relative in ALLOWED_MODEL_IMPORTS:
        names = [name for _, name in _imports(SRC / relative)]
        assert any(_within(name, MODEL_LAYERS) for name in names), relative


def test_the_checker_sees_relative_and_nested_imports() -> None:
    source = "from ..models import vae\nfrom . import stats\n"
    source += "def f():\n    import genlatent.priors\n"
    names = {name for _, name in _imports(SRC / "metrics" / "probe.py", source)}
    assert {"genlatent.models.vae", "genlatent.metrics.stats", "genlatent.priors"} <= names
