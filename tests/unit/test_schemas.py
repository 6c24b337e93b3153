import json
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, Settings
from schemas.codec import InvalidEvent, decode_intervention, decode_vehicle_status, encode
from schemas.export import json_schemas
from schemas.reference import Reference, UnknownReference
from streams.registry import event_models
from tests.helpers import iev, small_reference, vev

JSONSCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "jsonschema"

GOOD = {
    "schema_version": 1, "event_id": "e-1", "event_time": "2026-03-01T10:00:00+01:00", "vehicle_id": "V1",
    "vehicle_type": "VSAV", "home_station": "S1", "status": "en_route", "intervention_id": "I1",
    "position": {"lat": 48.85, "lon": 2.35},
}


def raw(**changes: object) -> bytes:
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_valid_event_round_trips() -> None:
    ev = decode_vehicle_status(raw())
    assert ev.event_time.utcoffset() is not None
    assert decode_vehicle_status(encode(ev)) == ev


@pytest.mark.parametrize(("doc", "reason"), [
    (raw(status="flying"), "status: Input should be 'available_at_station'"),
    (raw(event_time="2026-03-01T10:00:00"), "event_time: Input should have timezone info"),
    (raw(vehicle_id=...), "vehicle_id: Field required"),
    (raw(position={"lat": 91.0, "lon": 2.0}), "position.lat: Input should be less than or equal to 90"),
    (raw(position={"lat": 48.0, "lon": -181.0}), "position.lon: Input should be greater than or equal to -180"),
    (raw(intervention_id=None), "requires an intervention_id"),
    (raw(schema_version=2), "schema_version: Input should be 1"),
    (raw(extra_field=1), "extra_field: Extra inputs are not permitted"),
    (raw(vehicle_type=7), "vehicle_type: Input should be a valid string"),
    (b"\x00\xffgarbage", "not valid JSON"),
    (None, "empty message"),
])
def test_invalid_events_are_rejected_with_precise_reason(doc: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as e:
        decode_vehicle_status(doc)
    assert reason in e.value.reason


def test_intervention_event_rules() -> None:
    ok = encode(iev("I1", "opened", 1_700_000_000))
    assert decode_intervention(ok).lifecycle.value == "opened"
    bad = json.loads(ok)
    bad["location"]["lat"] = -100
    bad["lifecycle"] = "reopened"
    with pytest.raises(InvalidEvent) as e:
        decode_intervention(json.dumps(bad).encode())
    assert "location.lat" in e.value.reason and "lifecycle" in e.value.reason


@pytest.mark.parametrize(("event", "reason"), [
    (vev("V9", "available_at_station", 1.0), "unknown vehicle 'V9'"),
    (vev("V1", "available_at_station", 1.0, vtype="ZZZ"), "unknown type 'ZZZ'"),
    (vev("V1", "available_at_station", 1.0, vtype="FPT"), "is a VSAV in the fleet, the event says FPT"),
    (vev("V1", "available_at_station", 1.0, station="S2"), "belongs to S1 in the fleet"),
])
def test_reference_checks(event, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownReference) as e:
        small_reference().check_vehicle_event(event)
    assert reason in str(e.value)


def test_checked_in_json_schemas_match_the_models() -> None:
    models = event_models(Settings())
    assert {"VehicleStatusEvent", "InterventionEvent", "CrewStatusEvent"} <= set(models)
    for path, text in json_schemas(models.values()).items():
        assert path.exists(), f"{path} missing: run `make schemas`"
        assert path.read_text() == text, f"{path} is stale: run `make schemas`"


def test_json_schema_rejects_what_the_model_rejects() -> None:
    schema = json.loads((JSONSCHEMA_DIR / "VehicleStatusEvent.json").read_text())
    assert set(schema["required"]) >= {"event_id", "event_time", "schema_version", "vehicle_id", "status"}
    assert schema["additionalProperties"] is False
    status_enum = schema["$defs"]["VehicleStatus"]["enum"]
    assert "available_on_radio" in status_enum and "flying" not in status_enum


def test_checked_in_reference_loads() -> None:
    ref = Reference.load(PROJECT_ROOT / "deploy" / "reference" / "paris-sim")
    assert 70 <= len(ref.stations) <= 90 and 500 <= len(ref.fleet) <= 700
    assert {"VSAV", "FPT", "EPA"} <= {v.vehicle_type for v in ref.fleet.values()}
