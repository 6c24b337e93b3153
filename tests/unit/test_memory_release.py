"""Freed memory given back to the system (streams/runtime/memory.py): with holes left in glibc's heap by freed
objects (the fragmentation a long-running worker builds up), the resident size falls once the worker trims."""

from __future__ import annotations

import os

import pytest

from streams.runtime.memory import release_free_memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux only")
def test_the_heaps_free_pages_go_back_to_the_system() -> None:
    release_free_memory()
    blocks = [bytes(2048 + i % 7) for i in range(100_000)]  # ~200 MB through malloc (over pymalloc's 512 B)
    kept = blocks[::10]  # one in ten stays: the rest leaves holes that free() alone cannot give back
    del blocks
    before = _rss_bytes()
    assert release_free_memory()
    after = _rss_bytes()
    assert before - after > 100 * 2**20, (before, after)  # most of the ~180 MB freed around the kept tenth
    assert len(kept) == 10_000
