"""Run in a subprocess (or under ``torchrun``) by test_fit_groups: a tiny tokenizer on the
first 96 digits with `fit`; ``GENLATENT_TEST_KILL_AT`` SIGKILLs the process from inside
the discriminator's loss at that global step, after the generator's step of that batch
(checkpoints every 4 steps: a kill at step 9 resumes from the one of step 8).

Usage: ``python _groups_worker.py RUN_DIR EPOCHS [resume]``; under torchrun each rank also
saves its weights as ``RUN_DIR/../rank<R>.pt``.
"""

import os
import signal
import sys
from pathlib import Path

import torch

from genlatent import fit
from genlatent.data import load_digits
from genlatent.models import Tokenizer, tokenizer_preset


class KilledTokenizer(Tokenizer):
    """A tokenizer that kills its own process in the discriminator's loss at a chosen step."""

    def loss(self, x, *, group="generator", step=None):
        kill_at = os.environ.get("GENLATENT_TEST_KILL_AT")
        if group == "discriminator" and kill_at is not None and step == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().loss(x, group=group, step=step)


def build() -> Tokenizer:
    torch.manual_seed(0)
    model = tokenizer_preset(
        (1, 8, 8), hidden_channels=8, embedding_dim=4, codebook_size=16, disc_channels=8,
        disc_layers=1, disc_start=3,
    )  # fmt: skip
    return KilledTokenizer(model.autoencoder, model.discriminator, disc_start=3)


def main() -> None:
    run_dir, epochs = Path(sys.argv[1]), int(sys.argv[2])
    resume = len(sys.argv) > 3 and sys.argv[3] == "resume"
    torch.set_num_threads(1)
    train = load_digits("train")
    summary = fit(
        build(), (train.images[:96], train.labels[:96]), train.images[96:128],
        run_dir=run_dir, epochs=epochs, batch_size=16, lr=1e-3, device="cpu", save_every=4,
        resume=resume,
        show_progress=False, log=lambda line: None,
    )  # fmt: skip
    if "RANK" in os.environ:
        rank = os.environ["RANK"]
        torch.save(summary.model.state_dict(), run_dir.parent / f"rank{rank}.pt")


if __name__ == "__main__":  # pytest's doctest collection imports this file
    main()
