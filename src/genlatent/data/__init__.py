"""Datasets: readers of the official files, verified downloads, fast in-memory batching,
and streamed batches for data read item by item.

Imports only torch and the standard library; scikit-learn is imported lazily by
:func:`load_digits`, Pillow by :class:`ImageFolder`. :func:`fetch` is the one downloader
(``dataset_by_name(..., download=True)`` calls it for a missing dataset).
"""

from __future__ import annotations

from genlatent.data._errors import DataError, DownloadError
from genlatent.data.augment import Augment
from genlatent.data.batching import Batch, TensorBatches, as_batches
from genlatent.data.binarize import DynamicBinarization, binarize, binarized_mnist
from genlatent.data.cifar import CIFAR10_CLASSES, load_cifar10
from genlatent.data.collect import as_tensors
from genlatent.data.dataset import ImageDataset
from genlatent.data.digits import load_digits
from genlatent.data.folder import IMAGE_SUFFIXES, ImageFolder
from genlatent.data.idx import load_mnist, read_idx
from genlatent.data.registry import DATASET_NAMES, class_names, dataset_by_name
from genlatent.data.remote import data_home, fetch
from genlatent.data.streaming import EpochSampler, StreamBatches

__all__ = [
    "CIFAR10_CLASSES",
    "DATASET_NAMES",
    "IMAGE_SUFFIXES",
    "Augment",
    "Batch",
    "DataError",
    "DownloadError",
    "DynamicBinarization",
    "EpochSampler",
    "ImageDataset",
    "ImageFolder",
    "StreamBatches",
    "TensorBatches",
    "as_batches",
    "as_tensors",
    "binarize",
    "binarized_mnist",
    "class_names",
    "data_home",
    "dataset_by_name",
    "fetch",
    "load_cifar10",
    "load_digits",
    "load_mnist",
    "read_idx",
]
