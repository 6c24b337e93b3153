"""Every read query the project issues, in one place, so tests can run each on both engines."""

from __future__ import annotations


def capacity_query(db: str) -> str:
    return (f"SELECT area, vehicle_type, category, count() FROM {db}.vehicle_state FINAL "
            "GROUP BY area, vehicle_type, category ORDER BY area, vehicle_type, category")


def open_interventions_query(db: str) -> str:
    return (f"SELECT nature, count() FROM {db}.interventions FINAL WHERE status = 'open' "
            "GROUP BY nature ORDER BY nature")


def rate_query(db: str) -> str:
    return (f"SELECT count() FROM {db}.vehicle_status_events WHERE ingested_at >= now() - 10 "
            f"UNION ALL SELECT count() FROM {db}.intervention_events WHERE ingested_at >= now() - 10")


def staffed_query(db: str) -> str:
    """Per area and type, at stations that report crews: available vehicles and how many can be crewed."""
    return (f"SELECT area, vehicle_type, sum(available), sum(staffed) FROM {db}.station_capacity FINAL "
            "WHERE crew_tracked = 1 GROUP BY area, vehicle_type ORDER BY area, vehicle_type")


def staff_query(db: str) -> str:
    return (f"SELECT area, qualification, sum(available), sum(on_duty) FROM {db}.station_staff FINAL "
            "GROUP BY area, qualification ORDER BY area, qualification")


def forecast_query(db: str) -> str:
    """The hour in progress (on the counted clock) and the next: expected interventions (all sectors, published
    model) with q10 and q90, and those opened so far."""
    hour = f"toStartOfHour((SELECT max(window_start) FROM {db}.sector_windows))"
    return (f"SELECT bin_start, mean, q10, q90, opened FROM ("
            f"SELECT bin_start, mean, q10, q90 FROM {db}.forecasts FINAL WHERE bin_hours = 1 AND sector = '*' "
            f"AND model = 'profile' AND bin_start >= {hour} ORDER BY bin_start LIMIT 2) AS f "
            f"ANY LEFT JOIN (SELECT toStartOfHour(window_start) AS bin_start, "
            f"toUInt64(sum(interventions_opened)) AS opened FROM {db}.sector_windows FINAL "
            f"WHERE window_start >= {hour} GROUP BY bin_start) AS o USING bin_start ORDER BY bin_start")


def availability_untracked_query(db: str) -> str:
    """Non-zero when the run comes from a station-level export (no appliance ids: availability not tracked)."""
    return f"SELECT count() FROM {db}.data_quality WHERE detail = 'availability not tracked'"


def firing_alerts_query(db: str) -> str:
    """The alerts firing now (their latest transition), the silenced ones last, the most severe first, then the
    oldest: (severity, message, since, rule, scope key, acknowledged by, silenced, silenced until (epoch s), by,
    why). Silenced: a silence whose end is after the situation clock (the newest event time: a replay reads right).
    (The silence's end as a number: 18.16 writes DateTime 0 as 0000-00-00 in text.)"""
    return (f"SELECT severity, message, since, rule, scope_key, acknowledged_by, "
            f"silenced_until > (SELECT max(event_time) FROM {db}.vehicle_state) AS silenced, "
            "toUInt32(silenced_until) AS silenced_until_s, "
            f"silenced_by, silence_why FROM {db}.alerts_current WHERE state = 'firing' "
            "ORDER BY silenced, multiIf(severity = 'critical', 0, severity = 'warning', 1, 2), since, rule, scope_key")


def open_alerts_query(db: str) -> str:
    """The alerts firing or pending now: (state, severity, since, value, rule, scope key, message)."""
    return (f"SELECT state, severity, since, value, rule, scope_key, message FROM {db}.alerts_current "
            "WHERE state IN ('firing', 'pending') "
            "ORDER BY state = 'pending', multiIf(severity = 'critical', 0, severity = 'warning', 1, 2), since, rule, "
            "scope_key")


