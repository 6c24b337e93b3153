"""`vigie moveup`: the live move-up advice (streams/whatif/live.py) computed from ClickHouse now, or every N seconds
until stopped, into ``moveup_advice`` (the board's « Move-up » line and « Situation »'s panel)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from clickhouse_driver import errors as ch_errors

from core.settings import Settings
from schemas.reference import Reference
from sinks.clickhouse import make_client
from sinks.queries import busy_share_query, clock_query, demand_points_query, free_units_query, trips_query
from sinks.whatif import write_advice
from streams.rows import MoveUpAdviceRow
from streams.whatif.live import advice

DEFAULT_TYPES = ("VSAV", "FPT")


def once(settings: Settings, types: Sequence[str], limit_s: float, days: float) -> list[MoveUpAdviceRow]:
    """The advice now (the situation clock: the newest vehicle status), stored; nothing before the first status."""
    db = settings.clickhouse_database
    ref = Reference.load(settings.reference_dir)
    stations = {sid: (st.lat, st.lon) for sid, st in ref.stations.items()}
    client = make_client(settings, db)
    try:
        clock = client.execute(clock_query(db))[0][0]
        if clock is None or clock.year <= 1970:
            return []
        rows = advice(clock.replace(tzinfo=UTC).timestamp(), types, limit_s, stations,
                      client.execute(free_units_query(db)), client.execute(demand_points_query(db, days)),
                      client.execute(trips_query(db, days)), client.execute(busy_share_query(db)),
                      time.time_ns() // 1_000_000)
        write_advice(client, db, rows)
        return rows
    finally:
        client.disconnect()


def describe(row: MoveUpAdviceRow) -> str:
    within = f"within {row.limit_s / 60:g} min"
    if not row.unit_id:
        return (f"{row.vehicle_type}: no move raises the expected coverage {within} by 0.1 point "
                f"({100 * row.coverage_before:.1f} %, {row.free_units} free)")
    return (f"{row.vehicle_type}: move {row.unit_id} from {row.from_station} to {row.to_station} "
            f"({row.drive_s / 60:.1f} min drive): expected coverage {within} {100 * row.coverage_before:.1f} % -> "
            f"{100 * row.coverage_after:.1f} %")


def every(settings: Settings, types: Sequence[str], limit_s: float, days: float, seconds: float) -> int:
    """``once`` now and every ``seconds`` until SIGTERM / Ctrl-C; ClickHouse away: tried again at the next turn."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            try:
                rows = once(settings, types, limit_s, days)
                at = datetime.fromtimestamp(rows[0].computed_at, UTC) if rows else None
                print(f"{datetime.now(UTC):%H:%M:%S} " + (f"situation {at:%Y-%m-%d %H:%M} UTC: " + "; ".join(
                    describe(r) for r in rows) if at else "waiting for the first vehicle status"), flush=True)
            except ch_errors.Error as e:
                print(f"{datetime.now(UTC):%H:%M:%S} ClickHouse: {e}", flush=True)
            stop.wait(seconds)
    except KeyboardInterrupt:
        pass
    return 0
