"""Personal data stays out: no event schema and no table has a field that could hold a person's name
or contact details; firefighters are known by a pseudonymous id only."""

from __future__ import annotations

import json
import re

from core.settings import Settings
from schemas.events import CrewStatusEvent
from schemas.export import schema_path
from sinks.migrate import load_migrations
from streams.registry import event_models, tables

# a field name containing one of these words could hold personal data
PERSONAL = re.compile(r"(^|_)(name|surname|firstname|lastname|forename|fullname|given|family|email|mail|phone|"
                      r"mobile|birth|birthday|age|address|gender|ssn|nir|rank|grade|reason)(_|$)")


def _schema_fields(node: object) -> set[str]:
    """Every property name anywhere in a JSON Schema."""
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out |= set(value)
            out |= _schema_fields(value)
    elif isinstance(node, list):
        for item in node:
            out |= _schema_fields(item)
    return out


def _created_columns() -> dict[str, set[str]]:
    """table -> the columns the migrations give it (CREATE TABLE bodies and ADD COLUMN)."""
    tables: dict[str, set[str]] = {}
    for mig in load_migrations("db"):
        for stmt in mig.statements:
            create = re.match(r"CREATE TABLE IF NOT EXISTS db\.(\w+) \((.*)\) ENGINE", stmt, re.S)
            if create:
                tables[create.group(1)] = {line.strip().split()[0] for line in create.group(2).split(",\n")
                                           if line.strip()}
            add = re.match(r"ALTER TABLE db\.(\w+) ADD COLUMN (\w+)", stmt)
            if add:
                tables[add.group(1)].add(add.group(2))
    return tables


def test_no_event_schema_has_a_personal_field() -> None:
    for name, model in event_models(Settings()).items():
        fields = _schema_fields(model.model_json_schema())
        checked_in = _schema_fields(json.loads(schema_path(model).read_text()))
        assert fields == checked_in
        assert not [f for f in fields if PERSONAL.search(f)], name
    assert "person_id" in CrewStatusEvent.model_fields  # the only identity a crew event carries


def test_no_table_has_a_personal_column() -> None:
    created = _created_columns()
    assert {spec.name for spec in tables(Settings())} <= set(created)
    assert "person_id" in created["staff_state"] and "qualifications" in created["staff_state"]
    for table, columns in created.items():
        assert not [c for c in columns if PERSONAL.search(c)], table


def test_the_check_would_catch_a_name_field() -> None:
    assert PERSONAL.search("last_name") and PERSONAL.search("name") and PERSONAL.search("phone")
    assert not PERSONAL.search("person_id") and not PERSONAL.search("station_id")
