"""`fit` on streamed data: map-style and iterable datasets and user DataLoaders, read item
by item (never stacked), each epoch's order known from (seed, epoch), shards disjoint."""

import json
from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler

from genlatent import VAE, MLPDecoder, MLPEncoder, fit
from genlatent.data.streaming import EpochSampler, ShardedIterable, StreamBatches
from genlatent.train.loop import StepSettings, _shard_images

QUIET = {"log": lambda line: None, "show_progress": False, "device": "cpu"}
SHAPE = (1, 4, 4)


def _image(index: int) -> torch.Tensor:
    """Item ``index``'s pixels: a function of the index alone (no stored images)."""
    generator = torch.Generator().manual_seed(index)
    return torch.randint(0, 256, SHAPE, dtype=torch.uint8, generator=generator)


class CountingImages(Dataset):
    """A map-style dataset of ``size`` generated uint8 images that records each index read."""

    def __init__(self, size: int, scale: float | None = None) -> None:
        self.size, self.scale, self.reads = size, scale, []

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        self.reads.append(index)
        image = _image(index)
        return (image if self.scale is None else image.float() / self.scale), index % 3


class Stream(IterableDataset):
    def __init__(self, size: int) -> None:
        self.size = size

    def __iter__(self):
        for index in range(self.size):
            yield _image(index)


def _vae() -> VAE:
    torch.manual_seed(0)
    return VAE(MLPEncoder(16, 8, 2), MLPDecoder(2, 8, 16, out_shape=SHAPE))


