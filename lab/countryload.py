"""The country's load: what every agent of :mod:`lab.country` publishes, when, at its rate
(no SNMP), and how precisely the generator kept that rate.

Each device is polled once per ``interval_s`` (one telemetry message per poll, 10
interfaces: 11 points), each agent sends its retained ``online`` status once per
interval, each province's ``probe`` device once per ``probe_interval_s`` (the bench's lag
markers); events are spread evenly over the interval, provinces interleaved, so the rate
is smooth. Payloads are valid v1 messages (xanet.wire's models) pre-encoded as byte
templates: only seq, timestamps, uptime and the octet counters are filled in per message.
Each agent's messages go through one of ``connections`` raw MQTT publishers
(:mod:`lab.rawmqtt`), so its seq order is kept; its seq increases per message.

Run as its own process (``python -m lab.countryload ...``) so it does not share a GIL or a
CPU account with the bench: it writes a JSON report (published per province and kind,
achieved rate per second, lateness against the schedule, its own CPU) when it stops
(SIGTERM/SIGINT or ``--seconds``).
"""

from __future__ import annotations

import argparse
import json
import resource
import select
import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.country import Agent, Device, Province, country
from lab.rawmqtt import Publisher, topic_bytes
from xanet import topics, wire

TELEMETRY, STATUS, PROBE = 0, 1, 2
IN_BPS = tuple(800_000.0 + 10_000.0 * i for i in range(10))
OUT_BPS = tuple(400_000.0 + 5_000.0 * i for i in range(10))
WHEN = datetime(2001, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)  # a sentinel, replaced by a slot


def telemetry_template(agent: Agent, device: Device, instance: str) -> bytes:
    """A %-template of one poll's message; slots: seq, sent, ts, uptime, then in/out
    octets of each interface."""
    # distinct sentinel numbers (seq, then each interface's in and out octets), no other
    # number of the message looks like them
    marks = [str(7_000_000_000_000_000_001 + i) for i in range(1 + 2 * len(device.interfaces))]
    ifaces = [wire.InterfacePoll(index=i + 1, name=name, oper=1, admin=1,
                                 speed_bps=1_000_000_000, hc=True,
                                 in_octets=int(marks[1 + 2 * i]),
                                 out_octets=int(marks[2 + 2 * i]),
                                 in_bps=IN_BPS[i % 10], out_bps=OUT_BPS[i % 10],
                                 in_util_pct=IN_BPS[i % 10] / 1e7,
                                 out_util_pct=OUT_BPS[i % 10] / 1e7)
              for i, name in enumerate(device.interfaces)]
    msg = wire.Telemetry(agent=agent.id, site=device.site, seq=int(marks[0]), instance=instance,
                         sent=WHEN, polls=[wire.DevicePoll(
                             device=device.id, ts=WHEN, reachable=True, rtt_ms=3.5,
                             uptime_cs=1, interfaces=ifaces)])
    raw = wire.encode(msg).decode().replace("%", "%%")
    raw = raw.replace(marks[0], "%d", 1)
    when = wire.encode(msg).decode().split('"sent":')[1].split(",")[0]
    raw = raw.replace(when, '"%s"')
    raw = raw.replace('"uptime_cs":1,', '"uptime_cs":%d,', 1)
    for m in marks[1:]:
        raw = raw.replace(m, "%d", 1)
    return raw.encode()


def status_template(agent: Agent, instance: str) -> bytes:
    """A %-template of the agent's online status; slot: ts."""
    msg = wire.Status(agent=agent.id, site=agent.site, state="online", version="countryload",
                      instance=instance,
                      health=wire.AgentHealth(devices=len(agent.devices)))
    raw = wire.encode(msg).decode().replace("%", "%%")
    head, brace = raw[:-1], raw[-1]
    return (head + ',"ts":"%s"' + brace).encode()


@dataclass(slots=True)
class _Event:
    phase_s: float
    kind: int
    agent: int  # index into the generator's agents
    device: Device | None


