"""Alert rules on population present, without Kafka: the seal of a series (hand-made), the alerts of hand-made
periods (values stated here), the chain presence engine -> ``presence-steps`` -> alerts engine whatever the arrival
order within the lateness, with batch cuts, restarts and repeated messages (property), and the detection figures on
200 simulated sectors x 12 weeks with the shipped rules (ground truth: the injected events)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.settings import Settings
from devtools.presence_simulator import Injected, PresenceFeed
from schemas.alert_rules import RuleSet
from schemas.presence import Segment
from schemas.reference import Reference
from schemas.signals import PresenceStepsPart
from streams.alerting import Transition
from streams.presence import PresenceRules, PresenceSector, Scorer, Series
from streams.presence_alerts import PresenceAlerts
from streams.processor import Record
from streams.processors.alerts import ALERTS, BOOKS, AlertEngine, _dumps, _loads
from streams.processors.presence import STATES, PresenceEngine
from tests.unit.test_presence import oracle, twelve_weeks

H = 3600
WEEK = 7 * 86400
START = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp())  # a Monday
SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "alerts" / "rules.toml"
RULES = """
[[rule]]
name = "crowd"
measure = "presence_high"
scope = "sector"
fire_at = 1.5
clear_at = 1.2
for = "1h"
message = "{sector} ({area}): x{value} ({segment}, {source})"

[[rule]]
name = "emptied"
measure = "presence_low"
scope = "sector"
fire_at = 0.5
clear_at = 0.8
severity = "info"
message = "{sector} emptied: x{value}"

