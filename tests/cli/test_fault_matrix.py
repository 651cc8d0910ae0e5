"""The fault matrix: each command under each fault it can meet.

For every cell: the exit status (2 for usage and data errors, 1 for a training failure,
130 for an interrupt), a one-line message that names the problem, and no file lost or
replaced that existed before. Cells a command cannot meet (``plot`` does not train, so
it cannot diverge) are listed in ``docs/reliability.md`` as not applicable.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from genlatent.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--dataset", "digits", "--epochs", "2", "--latent-dim", "4", "--no-progress"]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _kept(before: dict[str, str], after: dict[str, str]) -> None:
    """Nothing that existed before is lost or replaced (new files may appear)."""
    changed = {name for name, digest in before.items() if after.get(name) != digest}
    assert not changed, f"lost or replaced: {sorted(changed)}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "vae", *SMALL, "--out", str(run)]) == 0
    return run


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


@pytest.fixture
def fail(capsys):
    """``fail(argv, status, *fragments)``: the command exits with ``status`` and one line."""

    def check(argv: list[str], status: int, *fragments: str) -> str:
        capsys.readouterr()
        assert main(argv) == status
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err  # one line, no traceback
        assert err.startswith(f"genlatent {argv[0]}: "), err
        for fragment in fragments:
            assert fragment in err, err
        return err

    return check


def _mnist_folder(tmp_path: Path, shared: Path, corrupt: bool) -> Path:
    """A folder with MNIST's four file names (labels from ``shared``); the images corrupt."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(shared / name, folder / name)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        if corrupt:
            (folder / name).write_bytes(gzip.compress(b"\x00\x00\x08\x03not an idx file"))
    return folder


# ------------------------------------------------------------------------------ train


def test_train_missing_data(fail, tmp_path):
    out = tmp_path / "out"
    fail(["train", "vae", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(out)],
         2, "train-images-idx3-ubyte")  # fmt: skip
    assert not (out / "config.json").exists()


def test_train_corrupt_data(fail, tmp_path, mnist_dir):
    folder = _mnist_folder(tmp_path, mnist_dir, corrupt=True)
    out = tmp_path / "out"
    fail(["train", "vae", "--dataset", "mnist", "--data-dir", str(folder), "--out", str(out)],
         2, "train-images-idx3-ubyte.gz")  # fmt: skip
    assert not (out / "config.json").exists()


def test_train_nan_divergence_then_retry_without_deleting_anything(fail, tmp_path, capsys):
    out = tmp_path / "out"
    fail(["train", "vae", *SMALL, "--lr", "10", "--out", str(out)], 1, "non-finite loss",
         "--grad-clip", "--skip-nonfinite")  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]  # no checkpoint
    # the error's own advice can be followed: the failed start is replaced, said in a line
    assert main(["train", "vae", *SMALL, "--lr", "1e-3", "--out", str(out)]) == 0
    assert "never wrote a checkpoint: replacing its config" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["trainer"]["lr"] == 1e-3


def test_train_conflicting_flags(fail, tmp_path):
    out = tmp_path / "out"
    fail(["train", "vae", "--ema", "--codebook-size", "16", "--out", str(out)], 2,
         "--ema (vqvae, tokenizer with --quantizer vq, rvq only)",
         "--codebook-size (vqvae, tokenizer with --quantizer vq, lfq, rvq, simvq, bsq")  # fmt: skip
    fail(["train", "vqvae", "--latent-dim", "7", "--out", str(out)], 2, "--latent-dim (vae only)")
    fail(["train", "vae", "--model", "x.py:build", "--out", str(out)], 2, "not both")
    assert not out.exists()


