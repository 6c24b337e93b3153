from streams.interventions import InterventionState, SectorWindows
from streams.processor import Record
from streams.processors.interventions import InterventionEngine
from tests.helpers import T0, iev


def test_opened_and_closed_out_of_order() -> None:
    st = InterventionState("I1")
    assert st.apply(iev("I1", "closed", T0 + 600), T0 + 600) == "applied"
    assert st.apply(iev("I1", "opened", T0), T0) == "stale"  # older: descriptive fields kept
    assert (st.opened_at, st.closed_at, st.status) == (T0, T0 + 600, "closed")
    dup = iev("I1", "updated", T0 + 700, event_id="u1")
    assert st.apply(dup, T0 + 700) == "applied" and st.apply(dup, T0 + 700) == "duplicate"


def test_sector_windows_count_each_intervention_once() -> None:
    sw = SectorWindows(60, 0)
    sw.place("I1", "Z1", T0 + 5)
    sw.place("I1", "Z1", T0 + 5)  # re-applied after a crash
    sw.place("I2", "Z1", T0 + 10)
    sw.place("I3", "Z2", T0 + 70)
    rows = sw.seal(T0 + 120)
    assert [(r.window_start - T0, r.sector, r.interventions_opened) for r in rows] == [(0, "Z1", 2), (60, "Z2", 1)]


def _recs(*events) -> list[Record]:  # type: ignore[no-untyped-def]
    return [Record("interventions", 0, i, e.intervention_id.encode(), e.model_dump_json().encode())
            for i, e in enumerate(events)]


def test_engine_crash_between_state_and_sector_entry_does_not_lose_or_double_count() -> None:
    engine = InterventionEngine(60, 0)
    states: dict[str, InterventionState] = {}
    sectors: dict[str, SectorWindows] = {}
    batch = _recs(iev("I1", "opened", T0 + 1), iev("I2", "opened", T0 + 2), iev("I3", "opened", T0 + 61))
    engine.process(batch, {"interventions": states, "sector-windows": sectors})
    # crash: the intervention entries were written to the changelog, the sector entry was not
    sectors.clear()
    result = InterventionEngine(60, 0).process(batch, {"interventions": states, "sector-windows": sectors})
    assert result.outcomes["duplicate"] == 3
    rows = result.rows[next(k for k in result.rows if k.name == "sector_windows")]
    rows += sectors["sectors:0"].seal(T0 + 120)
    assert sorted((r.window_start - T0, r.interventions_opened) for r in rows) == [(0, 2), (60, 1)]


def test_redelivery_after_its_window_was_emitted_is_not_counted_again() -> None:
    engine = InterventionEngine(60, 0)
    states: dict[str, InterventionState] = {}
    sectors: dict[str, SectorWindows] = {}
    first = _recs(iev("I1", "opened", T0 + 1))
    r1 = engine.process(first, {"interventions": states, "sector-windows": sectors})
    stores = {"interventions": states, "sector-windows": sectors}
    r2 = engine.process(_recs(iev("I2", "opened", T0 + 200)), stores)  # emits I1's window
    r3 = engine.process(first, {"interventions": states, "sector-windows": sectors})  # re-delivered after a crash
    r4 = engine.process(_recs(iev("I3", "opened", T0 + 400)), {"interventions": states, "sector-windows": sectors})
    rows = [row for r in (r1, r2, r3, r4) for row in r.rows[next(k for k in r.rows if k.name == "sector_windows")]]
    assert sorted((r.window_start - T0, r.interventions_opened) for r in rows) == [(0, 1), (180, 1)]


def test_closed_interventions_leave_the_state_after_the_retention() -> None:
    engine = InterventionEngine(60, 0, retention_s=3600)
    states: dict[str, InterventionState] = {}
    sectors: dict[str, SectorWindows] = {}
    engine.process(_recs(iev("I1", "opened", T0), iev("I1", "closed", T0 + 600), iev("I2", "opened", T0 + 700)),
                   {"interventions": states, "sector-windows": sectors})
    engine.process(_recs(iev("I3", "opened", T0 + 4000)), {"interventions": states, "sector-windows": sectors})
    assert engine.evict_closed(states) == {}  # closed 3,400 s before the newest event: kept
    engine.process(_recs(iev("I4", "opened", T0 + 4300)), {"interventions": states, "sector-windows": sectors})
    assert engine.evict_closed(states) == {"I1": 0}
    assert set(states) == {"I2", "I3", "I4"}  # open ones stay, however old
    assert InterventionState.from_list("I2", states["I2"].to_list()) == states["I2"]


def test_live_replay_after_eviction_neither_restarts_the_intervention_nor_degrades_its_row() -> None:
    """A crash after the eviction tombstone but before the offsets were committed replays the batch that
    closed the intervention: the replay must not start it afresh (its row would lose the opening)."""
    engine = InterventionEngine(60, 0, retention_s=600, skip_applied_offsets=True)
    states: dict[str, InterventionState] = {}
    sectors: dict[str, SectorWindows] = {}
    batch = [Record("interventions", 0, 10 + i, e.intervention_id.encode(), e.model_dump_json().encode())
             for i, e in enumerate((iev("I1", "opened", T0), iev("I1", "closed", T0 + 60),
                                    iev("I2", "opened", T0 + 1000)))]
    engine.process(batch, {"interventions": states, "sector-windows": sectors})
    assert engine.evict_closed(states) == {"I1": 0}
    restarted = InterventionEngine(60, 0, retention_s=600, skip_applied_offsets=True)
    recovered = SectorWindows.from_dict(sectors["sectors:0"].to_dict())  # what the changelog restores
    assert recovered.applied_offset == 12
    result = restarted.process(batch, {"interventions": states, "sector-windows": {"sectors:0": recovered}})
    assert "I1" not in states and result.outcomes["duplicate"] == 3
    assert result.rows[next(k for k in result.rows if k.name == "interventions")] == []
    new = Record("interventions", 0, 13, b"I3", iev("I3", "opened", T0 + 1100).model_dump_json().encode())
    result = restarted.process([new], {"interventions": states, "sector-windows": {"sectors:0": recovered}})
    assert result.outcomes["applied"] == 1 and "I3" in states
