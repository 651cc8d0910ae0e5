"""Run a whole experiment from a `TrainConfig`: data, model, epochs, checkpoints, pictures."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from genlatent.data.batching import TensorBatches
from genlatent.data.dataset import ImageDataset
from genlatent.functional.quantize import counts_perplexity
from genlatent.models.vae import VAE
from genlatent.models.vqvae import VQVAE
from genlatent.nn.quantize import VectorQuantizer
from genlatent.train.build import build_model, load_datasets, resolve_device
from genlatent.train.checkpoint import atomic_save, load_latest_checkpoint
from genlatent.train.config import TrainConfig
from genlatent.train.distributed import setup_distributed
from genlatent.train.images import save_image_grid
from genlatent.train.loop import NonFiniteLossError, evaluate, train_epoch
from genlatent.train.objectives import vae_objective, vqvae_objective
from genlatent.train.rundir import RunDirectory, RunDirectoryError

__all__ = ["RunSummary", "train"]


@dataclass(frozen=True)
class RunSummary:
    """Where a run left its files and how it ended."""

    run_dir: Path
    """The run directory."""
    epochs: int
    """Epochs completed, counting those of a resumed run."""
    last_metrics: dict[str, Any]
    """The last line of ``metrics.jsonl``."""
    model: VAE | VQVAE
    """The trained model, with the last epoch's weights."""


def _optimizer(model: nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    # fused Adam where the device supports it (one kernel for all parameters), else foreach
    fused = device.type in ("cuda", "cpu")
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=fused)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr, foreach=True)


