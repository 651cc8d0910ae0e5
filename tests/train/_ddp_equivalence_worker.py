"""Run under ``torchrun`` by test_distributed_training: the two equivalence runs.

Each rank trains (1) a small VAE with `fit` on the first 1,000 digits and (2) a small EMA
VQ-VAE with `train`; rank 0 writes both run directories under ``out_dir``.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from genlatent import VAE, MLPDecoder, MLPEncoder, fit
from genlatent.data import load_digits
from genlatent.train import TrainConfig, train

# every global batch splits into two equal shards (100 = 2 x 50, 64 = 2 x 32, and the
# example counts are multiples of the batch size): see the test's docstring
VAE_RUN = {"epochs": 2, "batch_size": 100, "lr": 1e-3, "seed": 0, "device": "cpu"}
VAE_EXAMPLES = 1000
VQ_CONFIG = TrainConfig(
    model="vqvae",
    dataset="digits",
    epochs=2,
    batch_size=64,
    hidden_channels=8,
    codebook_size=32,
    embedding_dim=4,
    ema=True,
    device="cpu",
    train_limit=320,
    test_limit=64,
)


def small_vae() -> VAE:
    torch.manual_seed(0)
    return VAE(MLPEncoder(64, 32, 4), MLPDecoder(4, 32, 64, out_shape=(1, 8, 8)))


def digits() -> torch.Tensor:
    return load_digits("train").images[:VAE_EXAMPLES]


def main() -> None:
    out_dir = Path(sys.argv[1])
    torch.set_num_threads(1)
    quiet = {"show_progress": False, "log": lambda line: None}
    # one process group for both runs: fit and train join it and leave it open (a group
    # torchrun's store has seen destroyed cannot be created again in the same process)
    dist.init_process_group("gloo")
    try:
        fit(small_vae(), digits(), run_dir=out_dir / "vae", **VAE_RUN, **quiet)
        train(VQ_CONFIG, out_dir / "vqvae", **quiet)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":  # pytest's doctest collection imports this file
    main()
