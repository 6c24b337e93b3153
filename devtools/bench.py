"""``vigie bench`` / ``make bench``: measured throughput on this machine, every case on the same events.

Starts its own broker and ClickHouse on free ports, simulates ``--days`` of Paris-scale traffic,
publishes it once, then measures:
- ceiling:    confluent-kafka consumption + pydantic validation, no processing;
- faust-noop: a Faust agent per topic that only counts;
- noop-eager: the same with the worker's eager delivery (streams/faust_compat.py), what the patch gives Faust;
- naive:      a per-event Faust agent with Vigie's state logic and one table write per event (reference);
- vigie-1/2:  the real worker, end to end (Kafka -> state -> rows visible in ClickHouse), one process,
              then two processes on twice the partitions; vigie-1-sizeage: one process with batches closing on
              size or age only (VIGIE_BATCH_CLOSE_WHEN_DRAINED=false), the rule before drained batches;
- panels:     p95 time of every dashboard panel query on the history the batch path wrote;
- history:    the batch path (same engines, no Kafka/Faust) from the event file into ClickHouse;
- freshness:  p50/p95/p99 of (row queryable in ClickHouse - event produced) at a steady 2,000 events/s
              (fresh-sizeage: the same with batches closing on size or age only);
- memory:     worker RSS with 5,000 vehicles after 24 h of events;
- replay-month (opt-in, ``--replay-month``): January 2018 of the SF six-neighbourhood year replayed at x600 through
              the broker and a worker (`vigie replay start --speed 600`), its lag watched from outside.
Prints a table (with ratios to the ceiling and to the Faust no-op) and writes it as JSON to
``bench-results/`` (ignored by git).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clickhouse_driver import Client
from confluent_kafka import Consumer

from core.settings import PROJECT_ROOT, Settings
from devtools.brigade import generate_brigade
from devtools.produce import make_producer, publish
from devtools.simulator import SimEvent, Simulator
from devtools.stack import LOCAL_BROKER, free_port, start_broker, start_clickhouse
from schemas.codec import decode_intervention, decode_vehicle_status, encode, event_line
from schemas.reference import Reference
from sinks.clickhouse import make_client, run_migrations
from sinks.history import HistorySource, run_history
from streams.batch import HistoryStats
from streams.topics import ensure_topics


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
    c.subscribe([s.topic("vehicle-status"), s.topic("interventions")])
    n, first = 0, 0.0
    while n < total:
        for m in c.consume(1000, 1.0):
            if m.error():
                continue
            if n == 0:
                first = time.perf_counter()
            (decode_vehicle_status if m.topic() == s.topic("vehicle-status") else decode_intervention)(m.value())
            n += 1
    seconds = time.perf_counter() - first
    c.close()
    return Figure("ceiling", n, seconds, "confluent-kafka consume + pydantic validation")


def _faust_reference(module: str, case: str, note: str, s: Settings, total: int, work: Path,
                     **env: str) -> Figure:
    """Run one of the Faust reference agents (``devtools.bench_noop``, ``devtools.bench_naive``) on the events, in a
    directory of its own under ``work`` (Faust writes its data directory there), removed afterwards."""
    run_dir = work / f"{case}-{time.time_ns()}"
    run_dir.mkdir(parents=True)
    try:
        out = subprocess.run(
            [sys.executable, "-m", module, s.kafka_bootstrap, f"bench-{case}-{time.time_ns()}", str(total),
             s.topic("vehicle-status"), s.topic("interventions")],
            capture_output=True, text=True, timeout=1800, cwd=run_dir, env=_env(s, **env))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    found = re.search(r"RESULT (\d+) ([\d.]+)", out.stdout + out.stderr)  # Faust logs what agents print
    if found is None:
        raise RuntimeError(f"{case} did not finish: {out.stdout[-500:]} {out.stderr[-2000:]}")
    return Figure(case, int(found.group(1)), float(found.group(2)), note)


def _env(s: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, **s.to_env(), **extra}


def _vigie(s: Settings, total: int, workers: int, case: str = "") -> tuple[Figure, Settings]:
    case = case or f"vigie-{workers}"
    db, procs = _start_workers(s, case.replace("-", "_"), workers)
    ch = Client("127.0.0.1", port=s.clickhouse_port, database=db.clickhouse_database)
    first_t, first_n, n = 0.0, 0, 0
    deadline = time.monotonic() + 1800
    while n < total and time.monotonic() < deadline:
        n = _stored(ch)
        if n and not first_t:
            first_t, first_n = time.perf_counter(), n
        time.sleep(0.05)
    seconds = time.perf_counter() - first_t
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(20)
    rule = "on drain, size or age" if s.batch_close_when_drained else "on size or age only"
    return Figure(case, n - first_n, seconds,
                  f"{workers} worker process(es), {s.topic_partitions} partitions, Kafka -> state -> rows "
                  f"visible in ClickHouse; batches close {rule}"), db


def _recovery(w: Settings, work: Path) -> Figure:
    """A worker restarted on the state another left (same group and changelogs): seconds from process start
    to 'Worker ready' (every changelog read back), and how many changelog records that was."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**w.confluent_config(), "group.id": f"{w.app_id}-bench-count"})
    records = 0
    for table in ("stations", "interventions", "sector-windows"):
        for p in range(w.topic_partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(f"{w.app_id}-{table}-changelog", p), 10)
            records += high - low
    consumer.close()
    log_path = work / "recovery-worker.log"
    started = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "vigie.cli", "worker", "--loglevel", "info"],
                                env=_env(w, VIGIE_METRICS_PORT=str(free_port())), stdout=log,
                                stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        seconds = 0.0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if "Worker ready" in log_path.read_text(errors="replace"):
                seconds = time.perf_counter() - started
                break
            time.sleep(0.05)
        proc.terminate()
        proc.wait(20)
    if not seconds:
        raise RuntimeError(f"the restarted worker never got ready: see {log_path}")
    return Figure("recovery", records, seconds, f"restart of vigie-1's worker: {records:,} changelog records read "
                  f"back, ready after {seconds:.1f} s (process start included)")


