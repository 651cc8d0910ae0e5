"""Downloads from a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import genlatent.data.remote as remote_module
from genlatent.data import DownloadError, data_home, fetch
from genlatent.data.remote import (
    REMOTE_DATASETS,
    RemoteDataset,
    RemoteFile,
    download,
    resolve_mirrors,
    sha256_file,
)

CONTENT = b"genlatent test payload\n" * 1000
SHA = hashlib.sha256(CONTENT).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("GENLATENT_MIRRORS", raising=False)
    monkeypatch.delenv("GENLATENT_DATA", raising=False)


def _serve(folder: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def server(tmp_path: Path, no_proxy: None) -> Iterator[str]:
    """A mirror serving ``good.bin`` (CONTENT) and ``bad.bin`` (corrupt) from its root."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "good.bin").write_bytes(CONTENT)
    (folder / "bad.bin").write_bytes(CONTENT[:-1] + b"!")
    yield from _serve(folder)


@pytest.fixture
def server_b(tmp_path: Path, no_proxy: None) -> Iterator[str]:
    """A second mirror where ``bad.bin`` is correct."""
    folder = tmp_path / "served_b"
    folder.mkdir()
    (folder / "bad.bin").write_bytes(CONTENT)
    (folder / "good.bin").write_bytes(CONTENT)
    yield from _serve(folder)


