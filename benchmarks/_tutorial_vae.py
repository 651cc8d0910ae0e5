"""The tutorial's MNIST VAE layers (784-400-400-200, LeakyReLU(0.2), sigmoid output).

Written once here for the benchmark's tutorial loop and its pythae contender, so both run
exactly the model the tutorial describes.
"""

from __future__ import annotations

from torch import nn

__all__ = ["tutorial_decoder", "tutorial_hidden"]


def tutorial_hidden() -> nn.Sequential:
    """The encoder's hidden layers: flat 784 pixels to 400 features."""
    return nn.Sequential(
        nn.Linear(784, 400), nn.LeakyReLU(0.2), nn.Linear(400, 400), nn.LeakyReLU(0.2)
    )


def tutorial_decoder() -> nn.Sequential:
    """The decoder: a 200-dim latent to 784 pixel probabilities."""
    return nn.Sequential(
        nn.Linear(200, 400),
        nn.LeakyReLU(0.2),
        nn.Linear(400, 400),
        nn.LeakyReLU(0.2),
        nn.Linear(400, 784),
        nn.Sigmoid(),
    )
