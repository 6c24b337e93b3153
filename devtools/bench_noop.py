"""The Faust no-op reference for ``vigie bench``: an agent per topic that only counts messages.

Run as ``python -m devtools.bench_noop BOOTSTRAP GROUP TOTAL TOPIC...``; prints ``RESULT <events> <seconds>``
(first message to last) and exits. With ``VIGIE_BENCH_EAGER_DELIVERY=1``: with the worker's eager delivery
(``streams/faust_compat.py``), to show what that patch gives Faust alone.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import faust

from streams import faust_compat
from streams.live import BoundedWorker


def make_counter(expected: int) -> Callable[[], None]:
    """Count one message; at ``expected``, print ``RESULT <n> <seconds since the first>`` and exit."""
    state = {"n": 0, "first": 0.0}

    def counted() -> None:
        if state["n"] == 0:
            state["first"] = time.perf_counter()
        state["n"] += 1
        if state["n"] == expected:
            print(f"RESULT {state['n']} {time.perf_counter() - state['first']:.4f}", flush=True)
            os._exit(0)

    return counted


def main() -> None:
    bootstrap, group, total, *topics = sys.argv[1:]
    expected = int(total)
    app = faust.App(group, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False, autodiscover=False,
                    broker_session_timeout=3, broker_rebalance_timeout=3, broker_heartbeat_interval=1,
                    consumer_auto_offset_reset="earliest", topic_allow_declare=False)
    counted = make_counter(expected)
    source = app.topic(*topics, value_serializer="raw", key_serializer="raw")

    @app.agent(source)
    async def count(stream: faust.StreamT) -> None:
        async for _ in stream:
            counted()

    if os.environ.get("VIGIE_BENCH_EAGER_DELIVERY") == "1":  # the no-op with the worker's eager delivery
        faust_compat.install_eager_delivery()
    run_reference_worker(app)


def run_reference_worker(app: faust.App) -> None:
    """Run a reference app as the Vigie worker runs (no terminal spinner: it would set the root logger to
    DEBUG, so that every debug call of aiokafka and Faust builds a record, and handicap the reference)."""
    BoundedWorker(app, loglevel="warn", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