def test_good_download(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    path = download("good.bin", sha256=SHA, root=dest, mirrors=[server])
    assert path == dest / "good.bin"
    assert path.read_bytes() == CONTENT
    assert sha256_file(path) == SHA
    assert os.listdir(dest) == ["good.bin"]  # no temporary file left


def test_existing_verified_file_is_kept(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "good.bin").write_bytes(CONTENT)
    before = (dest / "good.bin").stat().st_mtime_ns
    download("good.bin", sha256=SHA, root=dest, mirrors=["http://127.0.0.1:9/"])
    assert (dest / "good.bin").stat().st_mtime_ns == before


def test_existing_corrupt_file_is_replaced(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "good.bin").write_bytes(b"stale")
    assert download("good.bin", sha256=SHA, root=dest, mirrors=[server]).read_bytes() == CONTENT


def test_wrong_checksum_leaves_no_file(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    actual = hashlib.sha256(CONTENT[:-1] + b"!").hexdigest()
    with pytest.raises(
        DownloadError, match=rf"checksum mismatch for bad.bin: expected sha256 {SHA}, got {actual}"
    ) as info:
        download("bad.bin", sha256=SHA, root=dest, mirrors=[server])
    assert os.listdir(dest) == []
    assert info.value.failures[0][0] == server + "bad.bin"


def test_first_mirror_404_then_second(server: str, server_b: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    path = download("good.bin", sha256=SHA, root=dest, mirrors=[server + "missing/", server_b])
    assert path.read_bytes() == CONTENT


def test_wrong_checksum_moves_to_next_mirror(server: str, server_b: str, tmp_path: Path) -> None:
    path = download("bad.bin", sha256=SHA, root=tmp_path / "d", mirrors=[server, server_b])
    assert path.read_bytes() == CONTENT


def test_all_mirrors_fail_lists_each(server: str, tmp_path: Path) -> None:
    dead = "http://127.0.0.1:9/"  # discard port: connection refused
    with pytest.raises(DownloadError, match=r"from any mirror") as info:
        download(
            "bad.bin", sha256=SHA, root=tmp_path / "d", mirrors=[server + "nope/", dead, server]
        )
    message = str(info.value)
    assert f"{server}nope/bad.bin: HTTP 404" in message
    assert f"{dead}bad.bin:" in message
    assert f"{server}bad.bin: checksum mismatch" in message
    assert [url for url, _ in info.value.failures] == [
        f"{server}nope/bad.bin",
        f"{dead}bad.bin",
        f"{server}bad.bin",
    ]
    assert os.listdir(tmp_path / "d") == []


def test_env_mirrors(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENLATENT_MIRRORS", f"{server}missing/, {server}")
    path = download("good.bin", sha256=SHA, root=tmp_path / "d")
    assert path.read_bytes() == CONTENT
    assert resolve_mirrors(None, ["http://default/"]) == (f"{server}missing/", server)
    assert resolve_mirrors(["http://arg/"]) == ("http://arg/",)


def test_env_data_home(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENLATENT_DATA", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home"
    path = download("good.bin", sha256=SHA, mirrors=[server])
    assert path == tmp_path / "home" / "good.bin"
    monkeypatch.delenv("GENLATENT_DATA")
    assert data_home() == Path.home() / ".cache" / "genlatent"


def test_fetch_known_dataset(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {"toy": RemoteDataset("toy", (RemoteFile("good.bin", SHA),), ("http://127.0.0.1:9/",))}
    monkeypatch.setattr(remote_module, "REMOTE_DATASETS", fake)
    with pytest.raises(DownloadError, match=r"Connection refused|refused"):
        fetch("toy", tmp_path)  # the table's (dead) default mirror
    monkeypatch.setenv("GENLATENT_MIRRORS", server)  # the environment overrides the table
    folder = fetch("toy", tmp_path)
    assert folder == tmp_path / "toy"
    assert (folder / "good.bin").read_bytes() == CONTENT
    monkeypatch.setenv("GENLATENT_MIRRORS", "http://127.0.0.1:9/")
    (folder / "good.bin").unlink()
    assert fetch("toy", tmp_path, mirrors=[server]) == folder  # the argument overrides both


def test_fetch_uses_the_table(server: str, tmp_path: Path) -> None:
    # The local mirror does not hold the real files: every file fails with a 404, which
    # shows fetch asks for the right names in the right folder.
    with pytest.raises(DownloadError, match=r"(?s)train-images-idx3-ubyte\.gz .*HTTP 404"):
        fetch("fashion-mnist", tmp_path, mirrors=[server])
    with pytest.raises(DownloadError, match=r"(?s)cifar-10-python\.tar\.gz .*HTTP 404"):
        fetch("cifar10", tmp_path, mirrors=[server])
    assert os.listdir(tmp_path / "fashion-mnist") == []
    assert os.listdir(tmp_path / "cifar10") == []


def test_table_is_complete() -> None:
    assert set(REMOTE_DATASETS) == {"mnist", "fashion-mnist", "cifar10"}
    for spec in REMOTE_DATASETS.values():
        assert spec.mirrors
        for file in spec.files:
            assert file.sha256 is not None
            assert len(file.sha256) == 64
            assert all(c in "0123456789abcdef" for c in file.sha256)


def test_argument_errors(tmp_path: Path, no_proxy: None) -> None:
    with pytest.raises(ValueError, match=r"refusing to download x.bin without a known SHA-256"):
        download("x.bin", sha256=None, root=tmp_path, mirrors=["http://127.0.0.1:9/"])
    with pytest.raises(ValueError, match=r"sha256 must be 64 hex digits, got 'abc'"):
        download("x.bin", sha256="abc", root=tmp_path, mirrors=["http://127.0.0.1:9/"])
    with pytest.raises(ValueError, match=r"filename must be a plain file name, got '../x.bin'"):
        download("../x.bin", sha256=SHA, root=tmp_path, mirrors=["http://127.0.0.1:9/"])
    with pytest.raises(ValueError, match=r"no mirrors to download from"):
        download("x.bin", sha256=SHA, root=tmp_path)
    with pytest.raises(TypeError, match=r"mirrors must be a sequence of base URLs, got the string"):
        resolve_mirrors("http://a/")
    with pytest.raises(ValueError, match=r"name must be one of .* got 'svhn'"):
        fetch("svhn", tmp_path)
    with pytest.raises(ValueError, match=r"name must be one of .* got 'emnist'"):
        fetch("emnist", tmp_path)
