"""The crewing rule: how many of a station's available vehicles its available staff can crew.

A vehicle counts as *staffed* capacity only when every seat of its minimum crew (reference
``crew_requirements``: seats per qualification) can be given to a distinct available person of the
station holding that seat's qualification, all counted vehicles at once.

**Rule (priority order, exact feasibility).** Vehicle types are taken in the reference's crewing
order (VSAV first: rescue to persons is three quarters of the calls; then the fire engines, the
ladder, ...). Vehicles are added one at a time, each type while it has available vehicles and the
whole set chosen so far can still be crewed; then the next type. The result is the
lexicographically largest crewable set in that order: a lower-priority type never takes staff a
higher-priority vehicle needs, and a lower-priority type is still crewed from what is left (an EPA
needs no team members, so it can leave when a third VSAV cannot).

Why exact feasibility rather than seat-by-seat greedy filling: greedy filling gives a person to the
first seat they fit and can strand a later vehicle (a crew leader who also drives, taken as driver,
leaves the next vehicle without a crew leader while a plain driver stays at the station). Whether a
set of vehicles can be crewed is a bipartite assignment of seats to people; with seats grouped by
qualification, Hall's theorem makes it exact and cheap: it can be crewed iff for every set S of
qualifications, the seats needing one of S are no more than the people holding at least one of S
(4 qualifications: 15 sets to check).

Staff are counted by *profile* (the set of qualifications a person holds, a bit mask), which is all
the rule needs; results are memoised, since a station's counts repeat.
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.events import Qualification
from schemas.reference import CrewRules

QUALIFICATIONS: tuple[Qualification, ...] = tuple(Qualification)
QUAL_BIT = {q: 1 << i for i, q in enumerate(QUALIFICATIONS)}
QUAL_VALUES: tuple[str, ...] = tuple(q.value for q in QUALIFICATIONS)  # an enum's .value costs ~0.5 µs a read
_VALUE_BITS = tuple(zip(QUAL_VALUES, (QUAL_BIT[q] for q in QUALIFICATIONS), strict=True))
_SUBSETS = range(1, 1 << len(QUALIFICATIONS))


def profile_mask(qualifications: tuple[Qualification, ...] | list[Qualification]) -> int:
    mask = 0
    for q in qualifications:
        mask |= QUAL_BIT[q]
    return mask


def profile_qualifications(mask: int) -> list[str]:
    return [value for value, bit in _VALUE_BITS if mask & bit]


class Crewing:
    """The rule bound to one reference (seats per type, crewing order), with a memo of results."""

    #: results kept for reuse: ~1 kB each; a station's (vehicles, staff) mixes keep changing over weeks, so a larger
    #: memo only grows the process (200,000 grew a live worker by ~10 MB a week) for a few % more hits
    MEMO_SIZE = 8192

    def __init__(self, rules: CrewRules, memo_size: int = MEMO_SIZE) -> None:
        self.priority = rules.priority
        # per type: seats needed per qualification bit position
        self.seats = {t: [rules.requirements[t].get(q, 0) for q in QUALIFICATIONS] for t in rules.priority}
        self._memo: dict[tuple[object, ...], dict[str, int]] = {}
        self._memo_size = memo_size

    def staffed(self, available: Mapping[str, int], staff: Mapping[int, int]) -> dict[str, int]:
        """Vehicles crewed per type, for ``available`` vehicles per type and ``staff`` available people
        per profile mask. Types without crew requirements are not crewable (0)."""
        key = (tuple(sorted((t, n) for t, n in available.items() if n > 0)),
               tuple(sorted((m, n) for m, n in staff.items() if n > 0)))
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        result = self._compute(available, staff)
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        self._memo[key] = result
        return result

    def _compute(self, available: Mapping[str, int], staff: Mapping[int, int]) -> dict[str, int]:
        supply = self._supply(staff)
        demand = [0] * len(QUALIFICATIONS)
        out = {t: 0 for t in available}
        for vtype in self.priority:
            seats = self.seats[vtype]
            for _ in range(available.get(vtype, 0)):
                trial = [d + s for d, s in zip(demand, seats, strict=True)]
                if not self._feasible(trial, supply):
                    break
                demand = trial
                out[vtype] = out.get(vtype, 0) + 1
        return out

    def crewable(self, vehicles: Mapping[str, int], staff: Mapping[int, int]) -> bool:
        """Whether ``staff`` (people per profile mask) can crew all of ``vehicles`` (count per type) at once; a type
        without crew requirements needs no one."""
        demand = [0] * len(QUALIFICATIONS)
        for vtype, n in vehicles.items():
            for i, seats in enumerate(self.seats.get(vtype, ())):
                demand[i] += n * seats
        return self._feasible(demand, self._supply(staff))

    @staticmethod
    def _supply(staff: Mapping[int, int]) -> list[int]:
        """People able to fill at least one seat of each set of qualifications (a bit mask of them)."""
        return [sum(n for mask, n in staff.items() if mask & subset) for subset in range(1 << len(QUALIFICATIONS))]

    @staticmethod
    def _feasible(demand: list[int], supply: list[int]) -> bool:
        for subset in _SUBSETS:
            need = 0
            for i, d in enumerate(demand):
                if subset >> i & 1:
                    need += d
            if need > supply[subset]:
                return False
        return True
