"""A generated month of availability facts, in arrival order, with what really happened.

100 communes x 5 services, hourly polls, outages that hit one or every uplink, agents
offline with and without a Last Will, spooled polls replayed late, QoS 1 redeliveries:
the month tests/test_availability.py checks the engine against (by its truth) and
bench/maintenance.py replays. Seeded: the same seed, the same month.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from collector.availability import (
    AgentOffline,
    ElementSpec,
    Fact,
    Observation,
    ServiceKey,
    State,
    Topology,
)

MONTH_START = 1_751_328_000.0  # 2025-07-01T00:00:00Z
POLL_S = 3600.0
STALE_CELLS = 3  # an observation holds for 3 polls
DAYS = 30
CELLS = int(DAYS * 86400 / POLL_S)
SERVICES = ("fibre", "broadband", "mobile_2g", "mobile_3g", "mobile_4g")


@dataclass
class Month:
    """A generated month: facts in arrival order, and what really happened."""

    topology: Topology
    arrivals: list[tuple[float, Fact]] = field(default_factory=list)
    # per element, per poll cell: true state, and whether the system can know it
    truth: dict[str, list[State]] = field(default_factory=dict)
    known: dict[str, list[bool]] = field(default_factory=dict)
    lost_cells: int = 0
    replayed_cells: int = 0


def generate_month(seed: int, communes: int) -> Month:
    rng = random.Random(seed)
    specs: list[ElementSpec] = []
    truth: dict[str, list[State]] = {}
    agents: dict[str, list[str]] = {}
    for c in range(communes):
        commune = f"{10000 + c:05d}"
        commune_agents = [f"{commune}-ag{i}" for i in range(rng.randint(1, 2))]
        for service in SERVICES:
            key = ServiceKey(commune, service)
            names = [f"{commune}/{service}/{i}" for i in range(rng.choice((1, 1, 2, 3)))]
            cells = {n: ["up"] * CELLS for n in names}
            for _ in range(rng.randint(0, 6)):  # outages; some hit every uplink at once
                start = rng.randrange(CELLS)
                length = rng.choice((1, 1, 2, 3, 5, 8, 24, 60))
                hit = names if rng.random() < 0.4 else [rng.choice(names)]
                for n in hit:
                    for k in range(start, min(start + length, CELLS)):
                        cells[n][k] = "down"
            for n in names:
                agent = rng.choice(commune_agents)
                agents.setdefault(agent, []).append(n)
                specs.append(ElementSpec(n, agent, (key,)))
                truth[n] = cells[n]  # type: ignore[assignment]
    month = Month(Topology(tuple(specs)))
    month.truth = truth
    month.known = {n: [True] * CELLS for n in truth}
    delivered: dict[str, list[float | None]] = {n: [None] * CELLS for n in truth}  # arrival
    for n in truth:
        for k in range(CELLS):
            delivered[n][k] = MONTH_START + k * POLL_S + rng.uniform(0.1, 5.0)  # live
    for agent, elements in agents.items():
        busy = [False] * CELLS
        for _ in range(rng.randint(0, 4)):
            a = rng.randrange(1, CELLS)
            b = min(a + rng.choice((1, 2, 3, 4, 6, 12, 48, 120)), CELLS)
            if any(busy[a - 1 : b + 1]):
                continue
            for k in range(a, b):
                busy[k] = True
            kind = rng.choice(("replayed", "lost_lwt", "lost_stale"))
            if kind in ("replayed", "lost_lwt"):  # the broker saw the link drop
                lwt_arrival = MONTH_START + a * POLL_S + rng.uniform(0.0, 90.0)
                month.arrivals.append((lwt_arrival, AgentOffline(agent, MONTH_START + a * POLL_S)))
            for n in elements:
                for k in range(a, b):
                    if kind == "replayed":  # spooled, arrives after the link is back
                        delivered[n][k] = MONTH_START + b * POLL_S + rng.uniform(10.0, 3000.0)
                        month.replayed_cells += 1
                    else:
                        delivered[n][k] = None
                        month.lost_cells += 1
                        # without a Last Will the last poll still holds until it goes stale
                        held = kind == "lost_stale" and k - a < STALE_CELLS - 1
                        if held:
                            truth[n][k] = truth[n][a - 1]  # the generator keeps it true
                        month.known[n][k] = held
    for n in truth:
        for k in range(CELLS):
            arrival = delivered[n][k]
            if arrival is None:
                continue
            fact = Observation(n, MONTH_START + k * POLL_S, truth[n][k])  # type: ignore[arg-type]
            month.arrivals.append((arrival, fact))
            if rng.random() < 0.01:  # QoS 1 redelivery
                month.arrivals.append((arrival + rng.uniform(0, 30), fact))
    month.arrivals.sort(key=lambda af: af[0])
    return month
