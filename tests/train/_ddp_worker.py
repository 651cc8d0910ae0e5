"""Run under ``torchrun`` by test_distributed_training: train, then save this rank's weights."""

import os
import sys
from pathlib import Path

import torch

from genlatent.train import TrainConfig, train


def main() -> None:
    run_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    config = TrainConfig(
        model="vqvae",
        dataset="digits",
        epochs=2,
        batch_size=64,
        hidden_channels=8,
        codebook_size=32,
        embedding_dim=4,
        ema=True,
        restart_dead_codes=2,
        device="cpu",
        log="tensorboard",
    )
    summary = train(config, run_dir, show_progress=False, log=lambda line: None)
    rank = int(os.environ["RANK"])  # train() has left the process group it joined
    torch.save(summary.model.state_dict(), out_dir / f"rank{rank}.pt")


if __name__ == "__main__":  # pytest's doctest collection imports this file
    main()