[[rule]]
name = "tourists"
measure = "presence_high"
scope = "sector"
segment = "tourist"
fire_at = 2
message = "{sector}: tourists x{value}"
"""
REF = Reference.load(Settings().reference_dir)


def rules_file(tmp: Path) -> Path:
    path = tmp / "rules.toml"
    path.write_text(RULES)
    return path


def seal_of(periods: list[int], newest_first: bool = False, lateness: float = 3 * H) -> tuple[list[int], int]:
    s = Series("op", "all", 60)
    for p in periods:
        s.periods[p] = [1.0, False, 0.0, "", 0]
        s.newest = max(s.newest, p)
    return s.seal(lateness), s.sealed_to


def test_a_series_is_sealed_in_time_order_every_earlier_period_in() -> None:
    hours = [START + k * H for k in range(8)]
    # the first seal waits until the oldest period is the lateness behind the newest
    assert seal_of(hours[:3]) == ([], 0)
    assert seal_of(hours[:4]) == (hours[:4], hours[4])
    # a missing period holds the later ones, until it is more than the lateness behind the newest
    s = Series("op", "all", 60)
    for p in (hours[0], hours[1], hours[3], hours[4]):
        s.periods[p], s.newest = [1.0, False, 0.0, "", 0], p
    assert s.seal(3 * H) == hours[:2] and s.sealed_to == hours[2]
    s.periods[hours[5]], s.newest = [1.0, False, 0.0, "", 0], hours[5]
    assert s.seal(3 * H) == [hours[3], hours[4], hours[5]] and s.sealed_to == hours[6]  # hours[2] given up
    s.periods[hours[2]] = [1.0, False, 0.0, "", 0]  # too late for the alerts
    assert s.seal(3 * H) == []
    s.periods[hours[6]], s.newest = [1.0, False, 0.0, "", 0], hours[6]
    assert s.seal(3 * H) == [hours[6]]
    again = Series.from_list(json.loads(json.dumps(s.to_list())))
    assert again.sealed_to == hours[7] and again.seal(3 * H) == []


def part(sector: str, periods: list[tuple[int, float, bool]], segment: str = "all") -> PresenceStepsPart:
    """Periods as (hours after START, ratio, significant); present and usual derived from the ratio."""
    return PresenceStepsPart(sector_id=sector, source="op", segment=Segment(segment), minutes=60,
                             periods=[(START + h * H, 100.0 * r, 100.0, r, 9.0 if sig else 0.5, sig)
                                      for h, r, sig in periods])


def transitions(alerts: PresenceAlerts) -> list[tuple[str, str, str, str, float, float, str]]:
    return [(t.rule.name, t.scope_key, t.area, t.change.transition.value, (t.change.at - START) / H, t.change.value,
             t.message) for t in alerts.transitions()]


def test_hand_made_periods_give_the_stated_alerts(tmp_path: Path) -> None:
    alerts = PresenceAlerts(RuleSet.load(rules_file(tmp_path)).rule, lambda sector: f"area-of-{sector}")
    # a crowd: 1.6 significant from hour 2; 1.3 (above the clear level) at hour 4, 1.1 at 5; a ratio of 3 not
    # significant at hour 0 counts as usual; ``for = "1h"``: firing once its first hour is over
    alerts.take(part("Z1", [(0, 3.0, False), (1, 1.0, True), (2, 1.6, True)]))
    assert transitions(alerts) == [
        ("crowd", "Z1/op", "area-of-Z1", "pending", 2, 1.6, "Z1 (area-of-Z1): x1.6 (all, op)"),
        ("crowd", "Z1/op", "area-of-Z1", "firing", 3, 1.6, "Z1 (area-of-Z1): x1.6 (all, op)")]
    alerts.take(part("Z1", [(3, 1.9, True), (4, 1.3, True), (5, 1.1, True)]))
    assert transitions(alerts) == [
        ("crowd", "Z1/op", "area-of-Z1", "resolved", 5, 1.9, "Z1 (area-of-Z1): x1.9 (all, op)")]
    # a repeated message changes nothing; an emptied sector fires at once (no ``for``), a hole of two hours counts
    # as usual and ends it; a suppressed-like period (not significant) is usual
    alerts.take(part("Z1", [(4, 1.3, True), (5, 1.1, True)]))
    alerts.take(part("Z2", [(0, 0.4, True), (3, 0.45, True), (4, 0.1, False)]))
    assert transitions(alerts) == [
        ("emptied", "Z2/op", "area-of-Z2", "pending", 0, 0.4, "Z2 emptied: x0.4"),
        ("emptied", "Z2/op", "area-of-Z2", "firing", 0, 0.4, "Z2 emptied: x0.4"),
        ("emptied", "Z2/op", "area-of-Z2", "resolved", 1, 0.4, "Z2 emptied: x0.4"),
        ("emptied", "Z2/op", "area-of-Z2", "pending", 3, 0.45, "Z2 emptied: x0.45"),
        ("emptied", "Z2/op", "area-of-Z2", "firing", 3, 0.45, "Z2 emptied: x0.45"),
        ("emptied", "Z2/op", "area-of-Z2", "resolved", 4, 0.45, "Z2 emptied: x0.45")]
    # a rule on one segment reads that segment's series only
    alerts.take(part("Z3", [(0, 2.5, True)], segment="tourist"))
    assert [t[:4] for t in transitions(alerts)] == [("tourists", "Z3/op", "area-of-Z3", "pending"),
                                                     ("tourists", "Z3/op", "area-of-Z3", "firing")]
    # the state through its changelog encoding; a rule changed ends its alerts at their clock
    again = PresenceAlerts(RuleSet.load(rules_file(tmp_path)).rule, lambda sector: f"area-of-{sector}")
    again.restore(json.loads(json.dumps(alerts.to_dict())))
    assert json.dumps(again.to_dict()) == json.dumps(alerts.to_dict())  # (NaN: no episode yet)
    changed = RuleSet.load(rules_file(tmp_path)).rule[:2]  # "tourists" removed
    assert [(t.rule.name, t.change.transition, (t.change.at - START) / H) for t in again.retire(changed)] == [
        ("tourists", Transition.RESOLVED, 1)]


# --- the chain: presence engine -> presence-steps -> alerts engine ---------------------------------------------

def record(i: int, sector: str, p: int, count: float | None, t: float, eid: str) -> Record:
    doc = {"schema_version": 1, "event_id": eid, "event_time": datetime.fromtimestamp(t, UTC).isoformat(),
           "sector_id": sector, "period_start": datetime.fromtimestamp(p, UTC).isoformat(), "period_minutes": 60,
           "count": count, "segment": "all", "source": "op", "suppressed": count is None}
    return Record("population-presence", i % 3, i, sector.encode(), json.dumps(doc).encode())


PRESENCE = PresenceRules(weeks=4, min_weeks=3, z=4.0, ratio_high=1.3, ratio_low=0.7, timezone="UTC")


class Chain:
    """Both engines, their stores, and the alert rows they gave."""

    def __init__(self, rules: Path, lateness: float) -> None:
        self.rules, self.lateness = rules, lateness
        self.stores: dict[str, dict[str, Any]] = {STATES: {}, BOOKS: {}}
        self.rows: list[Any] = []
        self.last: list[Record] = []
        self.n = 0
        self._engines()

    def _engines(self) -> None:
        self.presence = PresenceEngine(PRESENCE, alert_lateness_s=self.lateness)
        self.alerts = AlertEngine(self.rules, REF, partitions=4)

    def restart(self, repeat: bool) -> None:
        """A crash: both states from their changelog encodings, new engines; ``repeat``: the presence worker had
        sent its last message but not stored its state — the message comes again."""
        self.stores = {STATES: {k: PresenceSector.from_dict(json.loads(json.dumps(v.to_dict())))
                                for k, v in self.stores[STATES].items()},
                       BOOKS: {k: _loads(_dumps(v)) for k, v in self.stores[BOOKS].items()}}
        self._engines()
        if repeat and self.last:
            self._alerts(self.last)

    def feed(self, batch: list[Record]) -> None:
        out = self.presence.process(batch, {STATES: self.stores[STATES]})
        steps = []
        for m in out.messages:
            assert m.topic == "presence-steps" and m.key == b"all"
            self.n += 1
            steps.append(Record("presence-steps", 0, self.n, m.key, m.value))
        if steps:
            self.last = steps
            self._alerts(steps)

    def _alerts(self, steps: list[Record]) -> None:
        result = self.alerts.process(steps, {BOOKS: self.stores[BOOKS]})
        assert not result.dead_letters
        self.rows += result.rows[ALERTS]


def chain_rows(records: list[Record], rules: Path, cuts: list[int], restarts: dict[int, bool],
               lateness: float = 3 * H) -> list[tuple[Any, ...]]:
    c = Chain(rules, lateness)
    i = 0
    for n, cut in enumerate(cuts):
        if n in restarts:
            c.restart(restarts[n])
        c.feed(records[i:i + cut])
        i += cut
    return sorted(tuple(r) for r in c.rows)


def feed_of(sectors: dict[str, int], injected: list[Injected], weeks: int, seed: int
            ) -> list[tuple[float, int, str, float, float | None, bool]]:
    """Five weeks of a few sectors: every period's first delivery (its corrections apart)."""
    seen: set[tuple[str, float]] = set()
    out = []
    for d in PresenceFeed(sectors, injected, seed).raw(START, START + weeks * WEEK):
        if (d[2], d[3]) not in seen:
            seen.add((d[2], d[3]))
            out.append(d)
    return out


