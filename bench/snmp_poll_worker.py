"""Worker of ``bench/snmp_poll.py --baseline``: one tree's ``agent.snmp`` polls one target.

Run as a child process with the tree under test first on ``sys.path`` (the tree as it
is, or as it was at a git revision, exported with ``git archive``), so both versions of
the poller are measured the same way in one invocation, whatever their module layout.
Prints ``{"polls", "wall_s", "cpu_s", "ifaces"}`` as JSON (this process's CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any


async def polls(args: argparse.Namespace) -> dict[str, Any]:
    from agent.snmp import SnmpPoller, SnmpTarget, SnmpV2c, SnmpV3

    credentials = SnmpV3(*args.v3) if args.v3 else SnmpV2c(args.community)
    target = SnmpTarget(device="bench", host="127.0.0.1", port=args.port,
                        credentials=credentials, timeout_s=2.0, retries=1,
                        max_repetitions=args.max_repetitions)
    poller = SnmpPoller()
    try:
        await poller.poll(target)  # warm-up: socket, engine discovery, caches
        sem = asyncio.Semaphore(args.concurrency)
        ifaces = 0

        async def one() -> None:
            nonlocal ifaces
            async with sem:
                ifaces = len((await poller.poll(target)).interfaces)

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(args.polls)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        return {"polls": args.polls, "wall_s": wall, "cpu_s": cpu, "ifaces": ifaces}
    finally:
        poller.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tree", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--community", default="public")
    p.add_argument("--v3", nargs=3, metavar=("USER", "AUTH_KEY", "PRIV_KEY"))
    p.add_argument("--polls", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--max-repetitions", type=int, default=25)
    args = p.parse_args()
    sys.path.insert(0, args.tree)
    print(json.dumps(asyncio.run(polls(args))))


if __name__ == "__main__":
    main()
