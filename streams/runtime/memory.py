"""Memory freed inside the worker given back to the system, and the garbage collector's pace where engines run.

glibc keeps what Python and the Kafka and ClickHouse clients free in its heaps for reuse: a long-running worker's
resident size then follows the heaps' high-water mark and their fragmentation, not what it holds (measured over a
live month, issue #13: the state and Python's blocks flat, glibc's free space growing from 12 to 37 MB).
``malloc_trim(0)`` returns the free pages of every heap; a worker calls it once a minute (a few ms). A worker on
jemalloc (the default, vigie/allocator.py) leaves glibc's heaps nearly empty: jemalloc returns its pages itself."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


#: The collector's thresholds where engines run (the live worker; the batch path while it runs). Python's
#: (700, 10, 10) starts a collection every 700 container allocations, and the engines allocate by the million
#: while holding a large state that every older generation's pass walks again: on the batch path over a
#: simulated week with crews (190,224 events, engines alone, 2026-12-04) 2,150 collections took 1.1-1.2 s of
#: 3.8-4.0 s; at these thresholds 25 took 0.45 s of 3.1 s (the alerts on: 4.7-4.8 s -> 3.9 s). The state holds no
#: reference cycles (none found in a live month, issue #13): what is freed is freed by reference counting.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> tuple[int, int, int]:
    """The engines' collection thresholds (:data:`GC_THRESHOLDS`) for this process; returns the ones before."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    return before


@contextmanager
def engines_gc() -> Iterator[None]:
    """:func:`tune_gc` while the block runs (the batch path), the thresholds before restored after."""
    before = tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*before)
