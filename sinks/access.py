"""The dashboards' read-only ClickHouse user, created by `vigie db migrate`.

On a ClickHouse with SQL users (20.5 and later, production runs 24.x+) the user is created with SQL and
granted SELECT on Vigie's database only: it can read and set query settings (the Grafana plugin sets
``max_execution_time``) but never write. ClickHouse 18.16 (the local server) has no SQL users: there the
user is defined in users.xml with a read-only profile (``deploy/clickhouse/users.xml.tmpl``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any

SQL_USERS_SINCE = (20, 5)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: the dashboards' user's limits: it may set query settings (the Grafana plugin does) but never above these
READER_LIMITS = {"max_execution_time": 60, "max_memory_usage": 4_000_000_000, "max_rows_to_read": 2_000_000_000}
READER_QUERIES_PER_MINUTE = 1200  # a wall screen refreshing every 5 s runs ~30 queries per refresh


def reader_statements(database: str, user: str, password: str, tables: Iterable[str]) -> list[str]:
    """The read-only user: a settings profile (read-only, limits it cannot raise), a quota, and SELECT on
    ``tables`` only (what the dashboards read: no raw payloads, no rows about one person)."""
    tables = list(tables)
    if not all(_NAME.match(n) for n in (user, database, *tables)):
        raise ValueError(f"invalid user, database or table name: {user!r}, {database!r}, {tables!r}")
    digest = hashlib.sha256(password.encode()).hexdigest()  # the password itself never reaches the server logs
    limits = ", ".join(f"{k} = {v} MAX {v}" for k, v in READER_LIMITS.items())
    profile, quota = f"{user}_profile", f"{user}_quota"
    return [
        f"CREATE SETTINGS PROFILE OR REPLACE {profile} SETTINGS readonly = 2, {limits}",
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_hash BY '{digest}' DEFAULT DATABASE {database} "
        f"SETTINGS PROFILE '{profile}'",
        f"ALTER USER {user} IDENTIFIED WITH sha256_hash BY '{digest}' DEFAULT DATABASE {database} "
        f"SETTINGS PROFILE '{profile}'",
        f"CREATE QUOTA OR REPLACE {quota} FOR INTERVAL 1 minute MAX queries = {READER_QUERIES_PER_MINUTE} TO {user}",
        f"REVOKE ALL ON {database}.* FROM {user}",
        *(f"GRANT SELECT ON {database}.{t} TO {user}" for t in tables),
    ]


def server_version(execute: Callable[..., Any]) -> tuple[int, int]:
    (version,), = execute("SELECT version()")
    major, minor = (int(x) for x in str(version).split(".")[:2])
    return major, minor


def ensure_reader(execute: Callable[..., Any], database: str, user: str, password: str, tables: Iterable[str]
                  ) -> str:
    """Create or update the read-only user; returns what was done, for the operator."""
    version = server_version(execute)
    if version < SQL_USERS_SINCE:
        return (f"read-only user: ClickHouse {version[0]}.{version[1]} has no SQL users; {user!r} must be "
                "defined in its users.xml (the local stack does)")
    if not password:
        return f"read-only user: skipped (set VIGIE_CLICKHOUSE_READER_PASSWORD to create {user!r})"
    tables = list(tables)
    for stmt in reader_statements(database, user, password, tables):
        execute(stmt)
    return f"read-only user {user!r}: SELECT on {len(tables)} tables of {database}, limits and quota"