def schedule(provinces: list[Province], interval_s: float,
             probe_interval_s: float) -> list[_Event]:
    """Every event of one interval, sorted by phase: provinces interleaved, spread evenly."""
    events: list[_Event] = []
    agents = [a for p in provinces for a in p.agents]
    index = {a.id: i for i, a in enumerate(agents)}
    polls = []
    width = max(len(p.agents) for p in provinces)
    per_province = [[(a, d) for a in p.agents for d in a.devices] for p in provinces]
    longest = max(len(x) for x in per_province)
    for i in range(longest):
        for x in per_province:
            if i < len(x):
                polls.append(x[i])
    for n, (a, d) in enumerate(polls):
        events.append(_Event(interval_s * n / len(polls), TELEMETRY, index[a.id], d))
    statuses = [p.agents[i] for i in range(width) for p in provinces if i < len(p.agents)]
    for n, a in enumerate(statuses):
        events.append(_Event(interval_s * n / len(statuses), STATUS, index[a.id], None))
    k = 0
    while k * probe_interval_s < interval_s - 1e-9:
        for j, p in enumerate(provinces):
            phase = k * probe_interval_s + probe_interval_s * j / len(provinces)
            events.append(_Event(phase, PROBE, index[p.agents[0].id], p.probe))
        k += 1
    events.sort(key=lambda e: e.phase_s)
    return events


class _Stamp:
    """The message timestamp of one instant (ms, UTC), its seconds part cached."""

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def text(self, t: float) -> bytes:
        sec = int(t)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._prefix}.{int((t - sec) * 1000):03d}Z".encode()