def alert_history_query(db: str, since: float | None = None, until: float | None = None) -> str:
    """Every transition in [since, until) (epoch seconds; None: unbounded), in time order."""
    where = " AND ".join([*([f"at >= toDateTime({int(since)})"] if since is not None else []),
                          *([f"at < toDateTime({int(until)})"] if until is not None else [])]) or "1"
    return (f"SELECT transition, severity, at, value, rule, scope_key, message FROM {db}.alerts FINAL WHERE {where} "
            "ORDER BY at, rule, scope_key, multiIf(transition = 'firing', 2, transition = 'pending', 1, 0)")


def notify_alerts_query(db: str, ended_after: float) -> str:
    """What the notifier sends (``sinks.alertmanager.AlertNow``'s columns): the alerts firing now and those resolved
    at or after ``ended_after`` (epoch s, worker's clock), times as epoch seconds."""
    return ("SELECT rule, scope_key, severity, area, station_id, subject, state, toUInt32(since), "
            "toUInt32(episode_start), value, message, acknowledged_by, toUInt32(silenced_until), silenced_by, "
            f"silence_why FROM {db}.alerts_current WHERE state = 'firing' OR (state = 'resolved' "
            f"AND since >= toDateTime({int(ended_after)})) ORDER BY rule, scope_key")


def clock_query(db: str) -> str:
    return f"SELECT max(event_time) FROM {db}.vehicle_state"


def stocks_below_minimum_query(db: str) -> str:
    """Per item category, the items below their site's minimum (most first)."""
    return (f"SELECT item_category, count() AS items FROM {db}.stock_levels FINAL "
            "WHERE below_min = 1 GROUP BY item_category ORDER BY items DESC, item_category")


def latest_presence_query(db: str, segment: str = "'all'", condition: str = "1") -> str:
    """Per sector and source, the newest period delivered of ``segment`` (a SQL string) among the rows meeting
    ``condition``: its start (``period``), its figures, the sector's residents and centroid. The board and the
    « Population présente » dashboard (``db`` a Grafana expression there) read it."""
    return f"""
SELECT sector_id, source, max(period_start) AS period, argMax(present, period_start) AS present,
       argMax(usual, period_start) AS usual, argMax(ratio, period_start) AS ratio, argMax(z, period_start) AS z,
       argMax(deviating, period_start) AS deviating, argMax(unusual, period_start) AS unusual,
       argMax(suppressed, period_start) AS suppressed, argMax(weeks, period_start) AS weeks,
       any(residents) AS residents, any(lat) AS lat, any(lon) AS lon
FROM {db}.presence_periods FINAL
WHERE segment = {segment} AND {condition}
GROUP BY sector_id, source"""


def unusual_sectors_query(db: str) -> str:
    """Sectors whose newest period delivered (segment « all ») is unusual: (sector, period, present, usual, ratio),
    the largest departures first."""
    return (f"SELECT sector_id, period, present, usual, ratio FROM ({latest_presence_query(db)}) WHERE unusual = 1 "
            "ORDER BY abs(ratio - 1) DESC, sector_id")


def free_units_query(db: str) -> str:
    """The vehicles available now (at their station or on the radio): (vehicle, type, home station)."""
    return (f"SELECT vehicle_id, vehicle_type, home_station FROM {db}.vehicle_state FINAL "
            "WHERE category = 'available' ORDER BY vehicle_id")


def demand_points_query(db: str, days: float) -> str:
    """Demand for coverage: per sector, the interventions opened in the last ``days`` (of the situation clock) at
    their mean location: (sector, lat, lon, count)."""
    since = f"(SELECT max(opened_at) FROM {db}.interventions) - {int(days * 86400)}"
    return (f"SELECT sector, avg(lat), avg(lon), count() FROM {db}.interventions FINAL "
            f"WHERE opened_at >= {since} AND NOT (lat = 0 AND lon = 0) GROUP BY sector ORDER BY sector")


