"""``vigie board``: a live terminal board read from ClickHouse, refreshed every second."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

from core.settings import Settings
from sinks.clickhouse import make_client
from sinks.queries import (
    availability_untracked_query,
    capacity_query,
    clock_query,
    firing_alerts_query,
    forecast_query,
    moveup_advice_query,
    open_interventions_query,
    rate_query,
    staff_query,
    staffed_query,
    stocks_below_minimum_query,
    unusual_sectors_query,
)

TYPES = ("VSAV", "FPT", "EPA", "VSR", "CCF", "VL", "PSE")


UNTRACKED = ("AVAILABILITY NOT TRACKED in this run (a station-level export: one pseudo-unit per call): the available "
             "counts are not real; engaged counts and response times are")

QUALIFICATIONS = (("crew_leader", "crew leaders"), ("driver", "drivers"), ("team_leader", "team leaders"),
                  ("team_member", "team members"))


def forecast_text(rows: list[tuple[Any, ...]]) -> str:
    """The hour in progress against its forecast, and the next hour's."""
    if not rows:
        return "forecast: none yet (vigie forecast predict; make run forecasts every simulated hour)"
    parts = []
    for i, (start, mean, q10, q90, opened) in enumerate(rows):
        if i == 0:
            parts.append(f"{start:%H}:00 hour {int(opened)} opened / {mean:.0f} expected (80 %: {q10}-{q90})")
        else:
            parts.append(f"next hour {mean:.0f} expected (q90 {q90})")
    return "forecast, all sectors: " + "; ".join(parts)


MAX_ALERT_LINES = 8


def alerts_banner(firing: list[tuple[Any, ...]]) -> list[str]:
    """The alerts firing now (``firing_alerts_query``): the board's first lines, who took each in hand, the
    silenced ones last."""
    if not firing:
        return ["alerts: none firing"]
    silenced = sum(1 for r in firing if r[6])
    lines = [f"ALERTS: {len(firing)} firing" + (f" ({silenced} silenced)" if silenced else "")]
    for severity, message, since, _, _, ack_by, is_silenced, until, silenced_by, why in firing[:MAX_ALERT_LINES]:
        end = datetime.fromtimestamp(until, UTC)
        follow = (f"  [silenced until {end:%H:%M} by {silenced_by}: {why}]" if is_silenced
                  else f"  [taken by {ack_by}]" if ack_by else "")
        lines.append(f"  [{severity.upper():<8}] since {since:%H:%M:%S}  {message}{follow}")
    if len(firing) > MAX_ALERT_LINES:
        lines.append(f"  ... and {len(firing) - MAX_ALERT_LINES} more (vigie alerts list)")
    return lines


def render(capacity: list[tuple[Any, ...]], open_by_nature: list[tuple[Any, ...]], rate: float,
           clock: str, staffed: list[tuple[Any, ...]] = (), staff: list[tuple[Any, ...]] = (),
           forecast: list[tuple[Any, ...]] = (), availability_tracked: bool = True,
           alerts: list[tuple[Any, ...]] = (), stocks_low: list[tuple[Any, ...]] = (),
           unusual: list[tuple[Any, ...]] = (), moveups: list[tuple[Any, ...]] = ()) -> str:
    cells: dict[tuple[str, str], dict[str, int]] = {}
    areas: list[str] = []
    for area, vtype, cat, n in capacity:
        if area not in areas:
            areas.append(area)
        cells.setdefault((area, vtype), {})[cat] = int(n)
    lines = [f"VIGIE — live resources   {clock}   events/s: {rate:,.0f}", "", *alerts_banner(list(alerts)), ""]
    if not availability_tracked:
        lines[1:1] = [UNTRACKED, ""]
    lines.append("available / total        " + "".join(f"{t:>10}" for t in TYPES))
    for area in areas:
        row = f"  area {area:<18}"
        for t in TYPES:
            c = cells.get((area, t), {})
            total = sum(c.values())
            row += f"{(str(c.get('available', 0)) + '/' + str(total)) if total else '-':>10}"
        lines.append(row)
    tot = {t: [0, 0, 0] for t in TYPES}
    for (_, t), c in cells.items():
        if t in tot:
            tot[t][0] += c.get("available", 0)
            tot[t][1] += c.get("engaged", 0)
            tot[t][2] += c.get("out_of_service", 0)
    lines.append("")
    lines.append("engaged                  " + "".join(f"{tot[t][1]:>10}" for t in TYPES))
    lines.append("out of service           " + "".join(f"{tot[t][2]:>10}" for t in TYPES))
    lines.append("")
    if staffed:
        lines.append(f"{'can leave (crewed) / available':<32}" + "".join(f"{t:>9}" for t in TYPES))
        crewed: dict[tuple[str, str], tuple[int, int]] = {(a, t): (int(s), int(n)) for a, t, n, s in staffed}
        for area in sorted({a for a, _, _, _ in staffed}):
            row = f"  area {area:<25}"
            for t in TYPES:
                s, n = crewed.get((area, t), (0, 0))
                flag = "!" if s < n else " "  # available vehicles that cannot be crewed
                row += f"{(str(s) + '/' + str(n) + flag) if (area, t) in crewed else '-':>9}"
            lines.append(row)
        lines.append("  (! = available vehicles without a crew)")
    else:
        lines.append("crews: not reported (staffed capacity unknown)")
    if staff:
        per: dict[tuple[str, str], tuple[int, int]] = {(a, q): (int(n), int(d)) for a, q, n, d in staff}
        lines.append("")
        lines.append(f"{'staff free / on duty':<32}" + "".join(f"{label:>15}" for _, label in QUALIFICATIONS))
        for area in sorted({a for a, _, _, _ in staff}):
            cells = [per.get((area, q), (0, 0)) for q, _ in QUALIFICATIONS]
            lines.append(f"  area {area:<25}" + "".join(f"{f'{n}/{d}':>15}" for n, d in cells))
    n_open = sum(int(n) for _, n in open_by_nature)
    detail = ", ".join(f"{nat} {n}" for nat, n in open_by_nature)
    lines += ["", f"open interventions: {n_open}  ({detail})", forecast_text(list(forecast)),
              stocks_text(list(stocks_low)), presence_text(list(unusual)), moveup_text(list(moveups))]
    return "\n".join(lines)


