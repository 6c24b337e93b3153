"""Independent computation of what ClickHouse must hold, straight from the produced events.

Written separately from ``streams/`` on purpose: plain loops over the event list, no shared code.
"""

from __future__ import annotations

import math
from collections import defaultdict

from devtools.simulator import SimEvent
from schemas.reference import Reference

AVAILABLE = {"available_at_station", "available_on_radio"}
OUT = {"out_of_service"}


def category(status: str | None) -> str:
    if status is None:
        return "unknown"
    if status in AVAILABLE:
        return "available"
    if status in OUT:
        return "out_of_service"
    return "engaged"


def final_vehicle_status(events: list[SimEvent]) -> dict[str, str]:
    last: dict[str, tuple[float, str]] = {}
    for e in events:
        if e.topic == "vehicle-status":
            t = e.event.event_time.timestamp()
            if e.event.vehicle_id not in last or t >= last[e.event.vehicle_id][0]:
                last[e.event.vehicle_id] = (t, e.event.status.value)
    return {v: s for v, (_, s) in last.items()}


def capacity(ref: Reference, events: list[SimEvent]) -> dict[tuple[str, str, str], int]:
    final = final_vehicle_status(events)
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for v in ref.fleet.values():
        out[(v.home_station, v.vehicle_type, category(final.get(v.vehicle_id)))] += 1
    return dict(out)


def station_windows(ref: Reference, events: list[SimEvent], window: int, until: float) -> dict[tuple, tuple]:
    """(window_start, station, type) -> (available, engaged, oos, unknown, min_available, engaged_minutes)
    for every window that ends at or before ``until``, from the first event on."""
    status: dict[str, str | None] = {v: None for v in ref.fleet}
    timeline: list[tuple[float, str, str]] = sorted(
        (e.event.event_time.timestamp(), e.event.vehicle_id, e.event.status.value)
        for e in events if e.topic == "vehicle-status")
    first = timeline[0][0]
    start = first - first % window

    def counts() -> dict[tuple[str, str], list[int]]:
        c: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        order = ["available", "engaged", "out_of_service", "unknown"]
        for vid, st in status.items():
            v = ref.fleet[vid]
            c[(v.home_station, v.vehicle_type)][order.index(category(st))] += 1
        return c

    result = {}
    i = 0
    w = start
    while w + window <= until:
        end = w + window
        # values held during the window: after the changes at w, then after each later instant < end
        while i < len(timeline) and timeline[i][0] <= w:
            status[timeline[i][1]] = timeline[i][2]
            i += 1
        c = counts()
        mins = {k: v[0] for k, v in c.items()}
        engaged_seconds = {k: 0.0 for k in c}
        t_prev = w
        while i < len(timeline) and timeline[i][0] < end:
            t = timeline[i][0]
            for k, v in c.items():
                engaged_seconds[k] += v[1] * (t - t_prev)
            while i < len(timeline) and timeline[i][0] == t:
                status[timeline[i][1]] = timeline[i][2]
                i += 1
            c = counts()
            for k, v in c.items():
                mins[k] = min(mins[k], v[0])
            t_prev = t
        for k, v in c.items():
            engaged_seconds[k] += v[1] * (end - t_prev)
            result[(w, k[0], k[1])] = (v[0], v[1], v[2], v[3], mins[k], round(engaged_seconds[k] / 60.0, 6))
        w = end
    return result


def response_times(events: list[SimEvent]) -> dict[str, int]:
    """intervention -> seconds from the call (opened) to the first vehicle on scene."""
    opened: dict[str, float] = {}
    first_arrival: dict[str, float] = {}
    for e in events:
        ev = e.event
        t = ev.event_time.timestamp()
        if e.topic == "interventions" and ev.lifecycle.value == "opened":
            opened[ev.intervention_id] = min(t, opened.get(ev.intervention_id, t))
        elif e.topic == "vehicle-status" and ev.status.value == "on_scene":
            first_arrival[ev.intervention_id] = min(t, first_arrival.get(ev.intervention_id, t))
    return {i: int(first_arrival[i] - opened[i]) for i in first_arrival if i in opened}


