"""The agent's MQTT edge: drains the spool to the broker, QoS 1, acknowledged.

A message leaves the spool only after the broker's PUBACK. On (re)connect the
agent publishes a retained ``online`` status (birth) and has registered a
retained ``offline`` Last Will, so the core learns within the keepalive when
the agent vanishes.

Two lanes share the connection: *live* (messages stored since this connection
came up) go out at once; *replay* (the backlog from before) is throttled to
``replay_rate_per_s`` so a site coming back after a long cut does not flood
the core, and live polls keep flowing meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Literal

import aiomqtt

from agent.spool import Entry, Spool
from xanet import wire
from xanet.mqtt import MqttConfig, backoff_s, connect_kwargs

log = logging.getLogger("xanet.agent.uplink")

#: Which status to build: the birth/refresh, the Last Will (registered at connect, so it
#: carries no timestamp: the broker sends it later), or the goodbye of a clean stop.
StatusKind = Literal["online", "will", "stopped"]

PEEK_BATCH = 200
#: How much lateness the replay throttle may make up at once (see ``_replay``).
REPLAY_BURST_S = 0.1


class Uplink:
    def __init__(
        self,
        cfg: MqttConfig,
        spool: Spool,
        *,
        client_id: str,
        status_topic: str,
        make_status: Callable[[StatusKind], wire.Status],
        replay_rate_per_s: float,
        status_interval_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.spool = spool
        self.client_id = client_id
        self.status_topic = status_topic
        self.make_status = make_status
        self.replay_rate_per_s = replay_rate_per_s
        self.status_interval_s = status_interval_s
        self.rng = rng or random.Random()
        self.wakeup = asyncio.Event()
        self.connected = asyncio.Event()
        self.published = 0
        self.replayed = 0

    def notify(self) -> None:
        """A new message is in the spool."""
        self.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await self._session(stop)
                attempt = 0
                continue
            except* (aiomqtt.MqttError, TimeoutError) as group:
                exc = group.exceptions[0]
            # Out here, not in the except* block: that block may not await or continue.
            self.connected.clear()
            delay = backoff_s(attempt, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s, self.rng)
            attempt += 1
            log.warning("mqtt %s:%d: %s; spool depth %d; retry in %.1fs",
                        self.cfg.host, self.cfg.port, exc, self.spool.depth, delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def _session(self, stop: asyncio.Event) -> None:
        will = aiomqtt.Will(
            self.status_topic,
            wire.encode(self.make_status("will")),
            qos=1,
            retain=True,
        )
        kwargs = connect_kwargs(self.cfg, self.client_id)
        async with aiomqtt.Client(
            **kwargs,
            will=will,
            clean_session=True,
            max_inflight_messages=self.cfg.max_inflight,
            timeout=self.cfg.publish_timeout_s,
        ) as client:
            await client.publish(self.status_topic,
                                 wire.encode(self.make_status("online")),
                                 qos=1, retain=True, timeout=self.cfg.publish_timeout_s)
            self.connected.set()
            boundary = self.spool.next_seq
            backlog = self.spool.depth
            log.info("mqtt connected to %s:%d as %s; backlog %d message(s) to replay",
                     self.cfg.host, self.cfg.port, kwargs["identifier"], backlog)
            try:
                async with asyncio.TaskGroup() as tg:
                    sem = asyncio.Semaphore(self.cfg.max_inflight)
                    live = tg.create_task(self._live(client, sem, boundary), name="uplink-live")
                    replay = tg.create_task(self._replay(client, sem, boundary),
                                            name="uplink-replay")
                    status = tg.create_task(self._status_loop(client), name="uplink-status")
                    watch = tg.create_task(self._watch(client), name="uplink-watch")
                    await stop.wait()
                    for task in (live, replay, status, watch):
                        task.cancel()
                await client.publish(self.status_topic,
                                     wire.encode(self.make_status("stopped")),
                                     qos=1, retain=True, timeout=5)
            finally:
                self.connected.clear()

    async def _send(self, client: aiomqtt.Client, entry: Entry, sem: asyncio.Semaphore) -> None:
        try:
            await client.publish(entry.topic, entry.payload, qos=1,
                                 timeout=self.cfg.publish_timeout_s)
        finally:
            sem.release()
        self.spool.ack(entry.seq)
        self.published += 1

    async def _live(self, client: aiomqtt.Client, sem: asyncio.Semaphore, boundary: int) -> None:
        last = boundary - 1
        async with asyncio.TaskGroup() as tg:
            while True:
                self.wakeup.clear()
                entries = self.spool.peek(after=last, limit=PEEK_BATCH)
                if not entries:
                    await self.wakeup.wait()
                    continue
                for entry in entries:
                    await sem.acquire()
                    tg.create_task(self._send(client, entry, sem))
                    last = entry.seq

    async def _replay(self, client: aiomqtt.Client, sem: asyncio.Semaphore,
                      boundary: int) -> None:
        last = -1
        interval = 1.0 / self.replay_rate_per_s
        burst_s = max(interval, REPLAY_BURST_S)
        next_at = time.monotonic()
        started = time.monotonic()
        sent = 0
        async with asyncio.TaskGroup() as tg:
            while True:
                entries = self.spool.peek(after=last, before=boundary, limit=PEEK_BATCH)
                if not entries:
                    break
                for entry in entries:
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    # A token bucket: time lost waiting (PUBACKs, the event loop, SQLite) is
                    # made up, but never more than REPLAY_BURST_S of it, so the average rate
                    # is the configured one and no burst exceeds rate x REPLAY_BURST_S + 1.
                    next_at = max(next_at, time.monotonic() - burst_s) + interval
                    await sem.acquire()
                    tg.create_task(self._send(client, entry, sem))
                    last = entry.seq
                    sent += 1
        self.replayed += sent
        if sent:
            log.info("replay done: %d message(s) in %.1fs", sent, time.monotonic() - started)

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Raise MqttError as soon as the connection drops (the agent subscribes to nothing,
        so the message iterator only ever ends by a disconnect)."""
        async for _ in client.messages:
            pass
        raise aiomqtt.MqttError("message stream ended")

    async def _status_loop(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(self.status_interval_s)
            await client.publish(self.status_topic,
                                 wire.encode(self.make_status("online")),
                                 qos=1, retain=True, timeout=self.cfg.publish_timeout_s)
