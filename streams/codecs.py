"""Faust value codecs for the state objects kept in changelog-backed tables (compact JSON)."""

from __future__ import annotations

import json
from typing import Any

from faust.serializers import codecs

from streams.interventions import InterventionState, SectorWindows
from streams.state import StationState


class _JsonStateCodec(codecs.Codec):
    def __init__(self, cls: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cls = cls

    def _dumps(self, obj: Any) -> bytes:
        return json.dumps(obj.to_dict(), separators=(",", ":")).encode()

    def _loads(self, s: bytes) -> Any:
        return self._cls.from_dict(json.loads(s))


KEY_CODEC = "vigie-key"
STATION_CODEC = "vigie-station"
SECTORS_CODEC = "vigie-sectors"
INTERVENTION_CODEC = "vigie-intervention"


class _InterventionListCodec(codecs.Codec):
    """Intervention state as ``[intervention_id, ...fields]``."""

    def _dumps(self, obj: Any) -> bytes:
        return json.dumps([obj.intervention_id, *obj.to_list()], separators=(",", ":")).encode()

    def _loads(self, s: bytes) -> Any:
        data = json.loads(s)
        return InterventionState.from_list(data[0], data[1:])


class _StrKeyCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return obj.encode() if isinstance(obj, str) else bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return s.decode()


def register_codecs() -> None:
    codecs.register(KEY_CODEC, _StrKeyCodec())
    codecs.register(STATION_CODEC, _JsonStateCodec(StationState))
    codecs.register(SECTORS_CODEC, _JsonStateCodec(SectorWindows))
    codecs.register(INTERVENTION_CODEC, _InterventionListCodec())
