"""pythae's trainer on the benchmark's MNIST VAE (imported only when pythae is installed)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import torch
from pythae.data.datasets import BaseDataset
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig
from torch import nn

from benchmarks._tutorial_vae import tutorial_decoder, tutorial_hidden

__all__ = ["pythae_epoch"]


class _Encoder(BaseEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Flatten(), tutorial_hidden())
        self.mean = nn.Linear(400, 200)
        self.log_var = nn.Linear(400, 200)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.hidden(x)
        return ModelOutput(embedding=self.mean(h), log_covariance=self.log_var(h))


class _Decoder(BaseDecoder):
    def __init__(self) -> None:
        super().__init__()
        self.layers = tutorial_decoder()

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=self.layers(z).reshape(-1, 1, 28, 28))


def pythae_epoch(images: torch.Tensor, *, batch_size: int) -> Callable[[], object]:
    """Set up pythae's ``BaseTrainer`` once; return a function running one training epoch.

    The epoch is ``BaseTrainer.train_step`` (its per-epoch loop, with its callbacks but
    without the progress bar), so the per-run setup and the checkpoint written at the end
    of ``train()`` are not timed.
    """
    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=200, reconstruction_loss="bce")
    model = VAE(model_config=config, encoder=_Encoder(), decoder=_Decoder())
    output_dir = tempfile.mkdtemp(prefix="genlatent-bench-pythae-")
    training = BaseTrainerConfig(
        output_dir=output_dir,
        num_epochs=1,
        learning_rate=1e-3,
        per_device_train_batch_size=batch_size,
        optimizer_cls="Adam",
        no_cuda=True,
    )
    dataset = BaseDataset(images, torch.zeros(images.shape[0]))
    trainer = BaseTrainer(model=model, train_dataset=dataset, training_config=training)
    trainer.prepare_training()
    # drop the progress bar (its per-step redraws would only slow pythae down)
    handler = trainer.callback_handler
    handler.callbacks = [c for c in handler.callbacks if type(c).__name__ != "ProgressBarCallback"]
    epoch = iter(range(1, 1_000_000))
    return lambda: trainer.train_step(next(epoch))
