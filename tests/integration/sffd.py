"""The SF Fire Department's unit responses read directly from its CSV (plain Python: the importer's code is not
used), after the documented rules of deploy/cad-mappings/sffd.toml — for the tests that compare Vigie's rows with
the source."""

from __future__ import annotations

import csv
import gzip
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

LA = ZoneInfo("America/Los_Angeles")
TYPES = {"ENGINE": "FPT", "TRUCK": "EPA", "MEDIC": "VSAV", "PRIVATE": "VSAV", "RESCUE SQUAD": "VSR",
         "RESCUE CAPTAIN": "VLSSSM", "CHIEF": "VL", "SUPPORT": "VTU", "INVESTIGATION": "VLRCCI", "AIRPORT": "CCF"}
ORDER = [("Dispatch DtTm", "dispatched"), ("Response DtTm", "en_route"), ("On Scene DtTm", "on_scene"),
         ("Transport DtTm", "transporting"), ("Hospital DtTm", "at_hospital"), ("Available DtTm", "available")]


def home_station(unit: str, vehicle_type: str) -> str:
    """SFFD numbers engines, trucks and rescue squads after their station; the rest form pools per type."""
    m = re.match(r"^(?:E|T|RS)0*(\d+)$", unit)
    return f"SF{int(m.group(1)):02d}" if m else f"SF-POOL-{vehicle_type}"


SECONDS = "%m/%d/%Y %I:%M:%S %p"  # the 2016-17 week
MINUTES = "%m/%d/%y %H:%M"  # the 2018 six-neighbourhood year (as Excel writes dates)


def when(text: str, fmt: str) -> float | None:
    if not text.strip():
        return None
    return datetime.strptime(text.strip(), fmt).replace(tzinfo=LA).timestamp()


def timelines(path: Path, fmt: str) -> tuple[dict[str, str], dict[str, list[tuple[float, str, str]]]]:
    """unit -> type, and unit -> [(time, status, call)] after the documented rules (clamp within a row,
    a new dispatch ends the unit's previous response)."""
    rows = list(csv.DictReader(gzip.open(path, "rt", encoding="utf-8")))
    unit_type: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    responses: dict[str, list[tuple[float, str, list[tuple[float, str]]]]] = defaultdict(list)
    for r in rows:
        unit_type[r["Unit ID"]][TYPES[r["Unit Type"]]] += 1
        seq, last = [], None
        for column, status in ORDER:
            t = when(r[column], fmt)
            if t is None:
                continue
            t = max(t, last) if last is not None else t
            seq.append((t, status))
            last = t
        responses[r["Unit ID"]].append((seq[0][0], r["RowID"], [(t, s, r["Call Number"]) for t, s in seq]))
    timelines = {}
    for unit, rs in responses.items():
        rs.sort(key=lambda x: (x[0], x[1]))
        out = []
        for i, (_, _, seq) in enumerate(rs):
            nxt = rs[i + 1][0] if i + 1 < len(rs) else None
            out += [x for x in seq if nxt is None or x[0] < nxt or x[1] == "dispatched"]
        timelines[unit] = out
    types = {u: max(c, key=lambda k: (c[k], k)) for u, c in unit_type.items()}
    return types, timelines




def response_segments(timelines: dict[str, list[tuple[float, str, str]]]
                      ) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """(call, unit) -> turnout (dispatched -> en route) and -> travel (en route -> on scene), in seconds."""
    turnout, travel = {}, {}
    for unit, tl in timelines.items():
        by_call: dict[str, dict[str, float]] = defaultdict(dict)
        for t, st, call in tl:
            by_call[call].setdefault(st, t)
        for call, st in by_call.items():
            if "dispatched" in st and "en_route" in st:
                turnout[(call, unit)] = st["en_route"] - st["dispatched"]
            if "en_route" in st and "on_scene" in st:
                travel[(call, unit)] = st["on_scene"] - st["en_route"]
    return turnout, travel
