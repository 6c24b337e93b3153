"""Alerts: the stations' sealed values and units' statuses (topic ``station-steps``, published by the stations
processor) and the interventions opened and closed (``intervention-steps``, by the interventions processor) -> the
alert rules (``VIGIE_ALERT_RULES``) evaluated across every station and intervention (``streams/alert_book.py``) ->
one ``alerts`` row per transition; the presence series' sealed periods (``presence-steps``, by the presence
processor) -> the rules on population present (``streams/presence_alerts.py``), on each series' own clock;
operators' actions (topic ``alert-actions``: acknowledge, silence, unsilence) ->
``alert_actions``. The book is one state entry (each surge baseline one more, and one per day of counts it holds):
every message comes to one partition (key ``all``)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, MutableMapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.settings import Settings
from core.tables import table
from schemas.alert_actions import ActionKind, AlertAction
from schemas.alert_rules import Measure, RuleFileError, RuleFileWatcher
from schemas.codec import InvalidEvent
from schemas.reference import Reference
from schemas.signals import AlertNotice, InterventionSteps, PresenceSteps, StationSteps
from streams.alert_book import AlertBook, PastOpenings, Transition
from streams.alerting import BaselineDay, SurgeBaseline
from streams.partitioning import partition_for
from streams.presence_alerts import PresenceAlerts
from streams.processor import (
    BatchResult,
    DeadLetter,
    EngineContext,
    Input,
    Message,
    Processor,
    Record,
    StateTable,
    Stores,
    TimeBound,
    compact_json,
    state_from_json,
)
from streams.rows import AlertActionRow, AlertRow

log = logging.getLogger("vigie.alerts")

ALERTS = table("alerts", AlertRow)
ALERT_ACTIONS = table("alert_actions", AlertActionRow)
ALERTS_TOPIC = "alerts"  # every transition, for consumers outside Vigie (schemas/signals.py AlertNotice)
BOOKS = "alert-book"  # the state table: BOOK_KEY -> the book (its to_dict() once recovered); surge baselines
BOOK_KEY = "book"
BASELINE_KEY = "surge/{rule}/{area}"  # a surge rule's usual counts in one area: the days held (not in the book)
BASELINE_DAY_KEY = BASELINE_KEY + "/{day}"  # one day of them (changed every window)
PRESENCE_KEY = "presence"  # the alerts on presence (streams/presence_alerts.py)
CHUNK_KEY = "waiting/{seq}"  # a chunk of the steps waiting for the book's clock (AlertBook.waiting_chunks)
CALL_MEASURES = frozenset({Measure.UNASSIGNED_MINUTES, Measure.SURGE})  # the measures on interventions


def _dumps(book: AlertBook | SurgeBaseline | BaselineDay | PresenceAlerts | dict[str, object] | list[Any]) -> bytes:
    return compact_json(book if isinstance(book, dict | list) else book.to_dict())


def _loads(raw: bytes) -> dict[str, object]:
    return state_from_json(raw)  # type: ignore[no-any-return]  # the engine restores its book from it


class UnknownRule(ValueError):
    pass


class AlertEngine:
    """Station messages -> the alert book -> alert rows (see :meth:`live_clock` for the clock without messages)."""

    def __init__(self, rules_path: Path, reference: Reference, live: bool = False,
                 time_bound: TimeBound | None = None, idle_s: float = 5.0,
                 partitions: int = 4, actions_topic: str = "alert-actions",
                 steps_topic: str = "intervention-steps", presence_topic: str = "presence-steps",
                 past: PastOpenings | None = None) -> None:
        """``past``: live, the openings stored before (the surge rules' usual from their first window on)."""
        self.reference = reference
        self.past = past
        self.live = live
        self.time_bound = time_bound or TimeBound()
        self.idle_s = idle_s
        self.rules_file = RuleFileWatcher(rules_path)
        self.rules = self.rules_file.changed() or ()  # the first read: no file, no rules (alerts off)
        # every stations partition holding a station publishes (streams/processors/stations.py); every
        # interventions partition too when a rule is on interventions (streams/processors/interventions.py)
        self.sources = sorted({f"stations/{partition_for(sid.encode(), partitions)}" for sid in reference.stations})
        if any(r.measure in CALL_MEASURES for r in self.rules):
            self.sources += [f"interventions/{p}" for p in range(partitions)]
        self.steps_topic = steps_topic
        self.presence_topic = presence_topic
        self.book = self._new_book()
        self._sector_areas: dict[str, str] | None = None  # sector -> area, once an alert on presence needs it
        self.presence = PresenceAlerts(self.rules, self._area_of_sector)
        self.heard: dict[str, float] = {}  # source -> when (monotonic) its last message came
        self.lagging: set[str] = set()  # sources whose last part said they had records to read
        self.actions_topic = actions_topic  # the deployment's name of the alert-actions topic
        self.partition = -1  # the partition the messages come on (the book's changelog partition)
        self.ended: list[Transition] = []  # alerts of rules removed or changed, not stored yet
        self.store: MutableMapping[str, Any] = {}  # the state table (set by _recover)

    def _new_book(self) -> AlertBook:
        book = AlertBook(self.rules, self.reference, self.sources)
        book.keep_fresh = self.live  # its waiting steps go to the changelog (live only: see _result)
        book.past = self.past
        return book

    def _area_of_sector(self, sector: str) -> str:
        """The area of the station nearest to a sector's centroid ("" for a sector the reference does not draw)."""
        if self._sector_areas is None:
            self._sector_areas = {sid: self.book.area_of(lat, lon)
                                  for sid, (lat, lon) in self.reference.sectors.centroids().items()}
        return self._sector_areas.get(sector, "")

    def _recover(self, store: MutableMapping[str, Any]) -> None:
        """The book from the changelog, once (the store then holds this engine's book and baselines)."""
        self.store = store
        held = store.get(BOOK_KEY)
        if isinstance(held, dict):  # recovered (at start, or the partition assigned again)
            self.book = self._new_book()
            chunks = {int(seq): store.get(CHUNK_KEY.format(seq=seq)) for seq, _ in held.get("wk", [])}
            self.book.restore(held, chunks)
            if self.book.lost_chunks:  # never expected (see _result): said, and the worker goes on
                log.error("alert book: %d chunk(s) of its waiting steps missing from its state; their steps are "
                          "lost", self.book.lost_chunks)
            for (rule, area) in self.book.baselines:
                self._recover_baseline(store, rule, area)
        store[BOOK_KEY] = self.book
        held = store.get(PRESENCE_KEY)
        if isinstance(held, dict):
            self.presence = PresenceAlerts(self.rules, self._area_of_sector)
            self.presence.restore(held)
        store[PRESENCE_KEY] = self.presence

    def _recover_baseline(self, store: MutableMapping[str, Any], rule: str, area: str) -> None:
        """A surge baseline and the days its record names; the store then holds views of the baseline's days (not
        a second copy of the counts)."""
        saved = store.get(BASELINE_KEY.format(rule=rule, area=area))
        if not isinstance(saved, dict):
            return
        keys = {int(day): BASELINE_DAY_KEY.format(rule=rule, area=area, day=day) for day in saved.get("d", ())}
        days = {day: chunk for day, key in keys.items() if isinstance(chunk := store.get(key), list)}
        base = self.book.baselines[(rule, area)] = SurgeBaseline.from_dict(saved, days)
        for day in days:
            store[keys[day]] = BaselineDay(base, day)

    def process(self, records: Sequence[Record], stores: Stores,
                behind: Collection[tuple[str, int]] | None = None) -> BatchResult:
        store = stores[BOOKS]
        self._recover(store)
        result = BatchResult()
        now = time.monotonic()
        actions: list[AlertActionRow] = []
        for rec in records:
            try:
                if rec.topic == self.actions_topic:
                    actions.append(self._action(rec))
                    continue
                if rec.topic == self.presence_topic:
                    sealed = PresenceSteps.model_validate_json(rec.value or b"")
                    self.partition = rec.partition
                    for p in sealed.parts:
                        self.presence.take(p)
                    continue
                if rec.topic == self.steps_topic:
                    calls = InterventionSteps.model_validate_json(rec.value or b"")
                    self.partition = rec.partition
                    for c in calls.parts:
                        self._heard(c.source, c.behind, now)
                        self.book.take(c.source, c.until, (), (), c.opened, c.closed)  # type: ignore[arg-type]
                    continue
                msg = StationSteps.model_validate_json(rec.value or b"")
            except ValidationError as e:
                err = e.errors()[0]
                where = ".".join(map(str, err["loc"])) or "value"
                result.dead_letters.append(DeadLetter(rec, f"{where}: {err['msg']}"))
                continue
            except (UnknownRule, InvalidEvent) as e:
                result.dead_letters.append(DeadLetter(rec, str(e)))
                continue
            self.partition = rec.partition
            for part in msg.parts:
                self._heard(part.source, part.behind, now)
                self.book.take(part.source, part.until, part.steps, part.units)  # type: ignore[arg-type]
        self.book.settle()
        steps = [r for r in records if r.topic not in (self.actions_topic, self.presence_topic)]
        if steps and self.book.clock > -math.inf:  # freshness: how far behind the alerts' clock is
            result.newest_by_topic[steps[-1].topic] = self.book.clock
        result = self._result(result)
        result.rows[ALERT_ACTIONS] = actions
        return result

    def _heard(self, source: str, behind: bool, now: float) -> None:
        self.heard[source] = now
        if behind:
            self.lagging.add(source)
        else:
            self.lagging.discard(source)

    def _action(self, rec: Record) -> AlertActionRow:
        """An operator's action, stored as it is (its effect is read with the alerts: the view
        ``alerts_current``); one naming a rule not in force is refused with the rules that are."""
        action = AlertAction.model_validate_json(rec.value or b"")
        self.time_bound.check(action.event_time.timestamp(), self.time_bound.latest())
        if action.rule not in {r.name for r in self.rules}:
            raise UnknownRule(f"rule: no rule {action.rule!r} in force ({', '.join(r.name for r in self.rules)})")
        until = action.until.timestamp() if action.until is not None else 0.0
        return AlertActionRow(action.event_id, action.event_time.timestamp(), action.action.value, action.rule,
                              action.scope_key, until if action.action is ActionKind.SILENCE else 0.0, action.by,
                              action.why, round(action.event_time.timestamp() * 1000))

    def finish(self, stores: Stores) -> BatchResult:
        """The batch path's input is over: the last steps of every station are applied."""
        self._recover(stores[BOOKS])
        self.book.finish()
        return self._result(BatchResult())

    def tick(self, stores: Stores, behind: Collection[tuple[str, int]] | None, assigned: Collection[int]
             ) -> BatchResult | None:
        """Live: a changed rules file is read again; the clock may move on without messages (:meth:`live_clock`)."""
        if not self.live or (self.partition >= 0 and self.partition not in assigned):
            return None
        self._recover(stores[BOOKS])
        self._reload(stores[BOOKS])
        waiting = self.book.pending()
        self.book.advance(self.live_clock(time.monotonic()))
        return self._result(BatchResult(), changed=self.book.pending() != waiting)

    def live_clock(self, now: float) -> float:
        """Where the clock may go without a message: where it is, unless every source has been heard from by this
        engine (since it started), none said it had records left to read, and all have been silent for ``idle_s``
        (wall clock) — the input is then over for now, and every source is known up to the newest ``until`` heard
        (what the batch path does at the end of its input). A source never heard since the start keeps holding
        (its stations may be recovering), and so does one behind (its processor may be stalled, not done)."""
        book = self.book
        if not book.sources or any(s not in self.heard for s in book.sources) or self.lagging:
            return book.clock
        if any(now - self.heard[s] < self.idle_s for s in book.sources):
            return book.clock
        heard = [u for u in book.sources.values() if -math.inf < u < math.inf]
        return max(heard) if heard else book.clock

    def _reload(self, store: MutableMapping[str, Any]) -> None:
        try:
            rules = self.rules_file.changed()
        except RuleFileError as e:
            log.error("alert rules not reloaded, the previous ones stay: %s", e)
            return
        if rules is None:
            return
        log.info("alert rules reloaded from %s: %d rules", self.rules_file.path, len(rules))
        self.rules = rules
        self.ended += self.book.retire(rules)  # alerts of a rule removed or changed end now
        self.ended += self.presence.retire(rules)
        presence = PresenceAlerts(rules, self._area_of_sector)
        presence.restore(self.presence.to_dict())
        self.presence = store[PRESENCE_KEY] = presence
        book = self._new_book()
        book.restore(self.book.to_dict(), self.book.chunk_data)
        book.take_fresh(self.book.fresh)  # taken since the last chunks: not stored yet
        for k in book.baselines.keys() & self.book.baselines.keys():
            book.baselines[k] = self.book.baselines[k]
        self.book = store[BOOK_KEY] = book

    def _result(self, result: BatchResult, changed: bool = True) -> BatchResult:
        """The transitions as rows; ``changed``: the book changed beyond its clock (a changelog record)."""
        transitions, self.ended = self.ended + self.book.transitions() + self.presence.transitions(), []
        rows = [_row(tr) for tr in transitions]
        result.rows = {ALERTS: rows}
        result.messages += [_notice(row) for row in rows]
        # the batch path restarts from its input, not from its state: only a live worker stores the waiting steps
        chunks = self.book.waiting_chunks() if self.partition >= 0 and self.live else {}
        # in the changelog (one partition, in order; a crash keeps a prefix): new chunks, the book naming them,
        # then the tombstones of the chunks it no longer names — any prefix restores consistently
        self._store_chunks(chunks, result, applied=False)
        if self.partition >= 0 and (changed or transitions or chunks):
            result.mark(BOOKS, BOOK_KEY, self.partition)
        self._store_chunks(chunks, result, applied=True)
        if self.partition >= 0 and self.book.dirty:
            for rule, area in sorted(self.book.dirty):
                self._store_baseline(rule, area, result)
            self.book.dirty.clear()
        if self.partition >= 0 and self.presence.changed:
            result.mark(BOOKS, PRESENCE_KEY, self.partition)
            self.presence.changed = False
        result.outcomes["alert_transitions"] += len(transitions)
        result.late = self.book.late
        self.book.late = 0
        if self.book.clock > -math.inf:
            result.newest_event_time = self.book.clock
        return result

    def _store_baseline(self, rule: str, area: str, result: BatchResult) -> None:
        """A baseline's changed days, then its record naming the days held, then the tombstones of the days it no
        longer names (the changelog's order: any prefix restores consistently, as for the chunks)."""
        base, key = self.book.baselines[(rule, area)], BASELINE_KEY.format(rule=rule, area=area)
        held, gone = base.take_changed()
        for day in held:
            self._put(BASELINE_DAY_KEY.format(rule=rule, area=area, day=day), BaselineDay(base, day), result)
        self._put(key, base, result)
        for day in gone:
            self._put(BASELINE_DAY_KEY.format(rule=rule, area=area, day=day), None, result)

    def _put(self, key: str, value: object, result: BatchResult) -> None:
        """A state entry set (None: deleted, a tombstone) and marked for the changelog."""
        if value is None:
            self.store.pop(key, None)
        else:
            self.store[key] = value
        result.mark(BOOKS, key, self.partition)

    def _store_chunks(self, chunks: dict[int, Any], result: BatchResult, applied: bool) -> None:
        """The waiting steps' new chunks, or the tombstones of those applied (``applied``): keys of their own, see
        :meth:`AlertBook.waiting_chunks`."""
        for seq, chunk in chunks.items():
            if (chunk is None) == applied:
                self._put(CHUNK_KEY.format(seq=seq), chunk, result)


def _row(tr: Transition) -> AlertRow:
    r, c = tr.rule, tr.change
    return AlertRow(r.name, r.severity, r.measure.value, r.scope.value, tr.scope_key, tr.area, tr.station,
                    tr.subject, c.transition.value, c.at, c.value, r.fire_at, tr.message)


def _notice(row: AlertRow) -> Message:
    doc = AlertNotice.model_validate({**row._asdict(), "at": datetime.fromtimestamp(row.at, UTC)})
    return Message(ALERTS_TOPIC, f"{row.rule}/{row.scope_key}".encode(), doc.model_dump_json().encode())


def _engine(ctx: EngineContext) -> AlertEngine:
    s = ctx.settings
    return AlertEngine(s.alert_rules, ctx.reference, ctx.live, ctx.time_bound, s.alert_source_idle_s,
                       s.topic_partitions, ctx.topic("alert-actions"), ctx.topic("intervention-steps"),
                       ctx.topic("presence-steps"), ctx.stored.openings if ctx.live and ctx.stored else None)


def _tick_every(settings: Settings) -> float:
    return 1.0


PROCESSOR = Processor(
    name="alerts",
    inputs=(Input("station-steps", StationSteps, "all"),
            # same key: one partition, the book's
            Input("intervention-steps", InterventionSteps, "all"),
            Input("presence-steps", PresenceSteps, "all"),
            Input("alert-actions", AlertAction, "all"),),
    states=(StateTable(BOOKS, _dumps, _loads),),
    tables=(ALERTS, ALERT_ACTIONS),
    publishes=(ALERTS_TOPIC,),
    views=("alerts_current",),
    engine=_engine,
    tick_seconds=_tick_every,
)
