"""The documentation site, built once per session for the tests that read it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of ``mkdocs build --strict``; skips without the docs tools (fails in CI)."""
    # mkdocs, mkdocs-material, mkdocstrings and its python handler (the [docs] extra).
    needed = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers", "mathjax")
    absent = [name for name in needed if importlib.util.find_spec(name) is None]
    if absent:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the docs tools are not installed: {absent}")
        pytest.skip(f"docs tools not installed: {absent} (pip install -e '.[docs]')")
    site = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-6000:]}"
    return site


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run the test at one torch thread: the pages' examples train tiny models, where one
    thread is fastest and two threads on a busy two-core machine wait on each other
    (steps measured 100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
