"""`vigie grafana push`: upload the checked-in dashboards to an existing Grafana (idempotent upsert into
one folder) with grafana-client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from grafana import generate
from grafana.datasources import CLICKHOUSE_UID, PROMETHEUS_UID

FOLDER_UID = "vigie"
FOLDER_TITLE = "Vigie"


@dataclass
class PushReport:
    folder_created: bool = False
    dashboards: list[str] = field(default_factory=list)  # urls Grafana returned
    missing_datasources: list[str] = field(default_factory=list)


def ensure_folder(api: GrafanaApi, uid: str, title: str) -> bool:
    """The folder exists afterwards; True if it was created now."""
    try:
        api.folder.get_folder(uid)
        return False
    except GrafanaClientError as e:
        if e.status_code != 404:
            raise
    api.folder.create_folder(title, uid=uid)
    return True


def push(api: GrafanaApi, folder_uid: str = FOLDER_UID, folder_title: str = FOLDER_TITLE,
         load: Callable[[str], dict[str, Any]] = generate.load) -> PushReport:
    report = PushReport(folder_created=ensure_folder(api, folder_uid, folder_title))
    for uid in generate.uids():
        dashboard = {**load(uid), "id": None}  # matched by uid: an update when it exists
        res = api.dashboard.update_dashboard({"dashboard": dashboard, "folderUid": folder_uid, "overwrite": True,
                                              "message": "vigie grafana push"})
        report.dashboards.append(str(res.get("url", uid)))
    for ds_uid in (CLICKHOUSE_UID, PROMETHEUS_UID):
        try:
            api.datasource.get_datasource_by_uid(ds_uid)
        except GrafanaClientError as e:
            if e.status_code != 404:
                raise
            report.missing_datasources.append(ds_uid)
    return report


def push_to(url: str, token: str | None, folder_uid: str = FOLDER_UID, timeout: float = 10.0) -> PushReport:
    return push(GrafanaApi.from_url(url, credential=token or None, timeout=timeout), folder_uid)
