"""Datasets in memory: readers of the official files, verified downloads, fast batching.

Imports only torch and the standard library; scikit-learn is imported lazily by
:func:`load_digits`. :func:`fetch` is the one downloader (``dataset_by_name(...,
download=True)`` calls it for a missing dataset).
"""

from __future__ import annotations

from genlatent.data._errors import DataError, DownloadError
from genlatent.data.batching import Batch, TensorBatches, as_batches
from genlatent.data.binarize import DynamicBinarization, binarize, binarized_mnist
from genlatent.data.cifar import CIFAR10_CLASSES, load_cifar10
from genlatent.data.collect import as_tensors
from genlatent.data.dataset import ImageDataset
from genlatent.data.digits import load_digits
from genlatent.data.idx import load_mnist, read_idx
from genlatent.data.registry import DATASET_NAMES, class_names, dataset_by_name
from genlatent.data.remote import data_home, fetch

__all__ = [
    "CIFAR10_CLASSES",
    "DATASET_NAMES",
    "Batch",
    "DataError",
    "DownloadError",
    "DynamicBinarization",
    "ImageDataset",
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