def turnouts(events: list[SimEvent]) -> dict[tuple[str, str], float]:
    """(intervention, vehicle) -> en route minus dispatched."""
    dispatched: dict[tuple[str, str], float] = {}
    out = {}
    for e in events:
        ev = e.event
        if e.topic != "vehicle-status" or ev.intervention_id is None:
            continue
        k = (ev.intervention_id, ev.vehicle_id)
        t = ev.event_time.timestamp()
        if ev.status.value == "dispatched":
            dispatched.setdefault(k, t)
        elif ev.status.value == "en_route" and k in dispatched and k not in out:
            out[k] = t - dispatched[k]
    return out


def sector_openings(events: list[SimEvent], window: int) -> dict[tuple[float, str], int]:
    out: dict[tuple[float, str], int] = defaultdict(int)
    for e in events:
        ev = e.event
        if e.topic == "interventions" and ev.lifecycle.value == "opened":
            t = ev.event_time.timestamp()
            out[(t - t % window, ev.location.sector)] += 1
    return dict(out)


# --- crews ---------------------------------------------------------------------------------------
# The crewing rule as documented (types in the reference's order, one vehicle at a time while the whole
# set can be crewed), with feasibility decided by an explicit seat-to-person matching (augmenting paths)
# rather than the pipeline's counting argument.

ON_DUTY = ("available", "assigned", "unavailable")
QUALS = ("crew_leader", "driver", "team_leader", "team_member")


def _can_crew(seats: list[str], people: list[frozenset[str]]) -> bool:
    owner: dict[int, int] = {}  # person -> seat

    def place(seat: int, seen: set[int]) -> bool:
        for person, quals in enumerate(people):
            if seats[seat] in quals and person not in seen:
                seen.add(person)
                if person not in owner or place(owner[person], seen):
                    owner[person] = seat
                    return True
        return False

    return len(seats) <= len(people) and all(place(i, set()) for i in range(len(seats)))


_staffed_memo: dict[tuple, dict[str, int]] = {}  # type: ignore[type-arg]


def staffed(ref: Reference, available: dict[str, int], people: list[frozenset[str]]) -> dict[str, int]:
    key = (tuple(sorted(available.items())), tuple(sorted(tuple(sorted(p)) for p in people)))
    if key in _staffed_memo:
        return _staffed_memo[key]
    seats: list[str] = []
    out = {t: 0 for t in available}
    for vtype in ref.crew_rules.priority:
        need = [q.value for q, n in ref.crew_rules.requirements[vtype].items() for _ in range(n)]
        for _ in range(available.get(vtype, 0)):
            if not _can_crew(seats + need, people):
                break
            seats += need
            out[vtype] += 1
    _staffed_memo[key] = out
    return out


class _Station:
    """One station's vehicles and people, replayed event by event."""

    def __init__(self, ref: Reference, station_id: str) -> None:
        self.ref = ref
        self.vehicles = {v.vehicle_id: v.vehicle_type for v in ref.fleet_by_station[station_id]}
        self.vehicle_status: dict[str, str] = {}
        self.people: dict[str, tuple[str, frozenset[str]]] = {}  # person -> (status, qualifications)

    def available(self) -> dict[str, int]:
        out = {t: 0 for t in self.vehicles.values()}
        for vid, st in self.vehicle_status.items():
            if category(st) == "available":
                out[self.vehicles[vid]] += 1
        return out

    def staffed(self) -> dict[str, int]:
        if not self.people:
            return {}
        free = [q for st, q in self.people.values() if st == "available"]
        return staffed(self.ref, self.available(), free)

    def staff(self) -> dict[str, tuple[int, int, int, int]]:
        """qualification -> (on duty, assigned, available, unavailable)."""
        out = {}
        for q in QUALS:
            c = [sum(1 for st, qs in self.people.values() if st == s and q in qs) for s in ON_DUTY]
            out[q] = (sum(c), c[1], c[0], c[2])
        return out


def _station_timeline(events: list[SimEvent]) -> list[tuple[float, str, SimEvent]]:
    """Station-keyed events in event-time order (ties in publishing order, as the pipeline applies them)."""
    out = [(e.event.event_time.timestamp(), e.key, e) for e in events if e.topic in ("vehicle-status", "crew-status")]
    return sorted(out, key=lambda x: x[0])


