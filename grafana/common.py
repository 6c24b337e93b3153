"""Building blocks shared by the dashboards: variables, thresholds, panel placement."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, dashboard

from grafana.datasources import CLICKHOUSE

# Grafana's grid: 24 columns; a row unit is 30 px plus margins. 1080 px in kiosk mode ≈ 30 units.
WALL_ROWS = 30

RED, ORANGE, GREEN, BLUE, GREY = "red", "orange", "green", "blue", "#8e8e8e"


def thresholds(*steps: tuple[float | None, str]) -> dash_b.ThresholdsConfig:
    return (dash_b.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE)
            .steps([dashboard.Threshold(value=v, color=c) for v, c in steps]))


def at(x: int, y: int, w: int, h: int) -> dashboard.GridPos:
    return dashboard.GridPos(x=x, y=y, w=w, h=h)


def all_values() -> common_b.ReduceDataOptions:
    """Show one value per row of the result (a stat per vehicle type, a bar per area...)."""
    return common_b.ReduceDataOptions().values(True).calcs(["lastNotNull"]).limit(50)


def big_text(value_size: int, title_size: int) -> common_b.VizTextDisplayOptions:
    return common_b.VizTextDisplayOptions().value_size(value_size).title_size(title_size)


def query_variable(name: str, label: str, sql: str, multi: bool = True) -> dash_b.QueryVariable:
    """A ClickHouse-backed variable; multi-select with All unless told otherwise."""
    var = (dash_b.QueryVariable(name).label(label).datasource(CLICKHOUSE)
           .query({"rawSql": sql, "editorType": "sql", "format": 1, "queryType": "table"})
           .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
           .sort(dashboard.VariableSort.ALPHABETICAL_ASC))
    if multi:
        var = var.multi(True).include_all(True).current(
            dashboard.VariableOption(selected=True, text=["All"], value=["$__all"]))
    return var


def text_variable(name: str, label: str, default: str, hidden: bool = True) -> dash_b.TextBoxVariable:
    """A value a user sets in the URL (``var-<name>=...``) or the dashboard settings."""
    var = dash_b.TextBoxVariable(name).label(label).default_value(default).current(
        dashboard.VariableOption(selected=True, text=default, value=default))
    if hidden:
        var = var.hide(dashboard.VariableHide.HIDE_VARIABLE)
    return var


def legend_bottom() -> common_b.VizLegendOptions:
    return (common_b.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM))


# Variables reach the SQL only in forms no value can break out of (a viewer can set any variable from the URL).
# Grafana's ``percentencode`` leaves nothing but A-Z a-z 0-9 - _ . ~ and %XX (encodeURIComponentStrict): no quote,
# backslash or backquote. The run (a database name) goes into a backquoted identifier that way; any other value
# into a string literal that ClickHouse decodes back (``decodeURLComponent``). ``${var:singlequote}`` would not do:
# Grafana escapes a quote with a backslash but leaves a backslash as it is, so ``x\`` followed by ``,1) OR 1=1 --``
# leaves the string.
RUN = "`${run:percentencode}`"


def text_value(var: str) -> str:
    """The value of a one-value variable, as a SQL string."""
    return "decodeURLComponent('${" + var + ":percentencode}')"


def in_selected(column: str, var: str) -> str:
    """``column`` among the values selected in multi-value ``var`` (Grafana percent-encodes several as ``{a,b}``;
    a value holding a comma cannot be told apart), or no condition when All is selected."""
    values = "splitByChar(',', replaceRegexpAll(" + text_value(var) + ", '^[{]|[}]$', ''))"
    # has(), not IN (SELECT arrayJoin(...)): ClickHouse 18.16 repeats the outer rows once per value with the latter
    return f"$__conditionalAll(has({values}, {column}), ${var})"


AREA_VARIABLE_SQL = f"SELECT DISTINCT area FROM {RUN}.vehicle_state ORDER BY area"

# A run imported from a station-level export (no appliances: one pseudo-unit per call) has no real availability:
# its import records "availability not tracked" in the run's data_quality. Availability panels then show nothing
# (their queries add this condition) and their titles say why (the hidden variable ``availability``).
_UNTRACKED = f"(SELECT count() FROM {RUN}.data_quality WHERE detail = 'availability not tracked')"
AVAILABILITY_TRACKED = f"{_UNTRACKED} = 0"
AVAILABILITY_NOTE = " — non suivie (export sans engins)"
AVAILABILITY_VARIABLE_SQL = f"SELECT if({_UNTRACKED} = 0, '', '{AVAILABILITY_NOTE}')"


def availability_variable() -> dash_b.QueryVariable:
    """Hidden: empty, or what an availability panel's title adds (``${availability}``) when it is not tracked."""
    return (dash_b.QueryVariable("availability").datasource(CLICKHOUSE)
            .query({"rawSql": AVAILABILITY_VARIABLE_SQL, "editorType": "sql", "format": 1, "queryType": "table"})
            .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD).hide(dashboard.VariableHide.HIDE_VARIABLE)
            .current(dashboard.VariableOption(selected=True, text="", value="")))


