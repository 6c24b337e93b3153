"""The alert rules on population present (``presence_high``, ``presence_low``): per rule and sector series, an
:class:`~streams.alerting.Alert` fed with the series' sealed periods (topic ``presence-steps``, published by the
presence processor), in the periods' own time.

A period's value holds from its start to its end: the ratio present / usual (to 2 decimals) when its distance from
the usual is beyond chance (``significant``), else 1 (as usual; a suppressed period too, so it never fires). The
alert's clock is the end of the newest period taken, so ``for = "2h"`` on hourly counts means two deviating periods
in a row. A period that never came (given up by the seal) is a hole: the value is 1 from the end of the period
before it.

Unlike the stations' rules, these do not wait for the book's clock: operators deliver counts hours after their
period, and a sector's alerts move with its own series. A repeated message (a crash of the presence worker before
its changelog) brings periods older than the alert's clock: they change nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from schemas.alert_rules import PRESENCE_MEASURES, Rule
from schemas.presence import Segment
from schemas.signals import PresenceStepsPart
from streams.alert_book import Transition, threshold_of
from streams.alerting import Alert, Change

USUAL = 1.0  # the value of a period not beyond chance, suppressed or missing


class PresenceAlerts:
    """Every presence rule on every sector series it has been told of."""

    def __init__(self, rules: Sequence[Rule], area_of: Callable[[str], str]) -> None:
        """``area_of``: a sector's area (that of the station nearest to it), for the alert rows."""
        self.rules = tuple(r for r in rules if r.measure in PRESENCE_MEASURES)
        self.area_of = area_of
        self.alerts: dict[tuple[str, str], Alert] = {}  # (rule, "<sector>/<source>") -> its alert
        self.areas: dict[str, str] = {}  # sector -> area
        self.changed = False  # since the caller stored the state

    def take(self, part: PresenceStepsPart) -> None:
        rules = [r for r in self.rules if (r.segment or Segment.ALL) is part.segment]
        if not rules:
            return
        key = f"{part.sector_id}/{part.source}"
        step = part.minutes * 60.0
        for rule in rules:
            alert = self.alerts.get((rule.name, key))
            if alert is None:
                alert = self.alerts[(rule.name, key)] = Alert(threshold_of(rule))
            for p, _present, _usual, ratio, _z, significant in part.periods:
                if p < alert.clock:
                    continue  # taken before (a repeated message)
                if -math.inf < alert.clock < p:
                    alert.observe(alert.clock, USUAL)  # a hole: the periods between never came
                alert.observe(float(p), round(ratio, 2) if significant else USUAL)
                alert.advance(p + step)
                self.changed = True

    def transitions(self) -> list[Transition]:
        """The transitions since the last call, in (time, rule, scope) order."""
        by_name = {r.name: r for r in self.rules}
        out = []
        for (name, key), alert in self.alerts.items():
            if alert.changes:
                out += [self._transition(by_name[name], key, c) for c in alert.take()]
        out.sort(key=lambda tr: (tr.change.at, tr.rule.name, tr.scope_key))
        return out

    def _transition(self, rule: Rule, key: str, change: Change) -> Transition:
        sector, source = key.split("/", 1)
        area = self.areas.get(sector)
        if area is None:
            area = self.areas[sector] = self.area_of(sector)
        segment = (rule.segment or Segment.ALL).value
        message = rule.render(change.value, sector=sector, source=source, segment=segment, area=area)
        return Transition(rule, key, area, "", segment, change, message)

    def retire(self, rules: Sequence[Rule]) -> list[Transition]:
        """Before new rules replace these: the alerts of a rule removed or changed end at their clock, and go."""
        new = {r.name: r for r in rules}
        mine = {r.name: r for r in self.rules}
        ended = [k for k in self.alerts if new.get(k[0]) != mine[k[0]]]
        for k in ended:
            self.alerts[k].end(self.alerts[k].clock)
        out = self.transitions()
        for k in ended:
            del self.alerts[k]
        self.changed = self.changed or bool(ended)
        return out

    def to_dict(self) -> dict[str, object]:
        """The state for a changelog (``transitions`` are taken before: never kept)."""
        return {"a": [[name, key, a.to_list()] for (name, key), a in self.alerts.items()]}

    def restore(self, doc: dict[str, object]) -> None:
        """Back to a state of :meth:`to_dict` (a rule since removed or changed starts afresh)."""
        rules = {r.name: r for r in self.rules}
        for name, key, data in doc.get("a", []):  # type: ignore[attr-defined]
            if name in rules:
                self.alerts[(name, key)] = Alert.from_list(threshold_of(rules[name]), data)
