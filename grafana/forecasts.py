"""« Prévisions »: interventions expected per sector and bin (1 h, 3 h, local day) against what happened, the days
ahead, and how often the forecasts were right. Forecasts come from `vigie forecast predict` (table ``forecasts``);
the counts from the 1-minute ``sector_windows``. The situation clock is the newest counted window."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import common, dashboard

from grafana.common import (
    RUN,
    at,
    legend_bottom,
    percent_cells,
    query_variable,
    run_variable,
    text_value,
)
from grafana.datasources import SQL

UID = "vigie-forecasts"
SECTOR = text_value("sector")
BIN_HOURS = f"toUInt8OrZero({text_value('bin')})"
CLOCK = f"(SELECT max(window_start) FROM {RUN}.sector_windows)"
#: the published model (streams.forecasting.models.PUBLISHED; grafana sits above streams but reads no Python)
MODEL = "'profile'"

SECTOR_VARIABLE_SQL = f"SELECT DISTINCT sector FROM {RUN}.forecasts ORDER BY sector"


def _observed_per_hour(sector: str) -> str:
    """Interventions opened per hour and sector near the time range, with every sector together as ``*``."""
    return f"""
        SELECT sector, hour, opened FROM
        (
            SELECT sector, toStartOfHour(window_start) AS hour, toUInt64(sum(interventions_opened)) AS opened
            FROM {RUN}.sector_windows FINAL
            WHERE window_start >= $__fromTime - 90000 AND window_start < $__toTime + 90000
              AND ({sector} = '*' OR sector = {sector})
            GROUP BY sector, hour
            UNION ALL
            SELECT '*' AS sector, toStartOfHour(window_start) AS hour, toUInt64(sum(interventions_opened)) AS opened
            FROM {RUN}.sector_windows FINAL
            WHERE window_start >= $__fromTime - 90000 AND window_start < $__toTime + 90000
            GROUP BY hour
        )"""


def bins_with_observed(bin_hours: str, sector: str, sectors: str) -> str:
    """Forecast bins whose start is in the time range, each with the interventions opened in its hours (a local
    day has 23 or 25 when clocks change). ``sectors``: which forecast rows (a condition on ``sector``)."""
    return f"""
    SELECT sector, t, t_end, any(expected) AS expected, any(low) AS low, any(high) AS high,
           toUInt64(sum(opened)) AS observed
    FROM
    (
        SELECT sector, bin_start AS t, bin_end AS t_end, mean AS expected, q10 AS low, q90 AS high, hour
        FROM {RUN}.forecasts FINAL
        ARRAY JOIN arrayMap(i -> toDateTime(toUInt32(bin_start) + i * 3600),
                            range(toUInt32(intDiv(toUInt32(bin_end) - toUInt32(bin_start), 3600)))) AS hour
        WHERE $__timeFilter(bin_start) AND bin_hours = {bin_hours} AND model = {MODEL} AND {sectors}
    ) AS f
    ANY LEFT JOIN ({_observed_per_hour(sector)}
    ) AS o USING sector, hour
    GROUP BY sector, t, t_end"""


def expected_vs_observed_sql(bin_hours: str, sector: str) -> str:
    """One sector (``*``: all together): per bin, the expected mean and its 80 % interval, and the interventions
    opened (so far, for the bin in progress; none for bins not begun, on the situation clock)."""
    return f"""
SELECT t, round(expected, 2) AS expected, low, high, if(t <= {CLOCK}, observed, NULL) AS observed
FROM
({bins_with_observed(bin_hours, sector, f"sector = {sector}")}
)
ORDER BY t"""


EXPECTED_VS_OBSERVED = expected_vs_observed_sql(BIN_HOURS, SECTOR)

RELIABILITY = f"""
SELECT sector, count() AS bins, round(avg(abs(toFloat64(observed) - expected)), 2) AS mae,
       round(100 * avg(observed >= low AND observed <= high), 1) AS within_80_pct,
       round(100 * avg(observed > high), 1) AS above_q90_pct
