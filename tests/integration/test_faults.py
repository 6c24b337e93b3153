"""Deterministic faults through the real worker (VIGIE_FAULTS, streams/runtime/faults.py): each fault is
asserted to have fired (its log line, its marker, the exit code or the metric), then the rows are exact."""

from __future__ import annotations

import random
import signal
import subprocess
import threading

import pytest

from core.settings import Settings
from devtools.produce import publish
from streams.runtime.faults import KILLED_EXIT_CODE
from tests.integration.conftest import Stack, ch_client, dump_workers, start_worker, stop_worker, wait_until
from tests.integration.test_pipeline import PACE, assert_exact, scrape, simulate, wait_for_all_events

pytestmark = pytest.mark.integration


def faulty(stack: Stack, settings: Settings, spec: str, **more: object) -> Settings:
    return settings.model_copy(update={"faults": spec, "state_dir": stack.tmp / f"state-{settings.app_id}", **more})


def fired(s: Settings, name: str) -> bool:
    return (s.state_dir / s.app_id / f"fault-{name}.fired").exists()


def log_of(stack: Stack, name: str) -> str:
    return (stack.tmp / f"{name}.log").read_text(errors="replace")


@pytest.mark.parametrize("fault", ["kill_after_rows", "kill_after_changelog"])
def test_a_crash_between_checkpoint_steps_loses_and_doubles_nothing(stack: Stack, settings: Settings,
                                                                   fault: str) -> None:
    """Killed once a batch's rows are stored but before its changelog is sent, or once its changelog is
    acknowledged but before its offsets are committed: the restarted worker's rows are exact."""
    s = faulty(stack, settings, f"{fault}=5")
    ref, events = simulate(s, hours=1.5, seed=31)
    name = f"fault-{fault}"
    worker = start_worker(stack, s, f"{name}-1")
    publish(s, events, speed=PACE)
    try:
        assert worker.wait(120) == KILLED_EXIT_CODE
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not die at {fault}=5:\n{log_of(stack, name + '-1')[-3000:]}")
    assert fired(s, fault) and f"FAULT INJECTED: {fault}=5" in log_of(stack, f"{name}-1")
    worker = start_worker(stack, s, f"{name}-2")  # same settings: the fault has fired, it does not again
    wait_for_all_events(s, events, stack=stack)
    assert_exact(s, ref, events, long_run=False)
    stop_worker(worker)
    assert "FAULT INJECTED" not in log_of(stack, f"{name}-2")


def test_failed_clickhouse_writes_are_retried_and_counted(stack: Stack, settings: Settings) -> None:
    s = faulty(stack, settings, "sink_fail=4")
    ref, events = simulate(s, hours=1, seed=32)
    worker = start_worker(stack, s, "fault-sink")
    publish(s, events, speed=PACE)
    wait_for_all_events(s, events, stack=stack)
    assert_exact(s, ref, events, long_run=False)
    errors = sum(v for k, v in scrape(s.metrics_port).items() if k.startswith("vigie_sink_errors_total{"))
    assert errors == 4 and fired(s, "sink_fail")
    stop_worker(worker)
    assert "FAULT INJECTED: sink_fail=4" in log_of(stack, "fault-sink")


def test_a_stalled_worker_restarts_itself_and_resumes(stack: Stack, settings: Settings) -> None:
    s = faulty(stack, settings, "stall_at=3", worker_stall_timeout_s=4.0)
    ref, events = simulate(s, hours=1, seed=33)
    worker = start_worker(stack, s, "fault-stall")
    publish(s, events, speed=PACE)
    wait_until(lambda: "no progress for" in log_of(stack, "fault-stall"), 60, "the watchdog's restart")
    wait_for_all_events(s, events, stack=stack)
    assert_exact(s, ref, events, long_run=False)
    assert worker.poll() is None  # the same process, re-executed
    stop_worker(worker)
    text = log_of(stack, "fault-stall")
    assert fired(s, "stall_at") and "FAULT INJECTED: stall_at=3" in text
    assert text.index("FAULT INJECTED: stall_at=3") < text.index("no progress for")


