"""What operators do with an alert (topic ``alert-actions``, key ``all``): acknowledge it, silence it until a
time, or lift a silence. ``vigie alerts ack | silence | unsilence`` sends them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import EventTime, Identifier


class ActionKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"  # someone took it in hand (this episode)
    SILENCE = "silence"  # not notified until ``until`` (still stored and shown, marked)
    UNSILENCE = "unsilence"  # the silence ends now


class AlertAction(BaseModel):
    """An action on one alert: a rule on one scope (``scope_key`` as in the ``alerts`` table, e.g. ``G1/VSAV``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    schema_version: Literal[1]
    event_id: Identifier
    event_time: EventTime  # when the operator acted
    action: ActionKind
    rule: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    scope_key: str = Field(min_length=3, max_length=130, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*/[A-Za-z0-9_.:\-]+$")
    until: EventTime | None = None  # a silence's end
    by: Identifier  # who: an operator's identifier (no name needed)
    why: str = Field(default="", max_length=200)  # operational: why silenced (no personal data)

    @model_validator(mode="after")
    def _until(self) -> AlertAction:
        if self.action is ActionKind.SILENCE:
            if self.until is None or self.until <= self.event_time:
                raise ValueError("until: a silence needs an end after its event_time")
            if not self.why.strip():
                raise ValueError("why: say why the alert is silenced")
        elif self.until is not None:
            raise ValueError(f"until: only a silence has one, not {self.action.value!r}")
        return self