FROM
({bins_with_observed(BIN_HOURS, SECTOR, f"({SECTOR} = '*' OR sector = {SECTOR})")}
)
WHERE t_end <= {CLOCK}
GROUP BY sector
ORDER BY sector"""

DAYS_AHEAD = f"""
SELECT bin_start AS day, sector, round(mean, 1) AS expected, q10, q90
FROM {RUN}.forecasts FINAL
WHERE bin_hours = 24 AND model = {MODEL} AND bin_end > {CLOCK} AND ({SECTOR} = '*' OR sector = {SECTOR})
ORDER BY day, expected DESC, sector
LIMIT 500"""


def band(panel: timeseries.Panel) -> timeseries.Panel:
    """The 80 % interval as a shaded band (high filled down to low), the mean dashed, the observed as bars."""
    return (panel
            .override_by_name("high", [
                dashboard.DynamicConfigValue(id_val="custom.fillBelowTo", value="low"),
                dashboard.DynamicConfigValue(id_val="custom.lineWidth", value=0),
                dashboard.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "#8ab8ff"}),
                dashboard.DynamicConfigValue(id_val="displayName", value="attendu q90")])
            .override_by_name("low", [
                dashboard.DynamicConfigValue(id_val="custom.lineWidth", value=0),
                dashboard.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "#8ab8ff"}),
                dashboard.DynamicConfigValue(id_val="displayName", value="attendu q10")])
            .override_by_name("expected", [
                dashboard.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
                dashboard.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "blue"}),
                dashboard.DynamicConfigValue(id_val="displayName", value="attendu")])
            .override_by_name("observed", [
                dashboard.DynamicConfigValue(id_val="custom.drawStyle", value="bars"),
                dashboard.DynamicConfigValue(id_val="custom.fillOpacity", value=60),
                dashboard.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "orange"}),
                dashboard.DynamicConfigValue(id_val="displayName", value="observé")]))


def expected_vs_observed_panel(title: str, pos: dashboard.GridPos, sql: str, description: str) -> timeseries.Panel:
    return band(timeseries.Panel().title(title).grid_pos(pos).description(description)
                .with_target(SQL(sql).time_series())
                .line_width(2).fill_opacity(15).legend(legend_bottom()).min(0).decimals(1))


def build() -> dash_b.Dashboard:
    d = (dash_b.Dashboard("Prévisions").uid(UID).tags(["vigie", "forecasts"])
         .description("Interventions expected per sector (vigie forecast predict) against what happened.")
         .refresh("1m").time("now-2d", "now+2d").timezone("browser")
         .with_variable(run_variable())
         .with_variable(query_variable("sector", "Secteur (* : tous)", SECTOR_VARIABLE_SQL, multi=False)
                        .current(dashboard.VariableOption(selected=True, text="*", value="*")))
         .with_variable(dash_b.CustomVariable("bin").label("Pas (heures)").values("1,3,24")
                        .current(dashboard.VariableOption(selected=True, text="1", value="1"))))
    d = d.with_panel(expected_vs_observed_panel(
        "Attendu / observé", at(0, 0, 24, 11), EXPECTED_VS_OBSERVED,
        "The selected sector (* : all together) per bin: interventions expected (dashed) with their 80 % interval "
        "(band: 10 % and 90 % quantiles) against those opened (bars; the bin in progress so far). The forecast shown "
        "for a bin is the last one issued before it began. The time range runs into the days ahead."))
    d = d.with_panel(
        table.Panel().title("Jours à venir par secteur").grid_pos(at(0, 11, 12, 10))
        .description("Local days not yet over: interventions expected per sector, busiest first, with the 10 % and "
                     "90 % quantiles (the 90 % one is the staffing figure).")
        .with_target(SQL(DAYS_AHEAD).table())
        .no_value("Aucune prévision : vigie forecast predict").cell_height(common.TableCellHeight.SM))
    d = d.with_panel(
        table.Panel().title("Fiabilité des prévisions").grid_pos(at(12, 11, 12, 10))
        .description("Bins of the selected size that ended in the time range: mean absolute error, and how often "
                     "the interventions opened fell within the 80 % interval (aim: about 80 %) or above the 90 % "
                     "quantile (aim: at most 10 %).")
        .with_target(SQL(RELIABILITY).table())
        .override_by_name("within_80_pct", percent_cells(70, 78))
        .override_by_name("above_q90_pct", [dashboard.DynamicConfigValue(id_val="unit", value="percent")])
        .no_value("Aucun pas terminé dans la période").cell_height(common.TableCellHeight.SM))
    return d
