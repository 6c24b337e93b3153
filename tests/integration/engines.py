"""One database on ClickHouse 18.16 and on the current engine (chdb), to run a query on both and compare."""

from __future__ import annotations

import tempfile
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

from core.settings import Settings
from streams import registry
from tests.integration.conftest import Stack


class Engines:
    """The same database on ClickHouse 18.16 (HTTP, TSV) and in chdb (copied table by table)."""

    def __init__(self, stack: Stack, s: Settings) -> None:
        import chdb.session

        self.http = f"http://127.0.0.1:{stack.ch_http}/"
        self.reader_password = stack.clickhouse.reader_password
        self.db = s.clickhouse_database
        self.chdb = chdb.session.Session()
        self.chdb.query(f"CREATE DATABASE IF NOT EXISTS {self.db}")
        self.timings: dict[str, list[float]] = defaultdict(list)
        with tempfile.TemporaryDirectory() as tmp:
            views = []
            for name in dict.fromkeys((*(t.name for t in registry.tables(s)), *registry.readable_tables(s))):
                create = self.old(f"SHOW CREATE TABLE {self.db}.{name}").replace("\\n", "\n").replace("\\'", "'")
                if create.startswith("CREATE VIEW"):
                    views.append(create)  # over tables copied meanwhile, no data of its own
                    continue
                self.chdb.query(create)
                path = Path(tmp) / f"{name}.tsv"
                # DateTime as seconds: 18.16 writes the zero time as 0000-00-00 00:00:00, which the current
                # engine does not read back as zero
                cols = [line.split("\t") for line in self.old(
                    f"SELECT name, type FROM system.columns WHERE database = '{self.db}' "
                    f"AND table = '{name}' FORMAT TabSeparated").splitlines()]
                select = ", ".join(f"toUInt32({n}) AS {n}" if t == "DateTime" else n for n, t in cols)
                structure = ", ".join(f"{n} {'UInt32' if t == 'DateTime' else t}" for n, t in cols)
                path.write_text(self.old(f"SELECT {select} FROM {self.db}.{name} FORMAT TabSeparated"))
                self.chdb.query(f"INSERT INTO {self.db}.{name} SELECT * FROM file('{path}', "
                                f"'TabSeparated', '{structure}')")
        for create in views:
            self.chdb.query(create)
        self.chdb.query(f"USE {self.db}")

    def old(self, sql: str, name: str | None = None) -> str:
        """On ClickHouse 18.16 as the dashboards' read-only user, as Grafana would."""
        url = self.http + "?" + urllib.parse.urlencode({"database": self.db, "user": "vigie_reader",
                                                         "password": self.reader_password})
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, data=sql.encode()), timeout=60) as r:
            out = r.read().decode()
        if name:
            self.timings[name].append(time.perf_counter() - started)
        return out

    def both(self, sql: str, name: str) -> str:
        old = self.old(sql + "\nFORMAT TabSeparated", name)
        new = self.chdb.query(sql, "TabSeparated").data()
        if old != new:
            diff = next(((a, b) for a, b in zip(old.splitlines(), new.splitlines(), strict=False) if a != b),
                        (f"{len(old.splitlines())} lines", f"{len(new.splitlines())} lines"))
            raise AssertionError(f"{name}: ClickHouse 18.16 and the current engine disagree, first on:\n"
                                 f"  18.16:   {diff[0]}\n  current: {diff[1]}")
        return old
