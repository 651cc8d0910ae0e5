"""Datasets in memory: readers of the official files, verified downloads, fast batching.

Imports only torch and the standard library; scikit-learn is imported lazily by
:func:`load_digits`.
"""

from __future__ import annotations

from genlatent.data._errors import DataError, DownloadError
from genlatent.data.batching import Batch, TensorBatches, as_batches
from genlatent.data.cifar import CIFAR10_CLASSES, load_cifar10
from genlatent.data.dataset import ImageDataset
from genlatent.data.digits import DIGITS_TEST_SIZE, load_digits
from genlatent.data.idx import MNIST_VARIANTS, load_mnist, read_idx
from genlatent.data.registry import DATASET_NAMES, dataset_by_name
from genlatent.data.remote import (
    REMOTE_DATASETS,
    RemoteDataset,
    RemoteFile,
    data_home,
    download,
    fetch,
    fetch_cifar10,
    fetch_mnist,
    resolve_mirrors,
    sha256_file,
)

__all__ = [
    "CIFAR10_CLASSES",
    "DATASET_NAMES",
    "DIGITS_TEST_SIZE",
    "MNIST_VARIANTS",
    "REMOTE_DATASETS",
    "Batch",
    "DataError",
    "DownloadError",
    "ImageDataset",
    "RemoteDataset",
    "RemoteFile",
    "TensorBatches",
    "as_batches",
    "data_home",
    "dataset_by_name",
    "download",
    "fetch",
    "fetch_cifar10",
    "fetch_mnist",
    "load_cifar10",
    "load_digits",
    "load_mnist",
    "read_idx",
    "resolve_mirrors",
    "sha256_file",
]
