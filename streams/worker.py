"""``vigie worker``: run the Faust app with a metrics endpoint and a bounded shutdown.

Shutdown: on SIGTERM/SIGINT the worker stops gracefully (the current batch is stored and its offsets
committed); if that takes longer than VIGIE_WORKER_STOP_TIMEOUT_S, the process exits anyway. Nothing is
lost by that exit: offsets are only committed for stored batches, so the next owner re-reads the rest.
A worker that stalls with work waiting restarts itself (streams/watchdog.py).
"""

from __future__ import annotations

import logging
import os
import threading

import faust
from prometheus_client import start_http_server

from streams.app import create_pipeline
from streams.topics import ensure_topics
from streams.watchdog import StallWatchdog
from vigie.settings import Settings

log = logging.getLogger("vigie.worker")


class BoundedWorker(faust.Worker):
    stop_timeout: float = 8.0
    _watchdog: threading.Timer | None = None

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            def hard_exit() -> None:
                log.error("worker did not stop within %.1fs: exiting now (uncommitted batches are re-read)",
                          self.stop_timeout)
                os._exit(0)

            self._watchdog = threading.Timer(self.stop_timeout, hard_exit)
            self._watchdog.daemon = True
            self._watchdog.start()

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """No terminal spinner: at WARN and above Faust's spinner sets the root logger to DEBUG (it spins on
        every record), so every debug call of aiokafka and Faust built a record the handler then dropped
        (~4 % of the worker's CPU under load). Without it the root logger keeps the chosen level."""
        self.spinner = None
        super().on_setup_root_logger(logger, level)

    def _on_sigterm(self) -> None:
        self._arm_watchdog()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._arm_watchdog()
        super()._on_sigint()


def run_worker(settings: Settings, loglevel: str = "info") -> int:
    ensure_topics(settings)
    pipeline = create_pipeline(settings)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0")
    worker = BoundedWorker(pipeline.app, loglevel=loglevel, quiet=True)
    worker.stop_timeout = settings.worker_stop_timeout_s
    if settings.worker_stall_timeout_s > 0:
        StallWatchdog(settings, pipeline.liveness, pipeline.assigned_inputs,
                      lambda: pipeline.app.loop if pipeline.app._consumer is not None else None,
                      describe=pipeline.consumer_state).start()
    try:
        worker.execute_from_commandline()
    finally:
        for sink in pipeline.sinks:
            sink.close()
    return 0
