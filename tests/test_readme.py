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


def test_readme_fit_example_runs(capsys):
    import re

    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    fit_example = next(block for block in blocks if "load_run" in block)
    torch.manual_seed(0)
    exec(compile(fit_example, "README.md:fit", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" |")[0] for line in printed[:5]] == [f"epoch {i}" for i in range(1, 6)]
    epoch, nats = re.fullmatch(r"best epoch (\d): test -ELBO ([\d.]+) nats", printed[-1]).groups()
    assert 1 <= int(epoch) <= 5
    # an untrained Bernoulli decoder scores about 64 * log 2 = 44 nats per 8x8 digit
    assert float(nats) < 40