SECTORS = {"Z1": 20_000, "Z2": 4_000, "Z3": 60_000}
STADIUM = START + 4 * WEEK + 5 * 86400 + 19 * H  # a Saturday evening in the fifth week
EVACUATION = START + 4 * WEEK + 2 * 86400 + 10 * H
INJECTED = [Injected("Z1", STADIUM, STADIUM + 4 * H, add=40_000),
            Injected("Z3", EVACUATION, EVACUATION + 6 * H, factor=0.4)]
DELIVERIES = feed_of(SECTORS, INJECTED, 5, seed=5)


def test_the_chain_gives_the_alerts_of_the_injected_events(tmp_path: Path) -> None:
    """The alert rows, against the oracle's scores (tests/unit/test_presence.py: plain loops over the deliveries):
    the stadium's crowd pending at kick-off and firing an hour later at its first hour's ratio, resolved when the
    match is over at its worst; the evacuation the same, downwards; nothing else."""
    records = [record(i, sector, int(p), count, t, f"pr-{n}")
               for i, (t, n, sector, p, count, _) in enumerate(DELIVERIES)]
    got = chain_rows(records, rules_file(tmp_path), [50] * (len(records) // 50 + 1), {})
    scores = {s: oracle([(int(p), c, c is None, t, f"pr-{n}") for t, n, sector, p, c, _ in DELIVERIES
                         if sector == s], PRESENCE) for s in SECTORS}

    def ratio(sector: str, p: int) -> float:
        return round(scores[sector][p][5], 2)

    crowd = [ratio("Z1", STADIUM + k * H) for k in range(4)]
    emptied = [ratio("Z3", EVACUATION + k * H) for k in range(6)]
    assert min(crowd) >= 1.5 and max(emptied) <= 0.5  # the oracle sees the events
    want = [("crowd", "Z1/op", "pending", STADIUM, crowd[0]), ("crowd", "Z1/op", "firing", STADIUM + H, crowd[0]),
            ("crowd", "Z1/op", "resolved", STADIUM + 4 * H, max(crowd)),
            ("emptied", "Z3/op", "pending", EVACUATION, emptied[0]),
            ("emptied", "Z3/op", "firing", EVACUATION, emptied[0]),
            ("emptied", "Z3/op", "resolved", EVACUATION + 6 * H, min(emptied))]
    assert sorted((r[0], r[4], r[8], r[9], r[10]) for r in got) == sorted(want)
    assert {r[1] for r in got} == {"warning", "info"} and {r[3] for r in got} == {"sector"}


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32))
def test_the_alerts_do_not_depend_on_the_arrival_order_within_the_lateness(tmp_path_factory: Any, seed: int) -> None:
    """Deliveries hours out of order (each period before any period the lateness after it), repeats, any batch cuts,
    restarts with and without a repeated message, and corrections after their period is sealed: the alert rows of
    the deliveries in order."""
    rnd = random.Random(seed)
    tmp = tmp_path_factory.mktemp("rules")
    rules = rules_file(tmp)
    recs = [record(i, sector, int(p), count, t, f"pr-{n}") for i, (t, n, sector, p, count, _) in
            enumerate(DELIVERIES)]
    in_order = chain_rows(recs, rules, [len(recs)], {})
    assert len(in_order) == 6
    lateness = 3 * H
    window = [r for r in recs if json.loads(r.value)["period_start"] >= datetime.fromtimestamp(
        START + 4 * WEEK, UTC).isoformat()]  # the fifth week shuffled (the usual's weeks before, in order)
    head = [r for r in recs if r not in window]
    jitter = {id(r): json.loads(r.value) for r in window}
    shuffled = sorted(window, key=lambda r: datetime.fromisoformat(jitter[id(r)]["period_start"]).timestamp()
                      + rnd.uniform(0, lateness - 1))
    late = [record(len(recs) + k, r[2], int(r[3]), (r[4] or 0) * 1.02, r[0] + 86400, f"fix-{k}")
            for k, r in enumerate(rnd.sample(DELIVERIES, 20))]  # corrections a day later
    repeats = rnd.sample(shuffled, 15)
    order = head + shuffled + late
    for r in repeats:  # after the original (earlier, it would bring its period hours before its time)
        order.insert(rnd.randrange(order.index(r) + 1, len(order) + 1), r)
    cuts, left = [], len(order)
    while left:
        cuts.append(min(left, rnd.choice((1, 7, 60, 400))))
        left -= cuts[-1]
    restarts = {rnd.randrange(len(cuts)): rnd.random() < 0.5 for _ in range(3)}
    assert chain_rows(order, rules, cuts, restarts, lateness) == in_order