def _start_workers(s: Settings, tag: str, count: int = 1, metrics_port: int | None = None
                   ) -> tuple[Settings, list[subprocess.Popen[bytes]]]:
    """``count`` worker processes of one consumer group, writing to a database of their own; their warnings and
    errors in ``.vigie/bench/worker-<tag>-<i>.log`` (a worker that dies says why); their metrics on free ports
    (the first on ``metrics_port`` if given)."""
    w = s.model_copy(update={"clickhouse_database": f"bench_{tag}", "app_id": f"bench-{tag}-{time.time_ns()}"})
    run_migrations(w)
    logs = PROJECT_ROOT / ".vigie" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen([sys.executable, "-m", "vigie.cli", "worker", "--loglevel", "warn"],
                              env=_env(w, VIGIE_METRICS_PORT=str(metrics_port if metrics_port and i == 0
                                                                   else free_port())),
                              stdout=(logs / f"worker-{tag}-{i}.log").open("ab"), stderr=subprocess.STDOUT,
                              cwd=PROJECT_ROOT)
             for i in range(count)]
    return w, procs


def _stored(ch: Client) -> int:
    return int(ch.execute("SELECT count() FROM vehicle_status_events")[0][0]
               + ch.execute("SELECT count() FROM intervention_events")[0][0])


def _freshness(s: Settings, ref: Reference, rate: float = 2000.0, seconds: float = 20.0, case: str = "freshness"
               ) -> Figure:
    """Events re-stamped to the wall clock and produced at a steady rate; latency = first seen queryable in
    ClickHouse (polled every 25 ms) minus produced."""
    topics = s.model_copy(update={"topic_suffix": f"-{case}"})
    ensure_topics(topics)
    w, (proc,) = _start_workers(topics, case.replace("-", "_"))
    ch = Client("127.0.0.1", port=s.clickhouse_port, database=w.clickhouse_database)
    sim = Simulator(ref, seed=7, start=datetime.now(UTC), crews=False).events(86400 * 30)
    # the event source batches like any producer on Apache Kafka (crews are off: no cross-topic watermark here)
    producer = make_producer(topics.model_copy(update={"kafka_producer_max_batch_bytes": 65536}))
    names = {"vehicle-status": topics.topic("vehicle-status"), "interventions": topics.topic("interventions")}
    warm = next(sim)  # wait until the worker has joined and stores
    producer.produce(names[warm.topic], key=warm.key.encode(), value=encode(warm.event))
    producer.flush(10)
    deadline = time.monotonic() + 120
    while _stored(ch) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def poll() -> None:
        poller = Client("127.0.0.1", port=s.clickhouse_port, database=w.clickhouse_database)
        since = int(time.time()) - 2
        while not stop.is_set():
            now = time.time()
            for (eid,) in poller.execute(
                    "SELECT event_id FROM vehicle_status_events WHERE ingested_at >= toDateTime(%(t)s) UNION ALL "
                    "SELECT event_id FROM intervention_events WHERE ingested_at >= toDateTime(%(t)s)", {"t": since}):
                seen.setdefault(eid, now)
            since = int(now) - 2
            time.sleep(0.025)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        ev = next(sim)
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        event = ev.event.model_copy(update={"event_time": datetime.now(UTC)})
        producer.produce(names[ev.topic], key=ev.key.encode(), value=encode(event))
        sent[event.event_id] = time.time()
        producer.poll(0)
    producer.flush(30)
    achieved = total / (time.perf_counter() - start)
    deadline = time.monotonic() + 60
    while len(seen.keys() & sent.keys()) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    poller.join(5)
    proc.terminate()
    proc.wait(20)
    lat = sorted(seen[k] - sent[k] for k in sent if k in seen)
    missing = len(sent) - len(lat)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    rule = "" if s.batch_close_when_drained else " [batches closing on size or age only]"
    return Figure(case, len(lat), seconds,
                  f"at {achieved:,.0f} events/s produced{rule}: p50 {pct(0.5):.2f}s, p95 {pct(0.95):.2f}s, "
                  f"p99 {pct(0.99):.2f}s (row queryable - produced; 25 ms polls)"
                  + (f"; {missing} not seen within 60 s" if missing else ""))


def _memory(s: Settings, work: Path, vehicles: int = 5000) -> Figure:
    """Worker RSS after 24 h of events for a fleet of about ``vehicles`` vehicles."""
    per_station = 580 / 80
    ref = generate_brigade(n_stations=round(vehicles / per_station), seed=11)
    ref_dir = work / "reference-5000"
    ref.write(ref_dir)
    m = s.model_copy(update={"reference_dir": ref_dir, "topic_suffix": "-mem"})
    ensure_topics(m)
    sim = Simulator(ref, seed=8, start=datetime(2026, 1, 5, tzinfo=UTC), crews=False,
                    annual_interventions=int(500_000 * len(ref.fleet) / 580))
    total = publish(m, sim.events(86400))
    w, (proc,) = _start_workers(m, "memory")
    ch = Client("127.0.0.1", port=s.clickhouse_port, database=w.clickhouse_database)
    started = time.perf_counter()
    deadline = time.monotonic() + 1800
    while _stored(ch) < total and time.monotonic() < deadline:
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    rss = _rss_mb(proc.pid)
    proc.terminate()
    proc.wait(20)
    return Figure("memory", total, seconds, f"worker RSS {rss:,.0f} MB with {len(ref.fleet):,} vehicles "
                  f"in {len(ref.stations)} stations after 24 h of events")


def _rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default), MB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


MONTH_START = datetime(2026, 1, 5, tzinfo=UTC)


def _month_events(ref: Reference, days: int, start: datetime = MONTH_START) -> Iterator[SimEvent]:
    """Simulated days with crews taking a new pseudonymous id each time they come on duty, and 5 % of
    interventions never closed: what state must not accumulate."""
    on_duty: set[str] = set()
    watches: Counter[str] = Counter()
    for ev in Simulator(ref, seed=9, start=start).events(days * 86400):
        e = ev.event
        if ev.topic == "crew-status":
            if e.status.value != "off_duty" and e.person_id not in on_duty:
                on_duty.add(e.person_id)
                watches[e.person_id] += 1
            elif e.status.value == "off_duty":
                on_duty.discard(e.person_id)
            e = e.model_copy(update={"person_id": f"{e.person_id}-w{watches[e.person_id]}"})
        elif (ev.topic == "interventions" and e.lifecycle.value == "closed"
              and zlib.crc32(e.intervention_id.encode()) % 20 == 0):
            continue  # never closed
        yield SimEvent(ev.topic, ev.key, e)


