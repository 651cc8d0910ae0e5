"""The README's example runs as written."""

import runpy
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_readme_example_runs(capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        module = runpy.run_path(str(ROOT / "scripts" / "run_readme_example.py"))
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    module["main"](["run_readme_example.py", str(ROOT / "README.md")])
    printed = capsys.readouterr().out
    assert printed.startswith("-ELBO ")
    # An untrained Bernoulli decoder scores about 784 * log 2 = 543 nats per image.
    assert 400 < float(printed.split()[1]) < 700
