"""CPU per ICMP echo of the agent's pinger (agent/ping.py, icmplib), datagram vs raw
sockets, one ping at a time vs many in flight.

icmplib opens a socket per ping. A datagram ICMP socket gets only its own replies
(the kernel matches them by id); a raw ICMP socket gets a copy of *every* ICMP packet
the host receives, so with k pings in flight each reply is read and parsed k times.
This bench measures what that costs. It runs in network namespaces of its own
(lab/netns.py): one with ``net.ipv4.ping_group_range`` open (datagram sockets), one
closed (raw sockets, as root); every echo goes to 127.0.0.1 inside the namespace.

    sudo python bench/ping_cost.py            # ~30 s
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from typing import Any

from common import finish, header, print_table

from agent.ping import IcmpPinger, PingPolicy
from lab.netns import Lab, lab_skip_reason


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def _run(pings: int, concurrency: int, count: int) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        pinger = IcmpPinger(PingPolicy(count=count, interval_s=0.05, timeout_s=1.0))
        kind = pinger.kind(2)  # AF_INET
        gate = asyncio.Semaphore(concurrency)
        received = 0

        async def one() -> None:
            nonlocal received
            async with gate:
                result = await pinger.ping("127.0.0.1")
                received += result.received if result else 0

        await one()  # warm-up
        received = 0
        cpu0, wall0 = _cpu_s(), time.monotonic()
        await asyncio.gather(*(one() for _ in range(pings)))
        cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
        return {"sockets": kind, "in flight": concurrency, "echoes": pings * count,
                "received": received, "us CPU/echo": round(cpu / (pings * count) * 1e6, 1),
                "wall s": round(wall, 2)}

    return asyncio.run(main())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pings", type=int, default=1000)
    p.add_argument("--count", type=int, default=2, help="echo requests per ping (as [icmp])")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--json")
    args = p.parse_args()
    reason = lab_skip_reason()
    if reason:
        raise SystemExit(f"ping_cost: {reason}")
    header(f"ICMP witness: CPU per echo, {args.pings} pings x {args.count} echoes to 127.0.0.1")
    rows = []
    with Lab() as lab:
        for kind, group_range in (("datagram", "0 2147483647"), ("raw", "1 0")):
            ns = lab.netns(kind)
            ns.run(["sysctl", "-q", "-w", f"net.ipv4.ping_group_range={group_range}"])
            for concurrency in args.concurrency:
                rows.append(ns.call(_run, args.pings, concurrency, args.count))
    print_table(rows, ["sockets", "in flight", "echoes", "received", "us CPU/echo", "wall s"])
    finish({"rows": rows}, args.json)


if __name__ == "__main__":
    main()