def _state_month(s: Settings, days: int = 30) -> Figure:
    """What a worker's state holds over a month (``_month_events``): the engines fed as the batch path feeds them
    (eviction included), measured weekly (people and interventions held, the state's size as its changelog
    codecs write it)."""
    from streams import registry
    from streams.processor import EngineContext, Record
    from streams.processors.interventions import INTERVENTION_STATES
    from streams.processors.stations import STATIONS

    m = s.model_copy(update={"intervention_eviction_interval_s": 1e-3})  # evict at every chunk, as a day would
    ref = Reference.load(m.reference_dir)
    runs = [(p, p.engine(EngineContext(m, live=False)), {st.name: {} for st in p.states})
            for p in registry.processors(m)]
    by_topic = {m.topic(i.topic): run for run in runs for i in run[0].inputs}
    codecs = {st.name: st for p, _, _ in runs for st in p.states}
    weekly: list[str] = []
    chunk: list[Record] = []
    events, started, week = 0, time.perf_counter(), 1

    def flush() -> None:
        for proc, engine, stores in runs:
            mine = [r for r in chunk if by_topic[r.topic][0] is proc]
            if mine:
                engine.process(mine, stores)
            engine.tick(stores, None, range(m.topic_partitions))
        chunk.clear()

    def measure(day: int) -> str:
        stores = {name: store for _, _, st in runs for name, store in st.items()}
        size = sum(len(codecs[n].dumps(v)) for n, store in stores.items() for v in store.values())
        people = sum(len(st.staff) for st in stores[STATIONS].values())
        return (f"d{day}: {people:,} people, {len(stores[INTERVENTION_STATES]):,} interventions, "
                f"{size / 1e6:.1f} MB state, RSS {_rss_mb():,.0f} MB")

    for ev in _month_events(ref, days):
        t = ev.event.event_time.timestamp()
        chunk.append(Record(m.topic(ev.topic), 0, events, ev.key.encode(), encode(ev.event)))
        events += 1
        if len(chunk) >= 20_000:
            flush()
        if t >= MONTH_START.timestamp() + week * 7 * 86400:
            flush()
            weekly.append(measure(week * 7))
            week += 1
    flush()
    return Figure("state-month", events, time.perf_counter() - started,
                  f"{days} simulated days with crews (a new id at each watch) and 5 % of interventions never closed, "
                  "the engines with eviction: " + "; ".join(weekly))


def _worker_month(s: Settings, days: int = 28) -> Figure:
    """A live worker over ``_month_events`` (32 partitions: Tansu's fetches slow down with a partition's size):
    its RSS each time another eighth of the month is stored."""
    m = s.model_copy(update={"topic_partitions": 32, "topic_suffix": "-month",
                             "intervention_eviction_interval_s": 5.0})
    ensure_topics(m)
    total = publish(m, _month_events(Reference.load(m.reference_dir), days))
    w, (proc,) = _start_workers(m, "month")
    db = Client("127.0.0.1", port=s.clickhouse_port, database=w.clickhouse_database)
    tables = ("vehicle_status_events", "crew_status_events", "intervention_events")
    samples: list[str] = []
    started, deadline = time.perf_counter(), time.monotonic() + 1800
    while len(samples) < 8 and time.monotonic() < deadline and proc.poll() is None:
        stored = sum(db.execute(f"SELECT uniqExact(event_id) FROM {t}")[0][0] for t in tables)
        if stored >= total * (len(samples) + 1) / 8:
            samples.append(f"{len(samples) + 1}/8 stored after {time.perf_counter() - started:,.0f} s: "
                           f"{_rss_mb(proc.pid):,.0f} MB")
        time.sleep(2)
    died = proc.poll()  # before we stop it: None while it runs
    proc.terminate()
    proc.wait(20)
    unfinished = "" if len(samples) == 8 else (
        f" [NOT FINISHED: {len(samples)}/8; the worker "
        + (f"exited with {died}, see .vigie/bench/worker-month-0.log]" if died is not None
           else "was still running after 30 min]"))
    return Figure("worker-month", total, time.perf_counter() - started,
                  f"worker RSS over {days} simulated days with crews (a new id at each watch) and 5 % of "
                  "interventions never closed: " + ", ".join(samples) + unfinished)


def _worker_month_live(s: Settings, days: int = 28, speed: float = 3000.0, every_h: float = 12.0) -> Figure:
    """A live worker over ``_month_events`` published as they happen on a clock ``speed`` times the wall clock (the
    worker's own clock sped up alike: its deadlines, sealing and eviction run as live), its RSS and what its state
    holds (its metrics) sampled every ``every_h`` simulated hours."""
    origin = time.time() + 30.0  # the worker has joined its group by then
    m = s.model_copy(update={"topic_partitions": 16, "topic_suffix": f"-live-month-{time.time_ns()}",
                             "clock_origin": origin, "clock_speed": speed})
    ensure_topics(m)
    port = free_port()
    w, (proc,) = _start_workers(m, "live_month", metrics_port=port)
    ref = Reference.load(m.reference_dir)
    published: list[int] = []
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            published.append(publish(m, _month_events(ref, days, datetime.fromtimestamp(origin, UTC)), speed=speed,
                                      sim_origin=origin))
        except BaseException as e:  # said in the figure
            failed.append(e)

    publisher = threading.Thread(target=produce, daemon=True)
    while time.time() < origin:
        time.sleep(0.1)
    started = time.perf_counter()
    publisher.start()
    samples: list[tuple[float, float, dict[str, float]]] = []  # (simulated day, RSS MB, state items)
    batches = [0.0, 0.0]  # events and batches stored so far (the mean batch between samples)
    step_s = every_h * 3600 / speed
    while publisher.is_alive() and proc.poll() is None:
        time.sleep(step_s - (time.perf_counter() - started) % step_s)
        if proc.poll() is None:
            samples.append(((time.time() - origin) * speed / 86400, _rss_mb(proc.pid), _state_items(port, batches)))
    publisher.join()
    db = Client("127.0.0.1", port=s.clickhouse_port, database=w.clickhouse_database)
    tables = ("vehicle_status_events", "crew_status_events", "intervention_events")
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and published and (
            sum(db.execute(f"SELECT uniqExact(event_id) FROM {t}")[0][0] for t in tables) < published[0]):
        time.sleep(1)
    stored = sum(db.execute(f"SELECT uniqExact(event_id) FROM {t}")[0][0] for t in tables)
    dead = _metric_sum(_metrics_text(port), r'vigie_events_invalid_total\{.*\} ([0-9.e+]+)')
    died = proc.poll()
    proc.terminate()
    proc.wait(20)
    return Figure("worker-month-live", stored, time.perf_counter() - started,
                  _month_summary(samples, days, speed, published, stored, died, failed)
                  + f"; dead-lettered {dead:,.0f}")


def _metric_sum(text: str, pattern: str) -> float:
    """The sum of the metric lines of a metrics page (``text``) matching ``pattern`` (its group: the value)."""
    return sum(float(found.group(1)) for line in text.splitlines() if (found := re.match(pattern, line)))


