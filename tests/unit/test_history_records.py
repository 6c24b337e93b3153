"""Event files read by the batch path: the bytes of each event and its Kafka partition."""

from __future__ import annotations

import json
from pathlib import Path

from core.settings import Settings
from streams.batch import PartitionOf, partition_for, records_from_jsonl

S = Settings()
EVENT = {"schema_version": 1, "event_id": "e1", "event_time": "2026-01-05T00:00:00Z", "vehicle_id": "V1",
         "note": "a \"quoted\" é"}


def test_written_lines_give_their_event_bytes_and_other_layouts_are_parsed(tmp_path: Path) -> None:
    compact = json.dumps(EVENT, separators=(",", ":"), ensure_ascii=False)
    path = tmp_path / "events.jsonl"
    path.write_text(
        f'{{"topic":"vehicle-status","key":"S01","event":{compact}}}\n'  # as `vigie simulate --output` writes
        + json.dumps({"event": EVENT, "key": "S02", "topic": "crew-status"}) + "\n"  # another key order
        + json.dumps({"topic": "interventions", "key": "I1", "event": EVENT}, indent=None) + "\n",
        encoding="utf-8")
    records = list(records_from_jsonl(path, S))
    assert [r.topic for r in records] == [S.topic("vehicle-status"), S.topic("crew-status"), S.topic("interventions")]
    assert [r.key for r in records] == [b"S01", b"S02", b"I1"]
    assert all(json.loads(r.value) == EVENT for r in records)
    assert records[0].value == compact.encode()
    assert [r.offset for r in records] == [0, 1, 2]
    assert records[1].partition == partition_for(b"S02", S.topic_partitions)


def test_keys_with_escapes_are_parsed_not_matched(tmp_path: Path) -> None:
    compact = json.dumps(EVENT, separators=(",", ":"), ensure_ascii=False)
    path = tmp_path / "events.jsonl"
    path.write_text('{"topic":"vehicle-status","key":"S\\"1","event":' + compact + "}\n"
                    '{"topic":"vehicle-status","key":"S\\u00e9","event":' + compact + "}\n", encoding="utf-8")
    records = list(records_from_jsonl(path, S))
    assert [r.key for r in records] == [b'S"1', "Sé".encode()]
    assert records[1].partition == partition_for("Sé".encode(), S.topic_partitions)
    assert all(r.value == compact.encode() for r in records)


def test_remembered_partitions_stay_kafkas_past_the_memory_bound() -> None:
    partition_of = PartitionOf(7, max_keys=3)
    keys = [f"K{i}".encode() for i in range(10)] * 2
    assert [partition_of(k) for k in keys] == [partition_for(k, 7) for k in keys]
    assert len(partition_of._known) <= 3
