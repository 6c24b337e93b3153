"""`vigie replay`: publish past events through the same processors, into a run of its own.

A run never mixes with live data: it has its own topics (``<topic>-replay-<run>``), consumer group,
dead-letter topic and ClickHouse database (``<database>_replay_<run>``), which the dashboards offer in
their ``run`` selector. The replay starts its own worker process(es) for the run, publishes the events
at x1 or xN through the broker and the run's own worker(s) — waiting for them whenever they lag more than
``max_lag`` events behind, so a paced replay never buries a slow worker — ending when they have processed every
published event; as fast as possible (``--speed 0``) through the batch path (the same processors in this process, no
broker: the local broker's fetches slow down as its partitions grow). Either way with a progress line
(events/s, simulated clock), paused, resumed and stopped by ``vigie replay pause|resume|stop --run ID`` (or
SIGUSR1/SIGUSR2/SIGTERM).
"""

from __future__ import annotations

import json
import os
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

from core.settings import Settings, run_settings
from sinks.access import SQL_USERS_SINCE, reader_grants, server_version, writer_grants
from sinks.clickhouse import make_client, run_migrations
from sinks.history import RecordsSource, records_from_clickhouse, run_history
from streams import registry
from streams.batch import PartitionOf
from streams.processor import Record
from streams.registry import logical_topics
from streams.topics import ensure_topics


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


def between(messages: Iterator[Message], since: float | None, until: float | None) -> Iterator[Message]:
    """The messages whose event time is in [since, until) (a period of a history, e.g. one month)."""
    for msg in messages:
        if since is not None and msg.event_time < since:
            continue
        if until is not None and msg.event_time >= until:
            continue
        yield msg


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


def grant_run(settings: Settings) -> None:
    """Let the pipeline's writer write the run's database, and the dashboards' reader read what they may of it (on
    servers with SQL users; the migrator grants)."""
    migrator = settings.as_migrator()
    client = make_client(migrator)
    try:
        if server_version(client.execute) < SQL_USERS_SINCE:
            return
        users = {u for (u,) in client.execute("SELECT name FROM system.users")}
        db = settings.clickhouse_database
        if settings.clickhouse_user in users and settings.clickhouse_user != migrator.clickhouse_user:
            for stmt in writer_grants(db, settings.clickhouse_user):
                client.execute(stmt)
        if settings.clickhouse_reader_user in users:
            for stmt in reader_grants(db, settings.clickhouse_reader_user, registry.readable_tables(settings)):
                client.execute(stmt)
    finally:
        client.disconnect()


@dataclass
class Lag:
    """How far behind the publisher the run's workers are, in events, and the waits that keep it bounded."""

    bound: int
    delivered: int = 0  # events the broker acknowledged
    at_check: int = 0  # the lag at the last measure
    produced_at_check: int = 0
    most: int = 0  # the largest lag measured
    waits: int = 0
    waited_s: float = 0.0

    def __post_init__(self) -> None:
        if self.bound < 1:
            raise ValueError("the replay's lag bound must be at least 1 event")

    def may_exceed(self, produced: int) -> bool:
        """Whether ``produced`` events published could put the workers past the bound: commits only move forward,
        so the lag now is at most the last one measured plus what was published since."""
        return self.at_check + produced - self.produced_at_check > self.bound

    def measured(self, produced: int, behind: int) -> None:
        self.at_check, self.produced_at_check = behind, produced
        self.most = max(self.most, behind)


