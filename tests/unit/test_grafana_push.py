"""`vigie grafana push` against a local HTTP server that answers like Grafana's API and records every
request: the folder is created once, every dashboard is upserted into it by uid, with the token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from grafana import generate
from grafana.push import push_to
from vigie.cli import main


class FakeGrafana(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, dict[str, str], object]] = []
        self.folders: set[str] = set()
        self.dashboards: dict[str, dict] = {}
        self.datasources = {"vigie-clickhouse"}


class Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> object:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        return body

    def do_GET(self) -> None:
        self._record()
        if self.path.startswith("/api/folders/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid in self.server.folders:
                return self._reply(200, {"uid": uid, "title": "Vigie"})
            return self._reply(404, {"message": "folder not found"})
        if self.path.startswith("/api/datasources/uid/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid in self.server.datasources:
                return self._reply(200, {"uid": uid})
            return self._reply(404, {"message": "Data source not found"})
        return self._reply(404, {"message": "not found"})

    def do_POST(self) -> None:
        body = self._record()
        assert isinstance(body, dict)
        if self.path == "/api/folders":
            self.server.folders.add(body["uid"])
            return self._reply(200, {"uid": body["uid"], "title": body["title"]})
        if self.path == "/api/dashboards/db":
            if body["folderUid"] not in self.server.folders:
                return self._reply(400, {"message": "folder not found"})
            uid = body["dashboard"]["uid"]
            self.server.dashboards[uid] = body["dashboard"]
            return self._reply(200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 1})
        return self._reply(404, {"message": "not found"})


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_push_creates_the_folder_once_and_upserts_every_dashboard(grafana: FakeGrafana) -> None:
    url = f"http://127.0.0.1:{grafana.server_address[1]}"
    first = push_to(url, "secret-token")
    assert first.folder_created and len(first.dashboards) == len(generate.uids())
    assert first.missing_datasources == ["vigie-prometheus"]
    second = push_to(url, "secret-token")
    assert not second.folder_created
    posts = [(m, p, b) for m, p, _, b in grafana.requests if m == "POST"]
    assert [p for _, p, _ in posts].count("/api/folders") == 1
    dash_posts = [b for _, p, b in posts if p == "/api/dashboards/db"]
    assert len(dash_posts) == 2 * len(generate.uids())
    for body in dash_posts:
        assert body["folderUid"] == "vigie" and body["overwrite"] is True
        sent = body["dashboard"]
        assert sent["id"] is None  # matched by uid, so a second push updates rather than duplicates
        assert {k: v for k, v in sent.items() if k != "id"} == generate.load(sent["uid"])
    assert set(grafana.dashboards) == set(generate.uids())
    assert all(h.get("Authorization") == "Bearer secret-token" for _, _, h, _ in grafana.requests)


def test_cli_push_reports_what_it_did(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{grafana.server_address[1]}"
    assert main(["grafana", "push", "--url", url, "--token", "t0k"]) == 0
    out = capsys.readouterr().out
    assert "created folder 'vigie'" in out and "/d/vigie-situation/" in out
    assert "vigie-prometheus" in out  # the missing data source is named, with what to do
