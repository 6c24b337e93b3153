"""The ordering rules of every processor's entities (vehicles, people, interventions, plugins' own).

Events of one entity are ordered by ``(event time, event id)``: the id breaks ties, so that two events at
the same instant give the same state whatever order they arrive in.

- ``admit`` (entities whose state is the newest event's, with order-free extras such as a min or a max):
  the entity remembers the newest ``(time, id)`` applied and the ids applied at that time. An event older
  than it is *stale*, an id already applied at that time a *duplicate*; anything else becomes the newest.
- ``place`` (entities whose state is derived from a sequence, like a vehicle's engagement or its category
  changes): the entity keeps a *timeline*, its events within the allowed lateness in ``(time, id)`` order,
  each with the state after it. An event is placed at its rank; an older event is inserted and what follows
  it re-derived, so the result does not depend on arrival order. The first entry is the state at the
  timeline's horizon: nothing can be placed before it (stale, beyond the lateness).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from enum import Enum
from typing import Any, Protocol


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


class Ordered(Protocol):
    event_time: float
    ids_at_time: list[str]


#: Ids remembered per instant for the duplicate check (a burst of distinct events at one instant beyond this
#: keeps only the newest ids: bounded state; a re-delivery of an older one is then "stale", still not applied).
MAX_IDS_AT_TIME = 64


def admit(entity: Ordered, event_id: str, t: float) -> Outcome | None:
    """None: apply the event (it is recorded as the entity's newest); else why not."""
    if t < entity.event_time:
        return Outcome.STALE
    if t == entity.event_time:
        ids = entity.ids_at_time
        if event_id in ids:
            return Outcome.DUPLICATE
        newest_id = ids[-1] if ids else ""
        ids.append(event_id)
        ids.sort()
        if len(ids) > MAX_IDS_AT_TIME:
            del ids[0]
        if event_id < newest_id:
            return Outcome.STALE  # same instant, lower id: older in the (time, id) order
    else:
        entity.event_time = t
        entity.ids_at_time = [event_id]
    return None


def place(timeline: Sequence[Sequence[Any]], t: float, event_id: str) -> int | Outcome:
    """Where an event goes in a timeline (entries ``[time, id, ...]`` in ``(time, id)`` order): the index to
    insert it at (``len(timeline)``: it is the newest), or why it is not placed."""
    last = timeline[-1]
    if t > last[0] or (t == last[0] and event_id > last[1]):
        return len(timeline)
    i = bisect_left(timeline, (t, event_id), key=_rank)
    if i < len(timeline) and timeline[i][0] == t and timeline[i][1] == event_id:
        return Outcome.DUPLICATE
    if i == 0:
        return Outcome.STALE  # before the timeline's horizon
    return i


def trim(timeline: list[Any], horizon: float | None, cap: int) -> None:
    """Drop the entries no event can be placed before any more: keep the last one older than ``horizon``
    (the state there) and at most ``cap`` entries."""
    while len(timeline) > 1 and ((horizon is not None and timeline[1][0] < horizon) or len(timeline) > cap):
        del timeline[0]


def _rank(entry: Sequence[Any]) -> tuple[float, str]:
    return entry[0], entry[1]