class Generator:
    """Publishes the schedule through ``connections`` publishers until stopped."""

    def __init__(self, provinces: list[Province], host: str, port: int, *,
                 interval_s: float = 60.0, probe_interval_s: float = 1.0,
                 connections: int = 4, client_prefix: str = "countryload") -> None:
        self.provinces = provinces
        self.interval_s = interval_s
        self.agents = [a for p in provinces for a in p.agents]
        self.events = schedule(provinces, interval_s, probe_interval_s)
        self.conns = [Publisher(host, port, f"{client_prefix}-{i}")
                      for i in range(connections)]
        instance = "countryload"
        self.conn_of = [i % connections for i in range(len(self.agents))]
        self.seq = [0] * len(self.agents)
        self.status_tmpl = [status_template(a, instance) for a in self.agents]
        self.status_topic = [topic_bytes(topics.build(a.province, a.commune, a.site, "status"))
                             for a in self.agents]
        self.tmpl: dict[tuple[str, str], bytes] = {}
        self.topic: dict[str, bytes] = {}
        for e in self.events:
            d = e.device
            if d is not None and (d.site, d.id) not in self.tmpl:
                self.tmpl[(d.site, d.id)] = telemetry_template(self.agents[e.agent], d, instance)
                self.topic.setdefault(d.site, topic_bytes(
                    topics.build(d.province, d.commune, d.site, "telemetry")))
        self.rates = [(int(IN_BPS[i % 10] / 8), int(OUT_BPS[i % 10] / 8)) for i in range(10)]
        self.published: Counter[tuple[str, int]] = Counter()  # (province, kind)
        self.per_second: Counter[int] = Counter()
        self.late: list[float] = []

    def run(self, stop: Any, seconds: float | None = None) -> dict[str, Any]:
        stamp = _Stamp()
        t0 = time.time()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        end = t0 + seconds if seconds is not None else float("inf")
        cycle, ptr, n = 0, 0, len(self.events)
        last_ping = t0
        while not stop() and time.time() < end:
            now = time.time()
            ts = stamp.text(now)
            uptime = int(now * 100) % 2**32
            counters = [v for i, o in self.rates for v in (int(now * i), int(now * o))]
            while True:
                e = self.events[ptr]
                due = t0 + cycle * self.interval_s + e.phase_s
                if due > now:
                    break
                self._publish(e, ts, uptime, counters)
                self.late.append(now - due)
                ptr += 1
                if ptr == n:
                    ptr, cycle = 0, cycle + 1
            if now - last_ping > 20:
                for c in self.conns:
                    c.ping()
                last_ping = now
            e = self.events[ptr]
            wait = t0 + cycle * self.interval_s + e.phase_s - time.time()
            self._pump(max(0.002, min(wait, 0.05)))
        t_stop = time.time()
        drain_end = time.time() + 15
        while any(c.unacked or c.out for c in self.conns) and time.time() < drain_end:
            self._pump(0.05)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        for c in self.conns:
            c.close()
        return self._report(t0, t_stop, cpu1.ru_utime + cpu1.ru_stime
                            - cpu0.ru_utime - cpu0.ru_stime)

    def _publish(self, e: _Event, ts: bytes, uptime: int, counters: list[int]) -> None:
        a = e.agent
        conn = self.conns[self.conn_of[a]]
        province = self.agents[a].province
        if e.kind == STATUS:
            conn.publish(self.status_topic[a], self.status_tmpl[a] % ts, retain=True)
        else:
            d = e.device
            assert d is not None
            seq = self.seq[a]
            self.seq[a] = seq + 1
            tmpl = self.tmpl[(d.site, d.id)]
            conn.publish(self.topic[d.site],
                         tmpl % (seq, ts, ts, uptime, *counters[:2 * len(d.interfaces)]))
        self.published[(province, e.kind)] += 1
        self.per_second[int(time.time())] += 1

    def due_by(self, elapsed_s: float) -> int:
        """Events the schedule has due within ``elapsed_s`` of the start."""
        cycles, rest = divmod(elapsed_s, self.interval_s)
        return int(cycles) * len(self.events) + sum(e.phase_s <= rest for e in self.events)

    def _pump(self, timeout: float) -> None:
        writers = [c for c in self.conns if c.out]
        readable, writable, _ = select.select(self.conns, writers, [], timeout)
        for c in writable:
            c.send()
        for c in readable:
            c.receive()

    def _report(self, t0: float, t_stop: float, cpu_s: float) -> dict[str, Any]:
        late = sorted(self.late)
        secs = sorted(self.per_second)
        full = [self.per_second[s] for s in secs[1:-1]]  # whole seconds only
        per_interval = len(self.events)
        wall = t_stop - t0
        return {
            "started": t0, "stopped": t_stop, "wall_s": wall, "cpu_s": cpu_s,
            "cpu_pct": 100 * cpu_s / wall if wall else 0.0,
            "nominal_msg_per_s": per_interval / self.interval_s,
            "achieved_msg_per_s": sum(self.published.values()) / wall if wall else 0.0,
            # messages the schedule held due by the stop and that did not go (the loop
            # sends every due event, late if it must: this is its backlog at the stop)
            "shortfall": self.due_by(t_stop - t0) - sum(self.published.values()),
            "per_second_min": min(full, default=0), "per_second_max": max(full, default=0),
            "late_p50_s": late[len(late) // 2] if late else 0.0,
            "late_p99_s": late[int(len(late) * 0.99)] if late else 0.0,
            "late_max_s": late[-1] if late else 0.0,
            "published": {k: sum(v for (_, kind), v in self.published.items() if kind == i)
                          for i, k in enumerate(("telemetry", "status", "probe"))},
            "per_province": {p.code: {"polls": self.published[(p.code, TELEMETRY)]
                                      + self.published[(p.code, PROBE)],
                                      "statuses": self.published[(p.code, STATUS)]}
                             for p in self.provinces},
            "acked": sum(c.acked for c in self.conns),
            "unacked": sum(c.unacked for c in self.conns),
            "bytes_out": sum(c.bytes_out for c in self.conns),
            "connections": len(self.conns), "agents": len(self.agents),
            "devices": sum(p.devices for p in self.provinces),
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--provinces", required=True, help="comma-separated province codes")
    p.add_argument("--devices-per-province", type=int, default=3000)
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--probe-interval", type=float, default=1.0)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--seconds", type=float)
    p.add_argument("--report", type=Path, required=True)
    args = p.parse_args()
    stopping = False

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    provinces = country(args.provinces.split(","), args.devices_per_province)
    gen = Generator(provinces, args.host, args.port, interval_s=args.interval,
                    probe_interval_s=args.probe_interval, connections=args.connections)
    print(f"countryload: {len(gen.agents)} agents, {len(gen.events)} events per "
          f"{args.interval:g} s, publishing", flush=True)
    report = gen.run(lambda: stopping, args.seconds)
    args.report.write_text(json.dumps(report, indent=1))
    print(f"countryload: stopped: {report['achieved_msg_per_s']:.0f} msg/s "
          f"(nominal {report['nominal_msg_per_s']:.0f}), late p99 {report['late_p99_s']:.3f} s, "
          f"CPU {report['cpu_pct']:.1f} %", flush=True)


if __name__ == "__main__":
    main()
