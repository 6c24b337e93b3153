"""Every read query the project issues, in one place, so tests can run each on both engines."""

from __future__ import annotations

from vigie import board


def all_queries(db: str) -> dict[str, str]:
    return {
        "board_capacity": board.capacity_query(db),
        "board_open_interventions": board.open_interventions_query(db),
        "board_rate": board.rate_query(db),
        "board_clock": board.clock_query(db),
        "response_times": f"SELECT * FROM {db}.intervention_response_times ORDER BY intervention_id",
        "station_windows": f"SELECT * FROM {db}.station_windows FINAL ORDER BY window_start, station_id",
        "sector_windows": (f"SELECT window_start, sector, sum(interventions_opened) FROM {db}.sector_windows FINAL "
                           "GROUP BY window_start, sector ORDER BY window_start, sector"),
    }
