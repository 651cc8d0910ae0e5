"""Run under ``torchrun`` by test_distributed_training: a deterministic autoencoder trained
with gradient accumulation (DDP's no_sync on all but the last micro-batch); each rank saves
its weights."""

import os
import sys
from pathlib import Path

import torch

from genlatent import fit

sys.path.insert(0, str(Path(__file__).parent))
from test_fit_optim import Autoencoder, images

RUN = {"batch_size": 16, "grad_accumulation": 2, "lr": 1e-2, "max_steps": 4, "device": "cpu"}


def main() -> None:
    run_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    model = Autoencoder()
    fit(model, images(), run_dir=run_dir, show_progress=False, log=lambda line: None, **RUN)
    torch.save(model.state_dict(), out_dir / f"rank{os.environ['RANK']}.pt")


if __name__ == "__main__":  # pytest's doctest collection imports this file
    main()
