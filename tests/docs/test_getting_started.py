"""The Getting started page runs as written: its Python blocks in order in one session, its
command-line block through the `genlatent` entry point, each in a fresh folder, and each
leaves the files the page says it does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

from genlatent.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
PYPROJECT = ROOT / "pyproject.toml"


def _blocks(language: str) -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```[ \t]*$", text, re.M | re.S)


def _commands() -> list[list[str]]:
    """Each ``genlatent ...`` line of the bash blocks (comments dropped), as argv."""
    lines = [line for block in _blocks("bash") for line in block.splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.startswith("genlatent ")]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_install_line_names_every_extra_the_page_needs() -> None:
    (install,) = [line for line in _blocks("bash")[0].splitlines() if "pip install" in line]
    extras = set(re.search(r"\[([\w,]+)\]", install).group(1).split(","))  # type: ignore[union-attr]
    code = "\n".join(_blocks("python"))
    # each extra the page's code reaches: fit writes PNGs (train), load_digits (demo),
    # and the `genlatent plot` / plotting row of the page's table (plot)
    needed = {"train"} if "fit(" in code else set()
    needed |= {"demo"} if "load_digits" in code else set()
    needed |= {"plot"} if "genlatent plot" in PAGE.read_text(encoding="utf-8") else set()
    assert needed <= extras, f"the install line lacks {sorted(needed - extras)}"
    declared = re.findall(r"^(\w+) = \[", PYPROJECT.read_text(encoding="utf-8"), re.M)
    assert extras <= set(declared), f"no such extra in pyproject.toml: {extras - set(declared)}"


def test_the_python_blocks_run_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "getting_started"}
    blocks = _blocks("python")
    assert len(blocks) >= 2
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"getting-started.md:python block {number}", "exec"), namespace)
    vae_run = tmp_path / "runs" / "digits-vae"
    for name in ("config.json", "metrics.jsonl", "checkpoints/best.pt", "checkpoints/last.pt",
                 "samples.png", "reconstructions.png", "my-samples.png"):  # fmt: skip
        assert (vae_run / name).is_file(), f"the page says fit wrote {name}"
    assert (tmp_path / "runs" / "digits-prior" / "generated.png").is_file()
    # "five epochs bring the test loss well below" chance: 64 log 2 nats per 8x8 digit
    printed = capsys.readouterr().out
    best = float(re.search(r"best epoch \d+: ([\d.]+) nats", printed).group(1))  # type: ignore[union-attr]
    assert best < 64 * torch.log(torch.tensor(2.0)).item() * 0.8
    images = namespace["images"]
    assert isinstance(images, torch.Tensor)
    assert images.shape == (80, 1, 8, 8)


def test_the_command_line_block_names_real_commands() -> None:
    commands = _commands()
    assert [argv[1] for argv in commands][:2] == ["train", "sample"]
    assert {"train", "sample", "eval"} <= {argv[1] for argv in commands}


@pytest.mark.slow
def test_the_command_line_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in _commands():
        status = main([*argv[1:], "--no-progress"] if argv[1] == "train" else argv[1:])
        assert status == 0, f"`{shlex.join(argv)}` exited with {status}"
    for name in ("vae-samples.png", "vqvae-samples.png", "runs/cli-vqvae/prior/config.json"):
        assert (tmp_path / name).is_file(), name
