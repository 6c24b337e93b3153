"""Stall watchdog: a worker one of whose agents has work waiting but makes no progress restarts itself.

Progress is a processed batch or a stored ClickHouse write, per agent (one agent stuck while another goes on is
a stall). A worker whose write is retrying (ClickHouse
down) is *blocked*, not stalled: the watchdog says so (log, ``vigie_sink_blocked_seconds``) and does not
restart it, which would not help. Work waiting is measured at the broker, independently of Faust:
for the partitions assigned to this worker, the high watermark beyond the group's committed offset.
When an agent has been idle for VIGIE_WORKER_STALL_TIMEOUT_S, and work has been waiting for it all that time
(work that has just come to an agent idle since its start is not a stall), the watchdog logs the stacks of
its asyncio tasks (to diagnose the stall) and re-executes itself: the new process rejoins the group and
re-reads from the committed offsets, which is safe (writes are idempotent, state is deduplicated).

It runs in a thread so that a blocked event loop cannot silence it.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import Consumer, TopicPartition

from core.settings import Settings

log = logging.getLogger("vigie.watchdog")


class Liveness:
    """The time of the last sign of progress (monotonic), shared by the agents and the sinks, and since when
    the sink's write has been retrying (None: not blocked)."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.sink_blocked_since: float | None = None

    def beat(self) -> None:
        self.last = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last

    def sink_blocked_for(self) -> float:
        since = self.sink_blocked_since
        return 0.0 if since is None else time.monotonic() - since


def waiting_messages(consumer: Consumer, tps: Iterable[tuple[str, int]]) -> int:
    """Messages beyond the committed offset on these partitions, per the broker."""
    parts = [TopicPartition(t, p) for t, p in tps]
    if not parts:
        return 0
    waiting = 0
    for tp in consumer.committed(parts, timeout=10):
        _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
        committed = tp.offset if tp.offset >= 0 else 0
        waiting += max(0, high - committed)
    return waiting


def _await_chain(coro: object) -> list[str]:
    """Where a coroutine waits: its frame, then the frame of what it awaits, and so on (``Task.get_stack``
    gives only the outermost frame of a coroutine)."""
    out = []
    for _ in range(40):
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            out.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        nxt = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) or getattr(coro, "gi_yieldfrom", None)
        if nxt is None:
            break
        if not any(hasattr(nxt, a) for a in ("cr_frame", "ag_frame", "gi_frame", "cr_await")):
            # an async generator's asend/athrow object: the generator is among what it refers to
            inner = [o for o in gc.get_referents(nxt) if hasattr(o, "ag_frame")]
            nxt = inner[0] if inner else nxt
        coro = nxt
    return out


def task_stacks(loop: asyncio.AbstractEventLoop | None) -> str:
    if loop is None:
        return "(no event loop)"
    out = io.StringIO()
    try:
        for task in list(asyncio.all_tasks(loop)):
            print(f"--- {task.get_name()}", file=out)
            for line in _await_chain(task.get_coro()):
                print(line, file=out)
    except Exception as e:  # best effort: the loop may be changing under us
        print(f"(could not list tasks: {e})", file=out)
    return out.getvalue()


def restart_process(env: Mapping[str, str] | None = None) -> None:
    """Replace this process by a fresh run of the same command line (``-m vigie.cli`` or the ``vigie``
    script alike): same pid, so a supervisor sees no exit. ``env``: the new run's environment (default: this
    one's)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], os.environ if env is None else env)


#: Each agent's sign of life and the partitions it is assigned (read from the watchdog's thread)
Watched = Callable[[], list[tuple[Liveness, list[tuple[str, int]]]]]


class StallWatchdog(threading.Thread):
    """Watches every agent apart: one agent stuck while another goes on is a stall too."""

    def __init__(self, settings: Settings, watched: Watched,
                 loop: Callable[[], asyncio.AbstractEventLoop | None],
                 on_stall: Callable[[], None] = restart_process,
                 describe: Callable[[], str] = lambda: "") -> None:
        super().__init__(name="stall-watchdog", daemon=True)
        self.settings = settings
        self.watched = watched
        self.loop = loop
        self.on_stall = on_stall
        self.describe = describe
        self.stopped = threading.Event()
        self.waiting_since: dict[int, float] = {}  # id(liveness) -> since when work has waited for that agent

    def run(self) -> None:
        timeout = self.settings.worker_stall_timeout_s
        consumer = Consumer({**self.settings.confluent_config(), "group.id": self.settings.app_id,
                             "enable.auto.commit": False})
        try:
            every = min(5.0, timeout / 3)
            while not self.stopped.wait(every):
                # the broker is asked only about agents idle since the last check (a busy agent is no stall); from
                # then on at every check, so that since when work waits for it is known
                for liveness, assigned in self.watched():
                    if liveness.idle_for() >= every and self._stalled(consumer, liveness, assigned, timeout):
                        self.on_stall()
                        return
        finally:
            consumer.close()

    def _stalled(self, consumer: Consumer, liveness: Liveness, assigned: list[tuple[str, int]],
                 timeout: float) -> bool:
        """Idle for the timeout with messages waiting on its partitions all that time (the first check that saw
        them waiting, after the agent's last progress, starts the count), and not blocked on ClickHouse."""
        try:
            waiting = waiting_messages(consumer, assigned)
        except Exception as e:
            log.warning("stall check could not reach the broker: %s", e)
            return False
        key, now = id(liveness), time.monotonic()
        if not waiting or self.waiting_since.get(key, now) < liveness.last:
            self.waiting_since.pop(key, None)  # nothing waits, or it progressed since: count again
        if waiting:
            self.waiting_since.setdefault(key, now)
        waited = now - self.waiting_since.get(key, now)
        blocked = liveness.sink_blocked_for()
        if waiting and blocked:
            log.warning("blocked on ClickHouse for %.0fs with %d messages waiting: retrying, not restarting",
                        blocked, waiting)
            return False
        if not waiting or liveness.idle_for() < timeout or waited < timeout:
            return False
        try:
            state = self.describe()
        except Exception as e:
            state = f"(no state: {e})"
        log.error("no progress for %.0fs with %d messages waiting (for %.0fs): restarting the worker "
                  "(it re-reads from the committed offsets). State: %s\nTasks:\n%s",
                  liveness.idle_for(), waiting, waited, state, task_stacks(self.loop()))
        return True