RUN_VARIABLE_SQL = "SELECT DISTINCT database FROM system.tables WHERE name = 'station_windows' ORDER BY database"


def run_variable(default: str = "vigie") -> dash_b.QueryVariable:
    """Which run to show: the live database (default) or a replay's (``<database>_replay_<run>``)."""
    return (dash_b.QueryVariable("run").label("Run (live or replay)").datasource(CLICKHOUSE)
            .query({"rawSql": RUN_VARIABLE_SQL, "editorType": "sql", "format": 1, "queryType": "table"})
            .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
            .current(dashboard.VariableOption(selected=True, text=default, value=default)))


def _lowest_per_interval_sql(column: str, alias: str, where: str) -> str:
    """Per type, the lowest 1-minute total of ``station_windows.column`` over the stations ``where`` selects in
    each interval (never finer than the 1-minute windows)."""
    return f"""
SELECT toDateTime(intDiv(toUInt32(window_start), greatest($__interval_s, 60)) * greatest($__interval_s, 60)) AS t,
       vehicle_type, min({alias}) AS {alias}
FROM
(
    SELECT window_start, vehicle_type, sum({column}) AS {alias}
    FROM {RUN}.station_windows FINAL
    WHERE $__timeFilter(window_start) AND {where}
    GROUP BY window_start, vehicle_type
)
GROUP BY t, vehicle_type
ORDER BY t, vehicle_type"""


def available_trend_sql(scope: str) -> str:
    """Vehicles available per type over the stations ``scope`` selects: the lowest 1-minute total in each
    interval."""
    return _lowest_per_interval_sql("available", "available", f"{scope} AND {AVAILABILITY_TRACKED}")


def staffed_trend_sql(scope: str) -> str:
    """Vehicles that can be crewed per type, over the stations ``scope`` selects that report crews: the lowest
    1-minute total of the windows' minimum staffed capacity in each interval."""
    return _lowest_per_interval_sql("min_staffed", "staffed",
                                    f"crew_tracked = 1 AND {scope} AND {AVAILABILITY_TRACKED}")


#: Qualification columns of the staff tables, as shown (French labels: the wall screens' language).
QUALIFICATION_LABELS = (("crew_leader", "chefs_agres"), ("driver", "conducteurs"), ("team_leader", "chefs_equipe"),
                        ("team_member", "equipiers"))


def staff_pivot(value: str) -> str:
    """``sumIf`` of a station_staff column per qualification, one output column per qualification."""
    return ", ".join(f"sumIf({value}, qualification = '{q}') AS {label}" for q, label in QUALIFICATION_LABELS)


def engagement_partitions(days_before_from: int = 7) -> str:
    """A bound on ``started_at``, the partition key of ``engagements`` (by month), so that a query over the
    time range reads one or two months instead of the whole history. Exact for engagements dispatched less
    than ``days_before_from`` days after they started (a unit is engaged by its dispatch)."""
    return f"started_at >= $__fromTime - {days_before_from * 86400}"


def percent_cells(orange_from: float, green_from: float) -> list[dashboard.DynamicConfigValue]:
    """A percentage column coloured red below ``orange_from``, orange below ``green_from``, green above."""
    return [dashboard.DynamicConfigValue(id_val="unit", value="percent"),
            dashboard.DynamicConfigValue(id_val="thresholds", value=thresholds(
                (None, RED), (orange_from, ORANGE), (green_from, GREEN)).build()),
            dashboard.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})]
