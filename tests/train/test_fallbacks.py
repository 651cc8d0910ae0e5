"""Every fallback is announced: load_run's checkpoint fallback and the Adam implementation."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from genlatent import VAE, MLPDecoder, MLPEncoder, fit, load_run
from genlatent.train.optimizers import adam


def _build() -> VAE:
    return VAE(MLPEncoder(16, 8, 2), MLPDecoder(2, 8, 16, out_shape=(1, 4, 4)))


@pytest.fixture(scope="module")
def run_without_best(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    fit(_build(), torch.rand(16, 1, 4, 4), run_dir=run_dir, epochs=1, batch_size=8, lr=1e-3,
        log=lambda line: None)  # fmt: skip
    (run_dir / "checkpoints" / "best.pt").unlink()
    return run_dir


def test_load_run_warns_of_a_fallback_when_no_log_is_given(run_without_best: Path) -> None:
    with pytest.warns(UserWarning, match=r"best\.pt does not exist; read last\.pt \(epoch 1\)"):
        loaded = load_run(run_without_best, model=_build())
    assert loaded.checkpoint.name == "last.pt"
    assert loaded.note is not None


def test_load_run_tells_the_log_instead_of_warning(run_without_best: Path) -> None:
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_run(run_without_best, model=_build(), log=lines.append)
    assert lines == [loaded.note]


def test_no_warning_when_the_asked_checkpoint_reads(run_without_best: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_run(run_without_best, model=_build(), checkpoint="last").note is None


def test_fused_adam_on_cpu_and_cuda_and_the_default_elsewhere() -> None:
    model = torch.nn.Linear(2, 2)
    assert adam(model.parameters(), 1e-3, torch.device("cpu")).defaults["fused"] is True
    other = adam(model.parameters(), 1e-3, torch.device("meta"))
    assert not other.defaults["fused"]


def test_a_refused_fused_adam_is_announced_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_adam = torch.optim.Adam

    def picky_adam(params, **kwargs):
        if kwargs.get("fused"):
            raise RuntimeError("fused=True requires all the params to be floating point")
        return real_adam(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", picky_adam)
    with pytest.warns(UserWarning, match=r"fused Adam is not available .*floating point"):
        optimizer = adam(torch.nn.Linear(2, 2).parameters(), 1e-3, torch.device("cpu"))
    assert not optimizer.defaults["fused"]
