"""Versioned, idempotent DDL migrations (``sinks/migrations/NNNN_name.sql``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# ClickHouse 18.16 has no ``ADD COLUMN IF NOT EXISTS``: such a statement is skipped when the column exists
_ADD_COLUMN = re.compile(r"^ALTER\s+TABLE\s+(\w+)\.(\w+)\s+ADD\s+COLUMN\s+(\w+)\s", re.IGNORECASE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> list[str]:
    """Split a migration file on ``;`` at line ends, dropping ``--`` comment lines."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def load_migrations(database: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    out = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path.name}")
        sql = path.read_text(encoding="utf-8").replace("{db}", database)
        out.append(Migration(int(m.group(1)), m.group(2), tuple(split_statements(sql))))
    return out


def bootstrap_statements(database: str) -> list[str]:
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree() ORDER BY version",
        # a plugin processor's own migrations (its folder), numbered on their own
        f"CREATE TABLE IF NOT EXISTS {database}.processor_migrations "
        "(processor String, version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree() ORDER BY (processor, version)",
    ]


def pending(execute: Callable[..., list[tuple]], database: str,  # type: ignore[type-arg]
            plugins: Iterable[tuple[str, Path]] = ()) -> list[tuple[tuple[str, ...], list[Migration]]] | None:
    """The migrations not applied yet, per scope (``()``: Vigie's; ``(processor,)``: a plugin's, in its folder),
    found with reads only; None while the bookkeeping tables do not exist. An account that may not change tables
    (the pipeline's writer) can so run `vigie history` or a replay on a database the migrator has prepared."""
    tables = {row[0] for row in execute(f"SELECT name FROM system.tables WHERE database = '{database}'")}
    if not {"schema_migrations", "processor_migrations"} <= tables:
        return None
    done = {row[0] for row in execute(f"SELECT version FROM {database}.schema_migrations")}
    out: list[tuple[tuple[str, ...], list[Migration]]] = [
        ((), [m for m in load_migrations(database) if m.version not in done])]
    for processor, directory in plugins:
        done = {row[0] for row in execute(f"SELECT version FROM {database}.processor_migrations "
                                          f"WHERE processor = '{processor}'")}
        out.append(((processor,), [m for m in load_migrations(database, directory) if m.version not in done]))
    return out


def migrate(execute: Callable[..., list[tuple]], database: str,  # type: ignore[type-arg]
            plugins: Iterable[tuple[str, Path]] = ()) -> list[Migration]:
    """Apply the migrations not applied yet (Vigie's, then each plugin's: (processor name, its folder));
    returns those applied now. Safe to run again; no statement that changes anything when nothing is left."""
    plugins = list(plugins)
    todo = pending(execute, database, plugins)
    if todo is None:
        for stmt in bootstrap_statements(database):
            execute(stmt)
        todo = pending(execute, database, plugins)
        assert todo is not None
    applied = []
    for scope, migrations in todo:
        record = (f"INSERT INTO {database}.processor_migrations (processor, version, name) VALUES" if scope
                  else f"INSERT INTO {database}.schema_migrations (version, name) VALUES")
        applied += _apply(execute, database, migrations, record, scope)
    return applied


def _apply(execute: Callable[..., list[tuple]], database: str, todo: list[Migration],  # type: ignore[type-arg]
           record: str, scope: tuple[str, ...]) -> list[Migration]:
    applied = []
    for mig in todo:
        for stmt in mig.statements:  # every statement is IF NOT EXISTS (or checked): a half-applied file re-runs
            add = _ADD_COLUMN.match(stmt)
            if add and execute(
                f"SELECT count() FROM system.columns WHERE database = '{add.group(1)}' "
                f"AND table = '{add.group(2)}' AND name = '{add.group(3)}'"
            )[0][0]:
                continue
            execute(stmt)
        execute(record, [(*scope, mig.version, mig.name)])
        applied.append(mig)
    return applied