def train(
    config: TrainConfig | None = None,
    run_dir: str | os.PathLike[str] = "runs/latest",
    *,
    resume: bool = False,
    datasets: tuple[ImageDataset, ImageDataset] | None = None,
    show_progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Train the model ``config`` describes and leave everything in ``run_dir``.

    With ``resume=True`` the config is read from ``run_dir`` (``config`` may only change
    ``epochs``) and training continues from the last good checkpoint: model, optimizer,
    epoch, random states and the quantizer's EMA state, so the result equals an
    uninterrupted run on CPU. Under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the
    process group, trains with DistributedDataParallel, rank 0 writes the run directory,
    and it leaves the group again on return unless the caller had joined it already.

    Args:
        config: the run's settings; required unless resuming.
        run_dir: the run directory (see `RunDirectory`).
        resume: continue the run stored in ``run_dir``.
        datasets: ``(train, test)`` to use instead of loading ``config.dataset``; the run
            records ``dataset="custom"``, and resuming it needs them again.
        show_progress: progress bars; ``None`` shows them on a terminal.
        log: where the one-line epoch summaries go.
    """
    joined = torch.distributed.is_available() and torch.distributed.is_initialized()
    try:
        return _train(config, run_dir, resume, datasets, show_progress, log)
    finally:
        # leave no process group behind that this call created (under torchrun), so
        # that the process exits cleanly and a later train() can start afresh
        if not joined and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _train(
    config: TrainConfig | None,
    run_dir: str | os.PathLike[str],
    resume: bool,
    datasets: tuple[ImageDataset, ImageDataset] | None,
    show_progress: bool | None,
    log: Callable[[str], None],
) -> RunSummary:
    run = RunDirectory(run_dir)
    if resume:
        stored = run.read_config()
        if config is not None and config.replace(epochs=stored.epochs) != stored:
            raise RunDirectoryError(
                f"--resume {run.path}: the stored config differs from the one given; only "
                "epochs may change when resuming"
            )
        config = stored if config is None else stored.replace(epochs=config.epochs)
    elif config is None:
        raise ValueError("config is required unless resume=True")
    elif datasets is not None:
        config = config.replace(dataset="custom")  # what the run really trained on
    device = resolve_device(config.device)
    group = setup_distributed(device.type)
    if device.type == "cuda" and group.world > 1:
        device = torch.device("cuda", group.local_rank)
    if group.is_main and not resume:
        run.create(config)

    # __post_init__ filled in the reference values: these are never None here
    epochs, batch_size, lr = cast(int, config.epochs), cast(int, config.batch_size), config.lr
    torch.manual_seed(config.seed)
    train_set, test_set = datasets if datasets is not None else load_datasets(config)
    model = build_model(config, train_set.image_shape).to(device)
    if device.type != "cpu" and config.model == "vqvae":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = _optimizer(model, cast(float, lr), device)
    scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
    order = torch.Generator().manual_seed(config.seed)
    noise = torch.Generator(device=device).manual_seed(config.seed + 1 + group.rank)
    train_batches = TensorBatches(
        train_set, batch_size=batch_size, shuffle=True, generator=order, device=device
    )
    test_batches = TensorBatches(test_set, batch_size=max(batch_size, 500), device=device)

    start_epoch, best = 0, float("inf")
    if resume and run.last_checkpoint.parent.exists():
        state, source = load_latest_checkpoint(run.last_checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        order.set_state(state["order_rng"])
        noise.set_state(state["noise_rng"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        start_epoch, best = int(state["epoch"]), float(state["best_test_loss"])
        log(f"resuming {run.path} from {source.name} at epoch {start_epoch}")
        if source != run.last_checkpoint and group.is_main and run.last_checkpoint.exists():
            # out of the rotation, kept for inspection: the next save must not move the
            # unreadable file over the good previous checkpoint
            kept = run.last_checkpoint.with_name(run.last_checkpoint.name + ".corrupt")
            os.replace(run.last_checkpoint, kept)
            log(f"{run.last_checkpoint} could not be read; kept as {kept.name}")
    if resume and group.is_main:
        # drop the lines of epochs the checkpoint does not hold (a crash between the two)
        run.truncate_metrics(start_epoch)

    trained: nn.Module = model
    if group.world > 1:
        trained = nn.parallel.DistributedDataParallel(model)
    if config.compile:
        trained = torch.compile(trained)  # type: ignore[assignment]
    objective = vae_objective if config.model == "vae" else vqvae_objective
    quantizer = model.quantizer if isinstance(model, VQVAE) else None
    record: dict[str, Any] = {}
    started = time.perf_counter()
    for epoch in range(start_epoch + 1, epochs + 1):
        if quantizer is not None:
            quantizer.reset_usage()
        result = train_epoch(
            trained, optimizer, train_batches, objective,
            epoch=epoch, device=device, precision=config.precision, scaler=scaler,
            grad_clip=config.grad_clip, skip_nonfinite=config.skip_nonfinite,
            generator=noise, rank=group.rank, world=group.world, show_progress=show_progress,
        )  # fmt: skip
        record = {"epoch": epoch, "train_examples": result.examples}
        record |= {f"train_{k}": v for k, v in result.metrics.items()}
        if quantizer is not None:
            record |= _codebook_usage(quantizer, group.world)
        test = evaluate(
            trained, test_batches, objective, device=device, precision=config.precision,
            generator=noise, rank=group.rank, world=group.world,
        )  # fmt: skip
        record |= {f"test_{k}": v for k, v in test.items()}
        record |= {
            "images_per_second": result.examples / max(result.seconds, 1e-9),
            "epoch_seconds": result.seconds,
            "wall_seconds": time.perf_counter() - started,
            "skipped_steps": result.skipped_steps,
        }
        improved = record["test_loss"] < best
        best = min(best, record["test_loss"])
        _check_state_finite(model, epoch)
        if group.is_main:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "best_test_loss": best,
                "config": config.to_dict(),
                "order_rng": order.get_state(),
                "noise_rng": noise.get_state(),
                "torch_rng": torch.get_rng_state(),
            }
            if scaler is not None:
                state["scaler"] = scaler.state_dict()
            # metrics first: a crash between the two leaves a line for an epoch that resume
            # drops and trains again, never a checkpoint whose epoch has no line
            run.append_metrics(record)
            atomic_save(state, run.last_checkpoint, keep_previous=True)
            if improved:
                atomic_save(state, run.best_checkpoint)
            write_pictures(model, test_set, run, seed=config.seed)
        log(_summary_line(record))
    return RunSummary(run.path, epochs, record, model)


def _check_state_finite(model: nn.Module, epoch: int) -> None:
    """Refuse to checkpoint weights or buffers holding NaN or infinity (one sync per epoch)."""
    state = [(n, t) for n, t in model.state_dict().items() if t.is_floating_point()]
    if not state:
        return
    flags = torch.stack([torch.isfinite(t).all() for _, t in state]).tolist()
    bad = [name for (name, _), ok in zip(state, flags, strict=True) if not ok]
    if bad:
        raise NonFiniteLossError(
            f"non-finite model state after epoch {epoch}: {', '.join(bad[:5])} hold NaN or "
            "infinity; no checkpoint was written for this epoch, the previous one is kept"
        )


def _codebook_usage(quantizer: VectorQuantizer, world: int) -> dict[str, float]:
    """Fraction of codes used and usage perplexity this epoch, over all processes."""
    counts = quantizer.usage_counts.clone()
    if world > 1:  # the quantizer keeps per-process counts
        torch.distributed.all_reduce(counts)
    return {
        "train_codes_used": float((counts > 0).double().mean()),
        "train_usage_perplexity": float(counts_perplexity(counts.double())),
    }


@torch.no_grad()
def write_pictures(
    model: VAE | VQVAE, test_set: ImageDataset, run: RunDirectory, *, seed: int
) -> None:
    """``reconstructions.png`` (inputs above reconstructions) and ``samples.png``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = test_set.images[:32].to(device).float() / 255
    reconstruction = model.reconstruct(x).clamp(0, 1)
    rows = [t for pair in zip(x.split(8), reconstruction.split(8), strict=True) for t in pair]
    save_image_grid(torch.cat(rows), run.reconstructions_path, nrow=8, scale=_scale(x))
    generator = torch.Generator(device=device).manual_seed(seed)
    samples = sample_images(model, 64, like=x, generator=generator)
    save_image_grid(samples, run.samples_path, nrow=8, scale=_scale(x))
    model.train(was_training)


def sample_images(
    model: VAE | VQVAE,
    num: int,
    *,
    like: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Decode ``num`` images: from N(0, I) for a VAE, from uniformly random codes for a VQ-VAE.

    ``like`` is a batch of real images; a VQ-VAE's latent grid size is read off its codes.
    Until a prior over codes is trained, uniform codes show what the decoder makes of the
    codebook, not what the model would generate.
    """
    if isinstance(model, VAE):
        return model.sample(num, generator=generator).clamp(0, 1)
    if not isinstance(model, VQVAE):
        raise TypeError(f"model must be a VAE or a VQVAE, got {type(model).__name__}")
    device = next(model.parameters()).device
    grid = tuple(model.encode(like[:1]).shape[1:])
    indices = torch.randint(
        model.quantizer.codebook_size, (num, *grid), generator=generator, device=device
    )
    return model.decode_indices(indices).clamp(0, 1)


def _scale(x: torch.Tensor) -> int:
    return max(1, 64 // x.shape[-1])


def _summary_line(record: dict[str, Any]) -> str:
    parts = [
        f"epoch {record['epoch']}",
        f"train {record['train_loss']:.4f}",
        f"test {record['test_loss']:.4f}",
    ]
    if "train_codes_used" in record:
        parts.append(f"codes used {record['train_codes_used']:.0%}")
    parts.append(f"{record['images_per_second']:.0f} img/s")
    return " | ".join(parts)
