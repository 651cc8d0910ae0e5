"""Run under ``torchrun`` by test_distributed_training: `fit` on an augmented image folder,
each rank recording the items it reads (``reads{rank}.txt``: ``epoch index`` lines)."""

import os
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset

from genlatent import VAE, MLPDecoder, MLPEncoder, fit
from genlatent.data import Augment, ImageFolder

SIZE, BATCH, EPOCHS = 8, 4, 2


class Recorded(Dataset):
    """The folder's items, each read appended to ``log`` with the epoch (-1 before the
    first: the trainer's preview of the data)."""

    def __init__(self, folder: ImageFolder, log: Path) -> None:
        self.folder, self.log, self.epoch = folder, log, -1
        self.classes = folder.classes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.folder.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int):
        with self.log.open("a") as handle:  # one short line per append: no interleaving
            handle.write(f"{self.epoch} {index}\n")
        return self.folder[index]


def main() -> None:
    images, run_dir, out_dir = (Path(arg) for arg in sys.argv[1:4])
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    folder = ImageFolder(images, size=SIZE, augment=Augment(seed=0))
    data = Recorded(folder, out_dir / f"reads{rank}.txt")
    torch.manual_seed(0)
    model = VAE(
        MLPEncoder(3 * SIZE * SIZE, 16, 2),
        MLPDecoder(2, 16, 3 * SIZE * SIZE, out_shape=(3, SIZE, SIZE)),
    )
    fit(
        model, data, run_dir=run_dir, epochs=EPOCHS, batch_size=BATCH, lr=1e-3, device="cpu",
        num_workers=1, show_progress=False, log=lambda line: None,
    )  # fmt: skip


if __name__ == "__main__":  # pytest's doctest collection imports this file
    main()
