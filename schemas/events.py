"""Event models carried as JSON on the Kafka topics.

Every event has a unique ``event_id``, a timezone-aware ``event_time`` (when it happened, not when
it was sent) and a ``schema_version``. Models are strict: unknown fields, naive timestamps, values
outside the closed sets and coordinates out of range are rejected with the field and the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from core.tables import DATETIME_MAX, DATETIME_MIN

SCHEMA_VERSION = 1

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")]
#: An event's time: with a zone, and an instant ClickHouse's DateTime can hold (1970-01-01T00:00:01Z to
#: 2106-02-07T06:28:15Z); a worker also refuses times too far ahead of its clock (VIGIE_MAX_CLOCK_SKEW_S).
EventTime = Annotated[AwareDatetime, Field(
    ge=datetime.fromtimestamp(DATETIME_MIN, UTC), le=datetime.fromtimestamp(DATETIME_MAX, UTC),
    description="ISO 8601 with a zone, from 1970-01-01T00:00:01Z to 2106-02-07T06:28:15Z")]
VehicleTypeCode = Annotated[str, Field(min_length=2, max_length=12, pattern=r"^[A-Z][A-Z0-9_]*$")]


class VehicleStatus(StrEnum):
    """Unit statuses, modelled on CAD unit statuses."""

    AVAILABLE_AT_STATION = "available_at_station"
    AVAILABLE_ON_RADIO = "available_on_radio"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    TRANSPORTING = "transporting"
    AT_HOSPITAL = "at_hospital"
    RETURNING = "returning"
    OUT_OF_SERVICE = "out_of_service"


class StatusCategory(StrEnum):
    """What a status means for capacity. ``unknown``: in the fleet, never reported yet."""

    AVAILABLE = "available"
    ENGAGED = "engaged"
    OUT_OF_SERVICE = "out_of_service"
    UNKNOWN = "unknown"


_CATEGORY: dict[VehicleStatus, StatusCategory] = {
    VehicleStatus.AVAILABLE_AT_STATION: StatusCategory.AVAILABLE,
    VehicleStatus.AVAILABLE_ON_RADIO: StatusCategory.AVAILABLE,
    VehicleStatus.DISPATCHED: StatusCategory.ENGAGED,
    VehicleStatus.EN_ROUTE: StatusCategory.ENGAGED,
    VehicleStatus.ON_SCENE: StatusCategory.ENGAGED,
    VehicleStatus.TRANSPORTING: StatusCategory.ENGAGED,
    VehicleStatus.AT_HOSPITAL: StatusCategory.ENGAGED,
    # Returning units are still committed to their intervention until they report available.
    VehicleStatus.RETURNING: StatusCategory.ENGAGED,
    VehicleStatus.OUT_OF_SERVICE: StatusCategory.OUT_OF_SERVICE,
}

#: Statuses that must name the intervention the vehicle is engaged on.
ENGAGED_STATUSES = frozenset(
    {
        VehicleStatus.DISPATCHED,
        VehicleStatus.EN_ROUTE,
        VehicleStatus.ON_SCENE,
        VehicleStatus.TRANSPORTING,
        VehicleStatus.AT_HOSPITAL,
    }
)


def category_of(status: VehicleStatus | None) -> StatusCategory:
    return StatusCategory.UNKNOWN if status is None else _CATEGORY[status]


class Position(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)


class Location(Position):
    sector: Identifier


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    schema_version: Literal[1]
    event_id: Identifier
    event_time: EventTime


class VehicleStatusEvent(_Event):
    """A vehicle changed status (topic ``vehicle-status``, key: the home station id)."""

    vehicle_id: Identifier
    vehicle_type: VehicleTypeCode
    home_station: Identifier
    status: VehicleStatus
    intervention_id: Identifier | None = None
    position: Position | None = None

    @model_validator(mode="after")
    def _engaged_needs_intervention(self) -> VehicleStatusEvent:
        if self.status in ENGAGED_STATUSES and self.intervention_id is None:
            raise ValueError(f"status {self.status.value!r} requires an intervention_id")
        return self


class InterventionNature(StrEnum):
    FIRE = "fire"
    RESCUE_TO_PERSON = "rescue_to_person"
    ROAD_ACCIDENT = "road_accident"
    HAZMAT = "hazmat"
    OTHER = "other"


class Lifecycle(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"


class InterventionEvent(_Event):
    """An intervention was opened (call received), updated or closed (topic ``interventions``,
    key: the intervention id)."""

    intervention_id: Identifier
    nature: InterventionNature
    lifecycle: Lifecycle
    location: Location
    priority: int = Field(ge=1, le=5, description="1 = most urgent")


class Qualification(StrEnum):
    """What a firefighter may do on board. A seat of a crew needs one of these; a person holds every
    qualification they may serve as (a crew leader usually also holds ``team_leader`` and ``team_member``)."""

    CREW_LEADER = "crew_leader"  # chef d'agrès
    DRIVER = "driver"  # conducteur
    TEAM_LEADER = "team_leader"  # chef d'équipe
    TEAM_MEMBER = "team_member"  # équipier


class CrewStatus(StrEnum):
    """A firefighter's status. ``available``, ``assigned`` and ``unavailable`` are on duty."""

    OFF_DUTY = "off_duty"
    AVAILABLE = "available"  # on duty at the station, free to crew a vehicle
    ASSIGNED = "assigned"  # on board a vehicle (``vehicle_id``), engaged with it
    UNAVAILABLE = "unavailable"  # on duty but cannot leave (training, sport, short absence)


class CrewStatusEvent(_Event):
    """A firefighter's status at a station (topic ``crew-status``, key: the station id, so a station's
    crews and vehicles share a partition). Like a vehicle event, each event states the whole current
    status, so the newest one wins whatever the arrival order. Personal data stays out: ``person_id`` is
    a pseudonymous identifier issued by the roster system, and there is no name, rank or reason field."""

    person_id: Identifier
    station_id: Identifier
    status: CrewStatus
    qualifications: tuple[Qualification, ...] = Field(min_length=1, max_length=len(Qualification))
    vehicle_id: Identifier | None = None
    intervention_id: Identifier | None = None

    @model_validator(mode="after")
    def _assignment(self) -> CrewStatusEvent:
        if len(set(self.qualifications)) != len(self.qualifications):
            raise ValueError("qualifications: listed twice")
        if self.status is CrewStatus.ASSIGNED and self.vehicle_id is None:
            raise ValueError("status 'assigned' requires a vehicle_id")
        if self.status is not CrewStatus.ASSIGNED and (self.vehicle_id or self.intervention_id):
            raise ValueError(f"status {self.status.value!r} takes no vehicle_id or intervention_id")
        return self
