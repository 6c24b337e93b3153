"""``vigie run`` (what ``make run`` calls): the whole live pipeline on this machine.

Starts the broker and ClickHouse, applies migrations, creates topics, starts the worker(s) and the
simulator, and shows the board until Ctrl-C; then stops everything it started. A second run while
one is going says so (a lock file) instead of failing on taken ports.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

from vigie.settings import Settings
from vigie.stack import ManagedProcess, start_broker, start_clickhouse


def run_local(settings: Settings, speed: float = 60.0, workers: int = 1) -> int:
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = (run_dir / "run.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        print(f"Vigie is already running here (pid {lock.read().strip() or '?'}); stop it with Ctrl-C in its "
              f"terminal, or use another VIGIE_RUN_DIR and ports.", file=sys.stderr)
        return 1
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    started: list[ManagedProcess] = []
    local = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{settings.local_kafka_port}",
                                        "clickhouse_host": "127.0.0.1",
                                        "clickhouse_port": settings.local_clickhouse_tcp_port})
    env = {**os.environ, **local.to_env()}
    python = sys.executable
    try:
        print("starting the broker (Tansu) ...", flush=True)
        started.append(start_broker(settings.local_kafka_port, logs))
        print("starting ClickHouse ...", flush=True)
        started.append(start_clickhouse(settings.local_clickhouse_tcp_port, settings.local_clickhouse_http_port,
                                        run_dir / "clickhouse", settings.clickhouse_reader_user,
                                        settings.clickhouse_reader_password.get_secret_value()))
        for cmd in (["db", "migrate"], ["topics"]):
            subprocess.run([python, "-m", "vigie.cli", *cmd], env=env, check=True)
        for i in range(workers):
            log_path = logs / f"worker-{i}.log"
            proc = subprocess.Popen(
                [python, "-m", "vigie.cli", "worker"],
                env={**env, "VIGIE_METRICS_PORT": str(settings.metrics_port + i)},
                stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
            started.append(ManagedProcess(f"worker-{i}", proc, log_path))
        sim_log = logs / "simulator.log"
        sim = subprocess.Popen([python, "-m", "vigie.cli", "simulate", "--speed", str(speed),
                                "--duration", str(365 * 86400)],
                               env=env, stdout=sim_log.open("ab"), stderr=subprocess.STDOUT,
                               start_new_session=True)
        started.append(ManagedProcess("simulator", sim, sim_log))
        print(f"workers: metrics on :{settings.metrics_port}; logs in {logs}", flush=True)
        time.sleep(1)
        from vigie.board import run_board

        run_board(local)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping ...", flush=True)
        for p in reversed(started):
            p.stop()
        lock.close()
        Path(run_dir / "run.lock").unlink(missing_ok=True)
        print("stopped.")
    return 0