def _apply(st: _Station, e: SimEvent) -> None:
    ev = e.event
    if e.topic == "vehicle-status":
        st.vehicle_status[ev.vehicle_id] = ev.status.value
    else:
        st.people[ev.person_id] = (ev.status.value, frozenset(q.value for q in ev.qualifications))


def capacity_now(ref: Reference, events: list[SimEvent]) -> dict[tuple[str, str], tuple[int, int, int, int, int]]:
    """(station, type) -> (vehicles, available, staffed, uncrewed, crew_tracked) after every event."""
    stations = {sid: _Station(ref, sid) for sid in ref.stations}
    for _, key, e in _station_timeline(events):
        _apply(stations[key], e)
    out = {}
    for sid, st in stations.items():
        if not st.vehicle_status and not st.people:
            continue
        avail, crewed, tracked = st.available(), st.staffed(), int(bool(st.people))
        for vtype in set(st.vehicles.values()):
            n = sum(1 for t in st.vehicles.values() if t == vtype)
            s = crewed.get(vtype, 0)
            out[(sid, vtype)] = (n, avail[vtype], s, avail[vtype] - s if tracked else 0, tracked)
    return out


def staff_now(ref: Reference, events: list[SimEvent]) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    stations = {sid: _Station(ref, sid) for sid in ref.stations}
    for _, key, e in _station_timeline(events):
        _apply(stations[key], e)
    return {(sid, q): v for sid, st in stations.items() if st.people for q, v in st.staff().items()}


def crew_windows(ref: Reference, events: list[SimEvent], window: int, until: float
                 ) -> tuple[dict[tuple, tuple], dict[tuple, tuple]]:  # type: ignore[type-arg]
    """Per window ending at or before ``until``: (window_start, station, type) -> (staffed, min_staffed,
    crew_tracked) and (window_start, station, qualification) -> (on_duty, assigned, available, unavailable,
    min_available), from the first event on. Values held during a window: after the changes at its start,
    then after each later instant before its end (as for the vehicle counts)."""
    timeline = _station_timeline(events)
    stations = {sid: _Station(ref, sid) for sid in ref.stations}
    first = timeline[0][0]
    w = first - first % window
    types_of = {sid: sorted(set(st.vehicles.values())) for sid, st in stations.items()}
    seen: set[str] = set()
    cap: dict[tuple, tuple] = {}  # type: ignore[type-arg]
    staff: dict[tuple, tuple] = {}  # type: ignore[type-arg]
    i = 0
    while w + window <= until:
        end = w + window
        touched: set[str] = set()
        while i < len(timeline) and timeline[i][0] <= w:
            _apply(stations[timeline[i][1]], timeline[i][2])
            seen.add(timeline[i][1])
            i += 1
        current = {sid: (stations[sid].staffed(), stations[sid].staff()) for sid in seen}
        mins = {sid: ({t: c[0].get(t, 0) for t in types_of[sid]}, {q: v[2] for q, v in c[1].items()})
                for sid, c in current.items()}
        while i < len(timeline) and timeline[i][0] < end:
            t = timeline[i][0]
            touched.clear()
            while i < len(timeline) and timeline[i][0] == t:
                _apply(stations[timeline[i][1]], timeline[i][2])
                seen.add(timeline[i][1])
                touched.add(timeline[i][1])
                i += 1
            for sid in touched:
                current[sid] = (stations[sid].staffed(), stations[sid].staff())
                m = mins.setdefault(sid, ({t: 0 for t in types_of[sid]}, {}))
                for vtype in types_of[sid]:
                    m[0][vtype] = min(m[0].get(vtype, 0), current[sid][0].get(vtype, 0))
                for q, v in current[sid][1].items():
                    m[1][q] = min(m[1].get(q, v[2]), v[2])
        for sid, (crewed, by_qual) in current.items():
            tracked = int(bool(stations[sid].people))
            for vtype in types_of[sid]:
                cap[(w, sid, vtype)] = (crewed.get(vtype, 0), mins[sid][0][vtype] if tracked else 0, tracked)
            for q, v in by_qual.items() if tracked else ():
                staff[(w, sid, q)] = (*v, mins[sid][1][q])
        w = end
    return cap, staff


