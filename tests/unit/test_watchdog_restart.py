"""The watchdog's restart re-executes the same process (same pid, same arguments) from scratch."""

import subprocess
import sys

SCRIPT = """
import os, sys
from streams.runtime.watchdog import restart_process
if len(sys.argv) == 2:
    print("second", os.getpid(), sys.argv[1], flush=True)
else:
    print("first", os.getpid(), flush=True)
    sys.orig_argv.append("again")
    restart_process()
"""


def test_restart_process_reexecutes_in_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "restart_me.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    first, second = out.stdout.split("\n")[:2]
    assert first.split()[0] == "first" and second.split()[0] == "second"
    assert first.split()[1] == second.split()[1]  # same pid: the supervisor sees no exit
    assert second.split()[2] == "again"
