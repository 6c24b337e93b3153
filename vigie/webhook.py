"""A webhook receiver: what Alertmanager notifies, kept in order, appended to a JSON-lines file when one is given
(``make run``'s ``notifications.jsonl``) and logged one line per alert (``vigie alerts notify --receive``: the
notifications of a deployment with no paging gateway yet). The tests' end of the notification chain."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("vigie.notifications")


class WebhookReceiver:
    def __init__(self, port: int = 0, log_file: Path | None = None, host: str = "127.0.0.1") -> None:
        self.received: list[dict[str, Any]] = []
        self.log_file = log_file
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.take(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://{host}:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)

    def take(self, doc: dict[str, Any]) -> None:
        with self.changed:
            self.received.append(doc)
            if self.log_file is not None:
                with self.log_file.open("a") as f:
                    f.write(json.dumps(doc) + "\n")
            for a in doc.get("alerts", []):
                labels, notes = a.get("labels", {}), a.get("annotations", {})
                log.info("notified %s %s [%s] %s: %s", a.get("status"), labels.get("alertname"), labels.get("scope"),
                         labels.get("severity"), notes.get("summary", ""))
            self.changed.notify_all()

    def wait_for(self, found: Callable[[list[dict[str, Any]]], bool], timeout: float) -> list[dict[str, Any]]:
        """The notifications received once ``found`` holds for them; TimeoutError with what came if it never does."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not found(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"after {timeout:g}s the webhook received {self.received}")
                self.changed.wait(left)
            return list(self.received)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
