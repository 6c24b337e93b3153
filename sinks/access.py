"""Vigie's ClickHouse accounts besides the migrator, created by `vigie db migrate` (which runs as the migrator):

- the **writer** (``VIGIE_CLICKHOUSE_USER``), the pipeline's: SELECT and INSERT on Vigie's database, DDL refused
  by a settings profile it cannot change (``allow_ddl = 0``);
- the **reader** (``VIGIE_CLICKHOUSE_READER_USER``), the dashboards': SELECT on the tables they read only, with
  limits it cannot raise and a quota.

On a ClickHouse with SQL users (20.5 and later, production runs 24.x+) they are created with SQL, their passwords
stored as salted SHA-256 from 22.6 (unsalted before: the only form those versions know). ClickHouse 18.16 (the local
server) has no SQL users: there they are defined in users.xml (``deploy/clickhouse/users.xml.tmpl``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

SQL_USERS_SINCE = (20, 5)
SALTED_HASH_SINCE = (22, 6)  # CREATE USER ... IDENTIFIED WITH sha256_hash BY 'hash' SALT 'salt' (ClickHouse #37377)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: the dashboards' user's limits: it may set query settings (the Grafana plugin does) but never above these
READER_LIMITS = {"max_execution_time": 60, "max_memory_usage": 4_000_000_000, "max_rows_to_read": 2_000_000_000}
READER_QUERIES_PER_MINUTE = 1200  # a wall screen refreshing every 5 s runs ~30 queries per refresh


def identified_by(password: str, salted: bool) -> str:
    """The password as ClickHouse stores it (the password itself never reaches the server's logs): SHA-256 of the
    password and a random salt when the server knows salts, else of the password alone."""
    if not salted:
        return f"IDENTIFIED WITH sha256_hash BY '{hashlib.sha256(password.encode()).hexdigest()}'"
    salt = secrets.token_hex(16)
    return f"IDENTIFIED WITH sha256_hash BY '{hashlib.sha256((password + salt).encode()).hexdigest()}' SALT '{salt}'"


def _check_names(*names: str) -> None:
    if not all(_NAME.match(n) for n in names):
        raise ValueError(f"invalid user, database or table name among {names!r}")


def reader_grants(database: str, user: str, tables: Iterable[str]) -> list[str]:
    """SELECT on ``tables`` of ``database`` only (what the dashboards read: no raw payloads, no rows about one
    person); ``REVOKE`` first, so an upgraded server loses an older database-wide grant."""
    tables = list(tables)
    _check_names(database, user, *tables)
    return [f"REVOKE ALL ON {database}.* FROM {user}",
            *(f"GRANT SELECT ON {database}.{t} TO {user}" for t in tables)]


def reader_statements(database: str, user: str, password: str, tables: Iterable[str], salted: bool = False
                      ) -> list[str]:
    """The read-only user: a settings profile (read-only, limits it cannot raise), a quota, and its grants."""
    _check_names(database, user)
    identified = identified_by(password, salted)
    limits = ", ".join(f"{k} = {v} MAX {v}" for k, v in READER_LIMITS.items())
    profile, quota = f"{user}_profile", f"{user}_quota"
    return [
        f"CREATE SETTINGS PROFILE OR REPLACE {profile} SETTINGS readonly = 2, {limits}",
        f"CREATE USER IF NOT EXISTS {user} {identified} DEFAULT DATABASE {database} SETTINGS PROFILE '{profile}'",
        f"ALTER USER {user} {identified} DEFAULT DATABASE {database} SETTINGS PROFILE '{profile}'",
        f"CREATE QUOTA OR REPLACE {quota} FOR INTERVAL 1 minute MAX queries = {READER_QUERIES_PER_MINUTE} TO {user}",
        *reader_grants(database, user, tables),
    ]


def writer_grants(database: str, user: str) -> list[str]:
    """Rows in, rows out, on Vigie's database (a replay run's too): nothing else."""
    _check_names(database, user)
    return [f"REVOKE ALL ON {database}.* FROM {user}", f"GRANT SELECT, INSERT ON {database}.* TO {user}"]


def writer_statements(database: str, user: str, password: str, salted: bool = False) -> list[str]:
    """The pipeline's user: reads and inserts; a profile it cannot change refuses DDL (``allow_ddl = 0``), so
    even a grant given by mistake later could not let the worker drop or alter a table."""
    _check_names(database, user)
    identified = identified_by(password, salted)
    profile = f"{user}_profile"
    return [
        f"CREATE SETTINGS PROFILE OR REPLACE {profile} SETTINGS allow_ddl = 0 READONLY",
        f"CREATE USER IF NOT EXISTS {user} {identified} DEFAULT DATABASE {database} SETTINGS PROFILE '{profile}'",
        f"ALTER USER {user} {identified} DEFAULT DATABASE {database} SETTINGS PROFILE '{profile}'",
        *writer_grants(database, user),
    ]


def server_version(execute: Callable[..., Any]) -> tuple[int, int]:
    (version,), = execute("SELECT version()")
    major, minor = (int(x) for x in str(version).split(".")[:2])
    return major, minor


def _ensure(execute: Callable[..., Any], role: str, user: str, password: str, password_setting: str,
            statements: Callable[[bool], list[str]]) -> str | None:
    """Run ``statements(salted)`` on a server with SQL users when the password is known; else say why not."""
    version = server_version(execute)
    if version < SQL_USERS_SINCE:
        return (f"{role}: ClickHouse {version[0]}.{version[1]} has no SQL users; {user!r} must be defined in its "
                "users.xml (the local stack does)")
    if not password:
        return f"{role}: skipped (set {password_setting} to create {user!r})"
    for stmt in statements(version >= SALTED_HASH_SINCE):
        execute(stmt)
    return None


def ensure_reader(execute: Callable[..., Any], database: str, user: str, password: str, tables: Iterable[str]
                  ) -> str:
    """Create or update the read-only user; returns what was done, for the operator."""
    tables = list(tables)
    return _ensure(execute, "read-only user", user, password, "VIGIE_CLICKHOUSE_READER_PASSWORD",
                   lambda salted: reader_statements(database, user, password, tables, salted)) or (
        f"read-only user {user!r}: SELECT on {len(tables)} tables of {database}, limits and quota")


def ensure_writer(execute: Callable[..., Any], database: str, user: str, password: str, migrator: str) -> str:
    """Create or update the pipeline's user when it is not the migrator; returns what was done."""
    if user == migrator:
        return (f"writer: the pipeline connects as the migrator {user!r} (set VIGIE_CLICKHOUSE_MIGRATOR_USER to "
                "keep DDL away from the worker)")
    return _ensure(execute, "writer", user, password, "VIGIE_CLICKHOUSE_PASSWORD",
                   lambda salted: writer_statements(database, user, password, salted)) or (
        f"writer {user!r}: SELECT and INSERT on {database}, DDL refused (allow_ddl = 0)")