def trips_query(db: str, days: float) -> str:
    """Trips for the travel model: engagements of the last ``days`` with a travel time (en route -> on scene) and
    their intervention's place (ALL, not ANY: the current engine's ANY keeps one row per key of either side):
    (intervention, vehicle, type, priority, home station, lat, lon, travel s)."""
    since = f"(SELECT max(started_at) FROM {db}.engagements) - {int(days * 86400)}"
    return (f"SELECT intervention_id, vehicle_id, vehicle_type, priority, home_station, lat, lon, travel_s FROM "
            f"(SELECT intervention_id, vehicle_id, vehicle_type, home_station, travel_s FROM {db}.engagements FINAL "
            f"WHERE started_at >= {since} AND en_route_at > toDateTime(0) AND on_scene_at > toDateTime(0) "
            f"AND travel_s > 0) AS e ALL INNER JOIN "
            f"(SELECT intervention_id, priority, lat, lon FROM {db}.interventions FINAL "
            "WHERE NOT (lat = 0 AND lon = 0)) AS i USING intervention_id ORDER BY intervention_id, vehicle_id")


def busy_share_query(db: str) -> str:
    """Per vehicle type, the share of its vehicles engaged over the last 24 h of 1-minute windows (DMEXCLP's q)."""
    since = f"(SELECT max(window_start) FROM {db}.station_windows) - 86400"
    return (f"SELECT vehicle_type, sum(engaged) / sum(available + engaged + out_of_service + unknown) "
            f"FROM {db}.station_windows FINAL WHERE window_start >= {since} AND window_seconds = 60 "
            "GROUP BY vehicle_type HAVING sum(available + engaged + out_of_service + unknown) > 0 "
            "ORDER BY vehicle_type")


def past_openings_query(db: str, since: int, until: int) -> str:
    """The interventions opened in [since, until) (epoch seconds) at a known place: (opened at, lat, lon) — what a
    fresh live alerts book reads for its surge rules' usual (``streams/alert_book.py`` ``AlertBook.past``)."""
    return (f"SELECT toUInt32(opened_at), lat, lon FROM {db}.interventions FINAL WHERE opened_at >= "
            f"toDateTime({since}) AND opened_at < toDateTime({until}) AND NOT (lat = 0 AND lon = 0)")


def moveup_advice_query(db: str) -> str:
    """The latest move-up advice per unit type: (type, unit, from, to, drive s, coverage before, after, at)."""
    return (f"SELECT vehicle_type, unit_id, from_station, to_station, drive_s, coverage_before, coverage_after, "
            f"computed_at FROM {db}.moveup_advice FINAL ORDER BY vehicle_type")


def all_queries(db: str) -> dict[str, str]:
    return {
        "board_capacity": capacity_query(db),
        "board_open_interventions": open_interventions_query(db),
        "board_rate": rate_query(db),
        "board_clock": clock_query(db),
        "board_forecast": forecast_query(db),
        "board_availability": availability_untracked_query(db),
        "board_alerts": firing_alerts_query(db),
        "board_stocks": stocks_below_minimum_query(db),
        "board_presence": unusual_sectors_query(db),
        "board_moveup": moveup_advice_query(db),
        "moveup_free_units": free_units_query(db),
        "moveup_demand": demand_points_query(db, 28),
        "moveup_trips": trips_query(db, 28),
        "moveup_busy": busy_share_query(db),
        "alerts_past_openings": past_openings_query(db, 0, 2**31),
        "alerts_open": open_alerts_query(db),
        "alerts_history": alert_history_query(db, 0, 2**31),
        "alerts_notify": notify_alerts_query(db, 0),
        "response_times": f"SELECT * FROM {db}.intervention_response_times ORDER BY intervention_id",
        "station_windows": f"SELECT * FROM {db}.station_windows FINAL ORDER BY window_start, station_id",
        "sector_windows": (f"SELECT window_start, sector, sum(interventions_opened) FROM {db}.sector_windows FINAL "
                           "GROUP BY window_start, sector ORDER BY window_start, sector"),
    }
