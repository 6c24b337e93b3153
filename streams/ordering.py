"""The one ordering rule of every processor's entities (vehicles, people, interventions, plugins' own).

An entity remembers the event time of the newest event applied to it and the ids of the events applied at
that time. An event older than that is *stale*; an id already applied at that time is a *duplicate*;
anything else is admitted and becomes the entity's newest. Applied this way, a re-delivered or repeated
record never counts twice, and an older one never overwrites a newer state."""

from __future__ import annotations

from enum import Enum
from typing import Protocol


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


class Ordered(Protocol):
    event_time: float
    ids_at_time: list[str]


def admit(entity: Ordered, event_id: str, t: float) -> Outcome | None:
    """None: apply the event (it is recorded as the entity's newest); else why not."""
    if t < entity.event_time:
        return Outcome.STALE
    if t == entity.event_time:
        if event_id in entity.ids_at_time:
            return Outcome.DUPLICATE
        entity.ids_at_time.append(event_id)
    else:
        entity.event_time = t
        entity.ids_at_time = [event_id]
    return None
