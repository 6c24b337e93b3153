"""The worker's memory allocator: jemalloc when it is installed.

A worker runs for weeks. On glibc's allocator (and Python's own, whose arenas sit beside it) its resident size
kept growing as their free space between live blocks grew, while what it held stayed flat (issue #13: over a
simulated month, state, Python's allocations and glibc's bytes in use flat; resident size +29 MB from day 7 to
day 28, +8 MB on jemalloc). jemalloc keeps fragmentation low and gives unused pages back on its own.

An allocator is chosen before a process starts, so ``vigie worker`` re-executes itself once, before anything
heavy is imported, with ``LD_PRELOAD`` set to jemalloc and Python's object allocator off (``PYTHONMALLOC=malloc``:
every allocation then goes to jemalloc). ``VIGIE_WORKER_ALLOCATOR=system`` keeps the system's; without
``libjemalloc.so.2`` (Debian: ``libjemalloc2``) the worker says so and keeps it too."""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Mapping

from streams.runtime.watchdog import restart_process

log = logging.getLogger("vigie.allocator")

#: jemalloc's options unless ``MALLOC_CONF`` is set: a background thread returns pages unused for a second
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"
#: where Debian and most distributions install it (any architecture)
JEMALLOC_GLOBS = ("/usr/lib/*-linux-gnu/libjemalloc.so.2", "/usr/lib64/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2",
                  "/usr/local/lib/libjemalloc.so.2")


def find_jemalloc(patterns: tuple[str, ...] = JEMALLOC_GLOBS) -> str | None:
    """The path of ``libjemalloc.so.2``, or None when it is not installed."""
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def on_jemalloc(env: Mapping[str, str]) -> bool:
    """Whether a process with this environment runs on jemalloc (preloaded)."""
    return "libjemalloc" in env.get("LD_PRELOAD", "")


def jemalloc_env(env: Mapping[str, str], library: str) -> dict[str, str]:
    """``env`` with jemalloc preloaded (before anything already preloaded) and Python's object allocator off;
    ``MALLOC_CONF`` kept if set."""
    preload = " ".join(p for p in (library, env.get("LD_PRELOAD", "")) if p)
    return {**env, "LD_PRELOAD": preload, "PYTHONMALLOC": "malloc",
            "MALLOC_CONF": env.get("MALLOC_CONF") or JEMALLOC_CONF}


def worker_env(choice: str, env: Mapping[str, str], library: str | None) -> dict[str, str] | None:
    """The environment to re-execute the worker with, or None to go on as it is: already on jemalloc, the
    system's allocator chosen, or jemalloc not installed (``library`` None: logged)."""
    if choice != "jemalloc" or on_jemalloc(env):
        return None
    if library is None:
        log.warning("libjemalloc.so.2 not found (Debian: apt-get install libjemalloc2): the worker runs on the "
                    "system allocator, whose heaps fragment over weeks (VIGIE_WORKER_ALLOCATOR=system hides this)")
        return None
    return jemalloc_env(env, library)


def reexec_worker(choice: str) -> None:
    """Re-execute this process on jemalloc when ``choice`` says so and it is not already (never returns then)."""
    env = worker_env(choice, os.environ, find_jemalloc())
    if env is not None:
        restart_process(env)
