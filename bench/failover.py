"""Failover time of a partition's two collectors (docs/deploy-core.md, "Two collectors per
partition (failover)"): the owner is SIGKILLed (or frozen with SIGSTOP, as a host that
stops answering) under load, again and again; per round, the time from the kill to the
standby's "owner" log line and to the first poll published after the kill being stored.
Every published poll is checked stored exactly once at the end.

A SIGKILLed process's sockets are closed by its (living) kernel: the broker publishes the
Will at once. A frozen one keeps them open: the broker's keepalive timeout (1.5 x
keepalive) fires the Will; when it thaws, it finds its lease expired and demotes itself
(fenced), and comes back as the standby.

    python bench/failover.py                          # 10 SIGKILLs, keepalive 2 s
    python bench/failover.py --mode freeze --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections import Counter
from typing import Any

from common import finish, header, median, percentile, print_table, workdir

import lab
from lab.failover import (
    Publisher,
    current_owner,
    member,
    owner_epochs,
    stored_from,
    stored_seqs,
)
from lab.programs import Subprogram

AGENTS = ["ag1", "ag2", "ag3", "ag4"]


async def _until(check: Any, timeout_s: float, what: str, every_s: float = 0.02) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(every_s)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    wd = workdir("failover")
    broker = lab.Mosquitto(wd / "mosquitto")
    influx = lab.InfluxDB1(wd / "influxdb")
    broker.start()
    influx.start()
    db = "failover"
    influx.create_database(db)
    procs = [member(wd, name, mqtt_port=broker.port, influx_url=influx.url, database=db,
                    keepalive_s=args.keepalive).start() for name in ("core-a", "core-b")]
    stop = asyncio.Event()
    pub = Publisher(broker.port, AGENTS, rate_per_s=args.rate)
    rows: list[dict[str, Any]] = []
    publisher: asyncio.Task[None] | None = None
    try:
        await _until(lambda: current_owner(procs) is not None, 30, "a first owner", 0.1)
        owner = current_owner(procs)
        assert owner is not None
        await _until(lambda: "subscribed to" in owner.log(), 10, "the owner subscribed")
        publisher = asyncio.create_task(pub.run(stop))
        await asyncio.sleep(2.0)
        for n in range(args.rounds):
            owner = current_owner(procs)
            assert owner is not None and owner.proc is not None
            standby: Subprogram = procs[1] if owner is procs[0] else procs[0]
            owned = len(owner_epochs(standby))
            killed_at, killed_wall = time.monotonic(), time.time()
            if args.mode == "kill":
                owner.kill()
            else:
                os.kill(owner.proc.pid, signal.SIGSTOP)
            await _until(lambda t=killed_at: pub.first_sent_after(t, AGENTS[0]) is not None, 5,
                         "a poll sent after the kill")
            seq = pub.first_sent_after(killed_at, AGENTS[0])
            assert seq is not None
            await _until(lambda seq=seq: stored_from(influx, db, AGENTS[0], seq) > 0,
                         10 * args.keepalive, "the standby's first write", 0.01)
            first_write_s = time.monotonic() - killed_at
            await _until(lambda s=standby, k=owned: len(owner_epochs(s)) > k, 5, "owner line")
            owner_s = owner_epochs(standby)[-1][0] - killed_wall
            if args.mode == "kill":
                ups = owner.log().count("lease connection up")
                owner.start()
                await _until(lambda o=owner, u=ups: o.log().count("lease connection up") > u,
                             15, "the killed one back as standby")
            else:
                os.kill(owner.proc.pid, signal.SIGCONT)
                await _until(lambda o=owner: "demoted at epoch" in o.log().split(
                    "owner at epoch")[-1], 10, "the thawed owner demoted")
            rows.append({"round": n + 1, "mode": args.mode, "owner_s": owner_s,
                         "first_write_s": first_write_s})
            print_table([rows[-1]], ["round", "mode", "owner_s", "first_write_s"])
            await asyncio.sleep(args.pause)
        stop.set()
        await publisher
        for agent in AGENTS:
            total = pub.published[agent]
            await _until(lambda a=agent, t=total: stored_from(influx, db, a, 0) >= t, 30,
                         f"{agent} stored", 0.2)
        twice = lost = 0
        for agent in AGENTS:
            seqs = Counter(stored_seqs(influx, db, agent))
            twice += sum(1 for k in seqs.values() if k > 1)
            lost += len(set(range(pub.published[agent])) - set(seqs))
    finally:
        stop.set()
        if publisher is not None and not publisher.done():
            publisher.cancel()
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                os.kill(p.proc.pid, signal.SIGCONT)
            p.stop()
        broker.stop()
        influx.stop()
    return {"rows": rows, "published": sum(pub.published.values()), "stored_twice": twice,
            "lost": lost, "keepalive_s": args.keepalive, "workdir": str(wd)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--mode", choices=("kill", "freeze"), default="kill")
    p.add_argument("--keepalive", type=int, default=2)
    p.add_argument("--rate", type=float, default=50.0, help="messages/s published")
    p.add_argument("--pause", type=float, default=3.0, help="seconds between rounds")
    p.add_argument("--json")
    args = p.parse_args()
    header(f"partition failover: {args.rounds} x {args.mode} of the owner, keepalive "
           f"{args.keepalive} s, {args.rate:g} msg/s")
    res = asyncio.run(run(args))
    owner = [r["owner_s"] for r in res["rows"]]
    write = [r["first_write_s"] for r in res["rows"]]
    print_table([{"what": "owner line after kill (s)", "median": median(owner),
                  "p90": percentile(owner, 90), "max": max(owner)},
                 {"what": "first new poll stored (s)", "median": median(write),
                  "p90": percentile(write, 90), "max": max(write)}],
                ["what", "median", "p90", "max"])
    print(f"   {res['published']} polls published, {res['lost']} lost, "
          f"{res['stored_twice']} stored twice; bound 2 x keepalive = {2 * args.keepalive} s")
    finish(res, args.json)


if __name__ == "__main__":
    main()
