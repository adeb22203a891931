"""A partition of two collector processes under load, for the SIGKILL failover test and
bench/failover.py: their configs, which one owns the lease (from their logs), and a
publisher of valid telemetry at a steady rate that remembers what it published.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from lab.fleet import collector_config, to_toml
from lab.influx import InfluxDB1
from lab.programs import Subprogram
from xanet import topics, wire

PROVINCE, COMMUNE = "08", "02266"
PARTITION = "p08"
OWNER_LINE = re.compile(r"^(\S+ \S+) .*partition \S+: owner at epoch (\d+)", re.MULTILINE)


def member(tmp: Path, name: str, *, mqtt_port: int, influx_url: str, database: str,
           keepalive_s: int = 2, **sections: dict[str, Any]) -> Subprogram:
    """One member of partition :data:`PARTITION` (``xanet collector`` not yet started)."""
    cfg = collector_config(mqtt_port=mqtt_port, influx_url=influx_url, database=database,
                           dead_letter_dir=tmp / f"dead-{name}", collector_id=name,
                           partition={"id": PARTITION, "provinces": [PROVINCE],
                                      "keepalive_s": keepalive_s}, **sections)
    path = tmp / f"{name}.toml"
    path.write_text(to_toml(cfg))
    return Subprogram("collector", path)


def owner_epochs(proc: Subprogram) -> list[tuple[float, int]]:
    """(wall time, epoch) of every "owner at epoch" line of ``proc``'s log."""
    out = []
    for stamp, epoch in OWNER_LINE.findall(proc.log()):
        t = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        out.append((t, int(epoch)))
    return out


def stored_seqs(influx: InfluxDB1, db: str, agent: str) -> list[int]:
    """The seq of every ``device`` point of ``agent`` in InfluxDB (one per poll stored)."""
    rows = influx.query(f'SELECT "seq" FROM "device" WHERE "agent" = \'{agent}\'', db=db)
    return [int(r["seq"]) for r in rows]


def stored_from(influx: InfluxDB1, db: str, agent: str, seq: int) -> int:
    """How many of ``agent``'s polls from ``seq`` on are stored."""
    rows = influx.query(f'SELECT count("seq") FROM "device" WHERE "agent" = \'{agent}\' '
                        f'AND "seq" >= {seq}', db=db)
    return int(rows[0]["count"]) if rows else 0


def current_owner(procs: list[Subprogram]) -> Subprogram | None:
    """The member that won the highest epoch (None: nobody yet)."""
    best: tuple[int, Subprogram] | None = None
    for p in procs:
        for _, epoch in owner_epochs(p):
            if best is None or epoch > best[0]:
                best = (epoch, p)
    return None if best is None else best[1]


@dataclass
class Publisher:
    """``agents`` agents (one site each, one device) publishing one poll per message, QoS 1,
    at ``rate_per_s`` in all, each poll stamped now (1 ms after the agent's previous one at
    least, so each message is one point of its own). ``down`` agents report their device
    unreachable. ``sent`` keeps (monotonic time acknowledged, agent, seq)."""

    port: int
    agents: list[str]
    rate_per_s: float = 50.0
    down: set[str] = field(default_factory=set)
    published: dict[str, int] = field(default_factory=dict)  # agent -> messages acked
    sent: list[tuple[float, str, int]] = field(default_factory=list)
    _last_ts: dict[str, datetime] = field(default_factory=dict)

    def site(self, agent: str) -> str:
        return f"site-{agent}"

    def message(self, agent: str, seq: int) -> bytes:
        now = datetime.now(UTC)
        ts = now.replace(microsecond=now.microsecond // 1000 * 1000)  # InfluxDB keeps ms
        last = self._last_ts.get(agent)
        if last is not None and ts <= last:
            ts = last + timedelta(milliseconds=1)
        self._last_ts[agent] = ts
        reachable = agent not in self.down
        poll = wire.DevicePoll.model_validate({
            "device": "rtr-1", "ts": ts, "reachable": reachable,
            **({"rtt_ms": 2.0, "uptime_cs": 1000 + seq} if reachable else {"cause": "timeout"}),
            "interfaces": []})
        return wire.encode(wire.Telemetry(agent=agent, site=self.site(agent), seq=seq,
                                          polls=[poll]))

    def first_sent_after(self, t: float, agent: str) -> int | None:
        """The seq of ``agent``'s first message acknowledged after monotonic ``t``."""
        return next((seq for at, a, seq in self.sent if at > t and a == agent), None)

    async def run(self, stop: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, identifier="failover-pub",
                                  max_inflight_messages=20) as client:
            start = time.monotonic()
            n = 0
            while not stop.is_set():
                agent = self.agents[n % len(self.agents)]
                seq = self.published.get(agent, 0)
                topic = topics.build(PROVINCE, COMMUNE, self.site(agent), "telemetry")
                await client.publish(topic, self.message(agent, seq), qos=1)
                self.published[agent] = seq + 1
                self.sent.append((time.monotonic(), agent, seq))
                n += 1
                delay = start + n / self.rate_per_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
