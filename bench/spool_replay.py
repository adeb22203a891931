"""Spool: raw put/ack rates, and the replay rate after a long backhaul cut, side by side with
the broker ceiling for the same messages and the same in-flight window.

1. agent.spool.Spool on disk (fsync "batch", the default): put (the agent's path: allocate
   seq, build payload, INSERT, bounds) and peek+ack rates, and the file size per message.
2. Replay: a spool filled with ``--messages`` telemetry messages (one 10-interface device
   poll each, as an agent stores them during a cut) is drained by agent.uplink.Uplink into a
   real Mosquitto with the throttle off (replay_rate_per_s huge) and with the configured
   default (50/s, shown as the time a cut of that size takes to replay); ceilings in the
   same invocation: ``mosquitto_pub -q 1 -M <max_inflight>`` publishing the same payloads,
   and a bare aiomqtt loop with the same number in flight.

    python bench/spool_replay.py                   # ~1 minute
    python bench/spool_replay.py --messages 100000
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
from common import finish, header, print_table, workdir
from ingest import make_messages

import lab
from agent.config import AgentMqttConfig
from agent.spool import Spool
from agent.uplink import Uplink
from xanet import wire

TOPIC = "xanet/v1/08/00691/hub-00691/telemetry"
STATUS = "xanet/v1/08/00691/hub-00691/status"


def raw_spool(wd: Path, payloads: list[bytes]) -> dict[str, Any]:
    path = wd / "raw.sqlite3"
    spool = Spool(path, max_messages=10_000_000, max_age_s=86400 * 30, fsync="batch")
    now = time.time()
    t0 = time.perf_counter()
    for p in payloads:
        spool.put(TOPIC, lambda seq, p=p: p, now)
    put_s = time.perf_counter() - t0
    size = path.stat().st_size + (path.with_name(path.name + "-wal").stat().st_size
                                  if path.with_name(path.name + "-wal").exists() else 0)
    t0 = time.perf_counter()
    last = -1
    while True:
        entries = spool.peek(after=last, limit=200)
        if not entries:
            break
        for e in entries:
            spool.ack(e.seq)
            last = e.seq
    ack_s = time.perf_counter() - t0
    spool.close()
    n = len(payloads)
    return {"put/s": n / put_s, "peek+ack/s": n / ack_s, "bytes on disk/msg": size / n}


def put_cost_by_depth(wd: Path, spool_class: Any, depths: list[int], label: str,
                      sample: int = 200) -> dict[str, Any]:
    """CPU per put as the backlog grows (a cut fills the spool while polling goes on)."""
    spool = spool_class(wd / f"depth-{label}.sqlite3", max_messages=10_000_000,
                        max_age_s=86400 * 30, fsync="batch")
    payload = b"x" * 2200
    now = time.time()
    row: dict[str, Any] = {"code": label}
    for depth in depths:
        while spool.depth < depth - sample:
            spool.put(TOPIC, lambda seq: payload, now)
        c0 = time.process_time()
        for _ in range(sample):
            spool.put(TOPIC, lambda seq: payload, now)
        row[f"ms/put at {depth:,}"] = 1000 * (time.process_time() - c0) / sample
    spool.close()
    return row


def fill(path: Path, payloads: list[bytes]) -> Spool:
    spool = Spool(path, max_messages=10_000_000, max_age_s=86400 * 30, fsync="batch")
    now = time.time()
    for p in payloads:
        spool.put(TOPIC, lambda seq, p=p: p, now)
    return spool


async def replay(port: int, spool: Spool, rate: float, inflight: int,
                 timeout_s: float) -> dict[str, Any]:
    cfg = AgentMqttConfig(host="127.0.0.1", port=port, max_inflight=inflight)
    n = spool.depth

    def status(kind: str, *_: Any) -> wire.Status:
        return wire.Status(agent="agt-bench", site="hub-00691",
                           state="online" if kind == "online" else "offline",
                           ts=datetime.now(UTC), reason=None if kind == "online" else kind)

    uplink = Uplink(cfg, spool, client_id=f"bench-replay-{time.monotonic_ns()}",
                    status_topic=STATUS, make_status=status, replay_rate_per_s=rate,
                    status_interval_s=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(uplink.run(stop))
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    # Polling a depth the uplink changes; bounded by the deadline.
    while spool.depth and time.monotonic() < deadline and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if task.done():
        task.result()  # raises what ended the uplink
        raise RuntimeError("uplink stopped before the spool was replayed")
    wall = time.perf_counter() - t0
    left = spool.depth
    stop.set()
    await asyncio.wait_for(task, 30)
    return {"msg/s": (n - left) / wall, "replayed": n - left, "of": n}


async def aiomqtt_floor(port: int, payloads: list[bytes], inflight: int) -> float:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-floor-{time.monotonic_ns()}",
                              max_inflight_messages=inflight) as client:
        sem = asyncio.Semaphore(inflight)

        async def one(p: bytes) -> None:
            try:
                await client.publish(TOPIC, p, qos=1)
            finally:
                sem.release()

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for p in payloads:
                await sem.acquire()
                tg.create_task(one(p))
        return len(payloads) / (time.perf_counter() - t0)


def mosquitto_pub_ceiling(port: int, stream: Path, n: int, inflight: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-M",
                    str(inflight), "-t", TOPIC, "-l"], stdin=stream.open("rb"), check=True,
                   timeout=600)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--inflight", type=int, default=8, help="the agent's mqtt max_inflight")
    p.add_argument("--throttled-seconds", type=float, default=10.0,
                   help="how long to watch the default-throttled replay")
    p.add_argument("--depth", type=int, default=20_000, help="deepest backlog for put cost")
    p.add_argument("--baseline", metavar="GIT_REV", help="also time agent/spool.py at REV")
    p.add_argument("--json")
    args = p.parse_args()
    header("spool: raw rates and replay after a cut")
    wd = workdir("spool")
    payloads = make_messages(args.messages, 1, 10, 100)
    stream = wd / "stream"
    stream.write_bytes(b"\n".join(payloads) + b"\n")
    size = sum(map(len, payloads)) / len(payloads)
    print(f"   {args.messages:,} messages of one 10-interface poll ({size:,.0f} B each)",
          flush=True)
    raw = raw_spool(wd, payloads)
    depths = [1_000, 5_000, args.depth]
    depth_rows = [put_cost_by_depth(wd, Spool, depths, "current")]
    if args.baseline:
        from collector_cpu import module_at
        old = module_at(args.baseline, "agent/spool.py", "spool_at_" + "".join(
            c if c.isalnum() else "_" for c in args.baseline))
        depth_rows.append(put_cost_by_depth(wd, old.Spool, depths, f"@{args.baseline}"))
    print("   CPU per spool put (fsync batch) by backlog depth:")
    print_table(depth_rows, ["code", *(f"ms/put at {d:,}" for d in depths)])
    rows: list[dict[str, Any]] = []
    with lab.Mosquitto(wd / "mosquitto") as mqtt:
        ceiling = mosquitto_pub_ceiling(mqtt.port, stream, len(payloads), args.inflight)
        rows.append({"path": f"broker ceiling: mosquitto_pub -q 1 -M {args.inflight}",
                     "msg/s": ceiling})
        floor = asyncio.run(aiomqtt_floor(mqtt.port, payloads, args.inflight))
        rows.append({"path": f"bare aiomqtt loop, {args.inflight} in flight", "msg/s": floor,
                     "% of ceiling": 100 * floor / ceiling})
        spool = fill(wd / "replay.sqlite3", payloads)
        r = asyncio.run(replay(mqtt.port, spool, 1e9, args.inflight, 600))
        spool.close()
        rows.append({"path": "xanet Uplink replay, throttle off", "msg/s": r["msg/s"],
                     "% of ceiling": 100 * r["msg/s"] / ceiling,
                     "replayed": f"{r['replayed']:,}/{r['of']:,}"})
        spool = fill(wd / "throttled.sqlite3", payloads)
        r = asyncio.run(replay(mqtt.port, spool, 50.0, args.inflight, args.throttled_seconds))
        spool.close()
        rows.append({"path": "xanet Uplink replay, default replay_rate_per_s = 50",
                     "msg/s": r["msg/s"], "% of ceiling": 100 * r["msg/s"] / ceiling,
                     "replayed": f"{r['replayed']:,} in {args.throttled_seconds:g} s"})
    print(f"   spool on disk (fsync batch): {raw['put/s']:,.0f} put/s, "
          f"{raw['peek+ack/s']:,.0f} peek+ack/s, {raw['bytes on disk/msg']:,.0f} B/message")
    print_table(rows, ["path", "msg/s", "% of ceiling", "replayed"])
    day = 2618 * 1440
    print(f"   a 24-hour cut of a 100-device site (144,000 polls) replays in "
          f"{144_000 / rows[2]['msg/s'] / 60:.1f} min unthrottled, "
          f"{144_000 / 50 / 60:.0f} min at the default 50/s; the whole province's day "
          f"({day:,} polls) in {day / rows[2]['msg/s'] / 60:.0f} min unthrottled")
    finish({"raw": raw, "rows": rows, "put_by_depth": depth_rows}, args.json)


if __name__ == "__main__":
    main()
