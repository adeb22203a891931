"""Live first, against a real Mosquitto behind a thin link: a tiny TCP proxy on 127.0.0.1
that refuses connections during a cut, then carries the agent's bytes at a fixed rate.
After the reconnect live polls reach the broker before the backlog has drained, within
about a second of the budget; the backlog's average rate stays within its budget; every
message arrives once. (The 64 kbit/s namespace lab and the 24-hour catch-up are
tests/test_thin_link*.py's; the rules are tested purely in tests/test_budget.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import aiomqtt
import pytest

import lab
from agent.budget import BURST_S, LIVE_WAIT_S
from agent.config import AgentMqttConfig
from agent.spool import Spool
from agent.uplink import Uplink
from agent.uplink_batches import packet_bytes
from xanet import wire

SITE = "hub-live-first"
TELEMETRY = f"xanet/v1/lf/00000/{SITE}/telemetry"
STATUS = f"xanet/v1/lf/00000/{SITE}/status"


class ThinLink:
    """A TCP proxy to ``port``: agent → broker capped at ``bytes_per_s`` (it sleeps after
    each chunk), broker → agent as it comes. Not listening until :meth:`open`: the cut
    (connections refused)."""

    def __init__(self, port: int, bytes_per_s: float) -> None:
        self.port = port
        self.bytes_per_s = bytes_per_s
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        with socket.socket() as probe:  # a free port, for the agent's config
            probe.bind(("127.0.0.1", 0))
            self.listen_port = int(probe.getsockname()[1])

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.port)
        for coro in (self._pipe(reader, up_w, throttle=True),
                     self._pipe(up_r, writer, throttle=False)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *,
                    throttle: bool) -> None:
        try:
            while chunk := await src.read(512 if throttle else 65536):
                dst.write(chunk)
                await dst.drain()
                if throttle:
                    await asyncio.sleep(len(chunk) / self.bytes_per_s)
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()


def _payload(kind: str, i: int, size: int) -> bytes:
    head = json.dumps({"kind": kind, "i": i, "stored": time.time(), "pad": ""})
    return (head[:-2] + "x" * max(0, size - len(head)) + '"}').encode()


@pytest.mark.parametrize(("budget", "link_bytes_per_s"), [(6_000.0, 24_000.0),
                                                          ("auto", 12_000.0)])
async def test_live_polls_go_first_and_the_backlog_keeps_its_budget(
        tmp_path: Path, mosquitto: lab.Mosquitto, budget: float | Literal["auto"],
        link_bytes_per_s: float) -> None:
    backlog_n, size, live_every_s = 40, 1_000, 0.5
    spool = Spool(tmp_path / "spool.sqlite3", max_messages=10_000, max_age_s=86400,
                  fsync="off")
    for i in range(backlog_n):  # what a cut left behind
        spool.put(TELEMETRY, lambda seq, i=i: _payload("backlog", i, size), time.time())
    link = ThinLink(mosquitto.port, link_bytes_per_s)
    cfg = AgentMqttConfig(host="127.0.0.1", port=link.listen_port, max_inflight=8,
                          reconnect_min_s=0.2, reconnect_max_s=0.5, keepalive_s=30)

    def status(kind: str) -> wire.Status:
        return wire.Status(agent="agent-lf", site=SITE,
                           state="online" if kind == "online" else "offline",
                           ts=None if kind == "will" else datetime.now(UTC))

    uplink = Uplink(cfg, spool, client_id="xanet-agent-lf", status_topic=STATUS,
                    make_status=status, replay_rate_per_s=1000.0, status_interval_s=3600,
                    replay_budget_bytes_per_s=budget)
    arrived: list[tuple[float, dict[str, object]]] = []
    statuses: list[float] = []
    stop, all_in, live_n = asyncio.Event(), asyncio.Event(), 8
    async with aiomqtt.Client("127.0.0.1", mosquitto.port,
                              identifier=f"lf-sub-{time.monotonic_ns()}") as sub:
        await sub.subscribe(TELEMETRY, qos=1)
        await sub.subscribe(STATUS, qos=1)

        async def listen() -> None:
            async for msg in sub.messages:
                assert isinstance(msg.payload, bytes)
                if str(msg.topic) == STATUS:
                    statuses.append(time.time())
                else:
                    arrived.append((time.time(), json.loads(msg.payload)))
                    if len(arrived) >= backlog_n + live_n:
                        all_in.set()

        async def live_polls(n: int) -> None:
            for i in range(n):
                spool.put(TELEMETRY, lambda seq, i=i: _payload("live", i, size // 2),
                          time.time())
                uplink.notify()
                await asyncio.sleep(live_every_s)

        listener = asyncio.create_task(listen())
        running = asyncio.create_task(uplink.run(stop))
        await asyncio.sleep(1.0)  # the cut: connections refused, nothing delivered
        assert not arrived and spool.depth == backlog_n
        await link.open()
        await asyncio.wait_for(uplink.connected.wait(), 10)
        connected_at = time.time()
        await live_polls(live_n)
        with contextlib.suppress(TimeoutError):  # what is missing is said below
            await asyncio.wait_for(all_in.wait(), 60)
        stop.set()
        await asyncio.wait_for(running, 15)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    await link.close()
    spool.close()

    kinds = [(m["kind"], m["i"]) for _, m in arrived]
    assert sorted(kinds) == sorted([("backlog", i) for i in range(backlog_n)]
                                   + [("live", i) for i in range(live_n)])  # each once
    backlog = [(t, m) for t, m in arrived if m["kind"] == "backlog"]
    live = [(t, m) for t, m in arrived if m["kind"] == "live"]
    assert [m["i"] for _, m in backlog] == list(range(backlog_n))  # oldest first
    last_backlog = backlog[-1][0]
    assert live[0][0] < last_backlog and sum(t < last_backlog for t, _ in live) >= 3, \
        "live polls wait for the backlog"
    # A live poll waits behind at most ~LIVE_WAIT_S of backlog (the budget's, or the
    # budget auto starts with) plus what is on the link.
    worst = max(t - float(m["stored"]) for t, m in live)
    bound = LIVE_WAIT_S * max(link_bytes_per_s, 4_000) / link_bytes_per_s + 1.0
    assert worst <= bound, (worst, bound)
    # The backlog's average rate: within the budget (plus the burst and one message),
    # and never above the link.
    backlog_bytes = sum(packet_bytes(TELEMETRY, _payload("backlog", i, size), v5=True)
                        for i in range(backlog_n))
    span = last_backlog - connected_at
    rate = backlog_bytes / span
    assert rate <= link_bytes_per_s * 1.05
    if budget != "auto":
        assert rate <= float(budget) * (1 + BURST_S) + size / span
        assert rate >= float(budget) * 0.6  # and it did drain at about the budget
    assert statuses, "the birth status got through"
    print(f"\nMEASURE live-first budget={budget} link={link_bytes_per_s:.0f}B/s: backlog "
          f"{backlog_bytes} bytes in {span:.1f}s ({rate:.0f} B/s), live worst "
          f"{worst:.2f}s, budget now {uplink.budget_bytes_per_s}")
