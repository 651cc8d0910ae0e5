"""The Hugging Face Hub, used only when ``huggingface_hub`` is installed (the ``hub`` extra)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["download", "upload"]


def _hub(purpose: str) -> Any:
    """``huggingface_hub``, imported on first use.

    Raises:
        ImportError: naming the ``hub`` extra, if it is not installed.
    """
    try:
        return importlib.import_module("huggingface_hub")
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs huggingface_hub, which is not installed: pip install 'genlatent[hub]'"
        ) from error


def download(repo_id: str, files: Sequence[str], *, revision: str | None) -> str:
    """Download ``files`` of the Hub repository ``repo_id``; returns the local folder."""
    hub = _hub(f"{repo_id!r} is not a local folder; reading it from the Hugging Face Hub")
    return str(
        hub.snapshot_download(repo_id=repo_id, revision=revision, allow_patterns=list(files))
    )


def upload(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool | None,
    token: str | None,
    commit_message: str,
) -> Any:
    """Create ``repo_id`` if needed and upload ``folder`` to it; returns the commit info."""
    hub = _hub("push_to_hub")
    hub.create_repo(repo_id, private=private, token=token, exist_ok=True)
    return hub.upload_folder(
        repo_id=repo_id, folder_path=str(folder), commit_message=commit_message, token=token
    )


def check_installed(purpose: str) -> None:
    """Fail early, before any work, when ``huggingface_hub`` is missing."""
    _hub(purpose)