# --- the figures, with the shipped rules --------------------------------------------------------------

def test_detection_with_the_shipped_rules_on_200_sectors_over_12_weeks() -> None:
    """The shipped crowd and emptied-sector rules on 200 simulated sectors x 12 weeks (Paris time) with injected
    surges of +50 % to x3 and evacuations (-60 %) lasting 2 to 6 hours: >= 95 % of surges fire within one period of
    their start (firing at the end of their first hour), every evacuation too; at most one alert episode not on an
    injected event per sector per 4 weeks; no alert ever starts on a suppressed period."""
    sectors, start, end, injected = twelve_weeks(21)
    s = Settings()
    rules = RuleSet.load(SHIPPED).rule
    scorer = Scorer(PresenceRules(s.presence_weeks, s.presence_min_weeks, s.presence_z, s.presence_ratio_high,
                                  s.presence_ratio_low, s.timezone))
    alerts = PresenceAlerts(rules, lambda sector: "")
    series = {x: Series("sim", "all", 60) for x in sectors}
    suppressed: set[tuple[str, int]] = set()
    started: list[tuple[str, str, int]] = []  # (rule, sector, hour): when an episode went pending
    fired: dict[tuple[str, str, int], float] = {}  # (rule, sector, since) -> when it fired
    for t, n, sector, period, count, hidden in PresenceFeed(sectors, injected, seed=8).raw(start, end + 4 * H):
        sr = series[sector]
        p = int(period)
        if hidden:
            suppressed.add((sector, p))
        if scorer.apply(sr, p, count, hidden, t, f"pr-{n}") != "applied":
            continue
        scorer.rescore(sr, {p})
        sealed = [(q, scorer.score(sr, q)) for q in sr.seal(s.presence_alert_lateness_s)]
        if not sealed:
            continue
        alerts.take(PresenceStepsPart(sector_id=sector, source="sim", segment=Segment.ALL, minutes=60, periods=[
            (q, sr.periods[q][0], sc.usual, sc.ratio, sc.z, scorer.significant(sr, q, sc)) for q, sc in sealed]))
        for tr in alerts.transitions():
            key = (tr.rule.name, sector)
            if tr.change.transition is Transition.PENDING:
                started.append((*key, int(tr.change.at)))
            elif tr.change.transition is Transition.FIRING:
                fired[(*key, max(h for r, x, h in started if (r, x) == key))] = tr.change.at
    surges = [e for e in injected if e.factor >= 1.5]
    on_time = sum(1 for e in surges if fired.get(("crowd-in-sector", e.sector_id, int(e.start)), 0) == e.start + H)
    assert on_time / len(surges) >= 0.95, f"{on_time} of {len(surges)} surges fired within one period"
    evacuations = [e for e in injected if e.factor < 1]
    assert all(fired.get(("sector-emptied", e.sector_id, int(e.start))) == e.start + H for e in evacuations)
    truth = {(e.sector_id, p) for e in injected for p in range(int(e.start), int(e.end), H)}
    false_episodes = [x for x in started if (x[1], x[2]) not in truth]
    assert len(false_episodes) <= len(sectors) * 3, len(false_episodes)
    assert not [x for x in started if (x[1], x[2]) in suppressed]
    assert len(suppressed) > 500  # the feed withholds 0.5 % of its periods
    print(f"alerts: {on_time}/{len(surges)} surges firing at the end of their first hour, "
          f"{len(evacuations)} evacuations, {len(false_episodes)} episodes off the injected events "
          f"over {len(sectors)} sectors x 12 weeks")