def test_a_worker_that_cannot_stop_gracefully_exits_within_the_bound(stack: Stack, settings: Settings) -> None:
    """SIGTERM while an agent is stuck (an injected stall; the watchdog off): the graceful stop cannot finish, the
    worker exits anyway after VIGIE_WORKER_STOP_TIMEOUT_S, and a new one makes the rows exact."""
    s = faulty(stack, settings, "stall_at=3", worker_stall_timeout_s=0.0, worker_stop_timeout_s=3.0)
    ref, events = simulate(s, hours=1, seed=35)
    worker = start_worker(stack, s, "fault-stop-1")
    publish(s, events, speed=PACE)
    wait_until(lambda: fired(s, "stall_at"), 60, "the injected stall")
    took = stop_worker(worker, timeout=30)
    assert took < s.worker_stop_timeout_s + 5, took
    assert "did not stop within 3.0s: exiting now" in log_of(stack, "fault-stop-1")  # the forced path, taken
    # the next worker as deployed, with its stall watchdog (seen once in CI: a fresh worker that never fetched)
    worker = start_worker(stack, s.model_copy(update={"worker_stall_timeout_s": 20.0}), "fault-stop-2")
    wait_for_all_events(s, events, stack=stack)
    assert_exact(s, ref, events, long_run=False)
    stop_worker(worker)


def broker_offsets(s: Settings) -> dict[str, tuple[int, int]]:
    """(committed offset of the worker group, high watermark) per input partition, as the broker says."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**s.confluent_config(), "group.id": s.app_id, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(s.topic(t), p) for t in ("vehicle-status", "crew-status") for p in range(3)]
        return {f"{tp.topic}[{tp.partition}]": (tp.offset, c.get_watermark_offsets(tp, timeout=5)[1])
                for tp in c.committed(tps, timeout=5)}
    finally:
        c.close()


def test_twenty_random_kills_during_a_replay_leave_exact_rows(stack: Stack, settings: Settings) -> None:
    """Chaos: a replay's events published in 21 slices, the k-th while the k-th worker runs; each of the first 20
    workers is SIGKILLed at a random moment after it has stored something new (so each kill lands mid-stream,
    with work in flight, whatever the machine's speed); a last worker finishes. Every table is exact, no
    engagement or window counted twice."""
    rng = random.Random(2026)
    ref, events = simulate(settings, hours=2, seed=34)
    ch = ch_client(settings)
    kills = 20
    slices = [events[i * len(events) // (kills + 1):(i + 1) * len(events) // (kills + 1)] for i in range(kills + 1)]
    released = [threading.Event() for _ in slices]

    sent: list[object] = []  # slices published (their index), or the error that stopped the sender

    def send() -> None:  # a slice goes out once its worker is started: the stream cannot outrun the kills
        try:
            for i, (part, go) in enumerate(zip(slices, released, strict=True)):
                if not go.wait(300):
                    return
                publish(settings, part, speed=PACE / 10)
                sent.append(i)
        except Exception as e:  # shown by a failing wait
            sent.append(e)

    def written() -> int:  # distinct raw events stored: grows when a worker stores events of its slice (every
        # slice has vehicle or crew events: a shift change is thousands of crew records at one instant). Not
        # count(): merges drop the re-written duplicates of earlier kills, and count() can stand still or fall
        # while a worker stores (seen in CI: the 8th worker had stored its slice, count() had not grown in 60 s)
        return sum(int(ch.execute(f"SELECT uniqExact(event_id) FROM {t}")[0][0])
                   for t in ("vehicle_status_events", "crew_status_events"))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    for k in range(kills):
        before = written()
        worker = start_worker(stack, settings, f"chaos-{k}")
        released[k].set()
        try:
            wait_until(lambda b=before, w=worker: written() > b or w.poll() is not None, 60,
                       f"worker chaos-{k} storing rows")
        except AssertionError as e:
            raise AssertionError(f"{e}; slices sent: {sent}; broker: {broker_offsets(settings)}\n"
                                 f"{dump_workers(stack)}\n{log_of(stack, f'chaos-{k}')[-3000:]}") from None
        assert worker.poll() is None, log_of(stack, f"chaos-{k}")[-2000:]
        threading.Event().wait(rng.uniform(0.0, 0.8))
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
    worker = start_worker(stack, settings, "chaos-last")
    released[kills].set()
    sender.join(300)
    assert not sender.is_alive()
    wait_for_all_events(settings, events, timeout=240, stack=stack)
    assert_exact(settings, ref, events)
    stop_worker(worker)
