"""The processor seam: what a stream processor declares, and the one contract its engine keeps.

A processor is one :class:`Processor` object (module attribute ``PROCESSOR``): its input topics and key
rule, its event models, its state tables and their codecs, its engine, and its output tables (typed row
classes, ``core.tables``). Everything that lists processors (settings' topic names, ``vigie topics``,
codecs, the live agents, the batch path, replays, JSON Schemas, migrations, dashboards, the simulator)
reads the registry (``streams/registry.py``), never a list of its own.

The engine is plain Python, without Kafka or Faust: the live runtime and the batch path hand it the
same records and state stores, and write what it returns.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Collection, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import BaseModel

from core.settings import Settings
from core.tables import TableSpec
from schemas.codec import InvalidEvent, decode
from schemas.reference import Reference

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Record:
    """One input record as the broker holds it (``topic``: the deployment's topic name)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


#: Dead letters keep at most this much of the original value; larger ones are cut, with size and hash.
DEAD_LETTER_MAX_VALUE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    reason: str
    # an input carrying personal data (``Input.personal``): only these fields of a JSON object keep their
    # values; others (a name a roster system added, say) are blanked; a value that is not a JSON object is
    # not kept. Size and hash of the original are kept either way.
    keep_fields: frozenset[str] | None = None

    def to_json(self) -> bytes:
        raw = self.record.value
        if self.keep_fields is not None and raw is not None:
            return self._redacted(raw)
        doc: dict[str, Any] = {
            "reason": self.reason,
            "source_topic": self.record.topic,
            "source_partition": self.record.partition,
            "source_offset": self.record.offset,
            "key_b64": base64.b64encode(self.record.key).decode() if self.record.key is not None else None,
            "value_b64": None,
            "rejected_at": time.time(),
        }
        if raw is not None:
            doc["value_b64"] = base64.b64encode(raw[:DEAD_LETTER_MAX_VALUE_BYTES]).decode()
            if len(raw) > DEAD_LETTER_MAX_VALUE_BYTES:  # the producer's request limit is ~1 MiB
                doc.update(value_truncated=True, value_size=len(raw), value_sha256=hashlib.sha256(raw).hexdigest())
        return json.dumps(doc).encode()

    def _redacted(self, raw: bytes) -> bytes:
        assert self.keep_fields is not None
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        kept = None
        if isinstance(value, dict):
            kept = json.dumps({k: v if k in self.keep_fields else "<removed: not in the schema>"
                               for k, v in value.items()}).encode()[:DEAD_LETTER_MAX_VALUE_BYTES]
        plain = DeadLetter(Record(self.record.topic, self.record.partition, self.record.offset, self.record.key,
                                  kept), self.reason)
        doc = json.loads(plain.to_json())
        doc.update(value_redacted=True, value_size=len(raw), value_sha256=hashlib.sha256(raw).hexdigest())
        return json.dumps(doc).encode()


def check_key(record: Record, expected: str, what: str, why: str = "records of one state entry share a partition"
              ) -> None:
    """The message key must be the entity's ``expected`` id (``what``: which field) — else ``InvalidEvent``."""
    if record.key is not None and record.key.decode("utf-8", "replace") != expected:
        raise InvalidEvent(f"key: message key {record.key.decode('utf-8', 'replace')!r} must be the {what} "
                           f"{expected!r} ({why})")


@dataclass(frozen=True, slots=True)
class Message:
    """A record an engine publishes to a topic another processor reads (``Processor.outputs``): the logical
    topic, its key (the reader's partitioning) and value. Live, it is sent before the batch's changelog, so a
    crash can repeat it but never lose it (its reader must take a repeat as a no-op); on the batch path it goes
    straight to its reader."""

    topic: str
    key: bytes
    value: bytes


#: state table name -> (key -> value); what an engine reads and changes
Stores = dict[str, MutableMapping[str, Any]]
#: (topic, partition) pairs that may still bring older records (see ``streams/runtime/hold.py``)
Behind = Collection[tuple[str, int]]


@dataclass(slots=True)
class BatchResult:
    """What an engine returns for one batch. ``changed``: per state table, the keys whose value changed
    and their partition — one changelog record each (a key no longer in the store: a tombstone)."""

    rows: dict[TableSpec, Sequence[Sequence[Any]]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    changed: dict[str, dict[str, int]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    late: int = 0
    newest_event_time: float = 0.0
    newest_by_topic: dict[str, float] = field(default_factory=dict)  # freshness per input topic
    messages: list[Message] = field(default_factory=list)  # to ``Processor.outputs`` topics, in order

    def mark(self, store: str, key: str, partition: int) -> None:
        self.changed.setdefault(store, {})[key] = partition

    def saw(self, topic: str, t: float) -> None:
        """An input event of ``topic`` at ``t``: the batch's newest event time and the freshness per topic."""
        self.newest_event_time = max(self.newest_event_time, t)
        self.newest_by_topic[topic] = max(t, self.newest_by_topic.get(topic, 0.0))

    def merge(self, other: BatchResult) -> None:
        """Add another result of the same processor (a tick after a batch)."""
        for spec, rows in other.rows.items():
            mine = self.rows.get(spec)
            if not mine:
                self.rows[spec] = rows
            elif rows:
                extend = getattr(mine, "extend", None)  # a WindowBlock keeps its runs
                if extend is None:
                    self.rows[spec] = mine = list(mine)
                    extend = mine.extend
                extend(rows)
        self.dead_letters += other.dead_letters
        self.messages += other.messages
        for store, keys in other.changed.items():
            self.changed.setdefault(store, {}).update(keys)
        self.outcomes.update(other.outcomes)
        self.late += other.late
        self.newest_event_time = max(self.newest_event_time, other.newest_event_time)
        for topic, t in other.newest_by_topic.items():
            self.newest_by_topic[topic] = max(t, self.newest_by_topic.get(topic, 0.0))


class Engine(Protocol):
    """One processor's logic. ``process`` applies a batch (records of the processor's inputs, in offset
    order per partition) to the stores and returns rows, dead letters and changed keys. ``tick`` runs
    every ``Processor.tick_seconds`` without records (re-seal windows, evict old state); None: nothing. An
    engine may also have ``finish(stores) -> BatchResult``: the batch path calls it once its input is over
    (what it holds back for records still to come, it gives then)."""

    def process(self, records: Sequence[Record], stores: Stores, behind: Behind | None = None) -> BatchResult: ...

    def tick(self, stores: Stores, behind: Behind | None, assigned: Collection[int]) -> BatchResult | None: ...


#: data whose newest event time is this close to the worker's clock is live; older, it is a replay or a backfill,
#: whose clock is its own events' (the worker's clock then says nothing about what is still to come)
LIVE_DATA_WITHIN_S = 600.0


@dataclass(frozen=True)
class TimeBound:
    """The latest plausible event time: live, the worker's clock plus ``skew_s``; ``skew_s`` None (the batch
    path): no bound. The clock is the wall clock, or a sped-up one from ``origin`` (see ``Settings``)."""

    skew_s: float | None = None
    origin: float = 0.0
    speed: float = 1.0
    wall: Callable[[], float] = time.time

    def now(self) -> float:
        wall = self.wall()
        return self.origin + (wall - self.origin) * self.speed if self.origin else wall

    def latest(self) -> float:
        """Read once per batch: events after it are refused (``check``)."""
        return math.inf if self.skew_s is None else self.now() + self.skew_s

    def check(self, t: float, latest: float) -> None:
        if t > latest:
            assert self.skew_s is not None
            raise InvalidEvent(
                f"event_time: {_iso(t)} is more than {self.skew_s:g} s ahead of the worker's clock "
                f"({_iso(latest - self.skew_s)}; VIGIE_MAX_CLOCK_SKEW_S)")


def decode_checked(rec: Record, model: type[M], key_field: str, time_bound: TimeBound, latest: float,
                   result: BatchResult) -> tuple[M, float] | None:
    """A record's event and its event time, checked as every processor checks them (the schema, the message key
    against ``key_field``, the live clock bound: ``latest`` read once per batch); else None, the record in
    ``result``'s dead letters with the reason."""
    try:
        ev = decode(model, rec.value)
        check_key(rec, getattr(ev, key_field), key_field)
        t = ev.event_time.timestamp()  # type: ignore[attr-defined]
        time_bound.check(t, latest)
    except InvalidEvent as e:
        result.dead_letters.append(DeadLetter(rec, str(e)))
        return None
    return ev, t


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


class StoredHistory(Protocol):
    """What a live engine may read of the history stored before it started (the deployment's database: an imported
    CAD history, ``make run``'s past weeks) — what its own state, fresh, does not hold."""

    def openings(self, since: float, until: float) -> Sequence[tuple[float, float, float]]:
        """(opened at, lat, lon) of each intervention opened in [since, until), as stored."""
        ...


@dataclass
class EngineContext:
    """What an engine factory gets. ``live``: the Kafka runtime (offsets grow per partition and records can be
    re-delivered after a crash); False on the batch path (one pass over a history). ``stored``: live, the history
    stored before (None: none to read)."""

    settings: Settings
    live: bool
    reference_override: Reference | None = None
    stored: StoredHistory | None = None

    @cached_property
    def reference(self) -> Reference:
        return self.reference_override or Reference.load(self.settings.reference_dir)

    def topic(self, logical: str) -> str:
        return self.settings.topic(logical)

    @cached_property
    def time_bound(self) -> TimeBound:
        """Live: events beyond the worker's clock + ``VIGIE_MAX_CLOCK_SKEW_S`` are refused; batch: no bound."""
        s = self.settings
        return TimeBound(s.max_clock_skew_s if self.live else None, s.clock_origin, s.clock_speed)


@dataclass(frozen=True)
class Input:
    """An input topic: its logical name (``Settings.topic`` maps it to the deployment's name), the event
    model of its values, and what its key is (records of one state entry must share a partition)."""

    topic: str
    model: type[BaseModel]
    key: str
    # the ClickHouse table keeping this topic's raw events (columns event_ts_ms, source_offset, payload and the
    # key column ``raw_key``): what the batch path and replays read back as history (None: not kept)
    raw_table: str | None = None
    raw_key: str = ""
    # records about people (crews): their dead letters keep only the schema's fields (``DeadLetter``)
    personal: bool = False

    def dead_letter(self, letter: DeadLetter) -> DeadLetter:
        """The letter as it may be kept for this input."""
        if not self.personal:
            return letter
        return DeadLetter(letter.record, letter.reason, frozenset(self.model.model_fields))


@dataclass(frozen=True)
class StateTable:
    """A changelog-backed state table (str keys). ``dumps``/``loads``: its values to and from bytes."""

    name: str
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]


def compact_json(doc: Any) -> bytes:
    """Compact JSON for a state's changelog value or a message to another processor. orjson: the standard encoder
    took a quarter of a live worker's CPU writing the stations' changelog (py-spy, 2,000 events/s, 2026-12-04),
    orjson a seventh of that. Non-string keys become strings (as ``json.dumps`` does); a non-finite float would
    become null, so what goes through here holds none."""
    return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)


def state_from_json(raw: bytes) -> Any:
    """A changelog value back; one written by the standard encoder before :func:`compact_json` may hold NaN or
    Infinity, which orjson refuses: read by the standard library then."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def json_state(cls: Any) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """Codec of a state class with ``to_dict()`` / ``from_dict()`` (compact JSON: :func:`compact_json`)."""
    return (lambda obj: compact_json(obj.to_dict()), lambda raw: cls.from_dict(state_from_json(raw)))


@dataclass(frozen=True)
class Processor:
    """One stream processor.

    - ``inputs``: its topics. Several inputs of one processor are read by one agent and meet the same state
      (keyed alike, same partition count); ``hold_watermark``: their partitions share one event-time watermark,
      held while any of them may still bring older records.
    - ``states``: its changelog-backed tables; ``tables``: the ClickHouse tables its rows go to.
    - ``engine``: builds the engine (``EngineContext``); ``tick_seconds``: how often ``Engine.tick`` runs live.
    - ``outputs``: logical topics its engine publishes to (``BatchResult.messages``), each read by another
      processor (a view across partitions: the alerts processor reads the stations' capacity this way); its
      engine is told which input partitions have records not read yet (``behind``), to tell its readers.
      ``publishes``: logical topics it publishes to for consumers outside Vigie (no processor reads them; one
      partition, in order): live only — the batch path counts their messages and sends none.
    - ``migrations``: a folder of its own ``NNNN_name.sql`` files (a plugin's; Vigie's own live in
      ``sinks/migrations``). ``dashboards``: modules with ``UID`` and ``build()`` (grafana-foundation-sdk).
      ``simulator``: ``"module:function"``, ``function(reference, start, seconds, seed)`` -> its simulated
      events (``(logical topic, key, event model)`` in event-time order) for ``make run`` and the tests.
    """

    name: str
    inputs: tuple[Input, ...]
    states: tuple[StateTable, ...]
    tables: tuple[TableSpec, ...]
    engine: Callable[[EngineContext], Engine]
    tick_seconds: Callable[[Settings], float] | None = None
    hold_watermark: bool = False
    outputs: tuple[str, ...] = ()
    publishes: tuple[str, ...] = ()
    views: tuple[str, ...] = ()  # views its migrations create over its tables (the dashboards read them too)
    migrations: Path | None = None
    dashboards: tuple[str, ...] = ()
    simulator: str | None = None

    def topics(self, settings: Settings) -> tuple[str, ...]:
        return tuple(settings.topic(i.topic) for i in self.inputs)