def _lines(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_map_style_dataset_is_read_item_by_item_once_per_epoch(tmp_path):
    data = CountingImages(100)
    fit(_vae(), data, run_dir=tmp_path, epochs=2, batch_size=16, lr=1e-3, **QUIET)
    preview, trained = data.reads[:32], data.reads[32:]
    assert preview == list(range(32))  # the checks' and pictures' examples, read once
    assert len(trained) == 2 * 100  # nothing stacked: every read is a training read
    for epoch in (1, 2):  # each epoch is the permutation drawn from (seed, epoch)
        order = torch.randperm(100, generator=torch.Generator().manual_seed(0 + epoch))
        assert trained[(epoch - 1) * 100 : epoch * 100] == order.tolist()
    assert [line["train_examples"] for line in _lines(tmp_path)] == [100, 100]


def test_ten_million_items_train_twenty_steps_touching_only_those(tmp_path):
    data = CountingImages(10_000_000)
    draws = RandomSampler(data, num_samples=20 * 32, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(data, batch_size=32, sampler=draws)
    summary = fit(_vae(), loader, run_dir=tmp_path, epochs=1, batch_size=32, lr=1e-3, **QUIET)
    assert summary.last_metrics["train_examples"] == 20 * 32
    # the preview reads the loader's first batch; then 20 batches of 32
    assert len(data.reads) == 32 + 20 * 32
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["steps"] == 20


def test_an_iterable_dataset_trains_with_workers_each_item_once(tmp_path):
    summary = fit(
        _vae(), Stream(50), run_dir=tmp_path, epochs=2, batch_size=16, lr=1e-3, num_workers=2,
        **QUIET,
    )  # fmt: skip
    assert [line["train_examples"] for line in _lines(tmp_path)] == [50, 50]
    # 50 items in batches of 16 from each of 2 workers' 25: 16 + 9 per worker
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["steps"] == 8
    assert summary.epochs == 2


def test_uint8_items_train_as_float_items_scaled_to_unit_range(tmp_path):
    as_bytes = fit(_vae(), CountingImages(40), run_dir=tmp_path / "u8", epochs=2,
                   batch_size=8, lr=1e-3, **QUIET).model  # fmt: skip
    as_floats = fit(_vae(), CountingImages(40, scale=255.0), run_dir=tmp_path / "f32",
                    epochs=2, batch_size=8, lr=1e-3, **QUIET).model  # fmt: skip
    want = as_floats.state_dict()
    for name, value in as_bytes.state_dict().items():
        assert torch.equal(value, want[name]), name


def test_a_resumed_map_style_run_equals_an_uninterrupted_one(tmp_path):
    whole = tmp_path / "whole"
    fit(_vae(), CountingImages(48), CountingImages(16), run_dir=whole, epochs=3,
        batch_size=16, lr=1e-3, **QUIET)  # fmt: skip
    parts = tmp_path / "parts"
    fit(_vae(), CountingImages(48), CountingImages(16), run_dir=parts, epochs=1,
        batch_size=16, lr=1e-3, **QUIET)  # fmt: skip
    fit(_vae(), CountingImages(48), CountingImages(16), run_dir=parts, epochs=3,
        batch_size=16, lr=1e-3, resume=True, **QUIET)  # fmt: skip
    got = torch.load(parts / "checkpoints" / "last.pt", weights_only=True)
    want = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)
    for name, value in want["model"].items():
        assert torch.equal(got["model"][name], value), name
    assert got["steps"] == want["steps"] == 3 * 3


def test_streamed_data_refuses_binarize_and_names_bad_items(tmp_path):
    with pytest.raises(ValueError, match="binarize draws from data held in memory"):
        fit(_vae(), CountingImages(8), run_dir=tmp_path / "a", epochs=1, batch_size=4,
            lr=1e-3, binarize=True, **QUIET)  # fmt: skip
    with pytest.raises(TypeError, match="train_data items must be images or"):
        fit(_vae(), ["not an image"] * 4, run_dir=tmp_path / "b", epochs=1, batch_size=4,
            lr=1e-3, **QUIET)  # fmt: skip
    with pytest.raises(ValueError, match="test_data examples must have the shape"):
        fit(_vae(), CountingImages(8), [torch.zeros(1, 2, 2)] * 3, run_dir=tmp_path / "c",
            epochs=1, batch_size=4, lr=1e-3, **QUIET)  # fmt: skip


@pytest.mark.parametrize(("size", "world"), [(10, 3), (7, 2), (1, 2), (6, 3)])
def test_epoch_sampler_shards_cover_the_permutation_in_equal_parts(size, world):
    shards = []
    for rank in range(world):
        sampler = EpochSampler(size, shuffle=True, seed=5, rank=rank, world=world)
        sampler.set_epoch(2)
        shards.append(list(sampler))
    per_rank = -(-size // world)
    assert all(len(shard) == per_rank for shard in shards)  # equal steps, none empty
    order = torch.randperm(size, generator=torch.Generator().manual_seed(5 + 2)).tolist()
    padded = (order * world)[: per_rank * world]  # DistributedSampler's padding rule
    assert [index for rank in range(world) for index in padded[rank::world]] == [
        index for shard in shards for index in shard
    ]
    assert Counter(index for shard in shards for index in shard) >= Counter(range(size))


def test_sharded_iterable_gives_each_item_to_one_reader():
    items = list(range(23))
    read = []
    for rank in range(2):
        loader = DataLoader(ShardedIterable(items, rank=rank, world=2), num_workers=2)
        read += [int(x) for x in loader]
    assert sorted(read) == items


def test_stream_batches_are_marked_as_this_process_shard():
    batches = StreamBatches([_image(i) for i in range(5)], batch_size=4, rank=1, world=2)
    assert batches.sharded
    assert [b.images.shape[0] for b in batches] == [2, 1]  # 3 of 5 (padded), 2 a step
    assert len(batches) == 2


def test_a_batch_smaller_than_the_processes_leaves_no_process_empty():
    batch = torch.arange(3).reshape(3, 1)
    for world in (2, 4, 5):
        rows = []
        for rank in range(world):
            settings = StepSettings(torch.device("cpu"), rank=rank, world=world)
            shard = _shard_images(batch[:1], settings, sharded=False)
            assert shard.shape[0] >= 1
            rows.append(shard)
        whole = [_shard_images(batch, StepSettings(torch.device("cpu"), rank=r, world=2),
                               sharded=False) for r in range(2)]  # fmt: skip
        assert sorted(torch.cat(whole).flatten().tolist()) == [0, 1, 2]
