"""Fixtures: a real Tansu broker and a real ClickHouse 18.16, started once per test session on free
ports, and workers run as real `vigie worker` processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client
from confluent_kafka import Consumer

from core.settings import PROJECT_ROOT, Settings
from devtools.stack import (
    LOCAL_BROKER,
    ManagedProcess,
    free_port,
    on_local_clickhouse,
    start_broker,
    start_clickhouse,
)
from sinks.clickhouse import run_migrations
from streams.topics import ensure_topics


@dataclass
class Stack:
    tmp: Path
    kafka_port: int
    ch_tcp: int
    ch_http: int
    broker: ManagedProcess
    clickhouse: ManagedProcess
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def restart_clickhouse_later(self) -> None:
        self.clickhouse = start_clickhouse(self.ch_tcp, self.ch_http, self.tmp / "clickhouse",
                                           reader_password=self.clickhouse.reader_password,
                                           writer_password=self.clickhouse.writer_password)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    kafka_port, ch_tcp, ch_http = free_port(), free_port(), free_port()
    broker = start_broker(kafka_port, tmp)
    ch = start_clickhouse(ch_tcp, ch_http, tmp / "clickhouse")
    s = Stack(tmp, kafka_port, ch_tcp, ch_http, broker, ch)
    yield s
    for w in s.workers:
        if w.poll() is None:
            w.kill()
    s.broker.stop()
    s.clickhouse.stop()


SF_2018 = PROJECT_ROOT.parent / "shared" / "data" / "sffd-calls" / "sffd_units_2018_six_neighbourhoods.csv.gz"
SF_NEIGHBOURHOODS = PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd-neighbourhoods.toml"


@pytest.fixture(scope="session")
def sf2018_import(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SF 2018 six-neighbourhood year imported once with `vigie import` (sectors = neighbourhoods): the
    folder holding events.jsonl, reference/ and report.json."""
    if not SF_2018.exists():
        pytest.fail(f"the SF 2018 file is missing: {SF_2018}")
    out = tmp_path_factory.mktemp("sf2018-import")
    done = subprocess.run([sys.executable, "-m", "vigie.cli", "import", "--mapping", str(SF_NEIGHBOURHOODS),
                           "--input", str(SF_2018), "--out", str(out)], cwd=PROJECT_ROOT, text=True,
                          capture_output=True, timeout=600, env={**os.environ, "VIGIE_RUN_DIR": str(out / "run")})
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return new_settings(stack)


#: the shipped alert rules and station-scoped ones that fire often on the simulator's traffic
ALERT_RULES = Path(__file__).resolve().parent / "alert_rules.toml"


def new_settings(stack: Stack) -> Settings:
    """Settings of one isolated pipeline: its own topics, consumer group and database."""
    tag = uuid.uuid4().hex[:8]
    s = Settings(
        **LOCAL_BROKER,  # type: ignore[arg-type]
        kafka_bootstrap=f"127.0.0.1:{stack.kafka_port}",
        clickhouse_port=stack.ch_tcp,
        clickhouse_database=f"vigie_{tag}",
        app_id=f"vigie-test-{tag}",
        topic_suffix=f"-{tag}",
        topic_partitions=3,
        batch_max_events=500,
        batch_max_seconds=0.3,
        allowed_lateness_seconds=30,
        # closed interventions leave the state quickly, so restarts also recover eviction tombstones
        intervention_retention_hours=0.5,
        intervention_eviction_interval_s=1.0,
        sink_retry_max_s=1.0,
        worker_stall_timeout_s=20.0,
        metrics_port=free_port(),
        alert_rules=ALERT_RULES,
    )
    s = on_local_clickhouse(s, stack.clickhouse)  # workers write as the local writer: DDL would be refused
    run_migrations(s)
    ensure_topics(s)
    return s


def start_worker(stack: Stack, s: Settings, log_name: str) -> subprocess.Popen[bytes]:
    log = (stack.tmp / f"{log_name}.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "vigie.cli", "worker", "--loglevel", "info"],
                            env={**os.environ, **s.to_env()}, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    stack.workers.append(proc)
    return proc


def stop_worker(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0) -> float:
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout)
    return time.monotonic() - started


def start_prometheus(stack: Stack, metrics_port: int, name: str) -> tuple[ManagedProcess, int]:
    """A real Prometheus (Debian package) scraping one worker every second, as job `vigie-worker`."""
    from grafana.pipeline_health import JOB

    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    work = stack.tmp / name
    work.mkdir()
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n")
    port = free_port()
    log = work / "prometheus.log"
    proc = subprocess.Popen([binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    return ManagedProcess("prometheus", proc, log), port


def table_figures(client: Client, s: Settings, database: str, ignore: tuple[str, ...] = ("written_at", "ingested_at")
                  ) -> dict[str, tuple[int, int]]:
    """Every registered table of ``database``: its row count and a hash of all its rows (FINAL), ``ignore``'s
    columns left out (when a row was written, by default): two runs with the same figures hold the same rows."""
    from streams import registry

    figures = {}
    for spec in registry.tables(s):
        columns = ", ".join(c for c in spec.columns if c not in ignore)
        (figures[spec.name],) = client.execute(
            f"SELECT count(), sum(cityHash64({columns})) FROM {database}.{spec.name} FINAL")
    return figures


def ch_client(s: Settings) -> Client:
    return Client("127.0.0.1", port=s.clickhouse_port, database=s.clickhouse_database)


def dump_workers(stack: Stack) -> str:
    """py-spy stacks of the worker processes still running (for the message of a failing wait)."""
    out = []
    for w in stack.workers:
        if w.poll() is None:
            try:
                res = subprocess.run([str(Path(sys.executable).parent / "py-spy"), "dump", "--pid", str(w.pid)],
                                     capture_output=True, text=True, timeout=30)
                out.append(f"--- worker {w.pid}\n{res.stdout[-6000:]}{res.stderr[-500:]}")
            except (OSError, subprocess.TimeoutExpired) as e:
                out.append(f"--- worker {w.pid}: no dump ({e})")
    return "\n".join(out)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as e:
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


def read_topic(s: Settings, topic: str, enough: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
               ) -> list[dict[str, Any]]:
    """A topic's JSON messages from its start (a group of its own), read until ``enough`` holds for them or
    ``timeout`` passes (then what came: the caller's assertion says what is missing)."""
    consumer = Consumer({**s.confluent_config(), "group.id": f"{s.app_id}-read-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while not enough(got) and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                got.append(json.loads(m.value()))
    finally:
        consumer.close()
    return got
