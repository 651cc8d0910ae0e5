"""`ImageFolder`: classes from sub-folders, lazy decode, shorter-side resize and centre
crop, unreadable files named or skipped."""

import numpy as np
import pytest
import torch
from PIL import Image

from genlatent.data import ImageFolder
from genlatent.errors import DataError


def _save(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_sub_folders_are_classes_in_sorted_order(tmp_path):
    for name, count in (("zebra", 2), ("ant", 3)):
        for i in range(count):
            _save(tmp_path / name / f"{i}.png", _noise(8, 8, i))
    _save(tmp_path / "ant" / "deeper" / "x.jpg", _noise(8, 8, 9))
    data = ImageFolder(tmp_path, size=8)
    assert data.classes == ["ant", "zebra"]
    assert len(data) == 6
    assert [label for _, label in data] == [0, 0, 0, 0, 1, 1]  # ant/0..2, ant/deeper, zebra/0..1


def test_a_flat_folder_is_one_class_and_every_suffix_is_read(tmp_path):
    for suffix in ("png", "jpg", "JPEG", "webp", "bmp"):
        _save(tmp_path / f"a.{suffix}", _noise(6, 6, 0))
    (tmp_path / "notes.txt").write_text("not an image")
    data = ImageFolder(tmp_path, size=6)
    assert data.classes == [tmp_path.name]
    assert len(data) == 5
    png = next(i for i, p in enumerate(data.files) if p.suffix == ".png")
    assert torch.equal(data[png][0], torch.from_numpy(_noise(6, 6, 0)).permute(2, 0, 1))


@pytest.mark.parametrize(("height", "width"), [(20, 40), (40, 20), (31, 17), (10, 10)])
def test_shorter_side_resize_then_centre_crop(tmp_path, height, width):
    array = _noise(height, width, 1)
    _save(tmp_path / "x.png", array)
    size = 10
    image, label = ImageFolder(tmp_path, size=size)[0]
    # the definition (torchvision's Resize(size) + CenterCrop(size)), computed here
    short, long = min(height, width), max(height, width)
    new = (size, int(size * long / short))
    new_h, new_w = new if height <= width else new[::-1]
    resized = Image.fromarray(array)
    if (new_w, new_h) != (width, height):
        resized = resized.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = round((new_h - size) / 2), round((new_w - size) / 2)
    want = np.asarray(resized)[top : top + size, left : left + size]
    assert image.dtype == torch.uint8
    assert image.shape == (3, size, size)
    assert torch.equal(image, torch.from_numpy(want.copy()).permute(2, 0, 1))
    assert label == 0


def test_channels_and_transform(tmp_path):
    _save(tmp_path / "x.png", _noise(4, 4, 2))
    grey = ImageFolder(tmp_path, size=4, channels=1)[0][0]
    want = np.asarray(Image.fromarray(_noise(4, 4, 2)).convert("L"))
    assert torch.equal(grey, torch.from_numpy(want.copy()).unsqueeze(0))
    flipped = ImageFolder(tmp_path, size=4, transform=lambda x: x.flip(-1))[0][0]
    assert torch.equal(flipped, ImageFolder(tmp_path, size=4)[0][0].flip(-1))


def test_a_corrupt_file_is_named_or_skipped_with_a_count(tmp_path):
    _save(tmp_path / "good.png", _noise(4, 4, 3))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    data = ImageFolder(tmp_path, size=4)
    assert len(data) == 2
    with pytest.raises(DataError, match=r"broken\.png cannot be read as an image"):
        data[0]
    kept = ImageFolder(tmp_path, size=4, skip_unreadable=True)
    assert len(kept) == 1
    assert [p.name for p in kept.skipped] == ["broken.png"]
    assert "skipped=1" in repr(kept)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="root must be a folder"):
        ImageFolder(tmp_path / "missing", size=4)
    with pytest.raises(FileNotFoundError, match="no image files"):
        ImageFolder(tmp_path, size=4)
    _save(tmp_path / "x.png", _noise(4, 4, 0))
    with pytest.raises(ValueError, match="channels must be one of"):
        ImageFolder(tmp_path, size=4, channels=2)
    with pytest.raises(ValueError, match="size"):
        ImageFolder(tmp_path, size=0)
    _save(tmp_path / "cls" / "y.png", _noise(4, 4, 0))
    with pytest.raises(FileNotFoundError, match="class sub-folders and loose images"):
        ImageFolder(tmp_path, size=4)
