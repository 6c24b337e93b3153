"""The one registry of processors: Vigie's own (modules of ``streams/processors/`` defining ``PROCESSOR``),
those registered through the ``vigie.processors`` entry point (a data engineer's package), and modules
named by ``VIGIE_PROCESSOR_MODULES``. Nothing else lists processors."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points

from pydantic import BaseModel

from core.settings import DEAD_LETTER_TOPIC, Settings
from core.tables import TableSpec
from streams import processors as builtin
from streams.forecasting.table import FORECASTS
from streams.processor import Processor
from streams.whatif.table import WHATIF_TABLES

ENTRY_POINT_GROUP = "vigie.processors"


class RegistryError(RuntimeError):
    """Two processors claim the same name, topic, output, state table or ClickHouse table; an output nobody reads;
    or a module has no PROCESSOR."""


def _from_module(name: str) -> Processor:
    module = importlib.import_module(name)
    proc = getattr(module, "PROCESSOR", None)
    if not isinstance(proc, Processor):
        raise RegistryError(f"module {name!r} defines no PROCESSOR (a streams.processor.Processor)")
    return proc


def _check(found: list[Processor]) -> None:
    seen: dict[str, str] = {}

    def claim(kind: str, value: str, owner: str) -> None:
        other = seen.setdefault(f"{kind}:{value}", owner)
        if other != owner:
            raise RegistryError(f"{kind} {value!r} is claimed by processors {other!r} and {owner!r}")

    for p in found:
        claim("processor", p.name, p.name)
        for i in p.inputs:
            if i.topic == DEAD_LETTER_TOPIC:
                raise RegistryError(f"processor {p.name!r}: {DEAD_LETTER_TOPIC!r} is the runtime's topic")
            claim("topic", i.topic, p.name)
        for st in p.states:
            claim("state table", st.name, p.name)
        for t in p.tables:
            claim("table", t.name, p.name)
        for out in (*p.outputs, *p.publishes):
            claim("output", out, p.name)
    read_by = {i.topic: p.name for p in found for i in p.inputs}
    for p in found:
        for out in p.publishes:
            if out in read_by:
                raise RegistryError(f"processor {p.name!r} publishes {out!r} for outside consumers, but processor "
                                    f"{read_by[out]!r} reads it: declare it in `outputs`")
    for p in found:
        for out in p.outputs:
            if out not in read_by:
                raise RegistryError(f"processor {p.name!r} publishes to {out!r}, which no processor reads")
            if read_by[out] == p.name:
                raise RegistryError(f"processor {p.name!r} reads its own output {out!r}")


@cache
def _discover(extra_modules: str) -> tuple[Processor, ...]:
    names = [f"{builtin.__name__}.{m.name}" for m in pkgutil.iter_modules(builtin.__path__)]
    found = [_from_module(n) for n in sorted(names)]
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        proc = ep.load()
        if not isinstance(proc, Processor):
            raise RegistryError(f"entry point {ep.name!r} ({ep.value}) is not a Processor")
        found.append(proc)
    found += [_from_module(n.strip()) for n in extra_modules.split(",") if n.strip()]
    unique = list({id(p): p for p in found}.values())  # a module named twice counts once
    _check(unique)
    return tuple(unique)


def processors(settings: Settings) -> tuple[Processor, ...]:
    """Every registered processor, Vigie's own first (in module order), then the plugins."""
    return _discover(settings.processor_modules)


def tables(settings: Settings) -> tuple[TableSpec, ...]:
    return tuple(t for p in processors(settings) for t in p.tables)


def readable_tables(settings: Settings) -> tuple[str, ...]:
    """The tables the dashboards' user may read: every registered table but the raw event history (it keeps
    each original record) and the rows about one person; the forecasts, the what-if figures and the move-up advice;
    and the import figures of a run (``data_quality``: counts per reason, no record), which tell the dashboards what
    a run does not track; and the processors' views."""
    raw = {i.raw_table for p in processors(settings) for i in p.inputs if i.raw_table}
    return (*(t.name for t in tables(settings) if t.name not in raw and not t.personal),
            *(v for p in processors(settings) for v in p.views), FORECASTS.name, *(t.name for t in WHATIF_TABLES),
            "data_quality")


def input_topics(settings: Settings) -> dict[str, Processor]:
    """The deployment's name of every input topic -> the processor that reads it."""
    return {settings.topic(i.topic): p for p in processors(settings) for i in p.inputs}


def logical_topics(settings: Settings) -> dict[str, str]:
    """Logical topic names (simulator, event files) -> this deployment's topic names."""
    return {i.topic: settings.topic(i.topic) for p in processors(settings) for i in p.inputs}


def history_topics(settings: Settings) -> dict[str, str]:
    """The topics whose events are kept as history (an input with a raw table), logical -> deployment name: what
    a replay publishes (not what processors publish to one another, nor operators' actions)."""
    return {i.topic: settings.topic(i.topic) for p in processors(settings) for i in p.inputs if i.raw_table}


def event_models(settings: Settings) -> dict[str, type[BaseModel]]:
    """Every input's event model, by class name (JSON Schema export, schema checks)."""
    return {i.model.__name__: i.model for p in processors(settings) for i in p.inputs}


def published_topics(settings: Settings) -> dict[str, str]:
    """The topics processors publish for consumers outside Vigie (``Processor.publishes``), logical -> deployment
    name."""
    return {t: settings.topic(t) for p in processors(settings) for t in p.publishes}


def readers_of_outputs(settings: Settings) -> tuple[Processor, ...]:
    """The processors reading what other processors publish (``Processor.outputs``), not outside input."""
    published = {out for p in processors(settings) for out in p.outputs}
    return tuple(p for p in processors(settings) if any(i.topic in published for i in p.inputs))


def find(settings: Settings, names: Iterable[str]) -> tuple[Processor, ...]:
    wanted = set(names)
    return tuple(p for p in processors(settings) if p.name in wanted)
