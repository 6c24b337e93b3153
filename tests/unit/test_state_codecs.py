"""The state's changelog codecs: what ``compact_json`` writes reads back as the standard library would have written
it, and every registered processor's state survives its codec (what a restarted worker recovers)."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.settings import Settings
from devtools.simulator import Simulator, with_processors
from schemas.codec import encode
from schemas.reference import Reference
from streams import processor as processor_module
from streams import registry
from streams.batch import BatchRunner
from streams.partitioning import partition_for
from streams.processor import Record, compact_json
from streams.processors import alerts as alerts_module
from streams.processors import interventions as interventions_module
from tests.helpers import NoRows

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | st.text(max_size=8)
documents = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(st.text(max_size=6) | st.integers(-99, 99), inner, max_size=4)),
    max_leaves=30)


@given(documents)
@settings(max_examples=300, deadline=None)
def test_compact_json_reads_back_as_the_standard_library_writes(doc: Any) -> None:
    assert json.loads(compact_json(doc)) == json.loads(json.dumps(doc, separators=(",", ":")))


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False


def test_every_processors_state_survives_its_changelog_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    """A simulated day with crews, major incidents and every registered processor's own simulator, through the
    batch path; then each state entry written and read back as recovery does: written again, the same bytes, and
    no document handed to ``compact_json`` holds a non-finite number (which it would turn into null)."""
    handed: list[Any] = []

    def watched(doc: Any) -> bytes:
        handed.append(doc)
        return compact_json(doc)

    for module in (processor_module, interventions_module, alerts_module):
        monkeypatch.setattr(module, "compact_json", watched)
    s = Settings(topic_partitions=4)
    ref = Reference.load(s.reference_dir)
    sim = Simulator(ref, seed=31, start=datetime(2026, 3, 2, tzinfo=UTC), major_incidents_per_day=3)
    topics = registry.logical_topics(s)
    records = [Record(topics[e.topic], partition_for(e.key.encode(), s.topic_partitions), i, e.key.encode(),
                      encode(e.event)) for i, e in enumerate(with_processors(sim, 86400, s, seed=31))
               if e.topic in topics]
    runner = BatchRunner(s, registry.processors(s), NoRows(), ref)
    asyncio.run(runner.run(records, chunk_events=5000))
    checked: dict[str, int] = {}
    for run in runner.runs:
        for state in run.proc.states:
            for key, value in run.stores[state.name].items():
                handed.clear()
                raw = state.dumps(value)
                assert len(handed) == 1 and not _non_finite(handed[0]), (state.name, key)
                assert state.dumps(state.loads(raw)) == raw, (state.name, key)
                checked[state.name] = checked.get(state.name, 0) + 1
    # every registered state had entries to check (stations, interventions, sectors, alert book, presence, stocks)
    assert checked.keys() == {state.name for run in runner.runs for state in run.proc.states}, checked


def test_a_changelog_value_written_by_the_standard_encoder_still_reads_back() -> None:
    """Before ``compact_json``, the alert book's unset times went out as NaN and -Infinity (not JSON; orjson
    refuses them): a worker recovering such a changelog reads them back as they were."""
    from streams.alerting import Alert, Phase
    from streams.processor import state_from_json

    old = json.dumps([Phase.INACTIVE.value, False, math.nan, math.nan, -math.inf], separators=(",", ":")).encode()
    assert b"NaN" in old and b"-Infinity" in old
    data = state_from_json(old)
    assert math.isnan(data[2]) and math.isnan(data[3]) and data[4] == -math.inf
    fresh = Alert.from_list(None, data)  # type: ignore[arg-type]  # the threshold plays no part here
    assert compact_json(fresh.to_list()) == b'["inactive",false,null,null,null]'
    back = Alert.from_list(None, state_from_json(compact_json(fresh.to_list())))  # type: ignore[arg-type]
    assert math.isnan(back.since) and math.isnan(back.worst) and back.clock == -math.inf
