"""A Paris-scale brigade for simulation: ~80 stations in 3 areas, ~600 vehicles (deterministic)."""

from __future__ import annotations

import math
import random

from core.geo import voronoi_sectors
from schemas.reference import FleetVehicle, Reference, Station

PARIS = (48.8566, 2.3522)
AREAS = ("G1", "G2", "G3")  # the three "groupements" of a Paris-like brigade
# vehicles of each type per station: (probability of having the type, how many when it does)
FLEET_MIX = {"VSAV": (1.0, 3), "FPT": (1.0, 1), "EPA": (0.6, 1), "VSR": (0.4, 1), "CCF": (0.1, 1),
             "VL": (1.0, 1), "PSE": (0.5, 1)}


def generate_brigade(n_stations: int = 80, seed: int = 7) -> Reference:
    rng = random.Random(seed)
    stations = []
    fleet = []
    side = math.ceil(math.sqrt(n_stations))
    for i in range(n_stations):
        row, col = divmod(i, side)
        lat = PARIS[0] - 0.11 + 0.22 * (row + 0.5) / side + rng.uniform(-0.008, 0.008)
        lon = PARIS[1] - 0.17 + 0.34 * (col + 0.5) / side + rng.uniform(-0.012, 0.012)
        area = AREAS[min(2, int(3 * col / side))]  # west / centre / east bands
        sid = f"S{i + 1:02d}"
        stations.append(Station(station_id=sid, name=f"Centre de secours {i + 1:02d}", area=area,
                                lat=round(lat, 5), lon=round(lon, 5)))
        for vtype, (p, n) in FLEET_MIX.items():
            count = n + (1 if vtype == "FPT" and rng.random() < 0.5 else 0)
            if rng.random() < p:
                for k in range(count):
                    fleet.append(FleetVehicle(vehicle_id=f"{vtype}-{sid}-{k + 1}", vehicle_type=vtype,
                                              home_station=sid))
    # a sector per station, as the simulator names an intervention's: its nearest station's (Z + number)
    sectors = voronoi_sectors([(f"Z{s.station_id[1:]}", s.lat, s.lon) for s in stations])
    # residents: denser towards the centre (Paris proper ~20,000 per km², the inner suburbs less)
    residents = {}
    for st in stations:
        km = math.hypot((st.lat - PARIS[0]) * 111, (st.lon - PARIS[1]) * 73)
        residents[f"Z{st.station_id[1:]}"] = int(round(rng.uniform(0.8, 1.2) * 60000 / (1 + (km / 6) ** 2), -2))
    return Reference.build(stations, fleet, sectors=sectors, residents=residents)
