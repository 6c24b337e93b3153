"""Memory freed inside the worker given back to the system.

glibc keeps what Python and the Kafka and ClickHouse clients free in its heaps for reuse: a long-running worker's
resident size then follows the heaps' high-water mark and their fragmentation, not what it holds (measured over a
live month, issue #13: the state and Python's blocks flat, glibc's free space growing from 12 to 37 MB).
``malloc_trim(0)`` returns the free pages of every heap; a worker calls it once a minute (a few ms). A worker on
jemalloc (the default, vigie/allocator.py) leaves glibc's heaps nearly empty: jemalloc returns its pages itself."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

#: how often (wall seconds) a worker gives freed memory back
RELEASE_EVERY_S = 60.0


def _trim() -> Callable[[], int] | None:
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


_TRIM = _trim()


def release_free_memory() -> bool:
    """Give the heaps' free pages back to the system; whether any was (False where the C library has no
    ``malloc_trim``)."""
    return bool(_TRIM()) if _TRIM is not None else False
