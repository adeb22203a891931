"""A generated month of stored states for an inventory, with its ground truth.

Events happen per site (every element of a site shares its state): hub cuts that take
the sites behind the hub down with them, single BTS outages, agents silent for hours or
days (unknown: some communes end below the coverage minimum), declared maintenance.
From these events the generator writes what the collector would have stored -
``element_state`` and ``service_state`` change points, ``outage`` points of the alerted
cuts, a final ``collector_stats`` point - and computes the truth per commune-service by
its own means: every segment between event boundaries, the any-of rule applied to the
sites' states there, seconds added up.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.availability import ServiceKey
from collector.lineproto import line
from lab.fleet import collector_config, to_toml
from xanet.inventory import Inventory

CODES = {"up": 1, "down": 0, "unknown": -1, "maintenance": -2}


@dataclass
class Truth:
    up_s: float = 0.0
    down_s: float = 0.0
    unknown_s: float = 0.0
    maintenance_s: float = 0.0

    @property
    def availability_pct(self) -> float | None:
        known = self.up_s + self.down_s
        return None if known == 0 else 100.0 * self.up_s / known

    def coverage_pct(self, window_s: float) -> float:
        return 100.0 * (self.up_s + self.down_s) / (window_s - self.maintenance_s)


@dataclass
class Month:
    inventory: Inventory
    start: float
    end: float
    events: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict)
    alerted: list[tuple[str, float, float]] = field(default_factory=list)

    # -- the generator's own view of the truth ------------------------------------------

    def site_state(self, site: str, t: float) -> str:
        for a, b, state in self.events.get(site, ()):
            if a <= t < b:
                return state
        return "up"

    def sites_of(self, key: ServiceKey) -> list[str]:
        return [s.id for s in self.inventory.sites_of_commune(key.commune)
                if any(str(e.service) == key.service for d in s.devices for e in d.elements)]

    def segments(self, key: ServiceKey) -> Iterator[tuple[float, float, str]]:
        sites = self.sites_of(key)
        cuts = {self.start, self.end}
        for sid in sites:
            for a, b, _ in self.events.get(sid, ()):
                cuts.update(t for t in (a, b) if self.start < t < self.end)
        edges = sorted(cuts)
        for a, b in itertools.pairwise(edges):
            states = [self.site_state(sid, a) for sid in sites]
            if "up" in states:
                yield a, b, "up"
            elif all(s == "down" for s in states):
                yield a, b, "down"
            elif "maintenance" in states:
                yield a, b, "maintenance"
            else:
                yield a, b, "unknown"

    def truth(self, key: ServiceKey) -> Truth:
        out = Truth()
        for a, b, state in self.segments(key):
            setattr(out, f"{state}_s", getattr(out, f"{state}_s") + (b - a))
        return out

    def keys(self) -> list[ServiceKey]:
        return [ServiceKey(c.code, str(s)) for c in self.inventory.communes
                for s in sorted(self.inventory.services_of(c.code))]

    # -- what the collector would have stored ---------------------------------------

    def lines(self) -> list[str]:
        inv = self.inventory
        prov = inv.province.code
        out: list[str] = []
        before = round((self.start - 3600) * 1000)

        def state_line(measurement: str, tags: dict[str, str], state: str,
                       t_ms: int) -> None:
            ln = line(measurement, tags, {"state": state, "code": CODES[state]}, t_ms)
            assert ln is not None
            out.append(ln)

        for site in inv.sites:
            for device in site.devices:
                for el in device.elements:
                    tags = {"province": prov, "commune": site.commune, "site": site.id,
                            "device": device.id, "interface": el.interface or "",
                            "element": el.key}
                    tags = {k: v for k, v in tags.items() if v}
                    state_line("element_state", tags, "up", before)
                    for a, b, state in self.events.get(site.id, ()):
                        state_line("element_state", tags, state, round(a * 1000))
                        state_line("element_state", tags, "up", round(b * 1000))
        for key in self.keys():
            tags = {"province": prov, "commune": key.commune, "service": key.service}
            state_line("service_state", tags, "up", before)
            last = "up"
            for a, _, state in self.segments(key):
                if state != last:
                    state_line("service_state", tags, state, round(a * 1000))
                    last = state
        for sid, a, b in self.alerted:
            site = inv.site(sid)
            tags = {"province": prov, "commune": site.commune, "site": sid, "kind": "root"}
            for ts, is_open in ((a, 1), (b, 0)):
                ln = line("outage", tags, {"open": is_open, "children": "",
                                           "summary": f"site {sid} down"}, round(ts * 1000))
                assert ln is not None
                out.append(ln)
        stats = line("collector_stats", {"collector": "gen"}, {"received": 1},
                     round((self.end + 60) * 1000))
        assert stats is not None
        out.append(stats)
        return out


def generate(inventory: Inventory, start: float, days: int, seed: int, *,
             hub_cuts: int = 40, bts_outages: int = 120, silences: int = 6,
             maintenance: int = 4, cell_s: float = 300.0) -> Month:
    """A month (or ``days``) of events on ``inventory``; every time on a ``cell_s`` grid."""
    rng = random.Random(seed)
    end = start + days * 86400
    month = Month(inventory, start, end)
    cells = int((end - start) / cell_s)

    def free(site: str, a: float, b: float) -> bool:
        return all(b + cell_s <= x or a >= y + cell_s for x, y, _ in month.events.get(site, ()))

    def put(sites: list[str], a: float, b: float, state: str) -> bool:
        if not all(free(s, a, b) for s in sites):
            return False
        for s in sites:
            month.events.setdefault(s, []).append((a, b, state))
        return True

    def window(max_cells: int) -> tuple[float, float]:
        n = rng.randint(1, max_cells)
        a = rng.randrange(1, cells - n)
        return start + a * cell_s, start + (a + n) * cell_s

    hubs = [s for s in inventory.sites if s.role == "hub"]
    bts = [s for s in inventory.sites if s.role == "bts"]
    # long events first: a silence of days must find its sites free
    agents: dict[str, list[str]] = {}
    for s in inventory.sites:
        if s.agent:
            agents.setdefault(s.agent, []).append(s.id)
    for _ in range(silences):
        sites = agents[rng.choice(sorted(agents))]
        put(sites, *window(int(6 * 86400 / cell_s)), "unknown")
    for _ in range(maintenance):
        put([rng.choice(hubs).id], *window(48), "maintenance")
    for _ in range(hub_cuts):
        hub = rng.choice(hubs)
        a, b = window(72)  # up to 6 hours
        if put([hub.id, *inventory.descendants(hub.id)], a, b, "down") and b - a >= 600:
            month.alerted.append((hub.id, a, b))
    for _ in range(bts_outages):
        site = rng.choice(bts)
        a, b = window(36)
        if put([site.id, *inventory.descendants(site.id)], a, b, "down") and b - a >= 600:
            month.alerted.append((site.id, a, b))
    for evs in month.events.values():
        evs.sort()
    return month


def store(month: Month, influx: Any, db: str) -> None:
    """Write the month into a (real) InfluxDB database, created if need be."""
    influx.create_database(db)
    lines = month.lines()
    for i in range(0, len(lines), 5000):
        influx.write(lines[i:i + 5000], db=db, precision="ms")


def collector_toml(influx_url: str, db: str, inventory: Path, workdir: Path,
                   **report: Any) -> str:
    """A collector config for the reports: InfluxDB, inventory, ``[report]`` settings."""
    cfg = collector_config(mqtt_port=1883, influx_url=influx_url, database=db,
                           dead_letter_dir=workdir / "dead-letter",
                           inventory={"path": str(inventory)})
    if report:
        cfg["report"] = report
    return to_toml(cfg)
