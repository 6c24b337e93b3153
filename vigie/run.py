"""``vigie run`` (what ``make run`` calls): the whole live pipeline on this machine.

Starts the broker and ClickHouse, applies migrations, creates topics, starts the worker(s), the
simulator, the forecasts, Alertmanager and the notifier (when installed), and shows the board until Ctrl-C; then
stops everything it started. The local broker keeps
nothing (memory storage), so each run starts a fresh live picture: the live database of the previous
run is dropped first (replays' databases are kept). A second run while
one is going says so (a lock file) instead of failing on taken ports.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from core.settings import LOCAL_STACK_ENV, Settings
from devtools.stack import (
    ManagedProcess,
    alertmanager_binary,
    on_local_broker,
    on_local_clickhouse,
    start_alertmanager,
    start_broker,
    start_clickhouse,
    write_local_env,
)
from vigie.webhook import WebhookReceiver


def _drop_live_database(local: Settings, clickhouse_dir: Path) -> None:
    """The last run's live database goes (its workers' state went with the broker). Weeks of simulated past are
    gigabytes of parts: the DROP may take minutes. A drop cut short earlier (the run stopped meanwhile) can leave
    files in the database's directory, which 18.16 then refuses to remove: this local server's own leftovers,
    removed here, then the DROP again."""
    from clickhouse_driver.errors import ServerException

    from sinks.clickhouse import make_client

    client = make_client(local.as_migrator(), timeout_s=900)
    try:
        client.execute(f"DROP DATABASE IF EXISTS {local.clickhouse_database}")
    except ServerException as e:
        leftover = clickhouse_dir / "data" / local.clickhouse_database
        if "Directory not empty" not in str(e) or not leftover.is_dir():
            raise
        shutil.rmtree(leftover)
        client.execute(f"DROP DATABASE IF EXISTS {local.clickhouse_database}")
    finally:
        client.disconnect()


def run_local(settings: Settings, speed: float = 60.0, workers: int = 1, live: bool = True) -> int:
    """``live``: workers, simulator, forecasts and the board (``make run``); else the stack alone (``vigie stack``:
    broker, ClickHouse, migrations, topics) until Ctrl-C, for import, replay and dashboard work."""
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
    # the simulation runs ``speed`` times faster from now: the workers' clock (their bound on event times,
    # VIGIE_MAX_CLOCK_SKEW_S) runs with it from the same origin
    origin = float(int(time.time()))
    local = on_local_broker(settings.model_copy(update={
        "kafka_bootstrap": f"127.0.0.1:{settings.local_kafka_port}", "clickhouse_host": "127.0.0.1",
        "clickhouse_port": settings.local_clickhouse_tcp_port, "clock_origin": origin, "clock_speed": speed}))
    python = sys.executable
    # SIGINT too: started with `&` from a non-interactive shell, it arrives ignored and Ctrl-C would do nothing
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # stop everything, as on Ctrl-C
        signal.signal(sig, _interrupt)
    try:
        print("starting the broker (Tansu) ...", flush=True)
        started.append(start_broker(settings.local_kafka_port, logs))
        print("starting ClickHouse ...", flush=True)
        clickhouse = start_clickhouse(settings.local_clickhouse_tcp_port, settings.local_clickhouse_http_port,
                                      run_dir / "clickhouse", settings.clickhouse_reader_user,
                                      settings.clickhouse_reader_password.get_secret_value())
        started.append(clickhouse)
        # the pipeline writes as the local writer, migrations as the migrator; `vigie sql` reads as the reader
        local = on_local_clickhouse(local, clickhouse)
        env = {**os.environ, **local.to_env()}

        # the workers' state went with the broker: rows of the last run would mix in
        print("dropping the last run's live database ...", flush=True)
        _drop_live_database(local, run_dir / "clickhouse")
        for cmd in (["db", "migrate"], ["topics"]):
            subprocess.run([python, "-m", "vigie.cli", *cmd], env=env, check=True)
        if not live:
            write_local_env(local)
            print(f"stack up: broker 127.0.0.1:{settings.local_kafka_port}, ClickHouse 127.0.0.1:"
                  f"{settings.local_clickhouse_tcp_port} (HTTP {settings.local_clickhouse_http_port}), database "
                  f"{local.clickhouse_database}; `vigie import`, `vigie replay`, `vigie history`, `vigie forecast` and "
                  f"`vigie sql` from another terminal reach it. Ctrl-C stops it.", flush=True)
            while True:
                time.sleep(3600)
        _store_past_demand(python, env, origin, run_dir, logs)
        for i in range(workers):
            log_path = logs / f"worker-{i}.log"
            proc = subprocess.Popen(
                [python, "-m", "vigie.cli", "worker"],
                env={**env, "VIGIE_METRICS_PORT": str(settings.metrics_port + i)},
                stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
            started.append(ManagedProcess(f"worker-{i}", proc, log_path))
        sim_log = logs / "simulator.log"
        sim = subprocess.Popen([python, "-m", "vigie.cli", "simulate", "--speed", str(speed),
                                "--start", datetime.fromtimestamp(origin, UTC).isoformat(),
                                "--duration", str(365 * 86400),
                                "--major-incidents-per-day", str(MAJOR_INCIDENTS_PER_DAY)],
                               env=env, stdout=sim_log.open("ab"), stderr=subprocess.STDOUT,
                               start_new_session=True)
        started.append(ManagedProcess("simulator", sim, sim_log))
        started.append(_forecaster(python, env, logs, speed))
        started.append(_moveups(python, env, logs, speed))
        started += _notifications(settings, python, env, run_dir, logs)
        write_local_env(local)  # `vigie replay` / `vigie board` from another terminal reach this stack
        print(f"workers: metrics on :{settings.metrics_port}; logs in {logs}", flush=True)
        time.sleep(1)
        from vigie.board import run_board

        run_board(local)
    except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C, SIGTERM/SIGHUP, or the terminal went away
        pass
    finally:
        _say("\nstopping ...")
        for p in reversed(started):
            p.stop()
        LOCAL_STACK_ENV.unlink(missing_ok=True)
        lock.close()
        Path(run_dir / "run.lock").unlink(missing_ok=True)
        _say("stopped.")
    return 0


#: major incidents per simulated day in the live picture: an area's capacity runs low now and then (alerts)
MAJOR_INCIDENTS_PER_DAY = 3

#: weeks of simulated calls before the live start, so that forecasts have a past (they need two weeks) and the
#: surge alerts a usual (three weeks at least)
DEMAND_HISTORY_WEEKS = 8


def _store_past_demand(python: str, env: dict[str, str], origin: float, run_dir: Path, logs: Path) -> None:
    """Weeks of simulated calls before the live start, stored by the batch path before the live feed starts: the
    workers read them at their first call for the surge rules' usual (``sinks/clickhouse.py`` ``StoredOpenings``),
    the forecasts for their past. 6 s here (2.2 s simulating 148,000 events, 3.8 s storing them); its log:
    ``forecasts.log``."""
    print(f"storing {DEMAND_HISTORY_WEEKS} weeks of simulated past calls (the forecasts' and the surge alerts' "
          f"usual) ...", flush=True)
    history = run_dir / "demand-history.jsonl"
    start = datetime.fromtimestamp(origin, UTC).isoformat()
    with (logs / "forecasts.log").open("ab") as log:
        for cmd in (["simulate", "--demand-history", str(DEMAND_HISTORY_WEEKS), "--start", start, "--output",
                     str(history)], ["history", "--from-file", str(history)]):
            subprocess.run([python, "-m", "vigie.cli", *cmd], env=env, stdout=log, stderr=subprocess.STDOUT,
                           check=True)


def _forecaster(python: str, env: dict[str, str], logs: Path, speed: float) -> ManagedProcess:
    """In the background: a forecast every simulated hour (the dashboards' « Prévisions »; its log says what it
    did), from the past calls stored before the start (:func:`_store_past_demand`) and the live ones."""
    log_path = logs / "forecasts.log"
    every = f"{max(10.0, 3600 / speed):g}"
    proc = subprocess.Popen([python, "-m", "vigie.cli", "forecast", "predict", "--every", every], env=env,
                            stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    return ManagedProcess("forecasts", proc, log_path)


#: simulated seconds between two move-up advices in the live picture
MOVEUP_EVERY_S = 600.0


def _moveups(python: str, env: dict[str, str], logs: Path, speed: float) -> ManagedProcess:
    """In the background: the move-up advice every simulated 10 minutes (the board's « move-up » line, « Situation
    »'s panel; its log says each advice)."""
    log_path = logs / "moveup.log"
    proc = subprocess.Popen([python, "-m", "vigie.cli", "moveup", "--every", f"{max(5.0, MOVEUP_EVERY_S / speed):g}"],
                            env=env, stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    return ManagedProcess("moveup", proc, log_path)


def _notifications(settings: Settings, python: str, env: dict[str, str], run_dir: Path, logs: Path
                   ) -> list[ManagedProcess]:
    """Alertmanager (Debian's) with Vigie's routing, its webhook to a receiver here that writes each notification
    to ``notifications.jsonl``, and ``vigie alerts notify`` keeping it in step with the alerts. Not installed:
    said, and the rest runs."""
    if alertmanager_binary() is None:
        print("notifications off: Alertmanager is not installed (make install)", flush=True)
        return []
    from vigie.notify import routing, routing_yaml

    hook = WebhookReceiver(log_file=logs / "notifications.jsonl").__enter__()  # a thread of this process
    port = settings.local_alertmanager_port
    am = start_alertmanager(port, run_dir / "alertmanager", routing_yaml(routing(hook.url)))
    log_path = logs / "notifier.log"
    notifier = subprocess.Popen([python, "-m", "vigie.cli", "alerts", "notify", "--every", "5"],
                                env={**env, "VIGIE_ALERTMANAGER_URL": f"http://127.0.0.1:{port}"},
                                stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    print(f"notifications: Alertmanager on http://127.0.0.1:{port}, sent to {logs / 'notifications.jsonl'}",
          flush=True)
    return [am, ManagedProcess("notifier", notifier, log_path)]


def _say(text: str) -> None:
    """Print, unless stdout is gone (a closed terminal or pipe must not keep children running)."""
    try:
        print(text, flush=True)
    except OSError:
        pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
