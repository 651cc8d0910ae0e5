"""Tests for image grids."""

import numpy
import pytest
import torch
from PIL import Image

from genlatent.train import image_grid, save_image_grid


def test_grid_layout_places_each_image():
    images = torch.stack([torch.full((1, 2, 2), i / 5) for i in range(5)])
    grid = image_grid(images, nrow=3, padding=1)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 1, 1)
    assert grid.dtype == torch.uint8
    # the fifth image sits in row 2, column 2, after one pixel of padding per cell
    assert grid[4, 4, 0].item() == round(4 / 5 * 255)
    # the missing sixth cell is black
    assert grid[4:6, 7:9].sum().item() == 0


def test_values_are_clamped():
    grid = image_grid(torch.tensor([[[[-1.0, 2.0]]]]), padding=0)
    assert grid[0, :, 0].tolist() == [0, 255]


def test_save_png(tmp_path):
    path = save_image_grid(torch.rand(6, 3, 4, 4), tmp_path / "grid.png", nrow=3, scale=2)
    with Image.open(path) as picture:
        assert picture.mode == "RGB"
        assert picture.size == ((3 * 6 + 2) * 2, (2 * 6 + 2) * 2)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"images must have 1 or 3 channels, got shape \(1, 2"):
        image_grid(torch.rand(1, 2, 4, 4))
    with pytest.raises(ValueError, match="at least one image"):
        image_grid(torch.rand(0, 1, 4, 4))


class _Mirror(torch.nn.Module):
    """Reconstructs each image as its negative; samples uniform noise from the generator."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def reconstruct(self, x):
        return 1 - x

    def sample(self, num, *, generator=None):
        return torch.rand(num, 64, generator=generator)  # flat: reshaped to (1, 8, 8)


def _cells(path, rows: int, scale: int = 8, size: int = 8, padding: int = 2) -> torch.Tensor:
    """The (rows * 8) images of a saved 8-column grid, read back from the PNG's pixels."""
    with Image.open(path) as picture:
        assert picture.mode == "L"
        width = (8 * (size + padding) + padding) * scale
        assert picture.size == (width, (rows * (size + padding) + padding) * scale)
        pixels = torch.from_numpy(numpy.array(picture)).to(torch.int16)[::scale, ::scale]
    step = size + padding
    return torch.stack(
        [
            pixels[padding + r * step : padding + r * step + size,
                   padding + c * step : padding + c * step + size]
            for r in range(rows)
            for c in range(8)
        ]
    )  # fmt: skip


def test_write_pictures_shows_inputs_above_reconstructions_and_seeded_samples(tmp_path):
    from genlatent.train.pictures import write_pictures
    from genlatent.train.rundir import RunDirectory

    images = torch.randint(0, 256, (40, 1, 8, 8), generator=torch.Generator().manual_seed(4))
    run = RunDirectory(tmp_path)
    write_pictures(_Mirror(), images.to(torch.uint8), None, run, seed=11)
    # the first 32 test images, 8 per row, each row of inputs above its reconstructions
    cells = _cells(run.reconstructions_path, rows=8)
    for k in range(4):
        inputs = images[8 * k : 8 * k + 8, 0].to(torch.int16)
        shown_inputs, shown_reconstructions = (
            cells[16 * k : 16 * k + 8],
            cells[16 * k + 8 : 16 * k + 16],
        )
        assert (shown_inputs - inputs).abs().max() <= 1  # uint8 -> [0, 1] -> uint8
        assert (shown_reconstructions - (255 - inputs)).abs().max() <= 1
    # 64 samples drawn from a generator seeded by the run's seed, in order
    cells = _cells(run.samples_path, rows=8)
    expected = torch.rand(64, 64, generator=torch.Generator().manual_seed(11)).reshape(64, 8, 8)
    assert (cells - (expected * 255).round().to(torch.int16)).abs().max() <= 1
