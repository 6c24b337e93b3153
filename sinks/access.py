"""The dashboards' read-only ClickHouse user, created by `vigie db migrate`.

On a ClickHouse with SQL users (20.5 and later, production runs 24.x+) the user is created with SQL and
granted SELECT on Vigie's database only: it can read and set query settings (the Grafana plugin sets
``max_execution_time``) but never write. ClickHouse 18.16 (the local server) has no SQL users: there the
user is defined in users.xml with a read-only profile (``deploy/clickhouse/users.xml.tmpl``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

SQL_USERS_SINCE = (20, 5)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def reader_statements(database: str, user: str, password: str) -> list[str]:
    if not _NAME.match(user) or not _NAME.match(database):
        raise ValueError(f"invalid user or database name: {user!r}, {database!r}")
    digest = hashlib.sha256(password.encode()).hexdigest()  # the password itself never reaches the server logs
    return [
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_hash BY '{digest}' DEFAULT DATABASE {database}",
        f"ALTER USER {user} IDENTIFIED WITH sha256_hash BY '{digest}' DEFAULT DATABASE {database}",
        f"GRANT SELECT ON {database}.* TO {user}",
    ]


def server_version(execute: Callable[..., Any]) -> tuple[int, int]:
    (version,), = execute("SELECT version()")
    major, minor = (int(x) for x in str(version).split(".")[:2])
    return major, minor


def ensure_reader(execute: Callable[..., Any], database: str, user: str, password: str) -> str:
    """Create or update the read-only user; returns what was done, for the operator."""
    version = server_version(execute)
    if version < SQL_USERS_SINCE:
        return (f"read-only user: ClickHouse {version[0]}.{version[1]} has no SQL users; {user!r} must be "
                "defined in its users.xml (the local stack does)")
    if not password:
        return f"read-only user: skipped (set VIGIE_CLICKHOUSE_READER_PASSWORD to create {user!r})"
    for stmt in reader_statements(database, user, password):
        execute(stmt)
    return f"read-only user {user!r}: SELECT on {database}.*"
