"""The tutorial's own training loop on MNIST for 2 epochs, and its test negative ELBO.

The model and loop of ``benchmarks/vae_trainer.py`` (the tutorial as written: sigmoid
decoder, ``binary_cross_entropy`` summed over pixels plus the KL, Adam 1e-3, batch 100,
a shuffled ``DataLoader``), trained 2 epochs from seed 0, then the test set's summed loss
per image (one noise draw per image) in eval mode. The number the results page compares
genlatent's trainer with; raw output in ``docs/data/tutorial/result.json``::

    python scripts/results_tutorial_loop.py ../shared/data/mnist
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from genlatent.data import load_mnist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's benchmarks
from benchmarks.vae_trainer import TutorialVAE, tutorial_epoch

OUT = Path("docs/data/tutorial")


def main(argv: list[str]) -> dict[str, object]:
    data = argv[0] if argv else "../shared/data/mnist"
    torch.manual_seed(0)
    train = load_mnist(data, split="train")
    test = load_mnist(data, split="test")
    images = train.images.float().div(255).flatten(1)
    loader = DataLoader(TensorDataset(images, train.labels), batch_size=100, shuffle=True)
    model = TutorialVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_losses = [tutorial_epoch(model, optimizer, loader) / len(images) for _ in range(2)]
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x in test.images.float().div(255).flatten(1).split(500):
            x_hat, mean, log_var = model(x)
            total += F.binary_cross_entropy(x_hat, x, reduction="sum").item()
            total += (-0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())).item()
    result = {
        "epochs": 2,
        "train_loss_by_epoch": train_losses,
        "test_elbo_loss": total / len(test.images),
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "command": "python scripts/results_tutorial_loop.py ../shared/data/mnist",
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
