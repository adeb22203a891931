"""A site's backlog after a cut: the polls its agent would have stored, with traffic that varies.

The thin-link scenario (lab/thinsite.py) fills a real agent's spool with the polls of a
cut before starting the agent, stamped on the cut's schedule (poll ``ts`` and spool
``created``), so a 24-hour cut costs seconds instead of a day - the method of
tests/test_delivery.py's 24-hour test, with polls as large as the live ones.

What is in a poll matters to any encoding that compresses: counters here advance with a
daily swing and seeded noise, as traffic does, not by a constant step (a constant step
would compress to almost nothing and flatter the compact encoding). Each device has the
same interfaces as its live twin (:func:`site_interfaces`, served by snmpsim), and each
poll carries what the agent puts in one: status, speed, raw counters, rates and
utilisation, sysUpTime, the SNMP round-trip time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from agent.packing import encode, envelope_bytes, pack
from agent.spool import Spool
from lab.snmpsim import SimInterface
from xanet import topics, wire


def site_interfaces(n_if: int = 10) -> list[SimInterface]:
    """The interfaces of one site device: an uplink, a few radio/BTS ports, the rest idle."""
    out = []
    for i in range(1, n_if + 1):
        busy = i <= max(1, n_if // 2)
        out.append(SimInterface(
            index=i, name=f"ge-0/0/{i - 1}", in_rate=250_000.0 / i if busy else 0.0,
            out_rate=120_000.0 / i if busy else 0.0, speed_bps=1_000_000_000,
            oper_status=1 if busy or i % 3 else 2, in_initial=10**9 * i,
            out_initial=5 * 10**8 * i))
    return out


def cut_polls(device: str, interfaces: Sequence[SimInterface], *, start: datetime,
              count: int, interval_s: float, seed: int = 19) -> Iterator[wire.DevicePoll]:
    """``count`` polls of ``device`` every ``interval_s`` from ``start``, as the agent makes
    them (the first with no rates: ``first_poll``)."""
    rng = random.Random(f"{seed}-{device}")
    in_oct = {i.index: i.in_initial for i in interfaces}
    out_oct = {i.index: i.out_initial for i in interfaces}
    uptime_cs = rng.randrange(10**6, 10**8)
    for k in range(count):
        ts = start + timedelta(seconds=k * interval_s)
        hour = (ts.hour + ts.minute / 60) / 24
        swing = 0.55 + 0.45 * math.sin(2 * math.pi * (hour - 0.3))  # quiet at night
        rows = []
        for i in interfaces:
            up = i.oper_status == 1
            d_in = int(i.in_rate * interval_s * swing * rng.lognormvariate(0, 0.3)) if up else 0
            d_out = int(i.out_rate * interval_s * swing * rng.lognormvariate(0, 0.3)) if up else 0
            in_oct[i.index] += d_in
            out_oct[i.index] += d_out
            row: dict[str, object] = dict(
                index=i.index, name=i.name, oper=i.oper_status, admin=i.admin_status,
                speed_bps=i.speed_bps, hc=i.hc, in_octets=in_oct[i.index],
                out_octets=out_oct[i.index])
            if k == 0:
                row["rate_note"] = "first_poll"
            else:
                in_bps, out_bps = d_in * 8 / interval_s, d_out * 8 / interval_s
                row.update(in_bps=round(in_bps, 1), out_bps=round(out_bps, 1),
                           in_util_pct=round(100 * in_bps / i.speed_bps, 4),
                           out_util_pct=round(100 * out_bps / i.speed_bps, 4))
            rows.append(row)
        yield wire.DevicePoll.model_validate(dict(
            device=device, ts=ts, reachable=True, rtt_ms=round(rng.uniform(2.0, 12.0), 2),
            uptime_cs=(uptime_cs + int(k * interval_s * 100)) % 2**32, interfaces=rows))


def prefill(path: Path, *, agent: str, province: str, commune: str, site: str,
            devices: Sequence[str], interfaces: Sequence[SimInterface], start: datetime,
            polls_per_device: int, interval_s: float, max_polls: int = 1,
            max_payload_bytes: int = 256 * 1024) -> int:
    """Store a cut's polls in the agent's spool at ``path`` as its batcher would have
    (``[batch] max_polls``, packed by :mod:`agent.packing`): the devices' polls of one
    round, staggered across the interval, in order. Returns the number of polls."""
    topic = topics.build(province, commune, site, "telemetry")
    envelope = envelope_bytes(agent, site, None)
    streams = [cut_polls(d, interfaces, start=start + timedelta(seconds=n * interval_s
                                                                / len(devices)),
                         count=polls_per_device, interval_s=interval_s)
               for n, d in enumerate(devices)]
    spool = Spool(path, max_messages=10_000_000, max_age_s=40 * 86400, fsync="off")
    stored = 0
    try:
        for _ in range(polls_per_device):
            round_polls = [next(s) for s in streams]
            for k in range(0, len(round_polls), max_polls):
                chunk = round_polls[k:k + max_polls]
                for group in pack(chunk, limit_bytes=max_payload_bytes, max_polls=max_polls,
                                  envelope=envelope):
                    fragments = [data for _, data in group]

                    def payload(seq: int, fragments: list[bytes] = fragments) -> bytes:
                        return encode(agent, site, None, seq, fragments)

                    spool.put(topic, payload, group[-1][0].ts.timestamp())
                stored += len(chunk)
        return stored
    finally:
        spool.close()
