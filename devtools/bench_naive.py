"""The naive reference for ``vigie bench``: a plain per-event Faust agent with Vigie's semantics (decode,
validate, the same state machine and windows) and one table write per event, no batching and no
ClickHouse. Run as ``python -m devtools.bench_naive BOOTSTRAP GROUP TOTAL VEHICLE_TOPIC INTERVENTION_TOPIC``;
prints ``RESULT <events> <seconds>`` (first event to last)."""

from __future__ import annotations

import sys

import faust

from core.settings import Settings
from devtools.bench_noop import make_counter, run_reference_worker
from schemas.codec import InvalidEvent, decode_intervention, decode_vehicle_status
from schemas.reference import Reference, UnknownReference
from streams.crewing import Crewing
from streams.faust_compat import state_table
from streams.interventions import InterventionState
from streams.processors import interventions as interventions_processor
from streams.processors import stations as stations_processor
from streams.state import StationOutput, StationState


def main() -> None:
    bootstrap, group, total, vehicle_topic, intervention_topic = sys.argv[1:]
    expected = int(total)
    settings = Settings()
    reference = Reference.load(settings.reference_dir)
    app = faust.App(group, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False, autodiscover=False,
                    broker_session_timeout=3, broker_rebalance_timeout=3, broker_heartbeat_interval=1,
                    consumer_auto_offset_reset="earliest", topic_allow_declare=True,
                    producer_max_batch_size=settings.kafka_producer_max_batch_bytes)
    raw = faust.Schema(key_serializer="raw", value_serializer="raw")
    (station_codec,) = stations_processor.PROCESSOR.states
    intervention_codec = interventions_processor.PROCESSOR.states[0]
    stations = state_table(app, "naive-stations", settings.topic_partitions, station_codec.dumps, station_codec.loads)
    interventions = state_table(app, "naive-interventions", settings.topic_partitions, intervention_codec.dumps,
                                intervention_codec.loads)
    counted = make_counter(expected)
    crewing = Crewing(reference.crew_rules)

    @app.agent(app.topic(vehicle_topic, schema=raw))
    async def vehicles(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                ev = decode_vehicle_status(value)
                reference.check_vehicle_event(ev)
            except (InvalidEvent, UnknownReference):
                counted()
                continue
            t = ev.event_time.timestamp()
            st = stations.get(ev.home_station) or StationState.new(ev.home_station, reference, 60)
            out = StationOutput()
            st.apply(ev, t, out)
            st.seal(t - settings.allowed_lateness_seconds, out, crewing)
            stations[ev.home_station] = st  # one changelog write per event
            counted()

    @app.agent(app.topic(intervention_topic, schema=raw))
    async def interventions_agent(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                ev = decode_intervention(value)
            except InvalidEvent:
                counted()
                continue
            st = interventions.get(ev.intervention_id) or InterventionState(ev.intervention_id)
            st.apply(ev, ev.event_time.timestamp())
            interventions[ev.intervention_id] = st
            counted()

    run_reference_worker(app)


if __name__ == "__main__":
    main()
