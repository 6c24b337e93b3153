"""`vigie replay`: publish past events through the same processors, into a run of its own.

A run never mixes with live data: it has its own topics (``<topic>-replay-<run>``), consumer group,
dead-letter topic and ClickHouse database (``<database>_replay_<run>``), which the dashboards offer in
their ``run`` selector. The replay starts its own worker process(es) for the run, publishes the events
at x1 or xN through the broker and the run's own worker(s), ending when they have processed every published
event; as fast as possible (``--speed 0``) through the batch path (the same processors in this process, no
broker: the local broker's fetches slow down as its partitions grow). Either way with a progress line
(events/s, simulated clock), paused, resumed and stopped by ``vigie replay pause|resume|stop --run ID`` (or
SIGUSR1/SIGUSR2/SIGTERM).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from confluent_kafka import Consumer, Producer, TopicPartition

from core.settings import Settings
from sinks.access import SQL_USERS_SINCE, server_version
from sinks.clickhouse import make_client, run_migrations
from sinks.history import RecordsSource, records_from_clickhouse, run_history
from streams.batch import PartitionOf
from streams.processor import Record
from streams.registry import logical_topics
from streams.topics import ensure_topics

_RUN_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")


def run_settings(base: Settings, run_id: str, reference_dir: Path | None = None) -> Settings:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r}: use lower-case letters, digits and '_' (at most 40)")
    suffix = f"-replay-{run_id}"
    update: dict[str, object] = {
        "clickhouse_database": f"{base.clickhouse_database}_replay_{run_id}",
        "topic_suffix": base.topic_suffix + suffix,  # every processor's topics and the dead letters
        "app_id": base.app_id + suffix,
        "metrics_port": 0,
    }
    if reference_dir is not None:
        update["reference_dir"] = Path(reference_dir).resolve()
    return base.model_copy(update=update)


@dataclass(frozen=True)
class Message:
    topic: str  # logical name of a registered processor's input (e.g. "vehicle-status")
    key: bytes
    value: bytes
    event_time: float


def messages_from_file(path: Path) -> Iterator[Message]:
    """Lines of `vigie import` / `vigie simulate --output`, in the order written (event-time order)."""
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            event = doc["event"]
            t = datetime.fromisoformat(event["event_time"].replace("Z", "+00:00")).timestamp()
            yield Message(doc["topic"], doc["key"].encode(), json.dumps(event, separators=(",", ":")).encode(), t)


def messages_from_clickhouse(settings: Settings, database: str) -> Iterator[Message]:
    """The raw event history of a database, every topic merged in event-time order."""
    names = {v: k for k, v in logical_topics(settings).items()}
    for rec in records_from_clickhouse(settings, database):
        t = json.loads(rec.value)["event_time"]
        yield Message(names[rec.topic], rec.key, rec.value,
                      datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp())


def pid_file(base: Settings, run_id: str) -> Path:
    return base.run_dir / "replays" / f"{run_id}.pid"


def signal_run(base: Settings, run_id: str, sig: int) -> int:
    path = pid_file(base, run_id)
    if not path.exists():
        raise SystemExit(f"no replay {run_id!r} is running (no {path})")
    pid = int(path.read_text())
    os.kill(pid, sig)
    return pid


def record_quality(settings: Settings, run_id: str, report_file: Path) -> int:
    """The import report's figures into the run's ``data_quality`` table (one row per figure)."""
    report = json.loads(report_file.read_text())
    imported = max(int(report["imported"]), 1)
    rows: list[tuple[object, ...]] = [
        (run_id, report["source"], "summary", "rows read", int(report["rows"]), 1.0),
        (run_id, report["source"], "summary", "rows imported", int(report["imported"]),
         int(report["imported"]) / max(int(report["rows"]), 1)),
        (run_id, report["source"], "summary", "rows missing a status time",
         round(report["share_rows_with_missing_timestamps"] * imported), report["share_rows_with_missing_timestamps"]),
        (run_id, report["source"], "summary", "rows with inconsistent times (repaired)",
         round(report["share_rows_with_inconsistent_timestamps"] * imported),
         report["share_rows_with_inconsistent_timestamps"]),
    ]
    if not report.get("availability_tracked", True):
        rows.append((run_id, report["source"], "summary", "availability not tracked", 0, 0.0))
    for kind in ("rejected", "repairs", "missing", "unmapped", "filtered"):
        for detail, n in report.get(kind, {}).items():
            rows.append((run_id, report["source"], kind, detail, int(n), int(n) / imported))
    client = make_client(settings, settings.clickhouse_database)
    try:
        client.execute("INSERT INTO data_quality (run_id, source, kind, detail, rows, share) VALUES", rows)
    finally:
        client.disconnect()
    return len(rows)


def grant_reader(settings: Settings) -> None:
    """Let the dashboards' read-only user read the run's database (on servers with SQL users)."""
    client = make_client(settings)
    try:
        if server_version(client.execute) >= SQL_USERS_SINCE:
            users = client.execute("SELECT name FROM system.users WHERE name = %(u)s",
                                   {"u": settings.clickhouse_reader_user})
            if users:
                client.execute(f"GRANT SELECT ON {settings.clickhouse_database}.* TO {settings.clickhouse_reader_user}")
    finally:
        client.disconnect()


class Replay:
    def __init__(self, base: Settings, run_id: str, reference_dir: Path | None, workers: int = 1,
                 out: IO[str] = sys.stderr) -> None:
        self.base = base
        self.run_id = run_id
        self.settings = run_settings(base, run_id, reference_dir)
        self.n_workers = workers
        self.out = out
        self.paused = False
        self.stopped = False
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ends: dict[tuple[str, int], int] = {}  # (topic, partition) -> offset after the last one published

    def prepare(self, topics: bool = True) -> None:
        run_migrations(self.settings)
        grant_reader(self.settings)
        if topics:  # the batch path (--speed 0) needs no broker
            ensure_topics(self.settings)

    def start_workers(self) -> None:
        logs = self.base.run_dir / "replays"
        logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.settings.to_env()}
        for i in range(self.n_workers):
            log = (logs / f"{self.run_id}-worker-{i}.log").open("ab")
            self.procs.append(subprocess.Popen([sys.executable, "-m", "vigie.cli", "worker"], env=env,
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def stop_workers(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(self.settings.worker_stop_timeout_s + 5)
            except subprocess.TimeoutExpired:
                p.kill()

    def _on_signal(self, sig: int, _frame: object) -> None:
        if sig == signal.SIGUSR1:
            self.paused = True
        elif sig == signal.SIGUSR2:
            self.paused = False
        else:
            self.stopped = True

    def publish(self, messages: Iterator[Message], speed: float, total: int | None = None) -> int:
        topics = logical_topics(self.settings)
        producer = Producer({**self.settings.confluent_config(), "partitioner": "murmur2_random",
                             "linger.ms": 20, "acks": "all", "message.send.max.retries": 1_000_000,
                             "batch.size": self.settings.kafka_producer_max_batch_bytes})
        wall0, sim0, n, last_shown = time.monotonic(), None, 0, 0.0
        paused_for = 0.0
        failed: list[str] = []

        def delivered(err: object, m: object) -> None:  # the end offset of each partition, from the broker
            if err is not None:
                failed.append(str(err))
                return
            tp = (m.topic(), m.partition())  # type: ignore[attr-defined]
            self.ends[tp] = max(self.ends.get(tp, 0), m.offset() + 1)  # type: ignore[attr-defined]

        for msg in messages:
            while self.paused and not self.stopped:
                started = time.monotonic()
                self._progress(n, total, msg.event_time, wall0, paused=True)
                time.sleep(0.2)
                paused_for += time.monotonic() - started
            if self.stopped:
                break
            if speed > 0:
                sim0 = msg.event_time if sim0 is None else sim0
                delay = wall0 + paused_for + (msg.event_time - sim0) / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            while True:
                try:
                    producer.produce(topics[msg.topic], key=msg.key, value=msg.value, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            n += 1
            if n % 1000 == 0:
                producer.poll(0)
            if time.monotonic() - last_shown >= 0.5:
                last_shown = time.monotonic()
                self._progress(n, total, msg.event_time, wall0)
        if producer.flush(120) or failed:
            raise RuntimeError(f"the broker did not acknowledge every replayed event ({failed[:3]})")
        return n

    def _progress(self, n: int, total: int | None, sim_t: float, wall0: float, paused: bool = False) -> None:
        rate = n / max(time.monotonic() - wall0, 1e-6)
        of = f"/{total:,} ({100 * n / total:.0f}%)" if total else ""
        clock = datetime.fromtimestamp(sim_t, UTC).strftime("%Y-%m-%d %H:%M:%S")
        end = "\n" if not self.out.isatty() else ""
        print(f"\rreplay {self.run_id}: {n:,}{of} events, {rate:,.0f} ev/s, simulated clock {clock} UTC"
              f"{' [paused]' if paused else ''}   ", end=end, file=self.out, flush=True)

    def wait_processed(self, timeout: float) -> bool:
        """True once the run's consumer group has committed, on every partition, the offset after the last
        message published (taken from the delivery reports, not from the broker's high watermark)."""
        s = self.settings
        consumer = Consumer({**s.confluent_config(), "group.id": s.app_id, "enable.auto.commit": False})
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not self.stopped:
                committed = consumer.committed([TopicPartition(t, p) for t, p in self.ends], timeout=10)
                if all(tp.offset >= self.ends[(tp.topic, tp.partition)] for tp in committed):
                    return True
                if any(p.poll() is not None for p in self.procs):
                    raise RuntimeError("a replay worker exited; see its log in " + str(s.run_dir / "replays"))
                time.sleep(0.5)
            return False
        finally:
            consumer.close()

    def records(self, messages: Iterator[Message], total: int | None) -> Iterator[Record]:
        """The messages as the batch path's records (partitioned as the producer would), with the progress line,
        pause and stop of a published replay."""
        topics = logical_topics(self.settings)
        partition_of = PartitionOf(self.settings.topic_partitions)
        wall0, last_shown, n = time.monotonic(), 0.0, 0
        for msg in messages:
            while self.paused and not self.stopped:
                self._progress(n, total, msg.event_time, wall0, paused=True)
                time.sleep(0.2)
            if self.stopped:
                return
            yield Record(topics[msg.topic], partition_of(msg.key), n, msg.key, msg.value)
            n += 1
            if time.monotonic() - last_shown >= 0.5:
                last_shown = time.monotonic()
                self._progress(n, total, msg.event_time, wall0)

    def run_batch(self, messages: Iterator[Message], total: int | None) -> int:
        """As fast as possible: the batch path (the same processors, in this process), no broker: a year of
        history in seconds where the local broker would slow down as its partitions grow."""
        stats = run_history(self.settings, RecordsSource(self.records(messages, total)), processes=1)
        state = "processed" if not self.stopped else "stopped"
        print(f"\nreplay {self.run_id}: {stats.events:,} events {state} by the batch path in {stats.seconds:.1f} s; "
              f"results in ClickHouse database {self.settings.clickhouse_database}", file=self.out)
        return stats.events

    def run(self, messages: Iterator[Message], speed: float, total: int | None = None,
            report_file: Path | None = None, timeout: float = 3600.0) -> int:
        path = pid_file(self.base, self.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(os.getpid()))
        previous = {s: signal.signal(s, self._on_signal)
                    for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)}
        try:
            self.prepare(topics=speed > 0)
            if report_file is not None and report_file.exists():
                record_quality(self.settings, self.run_id, report_file)
            if speed == 0:
                return self.run_batch(messages, total)
            self.start_workers()
            n = self.publish(messages, speed, total)
            print(file=self.out)
            done = self.wait_processed(timeout)
            state = "processed" if done else "stopped before every event was processed"
            print(f"replay {self.run_id}: {n:,} events published, {state}; results in ClickHouse database "
                  f"{self.settings.clickhouse_database}", file=self.out)
            return n
        finally:
            self.stop_workers()
            for s, handler in previous.items():
                signal.signal(s, handler)
            path.unlink(missing_ok=True)