def _metrics_text(port: int) -> str:
    """The worker's metrics page ("" when it does not answer)."""
    import urllib.request

    try:
        return str(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
    except OSError:
        return ""


def _state_items(port: int, batches: list[float] | None = None) -> dict[str, float]:
    """The worker's ``vigie_state_items`` gauges (people, interventions, ...), by kind; how far it is behind
    (``lag_messages``) and, given the events and batches counted at the last call (updated), its mean batch since
    (``events_per_batch``: on a sped-up clock a batch spans more simulated time, and timelines hold what came since
    their station was last sealed)."""
    text = _metrics_text(port)
    out: dict[str, float] = {}
    if batches is not None:
        total = [_metric_sum(text, r'vigie_batch_size_events_sum\{.*\} ([0-9.e+]+)'),
                 _metric_sum(text, r'vigie_batch_size_events_count\{.*\} ([0-9.e+]+)')]
        if total[1] > batches[1]:
            out["events_per_batch"] = (total[0] - batches[0]) / (total[1] - batches[1])
        batches[:] = total
    for line in text.splitlines():
        found = (re.match(r'vigie_state_items\{.*kind="([^"]+)".*\} ([0-9.e+]+)', line)
                 or re.match(r'vigie_state_entries\{table="([^"]+)"\} ([0-9.e+]+)', line)
                 or re.match(r'vigie_consumer_(lag_messages)\{.*\} ([0-9.e+]+)', line))
        if found:
            out[found.group(1)] = out.get(found.group(1), 0.0) + float(found.group(2))
    return out


def _month_summary(samples: list[tuple[float, float, dict[str, float]]], days: int, speed: float,
                   published: list[int], stored: int, died: int | None, failed: list[BaseException]) -> str:
    """The live month's figure: RSS and state at each simulated week, the RSS range over the last three."""
    weekly = []
    for day in range(7, days + 1, 7):
        near = min(samples, key=lambda x: abs(x[0] - day), default=None)
        if near is not None:
            items = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(near[2].items()))
            weekly.append(f"d{near[0]:.1f}: RSS {near[1]:,.0f} MB ({items})")
    later = [rss for day, rss, _ in samples if day >= days / 4]
    spread = f"; RSS over the last three quarters {min(later):,.0f}-{max(later):,.0f} MB" if later else ""
    every = [f"d{day:.0f} {rss:,.0f}" for day, rss, _ in samples[::4]]
    spread += f"; RSS (MB) every 2 simulated days: {', '.join(every)}" if every else ""
    # Freed memory is reused before the heap grows: RSS is read against each gauge's high water, not its level now.
    high = [(k, max(samples, key=lambda x, k=k: x[2].get(k, 0.0))) for k in sorted({k for x in samples for k in x[2]})]
    peaks = ", ".join(f"{k} {x[2][k]:,.0f} (d{x[0]:.0f})" for k, x in high)
    spread += f"; high water (state, lag, batch): {peaks}" if high else ""
    trouble = "".join([f" [publisher failed: {failed[0]!r}]" if failed else "",
                       f" [the worker exited with {died}, see .vigie/bench/worker-live_month-0.log]"
                       if died is not None else "",
                       f" [{stored:,} of {published[0]:,} stored]" if published and stored < published[0] else ""])
    return (f"{days} simulated days at x{speed:g} (live clock) with crews (a new id at each watch) and 5 % of "
            f"interventions never closed, {published[0] if published else 0:,} events, {len(samples)} samples: "
            + "; ".join(weekly) + spread + trouble)


def _replay_month(s: Settings, work: Path, speed: float = 600.0, max_lag: int = 5000) -> Figure:
    """January 2018 of the SF year through `vigie replay start --speed 600` (the broker and one worker), the run's
    lag sampled from outside ten times a second: a paced replay must finish with its workers never more than
    ``max_lag`` events behind."""
    from core.settings import run_settings
    from devtools.lag import LagWatch
    from streams.registry import history_topics

    out = _sf2018_events(work)
    m = s.model_copy(update={"topic_suffix": f"-bench-{time.time_ns()}"})
    watch = LagWatch(run_settings(m, "jan600"), history_topics(run_settings(m, "jan600")).values())
    watch.start()
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "vigie.cli", "replay", "start", "--run", "jan600", "--events",
                               str(out / "events.jsonl"), "--from", "2018-01-01", "--until", "2018-02-01", "--speed",
                               str(speed), "--max-lag", str(max_lag)], env={**os.environ, **m.to_env(),
                              "VIGIE_RUN_DIR": str(work / "replay-month")}, capture_output=True, text=True)
    finally:
        watch.stop()
    seconds = time.perf_counter() - started
    summary = re.search(r"([\d,]+) events published, (.*?); workers at most ([\d,]+) events behind (.*?\))",
                        done.stderr)
    if done.returncode or not summary:
        return Figure("replay-month", 0, seconds, f"FAILED (rc {done.returncode}): {done.stderr[-300:]!r}")
    events = int(summary.group(1).replace(",", ""))
    return Figure("replay-month", events, seconds,
                  f"January 2018 of the SF year at x{speed:g} through the broker and one worker: {summary.group(2)} in "
                  f"{seconds / 60:.1f} min; lag watched from outside at most {watch.most:,} events "
                  f"({watch.samples:,} samples); the replay's own count: at most {summary.group(3)} {summary.group(4)}")


def _history(s: Settings, events_file: Path) -> Figure:
    db = s.model_copy(update={"clickhouse_database": "bench_history"})
    run_migrations(db)
    stats = run_history(db, HistorySource(file=events_file), processes=1)
    return Figure("history", stats.events, stats.seconds,
                  f"batch path, one process, event file -> ClickHouse ({sum(stats.rows.values()):,} rows written)")


ALERTS_COST_REPEATS = 5  # runs of each case, alternating which goes first (see _alerts_cost)


