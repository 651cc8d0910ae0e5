"""`Augment`: random crop and flip of an `ImageFolder`'s training images, drawn from
``(seed, epoch, index)`` alone."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from genlatent.data import Augment, ImageFolder, StreamBatches
from genlatent.data.folder import folder_splits

SIZE = 10


def _folder(root, count: int = 6, height: int = 15, width: int = 20):
    rng = np.random.default_rng(0)
    arrays = []
    for i in range(count):
        array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(array).save(root / f"{i:02d}.png")
        arrays.append(array)
    return arrays


def _resized(array: np.ndarray, short_side: int) -> np.ndarray:
    """Shorter side to ``short_side``, bilinear: the definition, computed here with Pillow."""
    height, width = array.shape[:2]
    short, long = min(height, width), max(height, width)
    scaled = (short_side, int(short_side * long / short))
    new_w, new_h = scaled if width <= height else scaled[::-1]
    return np.asarray(Image.fromarray(array).resize((new_w, new_h), Image.Resampling.BILINEAR))


def _windows(resized: np.ndarray) -> list[np.ndarray]:
    height, width = resized.shape[:2]
    return [
        resized[top : top + SIZE, left : left + SIZE]
        for top in range(height - SIZE + 1)
        for left in range(width - SIZE + 1)
    ]


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).numpy()


def test_crops_are_windows_of_the_image_resized_larger_and_move(tmp_path):
    arrays = _folder(tmp_path)
    augment = Augment(crop=True, flip=False, crop_scale=1.5, seed=2)
    data = ImageFolder(tmp_path, size=SIZE, augment=augment)
    corners = set()
    for epoch in range(4):
        data.set_epoch(epoch)
        for index, array in enumerate(arrays):
            resized = _resized(array, 15)  # shorter side 1.5 x 10
            assert resized.shape[:2] == (15, 20)
            image = _hwc(data[index][0])
            found = [
                i for i, window in enumerate(_windows(resized)) if np.array_equal(window, image)
            ]
            assert found, f"item {index} at epoch {epoch} is no window of its resized image"
            corners.add(found[0])
    assert len(corners) > 5  # the window moves over the 6 x 11 possible corners


def test_flips_are_exact_mirror_images_of_the_centre_crop(tmp_path):
    _folder(tmp_path)
    plain = ImageFolder(tmp_path, size=SIZE)
    data = ImageFolder(tmp_path, size=SIZE, augment=Augment(flip=True, crop=False, seed=0))
    flipped = kept = 0
    for epoch in range(3):
        data.set_epoch(epoch)
        for index in range(len(data)):
            image, centre = data[index][0], plain[index][0]
            if torch.equal(image, centre):
                kept += 1
            else:
                assert torch.equal(image, centre.flip(-1))  # columns reversed, exactly
                flipped += 1
    assert flipped > 0
    assert kept > 0


def test_different_epochs_give_different_images_and_the_same_epoch_the_same(tmp_path):
    _folder(tmp_path)
    data = ImageFolder(tmp_path, size=SIZE, augment=Augment(seed=5))
    epochs = []
    for epoch in (0, 1, 0):
        data.set_epoch(epoch)
        epochs.append(torch.stack([data[i][0] for i in range(len(data))]))
    assert not torch.equal(epochs[0], epochs[1])
    assert torch.equal(epochs[0], epochs[2])
    # a copy made elsewhere (a worker, a resumed run) draws the same
    copy = pickle.loads(pickle.dumps(data))
    copy.set_epoch(1)
    assert torch.equal(torch.stack([copy[i][0] for i in range(len(copy))]), epochs[1])
    other_seed = ImageFolder(tmp_path, size=SIZE, augment=Augment(seed=6))
    assert not torch.equal(torch.stack([other_seed[i][0] for i in range(6)]), epochs[0])


def test_the_same_epoch_reads_the_same_images_with_0_and_2_workers(tmp_path):
    _folder(tmp_path, count=8)
    data = ImageFolder(tmp_path, size=SIZE, augment=Augment(seed=1))
    read = {}
    for workers in (0, 2):
        batches = StreamBatches(data, batch_size=3, shuffle=True, seed=4, workers=workers)
        batches.set_epoch(2)
        read[workers] = torch.cat([batch.images for batch in batches])
    assert torch.equal(read[0], read[2])
    # and they are the items of epoch 2, in the sampler's order, read here in this process
    data.set_epoch(2)
    batches = StreamBatches(data, batch_size=3, shuffle=True, seed=4)
    batches.set_epoch(2)
    assert batches.sampler is not None
    want = torch.stack([data[i][0] for i in batches.sampler]).float() / 255
    assert torch.equal(read[2], want)
    batches.set_epoch(3)
    assert not torch.equal(torch.cat([batch.images for batch in batches]), read[0])


def test_only_the_training_split_is_augmented(tmp_path):
    _folder(tmp_path, count=10)
    plain = ImageFolder(tmp_path, size=SIZE)
    train, test = folder_splits(tmp_path, size=SIZE, test_fraction=0.3, augment=Augment())
    for epoch in range(3):
        train.set_epoch(epoch)
        test.set_epoch(epoch)
        for split in (train, test):
            changed = [
                not torch.equal(split[i][0], plain[split.indices[i]][0]) for i in range(len(split))
            ]
            assert any(changed) if split is train else not any(changed)


def test_names_and_bad_values(tmp_path):
    assert Augment.from_names("flip") == Augment(flip=True, crop=False)
    assert Augment.from_names(["crop"], seed=3) == Augment(flip=False, crop=True, seed=3)
    with pytest.raises(
        ValueError, match="augment takes flip and/or crop separated by commas, got 'flip,rotate'"
    ):
        Augment.from_names("flip,rotate")
    with pytest.raises(ValueError, match=r"augment takes .* got 'nothing'"):
        Augment.from_names("")
    with pytest.raises(ValueError, match="needs flip=True or crop=True"):
        Augment(flip=False, crop=False)
    with pytest.raises(ValueError, match=r"crop_scale must be >= 1, got 0\.5"):
        Augment(crop_scale=0.5)