# --- alerts ---------------------------------------------------------------------------------------------------

def _kafka_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2), written out again here."""
    length, seed, m, r = len(key), 0x9747B28C, 0x5BD1E995, 24
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(key[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length % 4
    tail = key[length - rest:]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def _turns_on(v: float, below: bool, fire: float) -> bool:
    return v <= fire if below else v >= fire


def _turns_off(v: float, below: bool, fire: float, clear: float) -> bool:
    if below:
        return v > clear if clear == fire else v >= clear
    return v < clear if clear == fire else v <= clear


def alert_episodes(series: list[tuple[float, float]], below: bool, fire: float, clear: float, for_s: float,
                   keep: float, until: float) -> list[tuple[float, str, float]]:
    """(time, transition, value) of one alert from its value series, by on-intervals: an interval shorter than
    ``for`` is cancelled at its end; one that lasts fires ``for`` after its start; intervals starting less than
    ``keep`` after the previous one ended continue its episode; the episode resolves ``keep`` after its last
    interval ends. Values: at pending, the value then; at firing and resolved, the worst seen while on."""
    intervals: list[tuple[float, float | None, list[tuple[float, float]]]] = []  # (start, end, on-values)
    on = False
    for t, v in series:
        if not on and _turns_on(v, below, fire):
            on = True
            intervals.append((t, None, [(t, v)]))
        elif on and _turns_off(v, below, fire, clear):
            on = False
            a, _, vals = intervals[-1]
            intervals[-1] = (a, t, vals)
        elif on:
            intervals[-1][2].append((t, v))
    worst = min if below else max
    out: list[tuple[float, str, float]] = []
    i = 0
    while i < len(intervals):
        a, b, vals = intervals[i]
        out.append((a, "pending", vals[0][1]))
        deadline = a + for_s
        if b is not None and b < deadline:
            out.append((b, "cancelled", worst(v for _, v in vals)))
            i += 1
            continue
        if b is None and until < deadline:
            break
        out.append((deadline, "firing", worst(v for t, v in vals if t < deadline or t == a)))
        seen = list(vals)
        end, j = b, i + 1
        while end is not None and j < len(intervals) and intervals[j][0] < end + keep:
            end = intervals[j][1]
            seen += intervals[j][2]
            j += 1
        if end is not None and end + keep <= until:
            out.append((end + keep, "resolved", worst(v for _, v in seen)))
        i = j
    return [x for x in out if x[0] <= until]


def alert_transitions(ref: Reference, events: list[SimEvent], rules: list[dict], lateness: float,  # type: ignore[type-arg]
                      partitions: int) -> list[tuple[str, str, float, str, float]]:
    """(rule, scope key, time, transition, value) of the capacity and staff rules (``available``,
    ``available_share``, ``staff_on_duty``; area and station scopes) on the stations' events, of the units too
    long in a status, of the interventions waiting for a unit. Each partition (of the stations' topics, of the
    interventions') is known up to its newest event less the lateness (later events: not yet); the run ends at
    the newest of those. A station counts in a vehicle scope once it reported a vehicle, in a staffed or staff
    scope once it reported a person; the share is over the fleet of the stations counted. Surges need three
    weeks of history: none in a shorter run."""
    timeline = _station_timeline(events)
    newest: dict[int, float] = {}
    for t, key, _ in timeline:
        p = _kafka_partition(key.encode(), partitions)
        newest[p] = max(newest.get(p, t), t)
    cutoff = {p: t - lateness for p, t in newest.items()}
    calls = [e for e in events if e.topic == "interventions"]
    call_cutoff: dict[int, float] = {}
    for e in calls:
        p = _kafka_partition(e.key.encode(), partitions)
        call_cutoff[p] = max(call_cutoff.get(p, 0.0), e.event.event_time.timestamp() - lateness)
    on_calls = [r for r in rules if r["measure"] in ("unassigned_minutes", "surge")]
    until = max([*cutoff.values(), *(call_cutoff.values() if on_calls else ())])
    if any(r["measure"] == "surge" for r in rules):
        times = [e.event.event_time.timestamp() for e in events]
        assert max(times) - min(times) < 3 * 7 * 86400, "a surge could fire: compute it here"
    known = [(t, key, e) for t, key, e in timeline if t < cutoff[_kafka_partition(key.encode(), partitions)]]
    stations = {sid: _Station(ref, sid) for sid in ref.stations}
    vehicles_seen: set[str] = set()
    people_seen: set[str] = set()
    fleet: dict[tuple[str, str], int] = defaultdict(int)
    for v in ref.fleet.values():
        fleet[(v.home_station, v.vehicle_type)] += 1
    wanted = [r for r in rules if r["measure"] in ("available", "available_share", "staff_on_duty")]
    series: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)

    def scope_values(rule: dict, t: float) -> None:  # type: ignore[type-arg]
        staff = rule["measure"] == "staff_on_duty"
        subject = rule.get("qualification") if staff else rule["vehicle_type"]
        groups: dict[str, list[str]] = defaultdict(list)
        for sid, st in ref.stations.items():
            groups[st.area if rule["scope"] == "area" else sid].append(sid)
        for name, sids in groups.items():
            counted = [s for s in sids if s in (people_seen if staff or rule.get("staffed") else vehicles_seen)]
            if not counted:
                continue
            if staff:
                value = float(sum(stations[s].staff()[subject][0] for s in counted))
            else:
                count = sum((stations[s].staffed() if rule.get("staffed") else stations[s].available()).get(subject, 0)
                            for s in counted)
                if rule["measure"] == "available_share":
                    total = sum(fleet[(s, subject)] for s in counted)
                    if not total:
                        continue
                    value = round(100.0 * count / total, 1)
                else:
                    value = float(count)
            series[(rule["name"], f"{name}/{subject}")].append((t, value))

    i = 0
    while i < len(known):
        t = known[i][0]
        while i < len(known) and known[i][0] == t:
            _, key, e = known[i]
            _apply(stations[key], e)
            (vehicles_seen if e.topic == "vehicle-status" else people_seen).add(key)
            i += 1
        for rule in wanted:
            scope_values(rule, t)
    for rule in [r for r in rules if r["measure"] == "status_minutes"]:
        series.update(_status_series(ref, rule, [e for _, _, e in known if e.topic == "vehicle-status"], until))
        wanted.append(rule)
    for rule in [r for r in rules if r["measure"] == "unassigned_minutes"]:
        known_calls = [e for e in calls if e.event.event_time.timestamp()
                       < call_cutoff[_kafka_partition(e.key.encode(), partitions)]]
        series.update(_waiting_series(rule, known_calls, [e for _, _, e in known if e.topic == "vehicle-status"],
                                      until))
        wanted.append(rule)
    out = []
    for rule in wanted:
        below = rule["measure"] in ("available", "available_share", "staff_on_duty")
        fire = float(rule["fire_at"])
        clear = float(rule.get("clear_at", fire))
        for (name, key), values in sorted(series.items()):
            if name == rule["name"]:
                for at, transition, value in alert_episodes(values, below, fire, clear, _seconds(rule.get("for", 0)),
                                                            _seconds(rule.get("keep_firing_for", 0)), until):
                    out.append((name, key, at, transition, value))
    return sorted(out)


def _status_series(ref: Reference, rule: dict, events: list[SimEvent], until: float  # type: ignore[type-arg]
                   ) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """The value series of a ``status_minutes`` rule per unit: each period the unit spends in the rule's status
    (from a change to it until the next change of status) reaches ``fire_at`` minutes after its start if it
    lasts beyond that (and the run does), then at its end is worth its length in minutes, then 0."""
    limit = float(rule["fire_at"]) * 60
    periods: dict[str, list[list[float]]] = defaultdict(list)  # vehicle -> [start, end] in the status
    status: dict[str, str] = {}
    for e in sorted(events, key=lambda e: (e.event.event_time.timestamp(), e.event.event_id)):
        ev, t = e.event, e.event.event_time.timestamp()
        if status.get(ev.vehicle_id) == ev.status.value:
            continue
        if status.get(ev.vehicle_id) == rule["status"]:
            periods[ev.vehicle_id][-1][1] = t
        status[ev.vehicle_id] = ev.status.value
        if ev.status.value == rule["status"] and rule.get("vehicle_type") in (None, ev.vehicle_type):
            periods[ev.vehicle_id].append([t, math.inf])
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for vid, spans in periods.items():
        values: list[tuple[float, float]] = []
        for start, end in spans:
            if start + limit < min(end, until):
                values.append((start + limit, float(rule["fire_at"])))
                if end < until:
                    values += [(end, round((end - start) / 60, 1)), (end, 0.0)]
        if values:
            out[(rule["name"], f"{ref.fleet[vid].home_station}/{vid}")] = values
    return out


ENGAGED = {"dispatched", "en_route", "on_scene", "transporting", "at_hospital"}
CALL_EXPIRY_S = 72 * 3600


def _waiting_series(rule: dict, calls: list[SimEvent], units: list[SimEvent], until: float  # type: ignore[type-arg]
                    ) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """The value series of an ``unassigned_minutes`` rule per intervention: from its opening (its earliest
    ``opened`` event) until the first unit sent to it (a vehicle in an engaged status naming it), its first
    ``closed`` event from the opening on, or 72 hours: ``fire_at`` minutes after the opening if the wait lasts
    beyond that (and the run does), then at its end its length in minutes, then 0. A unit sent at or before the
    opening: no wait; no unit's status at all by the deadline (a feed of calls alone): no alert."""
    limit = float(rule["fire_at"]) * 60
    opened: dict[str, float] = {}
    for e in sorted(calls, key=lambda e: (e.event.event_time.timestamp(), e.event.event_id)):
        if e.event.lifecycle.value == "opened" and e.event.intervention_id not in opened:
            opened[e.event.intervention_id] = e.event.event_time.timestamp()
    first_unit = min((e.event.event_time.timestamp() for e in units), default=math.inf)
    sent: dict[str, float] = {}
    for e in units:
        iid, t = e.event.intervention_id, e.event.event_time.timestamp()
        if iid and e.event.status.value in ENGAGED:
            sent[iid] = min(sent.get(iid, t), t)
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for iid, start in opened.items():
        if iid in sent and sent[iid] <= start:
            continue
        ends = [start + CALL_EXPIRY_S, sent.get(iid, math.inf)]
        ends += [e.event.event_time.timestamp() for e in calls if e.event.intervention_id == iid
                 and e.event.lifecycle.value == "closed" and e.event.event_time.timestamp() >= start]
        end = min(ends)
        if first_unit <= start + limit < min(end, until):
            values = [(start + limit, float(rule["fire_at"]))]
            if end < until:
                values += [(end, round((end - start) / 60, 1)), (end, 0.0)]
            out[(rule["name"], iid)] = values
    return out


def nearest_area(ref: Reference, lat: float, lon: float) -> str:
    """The area of the station nearest to a place (great-circle distance)."""
    def km(st: object) -> float:
        la, lo = math.radians(st.lat), math.radians(st.lon)  # type: ignore[attr-defined]
        a = (math.sin((la - math.radians(lat)) / 2) ** 2
             + math.cos(la) * math.cos(math.radians(lat)) * math.sin((lo - math.radians(lon)) / 2) ** 2)
        return 2 * 6371.0 * math.asin(math.sqrt(a))
    return min(ref.stations.values(), key=km).area


def intervention_areas(ref: Reference, events: list[SimEvent]) -> dict[str, str]:
    """Each intervention's area: the nearest station's to the place of its opening event."""
    out: dict[str, str] = {}
    for e in sorted((e for e in events if e.topic == "interventions" and e.event.lifecycle.value == "opened"),
                    key=lambda e: (e.event.event_time.timestamp(), e.event.event_id), reverse=True):
        out[e.event.intervention_id] = nearest_area(ref, e.event.location.lat, e.event.location.lon)
    return out


def _seconds(text: object) -> float:
    if isinstance(text, int | float):
        return float(text)
    s = str(text)
    return float(s[:-1]) * {"s": 1, "m": 60, "h": 3600}[s[-1]]
