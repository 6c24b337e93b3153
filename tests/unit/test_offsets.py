from streams.runtime.offsets import Jump, OffsetTracker


def test_tracker_reports_re_reads_and_holes_per_partition() -> None:
    t = OffsetTracker()
    assert t.check([("a", 0, 5), ("a", 0, 6), ("a", 1, 100)]) == []  # first sight of a partition: no judgement
    jumps = t.check([("a", 0, 7), ("a", 1, 90), ("a", 0, 20)])
    assert jumps == [Jump("a", 1, 101, 90), Jump("a", 0, 8, 20)]
    assert [j.forward for j in jumps] == [False, True]
    t.forget([("a", 0)])  # reassigned: starts wherever the group says
    assert t.check([("a", 0, 500), ("a", 1, 91)]) == []
