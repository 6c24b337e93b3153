"""``vigie bench`` / ``make bench``: measured throughput on this machine, every case on the same events.

Starts its own broker and ClickHouse on free ports, simulates ``--days`` of Paris-scale traffic,
publishes it once, then measures:
- ceiling:    confluent-kafka consumption + pydantic validation, no processing;
- faust-noop: a Faust agent per topic that only counts;
- naive:      a per-event Faust agent with Vigie's state logic and one table write per event (reference);
- vigie-1/2:  the real worker, end to end (Kafka -> state -> rows visible in ClickHouse), one process,
              then two processes on twice the partitions;
- history:    the batch path (same engines, no Kafka/Faust) from the event file into ClickHouse.
Prints a table (with ratios to the ceiling and to the Faust no-op) and writes it as JSON to
``bench-results/`` (ignored by git).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_driver import Client
from confluent_kafka import Consumer

from schemas.codec import decode_intervention, decode_vehicle_status
from schemas.reference import Reference
from sinks.clickhouse import run_migrations
from streams.history import HistoryRunner, records_from_jsonl
from streams.topics import ensure_topics
from vigie.produce import publish
from vigie.settings import PROJECT_ROOT, Settings
from vigie.simulator import Simulator
from vigie.stack import free_port, start_broker, start_clickhouse


@dataclass
class Figure:
    case: str
    events: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _machine() -> dict[str, object]:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def _ceiling(s: Settings, total: int) -> Figure:
    c = Consumer({**s.confluent_config(), "group.id": f"bench-ceiling-{time.time_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([s.topic_vehicle_status, s.topic_interventions])
    n, first = 0, 0.0
    while n < total:
        for m in c.consume(1000, 1.0):
            if m.error():
                continue
            if n == 0:
                first = time.perf_counter()
            (decode_vehicle_status if m.topic() == s.topic_vehicle_status else decode_intervention)(m.value())
            n += 1
    seconds = time.perf_counter() - first
    c.close()
    return Figure("ceiling", n, seconds, "confluent-kafka consume + pydantic validation")


def _faust_reference(module: str, case: str, note: str, s: Settings, total: int) -> Figure:
    """Run one of the Faust reference agents (``vigie.bench_noop``, ``vigie.bench_naive``) on the events."""
    out = subprocess.run(
        [sys.executable, "-m", module, s.kafka_bootstrap, f"bench-{case}-{time.time_ns()}", str(total),
         s.topic_vehicle_status, s.topic_interventions],
        capture_output=True, text=True, timeout=1800, cwd=PROJECT_ROOT, env=_env(s))
    found = re.search(r"RESULT (\d+) ([\d.]+)", out.stdout + out.stderr)  # Faust logs what agents print
    if found is None:
        raise RuntimeError(f"{case} did not finish: {out.stdout[-500:]} {out.stderr[-2000:]}")
    return Figure(case, int(found.group(1)), float(found.group(2)), note)


def _env(s: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in s.model_dump().items():
        env[f"VIGIE_{name.upper()}"] = str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)
    env.update(extra)
    return env


def _vigie(s: Settings, total: int, workers: int) -> Figure:
    db = Settings(**{**s.model_dump(), "clickhouse_database": f"bench_vigie_{workers}",
                     "app_id": f"bench-vigie-{workers}-{time.time_ns()}"})
    run_migrations(db)
    procs = []
    for _ in range(workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "vigie.cli", "worker", "--loglevel", "warn"],
                                      env=_env(db, VIGIE_METRICS_PORT=str(free_port())),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      cwd=PROJECT_ROOT))
    ch = Client("127.0.0.1", port=s.clickhouse_port, database=db.clickhouse_database)
    first_t, first_n, n = 0.0, 0, 0
    deadline = time.monotonic() + 1800
    while n < total and time.monotonic() < deadline:
        n = sum(ch.execute("SELECT count() FROM vehicle_status_events")[0]) + \
            sum(ch.execute("SELECT count() FROM intervention_events")[0])
        if n and not first_t:
            first_t, first_n = time.perf_counter(), n
        time.sleep(0.05)
    seconds = time.perf_counter() - first_t
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(20)
    return Figure(f"vigie-{workers}", n - first_n, seconds,
                  f"{workers} worker process(es), {s.topic_partitions} partitions, Kafka -> state -> rows "
                  "visible in ClickHouse")


def _history(s: Settings, events_file: Path) -> Figure:
    db = Settings(**{**s.model_dump(), "clickhouse_database": "bench_history"})
    run_migrations(db)
    stats = asyncio.run(HistoryRunner(db).run(records_from_jsonl(events_file, db)))
    return Figure("history", stats.events, stats.seconds,
                  f"batch path, event file -> ClickHouse ({sum(stats.rows.values()):,} rows written)")


def run_bench(days: float = 3.0, partitions: int = 4, results_dir: Path | None = None) -> list[Figure]:
    results_dir = results_dir or PROJECT_ROOT / "bench-results"
    work = PROJECT_ROOT / ".vigie" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    kafka_port, ch_tcp = free_port(), free_port()
    broker = start_broker(kafka_port, work)
    ch = start_clickhouse(ch_tcp, free_port(), work / f"clickhouse-{time.time_ns()}")
    try:
        s = Settings(kafka_bootstrap=f"127.0.0.1:{kafka_port}", clickhouse_port=ch_tcp, topic_partitions=partitions,
                     topic_vehicle_status="bench-vehicle-status", topic_interventions="bench-interventions",
                     topic_dead_letter="bench-dead-letter")
        ensure_topics(s)
        ref = Reference.load(s.reference_dir)
        sim = Simulator(ref, seed=2026, start=datetime(2026, 1, 5, tzinfo=UTC))
        events_file = work / "events.jsonl"
        print(f"simulating {days:g} days and publishing them ...", flush=True)
        with events_file.open("w") as copy:
            total = publish(s, sim.events(days * 86400), copy_to=copy)
        figures = [
            _ceiling(s, total),
            _faust_reference("vigie.bench_noop", "faust-noop", "Faust agent per topic, counting only", s, total),
            _faust_reference("vigie.bench_naive", "naive", "per-event Faust agent, Vigie's state logic, one table "
                             "write per event, no ClickHouse", s, total),
            _vigie(s, total, 1),
        ]
        # two workers, on twice the partitions (the same events, published again)
        s2 = Settings(**{**s.model_dump(), "topic_partitions": partitions * 2,
                         "topic_vehicle_status": "bench2-vehicle-status", "topic_interventions": "bench2-interventions",
                         "topic_dead_letter": "bench2-dead-letter"})
        ensure_topics(s2)
        publish(s2, (ev for ev in Simulator(ref, seed=2026, start=datetime(2026, 1, 5, tzinfo=UTC))
                     .events(days * 86400)))
        figures += [_vigie(s2, total, 2), _history(s, events_file)]
    finally:
        broker.stop()
        ch.stop()
    ceiling = next(f.rate for f in figures if f.case == "ceiling")
    noop = next(f.rate for f in figures if f.case == "faust-noop")
    machine = _machine()
    print(f"\nmachine: {machine['cores']} cores, {machine['memory_gib']} GiB, Python {machine['python']}; "
          f"{total:,} events ({days:g} simulated days), {partitions} partitions\n")
    print(f"{'case':<12} {'events':>9} {'seconds':>9} {'events/s':>10} {'/ceiling':>9} {'/faust':>7}  note")
    for f in figures:
        print(f"{f.case:<12} {f.events:>9,} {f.seconds:>9.2f} {f.rate:>10,.0f} {f.rate / ceiling:>9.2f} "
              f"{f.rate / noop:>7.2f}  {f.note}")
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"machine": machine, "days": days, "partitions": partitions, "events": total,
                               "figures": [{**asdict(f), "events_per_s": f.rate} for f in figures]}, indent=2))
    print(f"\nwritten to {out}")
    return figures
