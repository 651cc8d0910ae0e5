"""In-memory batching and the bridge from user data."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.data import Batch, ImageDataset, TensorBatches, as_batches


def dataset(n: int, seed: int = 0) -> ImageDataset:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 2, 3, 3), generator=gen, dtype=torch.uint8)
    return ImageDataset(images, torch.arange(n), name="toy")


@settings(deadline=None, max_examples=40)
@given(
    n=st.integers(0, 23),
    batch_size=st.integers(1, 8),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_batches_cover_the_data(n, batch_size, shuffle, drop_last, seed) -> None:
    data = dataset(n, seed)
    gen = torch.Generator().manual_seed(seed)
    batches = TensorBatches(
        data, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=gen
    )
    out = list(batches)
    assert len(out) == len(batches)
    expected_len = n // batch_size if drop_last else -(-n // batch_size)
    assert len(batches) == expected_len
    seen = []
    for i, batch in enumerate(out):
        assert isinstance(batch, Batch)
        size = batch.images.shape[0]
        assert size == batch_size or (i == len(out) - 1 and not drop_last and size < batch_size)
        assert batch.images.dtype == torch.float32
        assert batch.images.shape[1:] == (2, 3, 3)
        # Each image is its uint8 source divided by 255, and matches its label.
        source = data.images.index_select(0, batch.labels).float() / 255
        torch.testing.assert_close(batch.images, source)
        seen += batch.labels.tolist()
    if drop_last:
        assert len(seen) == (n // batch_size) * batch_size
        assert len(set(seen)) == len(seen)
    else:
        assert sorted(seen) == list(range(n))
    if not shuffle:
        assert seen == list(range(len(seen)))


def test_shuffle_reproducible_and_new_each_epoch() -> None:
    data = dataset(50)
    a = TensorBatches(data, batch_size=50, shuffle=True, generator=torch.Generator().manual_seed(7))
    b = TensorBatches(data, batch_size=50, shuffle=True, generator=torch.Generator().manual_seed(7))
    first_a, second_a = next(iter(a)).labels, next(iter(a)).labels
    assert torch.equal(first_a, next(iter(b)).labels)
    assert not torch.equal(first_a, second_a)
    assert not torch.equal(first_a, torch.arange(50))


def test_tensor_input_without_labels_and_dtype() -> None:
    images = torch.full((3, 1, 2, 2), 51, dtype=torch.uint8)
    batch = next(iter(TensorBatches(images, batch_size=2, dtype=torch.float64)))
    assert batch.labels is None
    assert batch.images.dtype == torch.float64
    torch.testing.assert_close(batch.images, torch.full((2, 1, 2, 2), 0.2, dtype=torch.float64))
    shuffled = next(iter(TensorBatches(images, batch_size=2, shuffle=True)))
    assert shuffled.labels is None


def test_float_images_are_only_cast() -> None:
    images = torch.linspace(0, 1, 8).reshape(2, 1, 2, 2)
    batch = next(iter(TensorBatches(images, torch.tensor([0, 1]), batch_size=2)))
    torch.testing.assert_close(batch.images, images)


def test_device_argument() -> None:
    batches = TensorBatches(dataset(4), batch_size=3, device="cpu", shuffle=True)
    assert batches.images.device.type == "cpu"
    assert next(iter(batches)).images.device.type == "cpu"
    assert batches.num_samples == 4


def test_errors() -> None:
    data = dataset(4)
    with pytest.raises(TypeError, match=r"labels must be None when data is an ImageDataset"):
        TensorBatches(data, torch.arange(4), batch_size=2)
    with pytest.raises(TypeError, match=r"data must be a torch.Tensor, got list"):
        TensorBatches([1, 2], batch_size=2)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"images must have shape \(N, \*\) such as \(N, C, H, W\), got shape \(4,\)",
    ):
        TensorBatches(torch.zeros(4), batch_size=2)
    flat = TensorBatches(torch.zeros(4, 3), batch_size=2)  # flat examples are fine
    assert [b.images.shape for b in flat] == [(2, 3), (2, 3)]
    with pytest.raises(
        TypeError, match=r"images must be uint8 or floating \(or integer codes\), got torch.bool"
    ):
        TensorBatches(torch.zeros(4, 1, 2, 2, dtype=torch.bool), batch_size=2)
    codes = torch.arange(12).reshape(4, 3)  # integer codes pass through unchanged
    assert next(iter(TensorBatches(codes, batch_size=4))).images.dtype == torch.int64
    with pytest.raises(
        ValueError,
        match=r"labels must have shape \(N,\) with N=4 like the images, got shape \(3,\)",
    ):
        TensorBatches(torch.zeros(4, 1, 2, 2), torch.arange(3), batch_size=2)
    with pytest.raises(TypeError, match=r"dtype must be a floating torch.dtype, got torch.int32"):
        TensorBatches(data, batch_size=2, dtype=torch.int32)
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator, got int"):
        TensorBatches(data, batch_size=2, generator=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        TensorBatches(data, batch_size=0)
    with pytest.raises(TypeError, match=r"batch_size must be an int, got float"):
        TensorBatches(data, batch_size=2.0)  # type: ignore[arg-type]


def test_as_batches_dataset_and_tensor_batches() -> None:
    data = dataset(5)
    batches = as_batches(data, 2, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert isinstance(batches, TensorBatches)
    assert len(batches) == 3  # type: ignore[arg-type]
    assert as_batches(batches) is batches
    assert isinstance(as_batches(data.images, 5), TensorBatches)
    with pytest.raises(
        ValueError, match=r"batch_size is required to batch a ImageDataset, got None"
    ):
        as_batches(data)


def test_as_batches_dataloader() -> None:
    images = torch.randint(0, 256, (6, 1, 2, 2), dtype=torch.uint8)
    labels = torch.arange(6)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, labels), batch_size=4
    )
    batches = as_batches(loader, device="cpu")
    assert len(batches) == 2  # type: ignore[arg-type]
    for _epoch in range(2):  # re-iterable, one pass per epoch
        out = list(batches)
        assert [b.images.shape[0] for b in out] == [4, 2]
        torch.testing.assert_close(torch.cat([b.images for b in out]), images.float() / 255)
        assert torch.equal(torch.cat([b.labels for b in out]), labels)


def test_as_batches_plain_tensors_and_one_tuples() -> None:
    x = torch.rand(2, 1, 2, 2)
    out = list(as_batches([x, (x,), [x, torch.tensor([1, 2])]]))
    assert [b.labels is None for b in out] == [True, True, False]
    for b in out:
        torch.testing.assert_close(b.images, x)


def test_as_batches_errors() -> None:
    with pytest.raises(TypeError, match=r"data must be an ImageDataset, a tensor, .* got int"):
        as_batches(3)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"each batch must be an images tensor or an \(images, labels\) pair, got str",
    ):
        list(as_batches(["abc"]))
    with pytest.raises(TypeError, match=r"batch images must be a torch.Tensor, got int"):
        list(as_batches([(1, 2)]))
    with pytest.raises(TypeError, match=r"batch labels must be a torch.Tensor, got list"):
        list(as_batches([(torch.zeros(1, 1, 1, 1), [0])]))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_batches_on_device(device: str) -> None:
    data = dataset(10)
    for gen in (torch.Generator().manual_seed(0), torch.Generator(device=device).manual_seed(0)):
        batches = TensorBatches(data, batch_size=4, shuffle=True, generator=gen, device=device)
        assert batches.images.device.type == device
        out = list(batches)
        assert all(
            b.images.device.type == device
            and b.labels is not None
            and b.labels.device.type == device
            for b in out
        )
        labels = torch.cat([b.labels for b in out if b.labels is not None]).cpu()
        assert sorted(labels.tolist()) == list(range(10))
        images = torch.cat([b.images for b in out]).cpu()
        torch.testing.assert_close(images, data.images[labels].float() / 255)
    user = as_batches([(data.images, data.labels)], device=device)
    assert next(iter(user)).images.device.type == device
