"""The alert rules evaluated over every station's sealed values: one view across partitions, in event time.

Input: the stations' messages (``streams/processors/stations.py`` ``_steps_message``): per source (a stations
partition) the steps of its stations' values up to a sealed time ``until``. A source's stations are known up
to its ``until``; all of them up to the oldest ``until`` of the sources heard from — the book's clock. Steps
wait until the clock passes them, then are applied in time order: each changes a station's value, then the
values of the scopes (area, station) it counts in, then their alerts (``streams/alerting.py``), whose deadlines
(``for``, ``keep_firing_for``) pass with the clock. So the transitions depend only on the steps' times and values,
never on how the sources' messages interleave or are cut (a property test permutes them).

A repeated message (a crash upstream before its changelog) is no change: what is older than a source's last
``until`` has been taken. A station that never reported counts in no scope (unknown is not zero); a staffed
rule counts only the stations whose crews are tracked.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from schemas.alert_rules import Measure, Rule, Scope
from schemas.reference import Reference
from streams.alerting import Alert, Change, Direction, Threshold
from streams.windows import STAFF_STEP, VEHICLE_STEP, Step

#: the measures this version evaluates (the others are checked in the rules file but not evaluated yet)
EVALUATED = frozenset({Measure.AVAILABLE, Measure.AVAILABLE_SHARE, Measure.STAFF_ON_DUTY})


@dataclass(frozen=True, slots=True)
class Transition:
    """One alert transition, as stored: the rule, its scope, when, to what, the value then, the message."""

    rule: Rule
    scope_key: str
    area: str
    station: str
    subject: str  # the vehicle type or the qualification
    change: Change
    message: str


def threshold_of(rule: Rule) -> Threshold:
    return Threshold(Direction.BELOW if rule.fires_below else Direction.ABOVE, rule.fire_at, rule.clear_level,
                     rule.for_s, rule.keep_firing_for_s)


@dataclass(slots=True)
class _Scope:
    """What one rule measures on one scope: the stations it sums, their current values, and the running sums
    (a step changes one station: the scope's value is updated, not summed again over an area's stations)."""

    rule: Rule
    key: str
    area: str
    station: str
    subject: str
    fleet: dict[str, int]  # station -> vehicles of the type (the share's denominator)
    values: dict[str, int] = field(default_factory=dict)  # station -> its count, once reported
    total: int = 0  # the sum of ``values``
    fleet_counted: int = 0  # the fleet of the stations in ``values``

    def set(self, station: str, n: int) -> None:
        old = self.values.get(station)
        if old is None:
            self.fleet_counted += self.fleet.get(station, 0)
            old = 0
        self.values[station] = n
        self.total += n - old

    def value(self) -> float | None:
        if not self.values:
            return None
        if self.rule.measure is not Measure.AVAILABLE_SHARE:
            return float(self.total)
        fleet = self.fleet_counted
        return round(100.0 * self.total / fleet, 1) if fleet else None


class AlertBook:
    """Every evaluated rule on every scope it applies to, fed with station messages (:meth:`take`)."""

    def __init__(self, rules: Sequence[Rule], reference: Reference, sources: Iterable[str] = ()) -> None:
        """``sources``: the sources expected (every stations partition holding a station): one not heard from yet
        holds the clock, so a source's first message is never late for being the last to come."""
        self.rules = tuple(r for r in rules if r.measure in EVALUATED)
        self.scopes: dict[tuple[str, str], _Scope] = {}  # (rule, scope key) -> scope
        # (station, kind, subject) -> the scopes a step of it changes
        self.watchers: dict[tuple[str, int, str], list[_Scope]] = {}
        self._build(reference)
        self.alerts: dict[tuple[str, str], Alert] = {}
        self.sources: dict[str, float] = dict.fromkeys(sources, -math.inf)  # source -> its last ``until``
        self.waiting: list[Step] = []  # a heap: steps after the clock
        self.clock = -math.inf
        self.late = 0  # steps older than the clock (a source heard from late): applied at the clock

    def _build(self, reference: Reference) -> None:
        fleet: dict[tuple[str, str], int] = {}
        for v in reference.fleet.values():
            fleet[(v.home_station, v.vehicle_type)] = fleet.get((v.home_station, v.vehicle_type), 0) + 1
        by_area: dict[str, list[str]] = {}
        for sid, st in sorted(reference.stations.items()):
            by_area.setdefault(st.area, []).append(sid)
        for rule in self.rules:
            staff = rule.measure is Measure.STAFF_ON_DUTY
            subject = rule.qualification.value if staff and rule.qualification else rule.vehicle_type or ""
            kind = STAFF_STEP if staff else VEHICLE_STEP
            groups = ([(area, "", sids) for area, sids in by_area.items()] if rule.scope is Scope.AREA else
                      [(reference.stations[sid].area, sid, [sid]) for sid in sorted(reference.stations)])
            for area, station, sids in groups:
                key = f"{station or area}/{subject}"
                scope = _Scope(rule, key, area, station, subject, {s: fleet.get((s, subject), 0) for s in sids})
                self.scopes[(rule.name, key)] = scope
                for s in sids:
                    self.watchers.setdefault((s, kind, subject), []).append(scope)

    def take(self, source: str, until: float | None, steps: Iterable[Step]) -> None:
        """One message of a source: its steps not taken yet wait for the clock (:meth:`settle`). ``until`` None:
        the source has no data at all (a partition read to its end, empty): it holds nothing until it has some."""
        last = self.sources.get(source, -math.inf)
        if until is None:
            if last == -math.inf:
                self.sources[source] = math.inf
            return
        if last == math.inf:
            last = -math.inf  # its first data
        for step in steps:
            if step[0] >= last:
                heapq.heappush(self.waiting, step)
        self.sources[source] = max(last, until)

    def settle(self) -> None:
        """The clock to the oldest ``until`` of the sources: what every station is known up to (sources without
        data hold nothing)."""
        held = [u for u in self.sources.values() if u < math.inf]
        if held:
            self.advance(min(held))

    def finish(self) -> None:
        """The input is over (the end of a history): every source is known up to the newest ``until``."""
        heard = [u for u in self.sources.values() if -math.inf < u < math.inf]
        if heard:
            self.advance(max(heard))

    def advance(self, now: float) -> None:
        """Apply the steps older than ``now`` in time order (simultaneous ones as one), then pass deadlines."""
        if now <= self.clock:
            return
        waiting = self.waiting
        while waiting and waiting[0][0] < now:
            t = waiting[0][0]
            changed: dict[int, _Scope] = {}
            while waiting and waiting[0][0] == t:
                _, station, kind, subject, count, available_staff = heapq.heappop(waiting)
                for scope in self.watchers.get((station, kind, subject), ()):
                    n = available_staff if scope.rule.staffed else count
                    if n < 0:
                        continue  # crews not tracked at this station: a staffed rule does not count it
                    scope.set(station, n)
                    changed[id(scope)] = scope
            at = max(t, self.clock)
            if at > t:
                self.late += 1
            for scope in changed.values():
                value = scope.value()
                if value is not None:
                    self._alert(scope).observe(at, value)
            self.clock = max(self.clock, at)
        self.clock = now
        for alert in self.alerts.values():
            alert.advance(now)

    def _alert(self, scope: _Scope) -> Alert:
        k = (scope.rule.name, scope.key)
        alert = self.alerts.get(k)
        if alert is None:
            alert = self.alerts[k] = Alert(threshold_of(scope.rule))
        return alert

    def transitions(self) -> list[Transition]:
        """The transitions since the last call, in (time, rule, scope) order."""
        out = []
        for (name, key), alert in self.alerts.items():
            if not alert.changes:
                continue
            scope = self.scopes[(name, key)]
            rule = scope.rule
            fields = {"area": scope.area, "station": scope.station}
            fields["qualification" if rule.measure is Measure.STAFF_ON_DUTY else "vehicle_type"] = scope.subject
            for change in alert.take():
                out.append(Transition(rule, key, scope.area, scope.station, scope.subject, change,
                                      rule.render(change.value, **fields)))
        out.sort(key=lambda tr: (tr.change.at, tr.rule.name, tr.scope_key))
        return out

    def retire(self, rules: Sequence[Rule]) -> list[Transition]:
        """Before a new set of rules replaces these: the alerts of a rule removed or changed end at the clock
        (their transitions are returned) and leave the book."""
        new = {r.name: r for r in rules}
        ended = []
        for k, alert in list(self.alerts.items()):
            if new.get(k[0]) != self.scopes[k].rule:
                alert.end(max(self.clock, alert.clock))
                ended.append(k)
        out = self.transitions()
        for k in ended:
            del self.alerts[k]
        return out

    def to_dict(self) -> dict[str, object]:
        """The state for a changelog (``transitions`` are taken before: never kept)."""
        return {
            "c": self.clock if self.clock > -math.inf else None,
            "s": {k: (None if v == math.inf else v) for k, v in self.sources.items() if v > -math.inf},
            "w": [list(s) for s in self.waiting],
            "v": [[n, k, scope.values] for (n, k), scope in self.scopes.items() if scope.values],
            "a": [[n, k, a.to_list()] for (n, k), a in self.alerts.items()],
            "l": self.late,
        }

    def restore(self, doc: dict[str, object]) -> None:
        """Back to a state of :meth:`to_dict` (a rule since removed or changed starts afresh)."""
        self.clock = -math.inf if doc["c"] is None else float(doc["c"])  # type: ignore[arg-type]
        for k, v in doc["s"].items():  # type: ignore[attr-defined]
            self.sources[str(k)] = math.inf if v is None else float(v)
        self.waiting = [tuple(s) for s in doc["w"]]  # type: ignore[attr-defined, misc]
        heapq.heapify(self.waiting)
        for name, key, values in doc["v"]:  # type: ignore[attr-defined]
            scope = self.scopes.get((name, key))
            if scope is not None:
                for station, n in values.items():
                    scope.set(str(station), int(n))
        rules = {r.name: r for r in self.rules}
        for name, key, data in doc["a"]:  # type: ignore[attr-defined]
            if (name, key) in self.scopes:
                self.alerts[(name, key)] = Alert.from_list(threshold_of(rules[name]), data)
        self.late = int(doc.get("l", 0))  # type: ignore[call-overload]
