"""The two data sources the dashboards use, and a typed ClickHouse query for the foundation SDK
(it ships builders for Prometheus but none for the `grafana-clickhouse-datasource` plugin)."""

from __future__ import annotations

import typing

from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"
CLICKHOUSE_UID = "vigie-clickhouse"
PROMETHEUS_UID = "vigie-prometheus"

CLICKHOUSE = dashboard.DataSourceRef(type_val=CLICKHOUSE_PLUGIN, uid=CLICKHOUSE_UID)
PROMETHEUS = dashboard.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)

# the plugin's result formats (src/types/sql.ts: Format)
FORMAT_TIMESERIES = 0
FORMAT_TABLE = 1


class ClickHouseQuery(cogvariants.Dataquery):
    """One target of the ClickHouse plugin (v4), raw SQL editor."""

    def __init__(self, raw_sql: str = "", ref_id: str = "A", fmt: int = FORMAT_TABLE) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.format = fmt

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": CLICKHOUSE.to_json(),
            "editorType": "sql",
            "format": self.format,
            "queryType": "timeseries" if self.format == FORMAT_TIMESERIES else "table",
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }


class SQL(cogbuilder.Builder[ClickHouseQuery]):
    """Builder: ``SQL(query).time_series()`` or ``.table()`` (the default)."""

    def __init__(self, raw_sql: str, ref_id: str = "A") -> None:
        self._internal = ClickHouseQuery(raw_sql.strip(), ref_id)

    def build(self) -> ClickHouseQuery:
        return self._internal

    def time_series(self) -> typing.Self:
        self._internal.format = FORMAT_TIMESERIES
        return self

    def table(self) -> typing.Self:
        self._internal.format = FORMAT_TABLE
        return self


def promql(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(PROMETHEUS).range()