def _alerts_cost(s: Settings, work: Path, days: float = 7.0, repeats: int = ALERTS_COST_REPEATS) -> list[Figure]:
    """The batch path over a simulated week with crews and major incidents, with the shipped alert rules and
    without any (no rules file: the stations publish nothing either), the same events; the alerts' cost.
    One run of each differs by more than the cost (ClickHouse's inserts, and its merges of the run before): each
    case runs ``repeats`` times, on and off taking turns to go first, each into a database of its own, and the
    medians are compared."""
    path = _alerts_events(s, work, days)
    cases = {"alerts-off": work / "no-rules.toml", "alerts-on": s.alert_rules}
    runs: dict[str, list[HistoryStats]] = {case: [] for case in cases}
    for i in range(repeats):
        for case in sorted(cases, reverse=i % 2 == 1):
            db = s.model_copy(update={"clickhouse_database": f"bench_{case.replace('-', '_')}_{i}",
                                      "alert_rules": cases[case]})
            run_migrations(db)
            runs[case].append(run_history(db, HistorySource(file=path), processes=1))
            make_client(db).execute(f"DROP DATABASE IF EXISTS {db.clickhouse_database}")
    out = []
    for case, stats in runs.items():
        median = sorted(stats, key=lambda st: st.seconds)[len(stats) // 2]
        what = (f"the shipped alert rules: {median.rows['alerts']} transitions" if case == "alerts-on"
                else "no alert rules")
        out.append(Figure(case, median.events, median.seconds, f"batch path, one process, {days:g} simulated days "
                          f"with crews and 3 major incidents a day, {what}; median of {len(stats)} runs ("
                          + ", ".join(f"{st.events / st.seconds:,.0f}" for st in stats) + " events/s)"))
    off, on = out
    out.append(Figure("alerts-cost", on.events, on.seconds - off.seconds,
                      f"alerts on: {100 * (1 - on.rate / off.rate):+.1f} % slower than off "
                      f"({on.rate:,.0f} vs {off.rate:,.0f} events/s, medians of {repeats} runs taking turns; "
                      f"target <= 10 %)"))
    return out


def _alerts_events(s: Settings, work: Path, days: float) -> Path:
    """The alerts' case's events: a simulated week with crews and major incidents, cached (same seed, same file)."""
    path = work / f"alerts-{days:g}d-seed31.jsonl"
    if not path.exists():
        ref = Reference.load(s.reference_dir)
        tmp = path.with_suffix(".part")
        with tmp.open("w") as f:
            for ev in Simulator(ref, seed=31, start=datetime(2026, 1, 5, tzinfo=UTC),
                                major_incidents_per_day=3).events(days * 86400):
                f.write(event_line(ev.topic, ev.key, ev.event))
        tmp.rename(path)
    return path


def _year_events(s: Settings, work: Path, days: float) -> Path:
    """``days`` of Paris-scale history (a year: ~500,000 interventions) as an event file, cached (same seed and
    length, same file)."""
    path = work / f"history-{days:g}d-seed2026-localtime.jsonl"  # demand by Paris local time since 2026-12-01
    if not path.exists():
        print(f"simulating {days:g} days of history (cached in {path}) ...", flush=True)
        ref = Reference.load(s.reference_dir)
        tmp = path.with_suffix(".part")
        with tmp.open("w") as f:
            for ev in Simulator(ref, seed=2026, start=datetime(2025, 1, 6, tzinfo=UTC), crews=False).events(
                    days * 86400):
                f.write(event_line(ev.topic, ev.key, ev.event))
        tmp.rename(path)
    return path


def _whatif_year(s: Settings, work: Path, days: float = 365.0) -> Figure:
    """The what-if engine over a simulated Paris year (``_year_events``): one closest-unit re-run, one core (the
    history read once before, not timed)."""
    from streams.whatif.engine import run
    from streams.whatif.study import History
    from streams.whatif.travel import TravelModels

    path = _year_events(s, work, days)
    started = time.perf_counter()
    history = History.from_files(path, s.reference_dir)
    models = TravelModels.fit(history.trips())
    loaded = time.perf_counter() - started
    requests = sum(len(c.responses) for c in history.calls)
    started = time.perf_counter()
    run(history.calls, history.units, models, 0)
    spent = time.perf_counter() - started
    return Figure("whatif-year", len(history.calls), spent,
                  f"a simulated Paris year ({len(history.calls):,} interventions, {requests:,} responses, "
                  f"{len(history.units):,} units) re-run once, closest idle unit: {spent:.1f} s (target < 60 s; "
                  f"reading the events and fitting the models before: {loaded:.0f} s)")


def _history_year(s: Settings, work: Path, days: float) -> tuple[Figure, list[Figure]]:
    """The batch path over ``days`` of Paris-scale history (a year: ~500,000 interventions), then the panel
    times on what it wrote. The simulated events are cached (same seed and length, same file)."""
    path = _year_events(s, work, days)
    db = s.model_copy(update={"clickhouse_database": "bench_year"})
    run_migrations(db)
    print(f"batch path over {days:g} days of history ...", flush=True)
    stats = run_history(db, HistorySource(file=path), processes=0, chunk_events=50_000)  # 0: one per core
    rows = sum(stats.rows.values())
    figure = Figure("batch-year", stats.events, stats.seconds,
                    f"batch path over {days:g} simulated days, {stats.processes} processes, event file -> ClickHouse "
                    f"({rows:,} rows)")
    print("timing the dashboard panels on it ...", flush=True)
    return figure, _panels(s, "bench_year", days)




def _forecast_backtest(s: Settings, case: str, database: str, zone: str, holidays: str) -> Figure:
    """``vigie forecast backtest``'s work on a stored history: reading the hourly counts, then the rolling-origin
    backtest (8 weekly origins, 7-day horizon, B1, B2 and the published model)."""
    from sinks.forecasts import hourly_counts
    from streams.forecasting.backtest import run_backtest

    started = time.perf_counter()
    client = make_client(s, database)
    series = hourly_counts(client, database, zone, holidays)
    client.disconnect()
    read = time.perf_counter() - started
    report = run_backtest(series)
    failed = [c.name for c in report.criteria() if not c.ok]
    ratios = ", ".join(
        f"{label} {getattr(report.score('profile', b, lvl), m) / getattr(report.score(base, b, lvl), m):.3f}"
        for label, b, lvl, m, base in (("day x sector MAE/B1", 24, "sector", "mae", "B1"),
                                       ("/B2", 24, "sector", "mae", "B2"),
                                       ("3h x sector RMSE/B2", 3, "sector", "rmse", "B2"),
                                       ("hour x all RMSE/B2", 1, "all", "rmse", "B2"),
                                       ("hour x sector CRPS/B2", 1, "sector", "crps", "B2")))
    slowest = report.seconds_per_origin["profile"]
    return Figure(case, series.grid.hours * len(series.names), time.perf_counter() - started,
                  f"{len(series.names)} sectors x {series.grid.hours:,} h: counts read in {read:.1f} s, backtest "
                  f"{sum(report.seconds.values()):.1f} s (slowest origin of the model {1000 * slowest:.0f} ms); "
                  f"{ratios}; criteria: {'all met' if not failed else 'NOT MET: ' + '; '.join(failed)}")


SF_2018 = PROJECT_ROOT.parent / "shared" / "data" / "sffd-calls" / "sffd_units_2018_six_neighbourhoods.csv.gz"


def _sf2018_events(work: Path) -> Path:
    """The SF 2018 six-neighbourhood year imported by `vigie import` (cached): its folder."""
    out = work / "sf2018"
    if not (out / "events.jsonl").exists():
        subprocess.run([sys.executable, "-m", "vigie.cli", "import", "--mapping",
                        str(PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd-neighbourhoods.toml"),
                        "--input", str(SF_2018), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def _forecast_sf(s: Settings, work: Path) -> Figure:
    """The SF 2018 six-neighbourhood year imported (cached) and stored by the batch path, then backtested."""
    out = _sf2018_events(work)
    db = s.model_copy(update={"clickhouse_database": "bench_sf2018", "reference_dir": out / "reference"})
    env = {**os.environ, **db.to_env()}
    subprocess.run([sys.executable, "-m", "vigie.cli", "history", "--from-file", str(out / "events.jsonl")],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return _forecast_backtest(db, "forecast-sf", "bench_sf2018", "America/Los_Angeles", "US-CA")


def _panels(s: Settings, database: str, days: float, runs: int = 20) -> list[Figure]:
    """p95 time of every dashboard panel query (expanded as Grafana would, default time ranges ending at
    the newest event) on the history the batch path wrote."""
    from grafana import generate, situation, station_detail
    from grafana.macros import ALL, TimeRange, Variable, expand

    client = make_client(s, database)
    (newest,), = client.execute("SELECT max(window_start) FROM station_windows")
    end = newest.replace(tzinfo=UTC)
    out = []
    for uid, hours in ((situation.UID, 6), (station_detail.UID, 24)):
        dash = generate.load(uid)
        tr = TimeRange(end - timedelta(hours=hours), end, 60 if hours <= 6 else 120)
        variables = {n: Variable(n, [ALL]) for n in ("area", "station", "vehicle_type")}
        variables |= {"run": Variable("run", database), "turnout_target_s": Variable("t", "120"),
                      "travel_target_s": Variable("t", "600"), "arrival_target_s": Variable("t", "720")}
        for q in generate.panel_queries(dash):
            sql = expand(q.text, variables, tr)
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                client.execute(sql)
                times.append(time.perf_counter() - started)
            times.sort()
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            out.append(Figure("panel", runs, sum(times), f"p95 {1000 * p95:6.1f} ms  {dash['title']}: {q.panel} "
                              f"(last {hours} h of {days:g} simulated days)"))
    client.disconnect()
    return out


def _near_events(path: Path, sites: int, items: int) -> None:
    """``sites`` x ``items`` stock snapshots around Paris, one each (a JSONL history for the batch path)."""
    from schemas.stocks import StockLevelEvent

    rng = random.Random(17)
    t0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
    with path.open("w") as f:
        for n in range(sites):
            lat, lon = rng.uniform(48.6, 49.1), rng.uniform(2.0, 2.7)
            for k in range(items):
                on_hand = float(rng.randint(0, 500))
                ev = StockLevelEvent(schema_version=1, event_id=f"b{n}-{k}", event_time=datetime.fromtimestamp(
                    t0 + n, UTC), site_id=f"SITE-{n:05d}", site_type="depot", item_id=f"item-{k:02d}",
                    item_category=f"cat-{k % 10}", unit="u", qty_on_hand=on_hand, qty_reserved=0.0,
                    qty_min=float(rng.randint(0, 100)), lat=round(lat, 6), lon=round(lon, 6))
                f.write(f'{{"topic":"stock-levels","key":"{ev.site_id}","event":{ev.model_dump_json()}}}\n')


def _near(s: Settings, work: Path, sites: int = 2000, items: int = 50, runs: int = 200) -> list[Figure]:
    """Stocks near a place: ``sites`` x ``items`` snapshots through the batch path into ``stock_levels``, then
    the time of `vigie near`'s radius query (random points, 5 km, half with a category) and of the dashboard's
    table panel, p50 and p95 over ``runs`` each."""
    from grafana import generate, stocks
    from grafana.macros import ALL, TimeRange, Variable, expand
    from sinks.near import Around, stocks_near_query

    path = work / f"near-{sites}x{items}.jsonl"
    if not path.exists():
        _near_events(path, sites, items)
    db = s.model_copy(update={"clickhouse_database": "bench_near"})
    run_migrations(db)
    stats = run_history(db, HistorySource(file=path), processes=1)
    client = make_client(db, "bench_near")
    (rows,), = client.execute("SELECT count() FROM stock_levels FINAL")
    rng = random.Random(5)
    table_sql = next(q.text for q in generate.panel_queries(generate.load(stocks.UID))
                     if q.panel.startswith("Stocks dans le rayon"))
    out = [Figure("near-ingest", stats.events, stats.seconds, f"stock snapshots through the batch path "
                  f"({sites:,} sites x {items} items)")]
    for case, make in (
        ("near-query", lambda lat, lon, cat: stocks_near_query("bench_near", Around(lat, lon, 5.0), cat)),
        ("near-panel", lambda lat, lon, cat: expand(table_sql, {
            "run": Variable("run", "bench_near"), "lat": Variable("lat", f"{lat:.5f}"),
            "lon": Variable("lon", f"{lon:.5f}"), "radius_km": Variable("radius_km", "5"),
            "category": Variable("category", [cat] if cat else [ALL]), "sector": Variable("sector", [ALL])},
            TimeRange(datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)))),
    ):
        times, found = [], 0
        for i in range(runs):
            sql = make(rng.uniform(48.7, 49.0), rng.uniform(2.1, 2.6), f"cat-{i % 10}" if i % 2 else None)
            started = time.perf_counter()
            found += len(client.execute(sql))
            times.append(time.perf_counter() - started)
        times.sort()
        p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(0.95 * len(times)))]
        out.append(Figure(case, runs, sum(times), f"p50 {1000 * p50:.1f} ms, p95 {1000 * p95:.1f} ms over {rows:,} "
                          f"rows (5 km, half with a category; {found / runs:.0f} rows found on average; "
                          f"target p95 <= 100 ms)"))
    client.disconnect()
    return out


SF_WEEK = PROJECT_ROOT.parent / "shared" / "data" / "sffd-calls" / "sffd_units_2016-12-31_to_2017-01-07.csv.gz"


def _whatif(work: Path, seeds: int = 20) -> list[Figure]:
    """What-if on the SF week (imported by `vigie import`, cached), one core: one closest-unit re-run of the week
    (best of 3); then the five busiest engine stations closed in turn, each against the history unchanged over
    ``seeds`` paired seeds (what `vigie whatif run` computes, coverage included); and the move-up advice for the
    ambulances at 100 random moments (the state of the history then, as `vigie whatif moveup`)."""
    from schemas.whatif import Scenario
    from streams.whatif.engine import run
    from streams.whatif.study import History, advise, compare
    from streams.whatif.travel import TravelModels

    out = work / "sfweek"
    if not (out / "events.jsonl").exists():
        subprocess.run([sys.executable, "-m", "vigie.cli", "import", "--mapping",
                        str(PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd.toml"), "--input", str(SF_WEEK),
                        "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    history = History.load(out)
    models = TravelModels.fit(history.trips())
    calls = len(history.calls)
    times = []
    for seed in range(3):
        started = time.perf_counter()
        run(history.calls, history.units, models, seed)
        times.append(time.perf_counter() - started)
    engines = Counter(history.units[r.unit].station for c in history.calls for r in c.responses
                      if r.vehicle_type == "FPT" and r.unit in history.units)
    busiest = [st for st, _ in engines.most_common(5)]
    started = time.perf_counter()
    for st in busiest:
        compare(history, Scenario(name=f"{st} closed", close_stations=(st,)), seeds, models)
    spent = time.perf_counter() - started
    moves = []
    rng = random.Random(11)
    for _ in range(100):
        at = rng.uniform(history.start, history.end)
        started = time.perf_counter()
        advise(history, models, at, "VSAV", 300.0)
        moves.append(time.perf_counter() - started)
    moves.sort()
    return [Figure("whatif-moveup", len(moves), sum(moves), f"move-up advice for the ambulances at 100 random moments "
                   f"of the SF week: p50 {1000 * moves[50]:.0f} ms, p95 {1000 * moves[95]:.0f} ms (target < 200 ms)"),
            Figure("whatif-week", calls, min(times), f"the SF week ({calls:,} calls) re-run once, closest idle unit: "
                   f"{min(times):.2f} s (target < 2 s)"),
            Figure("whatif-5x20", 5 * seeds * 2 * calls, spent, f"{', '.join(busiest)} closed in turn, each against "
                   f"the history over {seeds} paired seeds with KPIs and coverage: {spent:.0f} s (target < 180 s)")]


def _whatif_crews(s: Settings, days: float = 7.0, ratio: float = 0.5) -> Figure:
    """A simulated week with staff for ``ratio`` of the seats, re-run by the closest idle unit without and with the
    history's crews (``crews = "history"``; best of 3 each), one core: the cost of the crews, and how far the
    ambulances' priority-1 median moves."""
    from streams.whatif.engine import run
    from streams.whatif.kpi import kpis
    from streams.whatif.study import History
    from streams.whatif.travel import TravelModels

    ref = Reference.load(s.reference_dir)
    events = ((e.topic, e.event.model_dump(mode="json")) for e in Simulator(
        ref, seed=3, start=datetime(2026, 1, 5, 6, tzinfo=UTC), staffing_ratio=ratio).events(days * 86400))
    history = History.from_events(events, ref, "simulated")
    models = TravelModels.fit(history.trips())
    spent, medians = {}, {}
    for case, roster in (("without", None), ("with", history.roster)):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            calls = run(history.calls, history.units, models, 0, roster=roster)
            times.append(time.perf_counter() - started)
        spent[case] = min(times)
        vsav = kpis(calls, {1: 480.0}, history.start, history.end).arrival("VSAV", 1)
        medians[case] = vsav.p50_s if vsav else math.nan
    seen = kpis(history.calls, {1: 480.0}, history.start, history.end).arrival("VSAV", 1)
    responses = sum(len(c.responses) for c in history.calls)
    return Figure("whatif-crews", responses, spent["with"],
                  f"{days:g} simulated days, staff for {100 * ratio:.0f} % of the seats ({responses:,} responses) "
                  f"re-run without / with the history's crews: {spent['without']:.2f} / {spent['with']:.2f} s; "
                  f"ambulances' priority-1 median {medians['without']:.0f} / {medians['with']:.0f} s "
                  f"(the simulator's own dispatch {seen.p50_s if seen else math.nan:.0f} s)")


def run_whatif_bench(year_days: float = 365.0) -> list[Figure]:
    """The what-if figures alone (`vigie bench --whatif-only`): no broker, no ClickHouse."""
    work = PROJECT_ROOT / ".vigie" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    figures = _whatif(work) + [_whatif_crews(Settings())] + (
        [_whatif_year(Settings(), work, year_days)] if year_days > 0 else [])
    for f in figures:
        print(f"{f.case:<15} {f.note}")
    return figures


@contextmanager
def _bench_stack(broker: bool = True) -> Iterator[tuple[Settings, Path]]:
    """A broker (unless ``broker`` is False) and a ClickHouse of the bench's own, stopped and their data removed after;
    yields settings reaching them and the bench's work folder."""
    work = PROJECT_ROOT / ".vigie" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    kafka_port, ch_tcp = free_port(), free_port()
    kafka = start_broker(kafka_port, work) if broker else None
    ch_dir = work / f"clickhouse-{time.time_ns()}"
    ch = start_clickhouse(ch_tcp, free_port(), ch_dir)
    try:
        yield (Settings(**LOCAL_BROKER, kafka_bootstrap=f"127.0.0.1:{kafka_port}", clickhouse_port=ch_tcp)  # type: ignore[arg-type]
               if broker else Settings(clickhouse_port=ch_tcp)), work
    finally:
        if kafka is not None:
            kafka.stop()
        ch.stop()
        shutil.rmtree(ch_dir, ignore_errors=True)  # a year of history is gigabytes


def run_live_month_bench(days: int = 28, speed: float = 3000.0) -> list[Figure]:
    """The live worker over a simulated month alone (`vigie bench --live-month`): own broker and ClickHouse."""
    with _bench_stack() as (s, _):
        print(f"a live worker over {days} simulated days at x{speed:g} ({days * 86400 / speed / 60:.0f} minutes) ...",
              flush=True)
        figures = [_worker_month_live(s, days, speed)]
    for f in figures:
        print(f"{f.case:<18} {f.events:>9,} {f.seconds:>9.2f}  {f.note}")
    return figures


def _alone(cases: Callable[[Settings, Path], list[Figure]], rates: bool) -> list[Figure]:
    """Some cases alone, on a ClickHouse of their own (no broker), printed (with their rates when ``rates``)."""
    with _bench_stack(broker=False) as (s, work):
        figures = cases(s, work)
    for f in figures:
        print(f"{f.case:<15} {f.events:>9,} {f.seconds:>9.2f} {f.rate:>10,.0f}  {f.note}" if rates
              else f"{f.case:<15} {f.note}")  # the notes give the medians compared
    return figures


def run_near_bench() -> list[Figure]:
    """The stocks-near-a-place figures alone (`vigie bench --near-only`)."""
    return _alone(_near, rates=True)


def run_alerts_bench() -> list[Figure]:
    """The alerts' cost alone (`vigie bench --alerts-only`)."""
    return _alone(_alerts_cost, rates=False)


def run_bench(days: float = 3.0, partitions: int = 4, results_dir: Path | None = None,
              history_days: float = 365.0, worker_month: bool = False, replay_month: bool = False) -> list[Figure]:
    results_dir = results_dir or PROJECT_ROOT / "bench-results"
    with _bench_stack() as (stack, work):
        figures, extra, total = _all_cases(stack.model_copy(update={"topic_partitions": partitions,
                                                                    "topic_suffix": "-bench"}),
                                           work, days, partitions, history_days, worker_month, replay_month)
    return _report(figures, extra, total, days, partitions, history_days, results_dir)


def _all_cases(s: Settings, work: Path, days: float, partitions: int, history_days: float, worker_month: bool,
               replay_month: bool) -> tuple[list[Figure], list[Figure], int]:
    """Every case of `make bench` on the bench's stack: the throughput figures and the others, and the events of
    the throughput cases."""
    ensure_topics(s)
    ref = Reference.load(s.reference_dir)
    sim = Simulator(ref, seed=2026, start=datetime(2026, 1, 5, tzinfo=UTC), crews=False)
    events_file = work / "events.jsonl"
    print(f"simulating {days:g} days and publishing them ...", flush=True)
    with events_file.open("w") as copy:
        total = publish(s, sim.events(days * 86400), copy_to=copy)
    figures = [
        _ceiling(s, total),
        _faust_reference("devtools.bench_noop", "faust-noop", "Faust agent per topic, counting only", s, total,
                         work),
        _faust_reference("devtools.bench_noop", "noop-eager", "the same with the worker's eager delivery "
                         "(streams/faust_compat.py)", s, total, work, VIGIE_BENCH_EAGER_DELIVERY="1"),
        _faust_reference("devtools.bench_naive", "naive", "per-event Faust agent, Vigie's state logic, one table "
                         "write per event, no ClickHouse", s, total, work),
    ]
    vigie_1, vigie_1_settings = _vigie(s, total, 1)
    figures.append(vigie_1)
    recovery = _recovery(vigie_1_settings, work)
    # two workers, on twice the partitions (the same events, published again)
    s2 = s.model_copy(update={"topic_partitions": partitions * 2,
                     "topic_suffix": "-bench2"})
    ensure_topics(s2)
    publish(s2, (ev for ev in Simulator(ref, seed=2026, start=datetime(2026, 1, 5, tzinfo=UTC), crews=False)
                 .events(days * 86400)))
    figures += [_vigie(s2, total, 2)[0], _history(s, events_file)]
    print("the alerts' cost on the batch path ...", flush=True)
    alerts = _alerts_cost(s, work)
    figures += alerts[:2]
    # the worker with batches closing on size or age only (Faust's take), for the same-run comparison; last,
    # so that the cases before it meet ClickHouse as in earlier versions of the bench
    size_age = s.model_copy(update={"batch_close_when_drained": False})
    figures.append(_vigie(size_age, total, 1, "vigie-1-sizeage")[0])
    print("measuring freshness and memory ...", flush=True)
    extra = [alerts[2], recovery, _freshness(s, ref), _freshness(size_age, ref, case="fresh-sizeage"),
             _memory(s, work), _state_month(s)]
    if worker_month:
        print("a live worker over a simulated month (about 6 minutes) ...", flush=True)
        extra.append(_worker_month(s))
    if replay_month:
        print("January 2018 of the SF year replayed at x600 through the broker (75 minutes) ...", flush=True)
        extra.append(_replay_month(s, work))
    print("stocks near a place ...", flush=True)
    extra += _near(s, work)
    print("what-if on the SF week and a simulated year ...", flush=True)
    extra += _whatif(work)
    extra.append(_whatif_crews(s))
    if history_days > 0:
        extra.append(_whatif_year(s, work, history_days))
    print("forecast backtests ...", flush=True)
    extra.append(_forecast_sf(s, work))
    if history_days > 0:
        year, panels = _history_year(s, work, history_days)
        figures.append(year)
        extra += panels
        if history_days >= 9 * 7 + 8 * 7:  # a backtest needs 9 weeks before its 8 weekly origins
            extra.append(_forecast_backtest(s, "forecast-year", "bench_year", s.timezone, s.holidays))
    else:
        print("timing the dashboard panels ...", flush=True)
        extra += _panels(s, "bench_history", days)
    return figures, extra, total


def _report(figures: list[Figure], extra: list[Figure], total: int, days: float, partitions: int,
            history_days: float, results_dir: Path) -> list[Figure]:
    """The figures printed as a table, and written as JSON under ``results_dir``."""
    ceiling = next(f.rate for f in figures if f.case == "ceiling")
    noop = next(f.rate for f in figures if f.case == "faust-noop")
    machine = _machine()
    print(f"\nmachine: {machine['cores']} cores, {machine['memory_gib']} GiB, Python {machine['python']}; "
          f"{total:,} events ({days:g} simulated days), {partitions} partitions\n")
    print(f"{'case':<15} {'events':>9} {'seconds':>9} {'events/s':>10} {'/ceiling':>9} {'/faust':>7}  note")
    for f in figures:
        print(f"{f.case:<15} {f.events:>9,} {f.seconds:>9.2f} {f.rate:>10,.0f} {f.rate / ceiling:>9.2f} "
              f"{f.rate / noop:>7.2f}  {f.note}")
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    for f in extra:
        print(f"{f.case:<15} {f.note}")
    out.write_text(json.dumps({"machine": machine, "days": days, "history_days": history_days,
                               "partitions": partitions, "events": total,
                               "figures": [{**asdict(f), "events_per_s": f.rate} for f in figures],
                               "other": [asdict(f) for f in extra]}, indent=2))
    print(f"\nwritten to {out}")
    return figures + extra
