"""A regional broker's bridge cut for a while under a region's load, then healed: what it
queued, what that cost, how long the catch-up took, and lost / re-delivered / out of order.

    python bench/bridge_cut.py                                   # 60 s cut, 50 msg/s
    python bench/bridge_cut.py --cut-s 300                       # the 5-minute run
    python bench/bridge_cut.py --cut-s 20 --burst 200000 --inflight 1 20 100

One row per ``--inflight`` value (the regional broker's max_inflight_messages, which bounds
the bridge's messages awaiting the core's PUBACK). Each row: lab/bridge.py's regional broker
in a namespace, bridged (deploy/mosquitto/bridge.conf, keepalive 5 s, retry every 1 s) to a
core Mosquitto (the deployed mosquitto.conf's queue bounds) in the root namespace;
``--agents`` sites inside the region publish valid telemetry (one device, 10 interfaces,
1,462 bytes a message) at ``--rate`` messages/s in all, each awaiting its PUBACK
(lab/regionload.py); ``--burst`` more messages from one extra site as fast as the regional
broker takes them during the cut (a larger queue, to measure the memory per queued message
and the drain rate); an MQTT v5 persistent subscriber on the core records the arrivals
(it stands for the collector: when it is slower than the drain, the core queues for it).
After ``--warm-s`` the veth between region and core drops everything (nftables, both ends)
for ``--cut-s``, then heals; the load goes on for ``--after-s``.

Figures: queued (acknowledged by the regional broker during the cut), the regional broker's
RSS before the cut and at the heal (and per queued message), its persistence file at the
last save before the heal (autosave every cut/3 s here, at least 10 s), bridge reconnection
after the heal, catch-up (heal -> every message acknowledged before the heal at the core)
and the drain rate, lost, re-delivered and out of order per agent (lab.regionload.audit's
definition).

Needs root (namespaces, nft; skipped with the reason otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
from common import finish, header, print_table, workdir
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import lab
from lab.bridge import BridgedRegion, core_bounds
from lab.netns import lab_skip_reason
from lab.regionload import Sent, Site, audit, message, publish_region, sites
from xanet import wire

PROVINCE = "ha-giang"
COLUMNS = ["inflight", "sent", "queued", "rss_before_mb", "rss_heal_mb", "bytes_per_queued",
           "db_mb", "reconnect_s", "catchup_s", "drain_msg_s", "lost", "redelivered",
           "out_of_order"]


def burst(port: int, site: Site, n: int, sent: Sent) -> None:
    """``n`` messages of ``site`` as fast as the broker takes them, 50 awaiting PUBACK."""
    origin = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    sent.next_seq[site.agent] = 0
    times = sent.acked_at.setdefault(site.agent, [])

    async def main() -> None:
        async with aiomqtt.Client("127.0.0.1", port, identifier=site.agent,
                                  max_inflight_messages=50) as client:
            for start in range(0, n, 50):
                seqs = range(start, min(n, start + 50))
                await asyncio.gather(*(client.publish(
                    site.topic, message(site, s, origin, 60.0, 10), qos=1) for s in seqs))
                sent.next_seq[site.agent] = seqs[-1] + 1
                times.extend([time.monotonic()] * len(seqs))

    asyncio.run(main())


async def until(check: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``check`` (state the recorder task changes) until true or ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:  # noqa: ASYNC110  # state of another task
        await asyncio.sleep(0.05)
    return check()


async def one_run(args: argparse.Namespace, inflight: int) -> dict[str, Any]:
    wd = workdir(f"bridge-cut-{inflight}")
    arrivals: list[tuple[str, int]] = []
    arrived_at: list[float] = []
    sent = Sent()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    autosave_s = max(10, int(args.cut_s // 3))  # a save before the heal, not a save a second
    with lab.Mosquitto(wd / "core", extra_conf=core_bounds()) as core, BridgedRegion(
            wd, core.port, provinces=[PROVINCE],
            regional_conf=f"max_inflight_messages {inflight}\nautosave_interval {autosave_s}",
    ) as region:
        region.wait_bridged()
        async with aiomqtt.Client(lab.HOST, core.port, identifier="bench-audit",
                                  protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
                                  properties=props) as sub:
            await sub.subscribe(f"xanet/v1/{PROVINCE}/+/+/telemetry", qos=1)

            async def record() -> None:
                async for m in sub.messages:
                    msg = wire.decode(bytes(m.payload), "telemetry")
                    assert isinstance(msg, wire.Telemetry)
                    arrivals.append((msg.agent, msg.seq))
                    arrived_at.append(time.monotonic())

            recorder = asyncio.create_task(record())
            duration = args.warm_s + args.cut_s + args.after_s
            load = asyncio.create_task(asyncio.to_thread(
                region.region.call, publish_region, "127.0.0.1", region.broker.port,
                sites(PROVINCE, args.agents), rate_per_s=args.rate, duration_s=duration,
                sent=sent))
            await asyncio.sleep(args.warm_s)
            rss_before = region.rss_bytes()
            connections = region.bridge_connections()
            region.cut()
            t_cut = time.monotonic()
            if args.burst:
                await asyncio.to_thread(region.region.call, burst, region.broker.port,
                                        Site("burst-a0", PROVINCE, "00688", "burst"),
                                        args.burst, sent)
            await asyncio.sleep(max(0.0, t_cut + args.cut_s - time.monotonic()))
            rss_heal = region.rss_bytes()
            db = region.broker.data_dir / "mosquitto.db"
            db_bytes = db.stat().st_size if db.exists() else 0
            before_heal = sent.expected()
            region.heal()
            t_heal = time.monotonic()
            await asyncio.to_thread(region.wait_bridged, connections, 120)
            reconnect_s = time.monotonic() - t_heal
            done = await until(lambda: {*arrivals} >= before_heal, args.cut_s * 3 + 120)
            last_needed = max((t for (a, s), t in zip(arrivals, arrived_at, strict=True)
                               if (a, s) in before_heal), default=t_heal)
            await load
            await until(lambda: {*arrivals} >= sent.expected(), 30)
            recorder.cancel()
    queued = sent.sent_between(t_cut, t_heal)
    result = audit(sent.expected(), arrivals)
    catchup = last_needed - t_heal if done else float("nan")
    return {"inflight": inflight, "sent": result.sent, "queued": queued,
            "rss_before_mb": rss_before / 1e6, "rss_heal_mb": rss_heal / 1e6,
            "bytes_per_queued": (rss_heal - rss_before) / queued if queued else 0.0,
            "db_mb": db_bytes / 1e6, "reconnect_s": reconnect_s, "catchup_s": catchup,
            "drain_msg_s": queued / catchup if done and catchup > 0 else 0.0,
            "lost": len(result.lost), "redelivered": result.redelivered,
            "out_of_order": len(result.out_of_order),
            "out_of_order_first": result.out_of_order[:8]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cut-s", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=50.0, help="messages/s, all sites")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--warm-s", type=float, default=5.0)
    parser.add_argument("--after-s", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--inflight", type=int, nargs="+", default=[20])
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    reason = lab_skip_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    header(f"bridge cut {args.cut_s:g} s at {args.rate:g} msg/s from {args.agents} sites"
           + (f", +{args.burst} burst" if args.burst else ""))
    rows = [asyncio.run(one_run(args, n)) for n in args.inflight]
    print_table(rows, COLUMNS)
    finish({"rows": rows}, args.json)
    bad = [r for r in rows if r["lost"] or r["out_of_order"]]
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