class Replay:
    def __init__(self, base: Settings, run_id: str, reference_dir: Path | None, workers: int = 1,
                 out: IO[str] = sys.stderr, max_lag: int = 5000) -> None:
        self.base = base
        self.run_id = run_id
        self.settings = run_settings(base, run_id, reference_dir)
        self.n_workers = workers
        self.out = out
        self.paused = False
        self.stopped = False
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ends: dict[tuple[str, int], int] = {}  # (topic, partition) -> offset after the last one published
        self.starts: dict[tuple[str, int], int] = {}  # (topic, partition) -> first offset this replay published
        self.lag = Lag(max_lag)

    def prepare(self, topics: bool = True) -> None:
        run_migrations(self.settings)
        grant_run(self.settings)
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
        group = self._group()
        wall0, sim0, n, last_shown = time.monotonic(), None, 0, 0.0
        held_for = 0.0  # paused, or waiting for the workers: the pacing starts again from there
        failed: list[str] = []

        def delivered(err: object, m: object) -> None:  # the end offset of each partition, from the broker
            if err is not None:
                failed.append(str(err))
                return
            tp, offset = (m.topic(), m.partition()), m.offset()  # type: ignore[attr-defined]
            self.ends[tp] = max(self.ends.get(tp, 0), offset + 1)
            self.starts[tp] = min(self.starts.get(tp, offset), offset)
            self.lag.delivered += 1

        try:
            for msg in messages:
                held_for += self._hold(n, total, msg.event_time, wall0, producer, group)
                if self.stopped:
                    break
                if speed > 0:
                    sim0 = msg.event_time if sim0 is None else sim0
                    delay = wall0 + held_for + (msg.event_time - sim0) / speed - time.monotonic()
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
        finally:
            group.close()
        if producer.flush(120) or failed:
            raise RuntimeError(f"the broker did not acknowledge every replayed event ({failed[:3]})")
        return n

    def _hold(self, n: int, total: int | None, sim_t: float, wall0: float, producer: Producer,
              group: Consumer) -> float:
        """Before the next message: wait while paused, and while publishing it could put the workers more than
        ``max_lag`` events behind (then until they are within half of it). Returns the seconds held."""
        started = time.monotonic()
        while self.paused and not self.stopped:
            self._progress(n, total, sim_t, wall0, state="paused")
            time.sleep(0.2)
        if not self.stopped and self.lag.may_exceed(n + 1):
            limit = self.lag.bound - 1  # one more event must keep the lag within the bound
            waited_since: float | None = None
            while self._measure_lag(n, producer, group) > limit and not self.stopped:
                if waited_since is None:
                    waited_since, self.lag.waits = time.monotonic(), self.lag.waits + 1
                    limit = self.lag.bound // 2  # then wait until they are within half of it
                self._check_workers()
                self._progress(n, total, sim_t, wall0, state="waiting for the workers")
                time.sleep(0.2)
            if waited_since is not None:
                self.lag.waited_s += time.monotonic() - waited_since
        return time.monotonic() - started

    def _check_workers(self) -> None:
        if any(p.poll() is not None for p in self.procs):
            raise RuntimeError("a replay worker exited; see its log in " + str(self.settings.run_dir / "replays"))

    def _measure_lag(self, produced: int, producer: Producer, group: Consumer) -> int:
        """Events published (or in flight) that the run's consumer group has not committed yet."""
        producer.poll(0)  # delivery reports: each partition's end offset
        behind = produced - self.lag.delivered + self._uncommitted(group)
        self.lag.measured(produced, behind)
        return behind

    def _uncommitted(self, group: Consumer) -> int:
        """Events the broker acknowledged (delivery reports, not its high watermark) that the run's consumer group
        has not committed yet."""
        if not self.ends:
            return 0
        behind = 0
        for tp in group.committed([TopicPartition(t, p) for t, p in self.ends], timeout=10):
            key = (tp.topic, tp.partition)  # no commit yet: everything this replay published there is behind
            behind += max(0, self.ends[key] - max(tp.offset, self.starts[key]))
        return behind

    def _progress(self, n: int, total: int | None, sim_t: float, wall0: float, state: str = "") -> None:
        rate = n / max(time.monotonic() - wall0, 1e-6)
        of = f"/{total:,} ({100 * n / total:.0f}%)" if total else ""
        clock = datetime.fromtimestamp(sim_t, UTC).strftime("%Y-%m-%d %H:%M:%S")
        behind = f", workers {self.lag.at_check:,} behind" if self.procs else ""
        end = "\n" if not self.out.isatty() else ""
        print(f"\rreplay {self.run_id}: {n:,}{of} events, {rate:,.0f} ev/s, simulated clock {clock} UTC{behind}"
              f"{f' [{state}]' if state else ''}   ", end=end, file=self.out, flush=True)

    def wait_processed(self, timeout: float) -> bool:
        """True once the run's consumer group has committed, on every partition, the offset after the last
        message published."""
        group = self._group()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not self.stopped:
                if self._uncommitted(group) == 0:
                    return True
                self._check_workers()
                time.sleep(0.5)
            return False
        finally:
            group.close()

    def _group(self) -> Consumer:
        """A client reading the run's consumer-group commits; it never joins the group."""
        s = self.settings
        return Consumer({**s.confluent_config(), "group.id": s.app_id, "enable.auto.commit": False})

    def records(self, messages: Iterator[Message], total: int | None) -> Iterator[Record]:
        """The messages as the batch path's records (partitioned as the producer would), with the progress line,
        pause and stop of a published replay."""
        topics = logical_topics(self.settings)
        partition_of = PartitionOf(self.settings.topic_partitions)
        wall0, last_shown, n = time.monotonic(), 0.0, 0
        for msg in messages:
            while self.paused and not self.stopped:
                self._progress(n, total, msg.event_time, wall0, state="paused")
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
            print(f"replay {self.run_id}: {n:,} events published, {state}; workers at most {self.lag.most:,} events "
                  f"behind (bound {self.lag.bound:,}; waited for them {self.lag.waits} times, "
                  f"{self.lag.waited_s:.1f} s); results in ClickHouse database {self.settings.clickhouse_database}",
                  file=self.out)
            return n
        finally:
            self.stop_workers()
            for s, handler in previous.items():
                signal.signal(s, handler)
            path.unlink(missing_ok=True)
