"""Tests for genlatent.data.binarize (here beside the models it trains: tests/data is not ours).

Dynamic binarization: frequencies match the grey levels, each epoch draws afresh, the test
set is one fixed draw.
"""

import pytest
import torch

from genlatent.data import Batch, ImageDataset, TensorBatches
from genlatent.data.binarize import DynamicBinarization, binarize, binarized, binarized_mnist


def test_frequencies_are_the_grey_levels():
    levels = torch.tensor([0, 1, 64, 128, 200, 255], dtype=torch.uint8)
    images = levels.repeat(200_000, 1)
    draws = binarize(images, generator=torch.Generator().manual_seed(0))
    assert draws.dtype == torch.uint8
    assert set(draws.unique().tolist()) <= {0, 255}
    frequency = (draws == 255).double().mean(dim=0)
    # 200,000 draws: standard error <= 0.5 / sqrt(2e5) ~ 0.0011; 0.006 is > 5 of them
    torch.testing.assert_close(frequency, levels.double() / 255, rtol=0, atol=0.006)
    assert frequency[0] == 0  # the extremes are certain
    assert frequency[-1] == 1


def test_floating_images_keep_their_dtype():
    probs = torch.rand(1000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    draws = binarize(probs, generator=torch.Generator().manual_seed(2))
    assert draws.dtype == torch.float64
    assert set(draws.unique().tolist()) <= {0.0, 1.0}


def test_each_epoch_draws_afresh_and_a_seed_reproduces():
    images = torch.full((6, 1, 4, 4), 128, dtype=torch.uint8)

    def epochs(seed):
        train = DynamicBinarization(
            TensorBatches(images, batch_size=3), generator=torch.Generator().manual_seed(seed)
        )
        return [torch.cat([b.images for b in train]) for _ in range(2)]

    first, second = epochs(0)
    assert not torch.equal(first, second)
    assert all(torch.equal(a, b) for a, b in zip(epochs(0), epochs(0), strict=True))


def test_other_batch_kinds_pass_their_rest_through():
    images = torch.full((2, 1, 2, 2), 0.5)
    labels = torch.tensor([3, 4])
    source = [images, (images, labels), Batch(images, labels)]
    out = list(DynamicBinarization(source, generator=torch.Generator().manual_seed(0)))
    assert out[0].shape == images.shape
    assert torch.equal(out[1][1], labels)
    assert isinstance(out[2], Batch)
    assert torch.equal(out[2].labels, labels)


def test_fixed_draw_of_a_test_set():
    data = ImageDataset(torch.full((8, 1, 3, 3), 100, dtype=torch.uint8), torch.arange(8), "t")
    once, again = binarized(data, seed=5), binarized(data, seed=5)
    assert torch.equal(once.images, again.images)
    assert not torch.equal(once.images, binarized(data, seed=6).images)
    assert torch.equal(once.labels, data.labels)
    assert once.name == "t-binarized-5"


def test_binarized_mnist(mnist_dir):
    data = binarized_mnist(mnist_dir, batch_size=500, generator=torch.Generator().manual_seed(0))
    assert len(data.test) == 10_000
    assert set(data.test.images.unique().tolist()) == {0, 255}
    assert torch.equal(data.test.images, binarized_mnist(mnist_dir).test.images)
    batch = next(iter(data.train))
    assert batch.images.shape == (500, 1, 28, 28)
    assert set(batch.images.unique().tolist()) == {0.0, 1.0}
    assert len(data.train) == 120


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"images must be uint8 or floating, got torch\.int32"):
        binarize(torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"images must be in \[0, 1\] to be read as probabilities"):
        binarize(torch.full((2,), 2.0))
    with pytest.raises(TypeError, match="batches must be iterable, got int"):
        DynamicBinarization(3)
    with pytest.raises(TypeError, match="each batch must be a Batch, an images tensor or a tuple"):
        list(DynamicBinarization(["not a batch"]))
