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


def test_a_dead_lettered_crew_record_keeps_no_value_outside_the_schema() -> None:
    from streams.processor import DeadLetter, Record
    from streams.processors.stations import PROCESSOR, StationEngine
    from tests.helpers import T0, cev, small_reference

    crew_input = next(i for i in PROCESSOR.inputs if i.topic == "crew-status")
    good = json.loads(cev("P1", "available", T0).model_dump_json())
    raw = json.dumps({**good, "full_name": "Jeanne Dupont", "phone": "+33 6 12 34 56 78"}).encode()
    result = StationEngine(small_reference(), 60, 30).process([Record("crew-status", 0, 7, b"S1", raw)],
                                                               {"stations": {}})
    (letter,) = result.dead_letters
    stored = crew_input.dead_letter(letter).to_json()
    assert b"Jeanne" not in stored and b"Dupont" not in stored and b"12 34" not in stored
    import base64
    doc = json.loads(stored)
    kept = json.loads(base64.b64decode(doc["value_b64"]))
    assert kept["person_id"] == "P1" and kept["full_name"] == "<removed: not in the schema>"
    assert "full_name" in doc["reason"] and doc["value_redacted"] and doc["value_size"] == len(raw)
    # not JSON: nothing of the value is kept; vehicle records keep theirs whole
    garbage = DeadLetter(Record("crew-status", 0, 8, b"S1", b"Jeanne Dupont, not JSON"), "not valid JSON")
    assert b"Jeanne" not in crew_input.dead_letter(garbage).to_json()
    vehicle_input = next(i for i in PROCESSOR.inputs if i.topic == "vehicle-status")
    assert vehicle_input.dead_letter(garbage) is garbage
