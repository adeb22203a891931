"""A region's sites publishing numbered telemetry at a steady rate, and the audit of what
the core received: every (agent, seq) present, duplicates, order per agent.

Each site is an agent publishing valid ``xanet.wire`` telemetry (one poll of one device
with ``n_if`` interfaces, seq 0, 1, 2, ...) at QoS 1 to a broker, as an agent's uplink
does: a message is done when the broker acknowledged it. Poll times are ``seq`` x the
interval after a fixed origin, so each message is one ``device`` point in InfluxDB.

**Order per agent**, precisely (:func:`audit`): at the core, take each agent's messages in
arrival order; a message whose seq arrived before is a *re-delivery* (QoS 1 allows it
after a reconnection), any other is a *first arrival*. The agent's order held when its
first arrivals are strictly increasing: no message ever arrived after a later one of the
same agent had. Re-deliveries are counted, not judged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiomqtt

from xanet import topics, wire


@dataclass(frozen=True)
class Site:
    """One publishing site: its agent id and topic path."""

    agent: str
    province: str
    commune: str
    site: str

    @property
    def topic(self) -> str:
        return topics.build(self.province, self.commune, self.site, "telemetry")


def sites(province: str, n: int, commune: str = "00688") -> list[Site]:
    """``n`` sites of one commune, agents ``{province}-a{i}``."""
    return [Site(f"{province}-a{i}", province, commune, f"site-{i}") for i in range(n)]


def message(site: Site, seq: int, origin: datetime, interval_s: float, n_if: int) -> bytes:
    """Telemetry ``seq`` of ``site``: one poll of one device, ``n_if`` interfaces."""
    ts = origin + timedelta(seconds=seq * interval_s)
    ifs = [wire.InterfacePoll(index=i, name=f"ge-0/0/{i}", oper=1, admin=1,
                              speed_bps=1_000_000_000, hc=True, in_octets=1000 * seq + i,
                              out_octets=2000 * seq + i) for i in range(1, n_if + 1)]
    poll = wire.DevicePoll(device=f"{site.site}-rtr", ts=ts, reachable=True, rtt_ms=3.5,
                           uptime_cs=(100 * seq) % 2**32, interfaces=ifs)
    return wire.encode(wire.Telemetry(agent=site.agent, site=site.site, seq=seq,
                                      polls=[poll]))


@dataclass
class Sent:
    """What the publishers got acknowledged: per agent, the next seq (all below it sent)."""

    next_seq: dict[str, int] = field(default_factory=dict)
    #: monotonic time of each acknowledgement, per agent, in seq order
    acked_at: dict[str, list[float]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.next_seq.values())

    def expected(self) -> set[tuple[str, int]]:
        return {(a, s) for a, n in self.next_seq.items() for s in range(n)}

    def sent_between(self, t0: float, t1: float) -> int:
        return sum(1 for times in self.acked_at.values() for t in times if t0 <= t < t1)


async def publish_site(host: str, port: int, site: Site, *, rate_per_s: float,
                       stop_at: float, sent: Sent, origin: datetime, n_if: int = 10,
                       interval_s: float = 60.0, password: str | None = None) -> None:
    """Publish ``site``'s telemetry at ``rate_per_s`` until ``stop_at`` (monotonic), one
    message at a time awaiting its PUBACK (as the agent's live lane does); with a
    ``password``, logged in as the agent (user name = agent id)."""
    sent.next_seq[site.agent] = 0
    times = sent.acked_at.setdefault(site.agent, [])
    async with aiomqtt.Client(host, port, identifier=site.agent,
                              username=site.agent if password else None,
                              password=password) as client:
        t0 = time.monotonic()
        seq = 0
        while time.monotonic() < stop_at:
            await client.publish(site.topic, message(site, seq, origin, interval_s, n_if),
                                 qos=1)
            seq += 1
            sent.next_seq[site.agent] = seq
            times.append(time.monotonic())
            await asyncio.sleep(max(0.0, t0 + seq / rate_per_s - time.monotonic()))


def publish_region(host: str, port: int, region_sites: list[Site], *, rate_per_s: float,
                   duration_s: float, sent: Sent, n_if: int = 10,
                   passwords: dict[str, str] | None = None) -> None:
    """Every site publishing for ``duration_s``, ``rate_per_s`` in all (one event loop:
    call it in a thread, e.g. inside a namespace with ``Netns.call``); ``passwords``
    per agent id when the broker wants logins."""
    origin = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    per_site = rate_per_s / len(region_sites)

    async def main() -> None:
        stop_at = time.monotonic() + duration_s
        await asyncio.gather(*(publish_site(host, port, s, rate_per_s=per_site,
                                            stop_at=stop_at, sent=sent, origin=origin,
                                            n_if=n_if,
                                            password=(passwords or {}).get(s.agent))
                                 for s in region_sites))

    asyncio.run(main())


@dataclass(frozen=True)
class Audit:
    """What the core received against what was sent (see the module's docstring)."""

    sent: int
    received: int
    lost: list[tuple[str, int]]
    redelivered: int
    #: first arrivals that came after a later seq of the same agent
    out_of_order: list[tuple[str, int, int]]  # (agent, seq, the higher seq before it)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.out_of_order


def audit(expected: set[tuple[str, int]], arrivals: Iterable[tuple[str, int]]) -> Audit:
    """``arrivals`` in the order the core received them (pure)."""
    seen: set[tuple[str, int]] = set()
    highest: dict[str, int] = {}
    received = redelivered = 0
    out_of_order: list[tuple[str, int, int]] = []
    for agent, seq in arrivals:
        received += 1
        if (agent, seq) in seen:
            redelivered += 1
            continue
        seen.add((agent, seq))
        top = highest.get(agent, -1)
        if seq < top:
            out_of_order.append((agent, seq, top))
        else:
            highest[agent] = seq
    return Audit(sent=len(expected), received=received, lost=sorted(expected - seen),
                 redelivered=redelivered, out_of_order=out_of_order)


__all__ = ["Audit", "Sent", "Site", "audit", "message", "publish_region", "publish_site",
           "sites"]
