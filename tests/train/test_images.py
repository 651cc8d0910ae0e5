"""Tests for image grids."""

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
