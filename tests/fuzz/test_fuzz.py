"""Fuzzing the parsers that meet the outside world: the event decoders (any bytes from a topic) and the CAD
importer's row parser (any text in an export). Neither may fail other than with its own rejection (the
record is dead-lettered, the row reported), and what they accept must be whole.

`make test` runs a short, seeded run; `make fuzz` a long one with fresh seeds (VIGIE_FUZZ_EXAMPLES)."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import PROJECT_ROOT
from schemas.codec import InvalidEvent, decode, encode
from schemas.events import CrewStatusEvent, InterventionEvent, VehicleStatusEvent
from tests.helpers import T0, cev, iev, vev
from vigie.cad.importer import Importer, ImportReport
from vigie.cad.mapping import Mapping

LONG = "VIGIE_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(max_examples=int(os.environ.get("VIGIE_FUZZ_EXAMPLES", "300")), derandomize=not LONG,
                deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GOOD = {VehicleStatusEvent: json.loads(vev("V1", "dispatched", T0, "I1").model_dump_json()),
        InterventionEvent: json.loads(iev("I1", "opened", T0).model_dump_json()),
        CrewStatusEvent: json.loads(cev("P1", "assigned", T0, ("driver",), "V1", "I1").model_dump_json())}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4), max_leaves=12)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[type, bytes]:
    """A valid event with some fields replaced, dropped or added, or its JSON cut or flipped."""
    model = draw(st.sampled_from(list(GOOD)))
    doc: dict[str, Any] = dict(GOOD[model])
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["replace", "drop", "add", "time"]))
        key = draw(st.sampled_from(sorted(doc) or ["x"]))
        if action == "replace":
            doc[key] = draw(JSON)
        elif action == "drop":
            doc.pop(key, None)
        elif action == "add":
            doc[draw(st.text(max_size=10))] = draw(JSON)
        else:
            doc["event_time"] = draw(st.text(max_size=32) | st.datetimes().map(lambda d: d.isoformat()))
    raw = json.dumps(doc).encode()
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=8)) + raw[cut:]
    return model, raw


@given(case=mutated())
@FUZZ
def test_decoders_reject_with_a_reason_or_accept_a_whole_event(case: tuple[type, bytes]) -> None:
    model, raw = case
    try:
        event = decode(model, raw)
    except InvalidEvent as e:
        assert e.reason
        return
    assert decode(model, encode(event)) == event  # what is accepted is whole: it round-trips


@given(raw=st.binary(max_size=300))
@FUZZ
def test_decoders_take_any_bytes(raw: bytes) -> None:
    for model in GOOD:
        try:
            decode(model, raw)
        except InvalidEvent:
            pass


SF_MAPPING = Mapping.load(PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd.toml")
SF_ROW = {  # one row of the SF export, as the importer reads it
    "Call Number": "170010013", "Unit ID": "E01", "Unit Type": "ENGINE", "RowID": "170010013-E01",
    "Call Type": "Structure Fire", "Received DtTm": "01/01/2017 12:00:14 AM",
    "Dispatch DtTm": "01/01/2017 12:01:20 AM", "Response DtTm": "01/01/2017 12:02:00 AM",
    "On Scene DtTm": "01/01/2017 12:06:33 AM", "Transport DtTm": "", "Hospital DtTm": "",
    "Available DtTm": "01/01/2017 12:40:10 AM", "Final Priority": "3", "Battalion": "B01",
    "Station Area": "01", "Location": "(37.7749, -122.4194)",
}
TIMEY = st.one_of(st.text(max_size=30), st.datetimes().map(lambda d: d.strftime("%m/%d/%Y %I:%M:%S %p")),
                  st.sampled_from(["03/12/2017 02:30:00 AM", "11/05/2017 01:30:00 AM", "13/45/2017 99:00:00 PM",
                                   "", "  ", "01/01/0001 12:00:00 AM", "12/31/9999 11:59:59 PM"]))


@given(changes=st.dictionaries(st.sampled_from(sorted(SF_ROW)), TIMEY, max_size=8))
@FUZZ
def test_the_cad_row_parser_reports_or_imports_never_crashes(changes: dict[str, str]) -> None:
    row = {**SF_ROW, **changes}
    importer = Importer(SF_MAPPING)
    report = ImportReport("fuzz", "sffd")
    responses = importer.parse([row], report)
    assert report.rows == 1 and report.imported + sum(report.rejected.values()) == 1
    if responses:
        Importer.resolve_overlaps(responses, report)
        try:
            ref = importer.derive_reference(responses)
            importer.events(responses, ref, report)
        except ValueError as e:  # an id the schema refuses is reported with its reason, not a crash elsewhere
            assert "validation error" in str(e)


def test_the_sf_row_is_imported_as_it_stands() -> None:
    """The fuzz base is a real, importable row (else every case above would be a rejection)."""
    report = ImportReport("fuzz", "sffd")
    assert len(Importer(SF_MAPPING).parse([SF_ROW], report)) == 1, report.rejected