def moveup_text(rows: list[tuple[Any, ...]]) -> str:
    """The latest move-up advice per type (``moveup_advice_query``)."""
    if not rows:
        return "move-up: none computed (vigie moveup; make run computes it every simulated 10 minutes)"
    parts = []
    for vtype, unit, src, dst, drive_s, before, after, _ in rows:
        parts.append(f"{vtype} {unit} {src} -> {dst} ({drive_s / 60:.0f} min; coverage {100 * before:.0f} -> "
                     f"{100 * after:.0f} %)" if unit else f"{vtype} none ({100 * before:.0f} %)")
    return f"move-up ({rows[0][7]:%H:%M}): " + "; ".join(parts)


def stocks_text(rows: list[tuple[Any, ...]], shown: int = 4) -> str:
    """The items below their site's minimum (``stocks_below_minimum_query``), per category, most first."""
    if not rows:
        return "stocks: none below its minimum"
    items = sum(int(n) for _, n in rows)
    detail = ", ".join(f"{category} {int(n)}" for category, n in rows[:shown])
    if len(rows) > shown:
        detail += f" and {len(rows) - shown} more categories"
    return f"stocks below minimum: {items} items — {detail} (where: vigie near)"


def presence_text(rows: list[tuple[Any, ...]], shown: int = 5) -> str:
    """Sectors whose people present are unusual now (``unusual_sectors_query``), the largest departures first."""
    if not rows:
        return "population present: no unusual sector"
    detail = ", ".join(f"{sector} x{ratio:.1f} ({int(present):,} vs {int(usual):,} at {period:%H:%M})"
                       for sector, period, present, usual, ratio in rows[:shown])
    more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
    return f"population present, unusual: {detail}{more}"


def clock_text(rows: list[tuple[Any, ...]]) -> str:
    """The situation clock (the newest event time), or "waiting for events" before the first one (an empty
    table's max is 1970-01-01)."""
    newest = rows[0][0] if rows else None
    if newest is None or newest.year <= 1970:
        return "waiting for events"
    return f"simulated clock {newest:%Y-%m-%d %H:%M:%S} UTC"


def run_board(settings: Settings, once: bool = False, interval: float = 1.0) -> None:
    client = make_client(settings, settings.clickhouse_database)
    db = settings.clickhouse_database
    while True:
        try:
            cap = client.execute(capacity_query(db))
            opened = client.execute(open_interventions_query(db))
            rate = sum(r[0] for r in client.execute(rate_query(db))) / 10.0
            clock = clock_text(client.execute(clock_query(db)))
            untracked = client.execute(availability_untracked_query(db))[0][0] > 0
            text = render(cap, opened, rate, clock, client.execute(staffed_query(db)), client.execute(staff_query(db)),
                          client.execute(forecast_query(db)), availability_tracked=not untracked,
                          alerts=client.execute(firing_alerts_query(db)),
                          stocks_low=client.execute(stocks_below_minimum_query(db)),
                          unusual=client.execute(unusual_sectors_query(db)),
                          moveups=client.execute(moveup_advice_query(db)))
        except Exception as e:
            text = f"VIGIE — waiting for ClickHouse ({e.__class__.__name__}: {str(e)[:80]})"
            client.disconnect()
        if once:
            print(text)
            return
        sys.stdout.write("\x1b[H\x1b[2J" + text + "\n\n(Ctrl-C to stop)\n")
        sys.stdout.flush()
        time.sleep(interval)
