"""A site's polls as its agent makes them, for the compact-batch tests and bench.

:func:`site_backlog` builds the telemetry messages of ``n_dev`` devices x ``n_if``
interfaces polled every minute: counters that advance (Counter32 ones wrap), rates and
utilisation from the agent's own rate engine (agent/rates.py) over a monotonic clock that
is not the poll time, an alias on every other port, one port that flaps. ``traffic``:
``uniform`` (octet deltas uniform in ``0..delta_max``: the worst case for compression) or
``site`` (each port a steady rate, log-uniform from 10 kbit/s to 50 Mbit/s, ±20 % from
minute to minute, a quarter of them idle: closer to a BTS site's ports).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Literal

from agent.rates import DeviceSample, IfCounters, RatePolicy, compute_rates
from xanet import wire


def site_backlog(n_dev: int = 3, n_if: int = 10, polls: int = 20, seed: int = 1,
                 delta_max: int = 10**7, t0: datetime = datetime(2026, 11, 28, tzinfo=UTC),
                 agent: str = "agt-1", site: str = "lungcu-hub",
                 traffic: Literal["uniform", "site"] = "uniform",
                 interval_s: float = 60.0) -> list[wire.Telemetry]:
    """One message per poll, in poll order (as ``[batch] max_polls = 1`` spools them)."""
    rng = random.Random(seed)
    counters = {(d, i): [rng.randrange(2**32), rng.randrange(2**64)]
                for d in range(n_dev) for i in range(1, n_if + 1)}
    base_bps = {key: 0.0 if rng.random() < 0.25 else 10 ** rng.uniform(4, 7.7)
                for key in counters}
    prev: dict[int, DeviceSample] = {}
    policy = RatePolicy(poll_interval_s=interval_s)
    msgs: list[wire.Telemetry] = []
    for k in range(polls):
        for d in range(n_dev):
            offset = interval_s * k + d * interval_s / max(n_dev, 1) / 10
            ts = t0 + timedelta(seconds=offset, microseconds=rng.randrange(10**6))
            mono = offset + rng.random() * 0.2
            ifs = {}
            for i in range(1, n_if + 1):
                c = counters[(d, i)]
                for j in (0, 1):
                    if traffic == "uniform":
                        step = rng.randrange(delta_max)
                    else:
                        step = int(base_bps[(d, i)] * rng.uniform(0.8, 1.2) * interval_s / 8)
                    c[j] = (c[j] + step) % (2**32 if j == 0 else 2**64)
                hc = i % 3 != 0
                ifs[i] = IfCounters(i, f"ge-0/0/{i}", c[1] if hc else c[0],
                                    c[0] if hc else c[1] % 2**32, hc,
                                    10**9 if i != 4 else None)
            sample = DeviceSample(mono, 100 * int(mono) + 1234, ifs)
            rates = compute_rates(prev.get(d), sample, policy)
            prev[d] = sample
            interfaces = []
            for i, ifc in ifs.items():
                r = rates[i]
                interfaces.append(wire.InterfacePoll(
                    index=i, name=ifc.name, oper=1 if i != 2 or k % 5 else 2, admin=1,
                    speed_bps=ifc.speed_bps, hc=ifc.hc, in_octets=ifc.in_octets,
                    out_octets=ifc.out_octets, in_bps=r.in_bps, out_bps=r.out_bps,
                    in_util_pct=r.in_util_pct, out_util_pct=r.out_util_pct,
                    rate_note=r.in_reason.value if r.in_reason else None,
                    alias=f"to-bts-{d}-{i}" if i % 2 else None))
            poll = wire.DevicePoll(device=f"bts-{d}", ts=ts, reachable=True,
                                   rtt_ms=round(rng.random() * 40, 3),
                                   uptime_cs=sample.sys_uptime_cs, interfaces=interfaces)
            msgs.append(wire.Telemetry(agent=agent, site=site, seq=len(msgs),
                                       instance="i-1", sent=ts + timedelta(hours=5),
                                       polls=[poll]))
    return msgs
