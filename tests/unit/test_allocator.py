"""The worker's allocator (vigie/allocator.py): it re-executes itself once on jemalloc, never loops, keeps what
is already preloaded and a chosen MALLOC_CONF, and goes on as it is when told to or when jemalloc is missing."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vigie.allocator import JEMALLOC_CONF, find_jemalloc, jemalloc_env, on_jemalloc, worker_env

# what a re-executed process sees: its preload, Python's allocator, jemalloc's options, and whether the library is
# mapped (read from the kernel, not from the environment)
PROBE = """
import os, sys
sys.path.insert(0, {root!r})
from vigie.allocator import reexec_worker
print("start", flush=True)
reexec_worker({choice!r})
mapped = any("libjemalloc" in line for line in open("/proc/self/maps"))
print(os.environ.get("LD_PRELOAD", ""), os.environ.get("PYTHONMALLOC", ""), os.environ.get("MALLOC_CONF", ""),
      mapped, sys.argv[1:])
"""


def _run(tmp_path: Path, choice: str, **env: str) -> list[str]:
    script = tmp_path / "probe.py"
    script.write_text(PROBE.format(root=str(Path(__file__).parents[2]), choice=choice))
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC", "MALLOC_CONF")}
    out = subprocess.run([sys.executable, str(script), "--an-arg"], env={**base, **env}, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.splitlines()


needs_jemalloc = pytest.mark.skipif(find_jemalloc() is None,
                                    reason="libjemalloc.so.2 not installed (make install installs it)")


@needs_jemalloc
def test_the_worker_re_executes_itself_once_on_jemalloc(tmp_path: Path) -> None:
    lines = _run(tmp_path, "jemalloc")
    assert lines[:2] == ["start", "start"]  # once before the re-exec, once after: no loop
    assert lines[2] == f"{find_jemalloc()} malloc {JEMALLOC_CONF} True ['--an-arg']"


@needs_jemalloc
def test_the_system_allocator_when_chosen(tmp_path: Path) -> None:
    assert _run(tmp_path, "system") == ["start", "   False ['--an-arg']"]


def test_jemalloc_goes_first_and_a_chosen_malloc_conf_stays() -> None:
    env = jemalloc_env({"LD_PRELOAD": "/opt/other.so", "MALLOC_CONF": "narenas:2", "HOME": "/h"}, "/lib/je.so.2")
    assert env == {"LD_PRELOAD": "/lib/je.so.2 /opt/other.so", "PYTHONMALLOC": "malloc", "MALLOC_CONF": "narenas:2",
                   "HOME": "/h"}
    assert on_jemalloc({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"})
    assert not on_jemalloc({"LD_PRELOAD": "/opt/other.so"})


def test_without_jemalloc_the_worker_says_so_and_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert find_jemalloc((str(tmp_path / "*" / "libjemalloc.so.2"),)) is None
    with caplog.at_level(logging.WARNING, logger="vigie.allocator"):
        assert worker_env("jemalloc", {"HOME": "/h"}, None) is None
    assert "libjemalloc.so.2 not found" in caplog.text
    assert worker_env("jemalloc", {"LD_PRELOAD": "/x/libjemalloc.so.2"}, "/x/libjemalloc.so.2") is None  # already on it
    assert worker_env("system", {}, "/x/libjemalloc.so.2") is None
