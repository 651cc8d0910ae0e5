"""scripts/mutation_check.py's list cannot rot: each mutation applies and names real tests.

The check itself (each mutation applied to a scratch copy, its tests run) is a CI step of
its own (`.ci/run`); this test only keeps the list in step with the code, cheaply.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "mutation_check", ROOT / "scripts" / "mutation_check.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_mutation_applies_exactly_once_and_names_existing_tests():
    script = _script()
    assert script._check_list(script.MUTATIONS) == []
    assert len(script.MUTATIONS) >= 15
    missing = []
    for mutation in script.MUTATIONS:
        for node in mutation.tests:
            path, _, name = node.partition("::")
            file = ROOT / path
            function = name.split("[")[0]
            if not file.is_file() or (
                function and not re.search(rf"^def {function}\(", file.read_text(), re.M)
            ):
                missing.append(f"{mutation.name}: {node}")
    assert missing == []


def test_a_rotten_original_is_reported():
    script = _script()
    rotten = script.Mutation("x", "src/genlatent/__init__.py", "no such text", "y", ("t",), "")
    assert script._check_list((rotten,)) == [
        "x: original text found 0 times in src/genlatent/__init__.py, not once"
    ]
