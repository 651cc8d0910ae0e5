"""Downloads verified by SHA-256, written atomically.

A file is streamed into a temporary file in the destination folder, hashed as it
arrives, compared with the expected SHA-256, flushed to disk (``fsync``) and only then
renamed into place with ``os.replace``; a failed or corrupt download leaves nothing at
the final path. Mirrors are tried in order.

Where files go: the ``root`` argument, else ``$GENLATENT_DATA``, else
``~/.cache/genlatent``. Which mirrors: the ``mirrors`` argument, else
``$GENLATENT_MIRRORS`` (comma-separated base URLs), else the table below.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from genlatent._atomic import atomic_write
from genlatent.data._errors import DownloadError

__all__ = ["data_home", "fetch"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """A file name and its SHA-256 (``None`` where no published value was found)."""

    filename: str
    sha256: str | None


@dataclass(frozen=True)
class RemoteDataset:
    """The files of one dataset, the folder they go to and the default mirrors."""

    folder: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]


# SHA-256 values of the official files, as published by tensorflow/datasets in
# tensorflow_datasets/url_checksums/mnist.txt (files of the
# storage.googleapis.com/cvdf-datasets/mnist mirror), .../fashion_mnist.txt (files of
# fashion-mnist.s3-website.eu-central-1.amazonaws.com) and .../cifar10.csv
# (www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz). The same MNIST and CIFAR-10 values
# appear in several other public projects (the CIFAR-10 one as ``file_hash`` in a
# keras-style cifar10 loader); public download scripts pin the same MNIST hashes for
# both the ossci-datasets and the cvdf-datasets mirror.
REMOTE_DATASETS: Mapping[str, RemoteDataset] = MappingProxyType(
    {
        "mnist": RemoteDataset(
            folder="mnist",
            files=(
                RemoteFile(
                    "train-images-idx3-ubyte.gz",
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                ),
                RemoteFile(
                    "train-labels-idx1-ubyte.gz",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                ),
                RemoteFile(
                    "t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                ),
                RemoteFile(
                    "t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                ),
            ),
            mirrors=(
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
            ),
        ),
        "fashion-mnist": RemoteDataset(
            folder="fashion-mnist",
            files=(
                RemoteFile(
                    "train-images-idx3-ubyte.gz",
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                ),
                RemoteFile(
                    "train-labels-idx1-ubyte.gz",
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                ),
                RemoteFile(
                    "t10k-images-idx3-ubyte.gz",
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                ),
                RemoteFile(
                    "t10k-labels-idx1-ubyte.gz",
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                ),
            ),
            mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ),
        "cifar10": RemoteDataset(
            folder="cifar10",
            files=(
                RemoteFile(
                    "cifar-10-python.tar.gz",
                    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                ),
            ),
            mirrors=("https://www.cs.toronto.edu/~kriz/",),
        ),
    }
)


def data_home(root: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``root``, else ``$GENLATENT_DATA``, else ``~/.cache/genlatent``.

    Example:
        >>> from genlatent.data import data_home
        >>> data_home("/tmp/somewhere").as_posix()
        '/tmp/somewhere'
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("GENLATENT_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "genlatent"


def resolve_mirrors(mirrors: Sequence[str] | None, default: Sequence[str] = ()) -> tuple[str, ...]:
    """Mirrors to try: ``mirrors``, else ``$GENLATENT_MIRRORS`` (comma-separated), else ``default``.

    Raises:
        TypeError: if ``mirrors`` is a single string rather than a sequence of them.
        ValueError: if the result is empty.

    Example:
        >>> from genlatent.data.remote import resolve_mirrors
        >>> resolve_mirrors(["http://a.example/", "http://b.example"])
        ('http://a.example/', 'http://b.example')
    """
    if isinstance(mirrors, str):
        raise TypeError(f"mirrors must be a sequence of base URLs, got the string {mirrors!r}")
    if mirrors is None:
        env = os.environ.get("GENLATENT_MIRRORS", "")
        found = tuple(m.strip() for m in env.split(",") if m.strip())
        result = found or tuple(default)
    else:
        result = tuple(mirrors)
    if not result:
        raise ValueError("no mirrors to download from: pass mirrors=[...] or set GENLATENT_MIRRORS")
    return result


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_one(url: str, final: Path, sha256: str, timeout: float) -> None:
    """Stream ``url`` into a temp file next to ``final``; verify, then rename (`atomic_write`)."""
    digest = hashlib.sha256()
    with atomic_write(final, suffix=".part") as out:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != sha256:  # raised inside the block: the temp file goes, final stays
            raise ValueError(
                f"checksum mismatch for {final.name}: expected sha256 {sha256}, got {actual}"
            )


def _attempt(url: str, final: Path, sha256: str, timeout: float) -> Exception | None:
    """Try one mirror; return the failure, or ``None`` on success."""
    try:
        _fetch_one(url, final, sha256, timeout)
    except urllib.error.HTTPError as exc:
        exc.close()  # release the response it holds
        return exc
    except (OSError, ValueError) as exc:  # URLError is an OSError
        return exc
    return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason}"
    return str(exc)


def download(
    filename: str,
    *,
    sha256: str | None,
    root: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``filename`` from the first mirror that serves it with the right SHA-256.

    Each mirror is a base URL; the file's URL is ``<mirror>/<filename>``. A file already
    at the destination with the right hash is kept and not downloaded again.

    Args:
        filename: the file's name on the mirrors and on disk.
        sha256: the expected hex digest. ``None`` is refused: nothing is downloaded
            unverified.
        root: the destination folder (created if needed); see :func:`data_home`.
        mirrors: base URLs tried in order; see :func:`resolve_mirrors`.
        timeout: seconds to wait on a stalled connection.

    Returns:
        The path of the verified file.

    Raises:
        ValueError: if ``sha256`` is missing or not 64 hex digits, ``filename`` is not a
            plain name, or there are no mirrors.
        DownloadError: if every mirror failed; the message lists each mirror's failure
            (HTTP error, network error, or the expected and actual hash).

    Example:
        >>> from genlatent.data.remote import download
        >>> download("t10k-labels-idx1-ubyte.gz", sha256="f7ae60f9...",
        ...          mirrors=["https://example.org/mnist/"])  # doctest: +SKIP
    """
    if sha256 is None:
        raise ValueError(
            f"refusing to download {filename} without a known SHA-256: pass sha256=..."
        )
    sha256 = sha256.lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if not filename or Path(filename).name != filename or filename in (".", ".."):
        raise ValueError(f"filename must be a plain file name, got {filename!r}")
    urls = [m.rstrip("/") + "/" + filename for m in resolve_mirrors(mirrors)]
    dest = data_home(root)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / filename
    if final.is_file() and sha256_file(final) == sha256:
        return final
    failures: list[tuple[str, str]] = []
    last: BaseException | None = None
    for url in urls:
        last = _attempt(url, final, sha256, timeout)
        if last is None:
            return final
        failures.append((url, _describe(last)))
    listing = "\n".join(f"  {url}: {reason}" for url, reason in failures)
    raise DownloadError(
        f"could not download {filename} (sha256 {sha256}) from any mirror:\n{listing}",
        failures,
    ) from last


def fetch(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download every file of a known dataset into ``data_home(root) / <name>``, verified.

    The one downloader: each file comes from the first mirror that serves it with the
    published SHA-256, through a temporary file renamed into place only once verified.
    The returned folder can be given to :func:`load_mnist` or :func:`load_cifar10`.

    Args:
        name: a key of :data:`REMOTE_DATASETS` (``"mnist"``, ``"fashion-mnist"``,
            ``"cifar10"``).
        root: see :func:`data_home`.
        mirrors: see :func:`resolve_mirrors`; the table's mirrors are the default.
        timeout: seconds to wait on a stalled connection.

    Returns:
        The folder holding the files.

    Raises:
        ValueError: if ``name`` is unknown.
        DownloadError: if a file could not be downloaded and verified.
    """
    if name not in REMOTE_DATASETS:
        raise ValueError(f"name must be one of {tuple(REMOTE_DATASETS)}, got {name!r}")
    spec = REMOTE_DATASETS[name]
    urls = resolve_mirrors(mirrors, spec.mirrors)
    folder = data_home(root) / spec.folder
    for file in spec.files:
        download(file.filename, sha256=file.sha256, root=folder, mirrors=urls, timeout=timeout)
    return folder
