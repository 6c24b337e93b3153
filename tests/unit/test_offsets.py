from streams.runtime.offsets import Jump, OffsetTracker


def test_tracker_reports_re_reads_and_holes_per_partition() -> None:
    t = OffsetTracker()
    assert t.check([("a", 0, 5), ("a", 0, 6), ("a", 1, 100)]) == []  # first sight of a partition: no judgement
    jumps = t.check([("a", 0, 7), ("a", 1, 90), ("a", 0, 20)])
    assert jumps == [Jump("a", 1, 101, 90), Jump("a", 0, 8, 20)]
    assert [j.forward for j in jumps] == [False, True]
    t.forget([("a", 0)])  # reassigned: starts wherever the group says
    assert t.check([("a", 0, 500), ("a", 1, 91)]) == []


def _guard(holes: dict[tuple[str, int, int, int], int] | None = None, resume: dict[tuple[str, int], int] | None = None,
           broker_down: bool = False):  # type: ignore[no-untyped-def]
    import asyncio

    from streams.runtime.offsets import OffsetCheckFailed, OffsetGuard

    restarts: list[int] = []
    asked: list[tuple[str, int, int, int]] = []

    async def count_between(topic: str, partition: int, start: int, end: int) -> int:
        asked.append((topic, partition, start, end))
        if broker_down:
            raise OffsetCheckFailed("no answer from the broker in 10s")
        return (holes or {}).get((topic, partition, start, end), 0)

    async def resume_at(topic: str, partition: int) -> int:
        return (resume or {}).get((topic, partition), 0)

    async def empty(topic: str, partition: int, start: int, end: int) -> None:
        emptied.append((topic, partition, start, end))

    emptied: list[tuple[str, int, int, int]] = []
    guard = OffsetGuard(count_between, lambda: restarts.append(1), resume_at=resume_at, empty=empty)
    guard.emptied = emptied  # type: ignore[attr-defined]
    return guard, restarts, asked, asyncio.run


def test_the_first_batch_after_an_assignment_is_judged_against_where_the_group_resumes() -> None:
    guard, restarts, asked, run = _guard(holes={("a", 0, 10, 15): 5}, resume={("a", 0): 10, ("a", 1): 3})
    assert run(guard.check([("a", 1, 3), ("a", 1, 4)]))  # starts where the group resumes: applied
    assert not run(guard.check([("a", 0, 15), ("a", 0, 16)]))  # 10..14 exist and were never delivered
    assert restarts == [1] and asked == [("a", 0, 10, 15)]


def test_the_check_fails_closed_when_the_broker_cannot_tell() -> None:
    guard, restarts, _, run = _guard(resume={("a", 0): 0}, broker_down=True)
    assert run(guard.check([("a", 0, 0)]))  # no gap: nothing to ask
    assert not run(guard.check([("a", 0, 7)]))  # a gap the broker cannot judge: restart, apply nothing
    assert restarts == [1]


def test_a_gap_without_records_and_a_re_read_are_applied() -> None:
    guard, restarts, _, run = _guard(resume={("a", 0): 0})
    assert run(guard.check([("a", 0, 0), ("a", 0, 3)]))  # 1..2 hold no record (compaction, markers)
    assert run(guard.check([("a", 0, 2)]))  # a step back: deduplicated downstream
    assert restarts == [] and guard.emptied == [("a", 0, 1, 3)]  # the consumer may commit past 1..2 only


def _faust_consumer_state():  # type: ignore[no-untyped-def]
    """The fields Faust's consumer keeps its acknowledgements and gaps in, for its own ``_add_gap`` and
    ``_new_offset`` (the offset it commits) to run on."""
    from collections import defaultdict
    from types import SimpleNamespace

    from intervaltree import IntervalTree

    return SimpleNamespace(_committed_offset=defaultdict(lambda: None), _gap=defaultdict(IntervalTree),
                           _acked=defaultdict(list), _acked_index=defaultdict(set))


def test_faust_commits_past_a_jump_of_a_guarded_input_only_once_the_guard_found_it_empty() -> None:
    """Faust's own rule commits past any jump it sees (a fetch from before a seek makes one over records never
    applied); for the processors' inputs only the guard's verified ranges count."""
    import asyncio

    from faust.transport.consumer import Consumer
    from faust.types import TP

    from streams import faust_compat

    faust_compat.install_verified_gaps(["vehicle-status"])
    tp, other = TP("vehicle-status", 0), TP("dead-letters", 0)
    c = _faust_consumer_state()
    for t in (tp, other):
        c._committed_offset[t] = 91
        asyncio.run(Consumer._add_gap(c, t, 92, 195))  # what Faust's fetch loop does on seeing 195 after 91
        c._acked[t].append(195)
        c._acked_index[t].add(195)
    assert Consumer._new_offset(c, other) == 196  # another topic: Faust's rule, untouched
    assert Consumer._new_offset(c, tp) is None  # guarded: 92..194 were never applied, nothing is committed
    asyncio.run(faust_compat.commit_past_empty(SimpleApp(c), "vehicle-status", 0, 92, 195))  # checked empty
    assert Consumer._new_offset(c, tp) == 196


class SimpleApp:
    def __init__(self, consumer: object) -> None:
        self._consumer = consumer