def test_make_runs_feed_fires_the_stadium_alert_on_the_runs_first_saturday() -> None:
    """`make run`'s simulated deliveries (four weeks of backfill, then the run) through both engines with the shipped
    rules: the stadium's match on the run's first Saturday (kick-off 19:00 Paris) fires ``crowd-in-sector`` at the end
    of its first hour; the matches of the backfill weigh nothing in its usual (one week in three)."""
    from devtools.presence_simulator import events

    start = datetime(2026, 12, 2, 10, tzinfo=UTC)  # a Wednesday
    chain = Chain(SHIPPED, Settings().presence_alert_lateness_s)
    batch: list[Record] = []
    for i, (_, key, ev) in enumerate(events(REF, start, 4 * 86400, seed=7)):
        batch.append(Record("population-presence", 0, i, key.encode(), ev.model_dump_json().encode()))
        if len(batch) == 500:
            chain.feed(batch)
            batch = []
    chain.feed(batch)
    kick_off = datetime(2026, 12, 5, 18, tzinfo=UTC).timestamp()  # 19:00 in Paris
    crowd = [(r.scope_key, r.transition, r.at) for r in chain.rows if r.rule == "crowd-in-sector"]
    assert ("Z41/sim-flux", "pending", kick_off) in crowd and ("Z41/sim-flux", "firing", kick_off + H) in crowd
    assert {key for key, _, _ in crowd} == {"Z41/sim-flux"}
