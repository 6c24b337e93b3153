"""``vigie worker``: run the Faust app with a metrics endpoint and a bounded shutdown.

Shutdown: on SIGTERM/SIGINT the worker stops gracefully (the current batch is stored and its offsets
committed); if that takes longer than VIGIE_WORKER_STOP_TIMEOUT_S, the process exits anyway. Nothing is
lost by that exit: offsets are only committed for stored batches, so the next owner re-reads the rest.
A worker that stalls with work waiting restarts itself (streams/runtime/watchdog.py). It runs every registered
processor (streams/registry.py), storing their rows in ClickHouse.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import Info, start_http_server

from core.settings import Settings
from sinks.clickhouse import ClickHouseSink, PrometheusSinkMetrics, StoredOpenings
from streams import registry
from streams.live import BoundedWorker, create_app
from streams.runtime.faults import Faults
from streams.runtime.memory import GC_THRESHOLDS, tune_gc
from streams.runtime.watchdog import Liveness, StallWatchdog
from streams.topics import ensure_topics
from vigie.allocator import on_jemalloc

log = logging.getLogger("vigie.worker")


def run_worker(settings: Settings, loglevel: str = "info") -> int:
    ensure_topics(settings)
    sinks: list[ClickHouseSink] = []
    faults = Faults(settings.faults, settings.state_dir / settings.app_id)  # tests only; none in production

    def sink(liveness: Liveness) -> ClickHouseSink:  # one per agent: a client must not run two queries at once
        sinks.append(ClickHouseSink(settings, PrometheusSinkMetrics(liveness), faults=faults))
        return sinks[-1]

    live = create_app(settings, registry.processors(settings), sink, faults, StoredOpenings(settings))
    allocator = "jemalloc" if on_jemalloc(os.environ) else "system"
    gc_thresholds = ",".join(map(str, GC_THRESHOLDS))
    tune_gc()
    Info("vigie_worker", "how the worker runs").info({"allocator": allocator, "gc_thresholds": gc_thresholds})
    log.info("memory allocator: %s; collector thresholds %s", allocator, gc_thresholds)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0")
    worker = BoundedWorker(live.app, loglevel=loglevel, quiet=True)
    worker.stop_timeout = settings.worker_stop_timeout_s
    if settings.worker_stall_timeout_s > 0:
        StallWatchdog(settings, live.watched,
                      lambda: live.app.loop if live.view.started else None, describe=live.view.describe).start()
    try:
        worker.execute_from_commandline()
    finally:
        for s in sinks:
            s.close()
    return 0
