"""Run the reliability tests on one CPU thread.

Bit-for-bit comparisons with a subprocess (started with ``OMP_NUM_THREADS=1``) need the
same thread count here: a CPU reduction may be split differently across threads. It is
also much faster on a shared machine, where idle OpenMP threads spin against other jobs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
