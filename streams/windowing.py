"""The one tumbling event-time window primitive: which window an instant falls in, and the late clamp.

A window is emitted (sealed) once the watermark passes its end. A change older than the sealed time is
*late*: it is applied at the sealed time instead, in the window still open, and counted (metric)."""

from __future__ import annotations


def window_of(t: float, window_seconds: int) -> float:
    """Start of the window holding ``t``."""
    return t - t % window_seconds


def clamp_late(t: float, sealed_time: float | None) -> tuple[float, bool]:
    """``(time to apply the change at, late?)``."""
    if sealed_time is not None and t < sealed_time:
        return sealed_time, True
    return t, False