def test_train_unwritable_output_folder(fail, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    fail(["train", "vae", *SMALL, "--out", str(blocker / "run")], 2, str(blocker))
    assert blocker.read_text() == "not a folder"


def test_train_into_a_finished_run_is_refused_without_overwrite(fail, run, capsys):
    before = _snapshot(run)
    fail(["train", "vae", *SMALL, "--out", str(run)], 2, "already holds a run with checkpoints",
         "--overwrite")  # fmt: skip
    _kept(before, _snapshot(run))
    assert main(["train", "vae", *SMALL, "--epochs", "1", "--out", str(run), "--overwrite"]) == 0
    assert "overwriting" in capsys.readouterr().out
    assert [
        json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()
    ] == [1]


def test_train_sigint_mid_epoch_keeps_the_last_checkpoint_and_resumes(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "genlatent", "train", "vae", "--dataset", "digits"]
    command += ["--epochs", "200", "--batch-size", "8", "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().startswith("epoch 1 ")  # epoch 2 is under way
    before = _snapshot(out)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err == f"genlatent train: interrupted (resume with genlatent train --resume {out})\n"
    after = _snapshot(out)
    assert after.get("checkpoints/last.pt") is not None
    assert not any(name.endswith(".tmp") for name in after)  # no torn temporary file
    resumed = subprocess.run(
        [sys.executable, "-m", "genlatent", "train", "--resume", str(out), "--epochs", "3",
         "--no-progress"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    epochs = [
        json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == list(range(1, 4))
    del before


# ----------------------------------------------------------------------------- resume


def test_resume_conflicting_flags_names_each_and_changes_nothing(fail, run):
    before = _snapshot(run)
    argv = ["train", "--resume", str(run), "--epochs", "7", "--lr", "0.1", "--batch-size", "50"]
    named = ("--lr 0.1 (the run has 0.001)", "--batch-size 50 (the run has 100)")
    err = fail([*argv, "--dataset", "mnist"], 2, *named, "--dataset 'mnist' (the run has 'digits')")
    assert "epochs" not in err  # epochs may change: not a conflict
    assert _snapshot(run) == before


def test_resume_records_what_changed_and_says_when_nothing_is_left(run, capsys):
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "--epochs: 2 -> 3" in out
    assert json.loads((run / "config.json").read_text())["trainer"]["epochs"] == 3
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "nothing left to do: the run has 3 of 3 epochs" in capsys.readouterr().out
    # fewer epochs than the run has is refused, and the record keeps the truth
    before = _snapshot(run)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 2
    assert "--epochs 2 is fewer than the 3 epochs the run has" in capsys.readouterr().err
    assert _snapshot(run) == before


def test_resume_missing_data_then_a_new_data_dir(fail, tmp_path, capsys, mnist_dir):
    moved = tmp_path / "moved"
    shutil.copytree(mnist_dir, moved)
    out = tmp_path / "out"
    argv = ["train", "vae", "--dataset", "mnist", "--data-dir", str(moved), "--epochs", "1",
            "--train-limit", "200", "--test-limit", "100", "--latent-dim", "4",
            "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    elsewhere = tmp_path / "elsewhere"
    moved.rename(elsewhere)
    before = _snapshot(out)
    fail(["train", "--resume", str(out), "--epochs", "2"], 2, "train-images-idx3-ubyte")
    _kept(before, _snapshot(out))
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "2", "--data-dir", str(elsewhere),
                 "--no-progress"]) == 0  # fmt: skip
    assert "--data-dir" in capsys.readouterr().out


def test_resume_torn_checkpoint_falls_back_and_keeps_the_torn_file(run, capsys):
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    torn = last.read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out
    assert "from last.prev.pt at epoch 1" in out
    assert (run / "checkpoints" / "last.pt.corrupt").read_bytes() == torn


def test_resume_missing_checkpoint_starts_again(run, capsys):
    shutil.rmtree(run / "checkpoints")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "never wrote a checkpoint: starting it again" in capsys.readouterr().out
    assert [
        json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()
    ] == [1, 2]


def test_resume_without_a_run(fail, tmp_path):
    fail(["train", "--resume", str(tmp_path / "none")], 2, "no config.json")


# ------------------------------------------------------------------- eval, sample, plot


@pytest.mark.parametrize("command", ["eval", "sample", "plot"])
def test_inspection_of_a_torn_checkpoint_says_which_it_read(command, run, capsys):
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:100])
    before = _snapshot(run)
    argv = [command, str(run)] + (
        ["--out", str(run.parent / "s.png")] if command == "sample" else []
    )
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"genlatent {command}: note: ")
    assert err.rstrip().endswith("best.pt is unreadable; read last.pt (epoch 2) instead"), err
    _kept(before, _snapshot(run))


def test_eval_last_of_a_torn_last_checkpoint_says_it_read_the_previous(run, capsys):
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    assert main(["eval", str(run), "--checkpoint", "last", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.rstrip().endswith(
        "last.pt is unreadable; read last.prev.pt (epoch 1) instead"
    )
    assert json.loads(captured.out)["epoch"] == 1


@pytest.mark.parametrize("command", ["eval", "sample", "plot"])
def test_inspection_of_a_run_without_checkpoints(command, fail, run):
    shutil.rmtree(run / "checkpoints")
    argv = [command, str(run)] + (
        ["--out", str(run.parent / "s.png")] if command == "sample" else []
    )
    fail(argv, 2, "has no checkpoint yet")


@pytest.mark.parametrize("command", ["eval", "plot"])
def test_inspection_with_missing_data(command, fail, tmp_path, mnist_dir):
    folder = tmp_path / "mnist"
    shutil.copytree(mnist_dir, folder)
    out = tmp_path / "out"
    assert main(["train", "vae", "--dataset", "mnist", "--data-dir", str(folder), "--epochs",
                 "1", "--train-limit", "200", "--test-limit", "100", "--latent-dim", "4",
                 "--no-progress", "--out", str(out)]) == 0  # fmt: skip
    shutil.rmtree(folder)
    before = _snapshot(out)
    fail([command, str(out)], 2, "t10k-images-idx3-ubyte")
    _kept(before, _snapshot(out))


@pytest.mark.parametrize("command", ["eval", "sample", "plot"])
def test_inspection_of_a_missing_run(command, fail, tmp_path):
    argv = [command, str(tmp_path / "none")]
    argv += ["--out", str(tmp_path / "s.png")] if command == "sample" else []
    fail(argv, 2, "none")


def test_sample_unwritable_output_and_unknown_format(fail, run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    fail(["sample", str(run), "--out", str(blocker / "s.png")], 2, str(blocker))
    fail(["sample", str(run), "--out", str(tmp_path / "s.gif")], 2, ".jpeg, .jpg, .png", "s.gif")
    assert blocker.read_text() == "x"


def test_sample_writes_the_format_its_extension_names(run, tmp_path):
    for name, magic in (("s.png", b"\x89PNG"), ("s.jpg", b"\xff\xd8\xff")):
        assert main(["sample", str(run), "-n", "4", "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).read_bytes()[: len(magic)] == magic


def test_debug_shows_the_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "genlatent", "eval", str(tmp_path / "none")],
        capture_output=True, text=True, env={**os.environ, "GENLATENT_DEBUG": "1"}, check=False,
    )  # fmt: skip
    assert "Traceback" in done.stderr
    assert done.returncode != 0
