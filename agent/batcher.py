"""When device polls become telemetry messages: grouped per (commune, site), stored in the spool.

A group is flushed when it holds ``[batch] max_polls`` polls or ``linger_s`` after its
first poll; it is packed (:mod:`agent.packing`) into as few messages as the payload limit
allows, the core's and the broker's once it announced one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from agent.config import AgentConfig
from agent.errors import SpoolError
from agent.packing import Piece, encode, envelope_bytes, pack
from agent.spool import Spool
from agent.telemetry import Health
from agent.uplink_batches import packet_bytes
from xanet import topics, wire

log = logging.getLogger("xanet.agent")


class Batcher:
    """Groups device polls per (commune, site) into telemetry messages in the spool."""

    def __init__(self, cfg: AgentConfig, spool: Spool, on_stored: Callable[[], None], *,
                 health: Health | None = None, instance: str | None = None,
                 broker_limit: Callable[[], int | None] = lambda: None) -> None:
        self.cfg = cfg
        self.spool = spool
        self.on_stored = on_stored
        self.health = health or Health()
        self.instance = instance
        self.broker_limit = broker_limit  # the broker's Maximum Packet Size, when known
        self.pending: dict[tuple[str, str], list[wire.DevicePoll]] = {}
        self.flushers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.messages_split = 0  # flushes that needed more than one message

    def limit_bytes(self, topic: str) -> int:
        """The largest payload: the core's limit, and the broker's once it announced one."""
        limit = self.cfg.batch.max_payload_bytes
        broker = self.broker_limit()
        if broker is not None:
            limit = min(limit, broker - (packet_bytes(topic, b"", v5=True) + 3))
        return limit

    def add(self, commune: str, site: str, poll: wire.DevicePoll) -> None:
        key = (commune, site)
        polls = self.pending.setdefault(key, [])
        polls.append(poll)
        if len(polls) >= self.cfg.batch.max_polls:
            self.flush(key)
        elif key not in self.flushers:
            loop = asyncio.get_running_loop()
            self.flushers[key] = loop.call_later(self.cfg.batch.linger_s, self.flush, key)

    def flush(self, key: tuple[str, str]) -> None:
        handle = self.flushers.pop(key, None)
        if handle:
            handle.cancel()
        polls = self.pending.pop(key, [])
        if not polls:
            return
        commune, site = key
        a = self.cfg.agent
        topic = topics.build(a.province, commune, site, "telemetry")
        groups = pack(polls, limit_bytes=self.limit_bytes(topic),
                      max_polls=self.cfg.batch.max_polls,
                      envelope=envelope_bytes(a.id, site, self.instance))
        if len(groups) > 1:
            self.messages_split += 1
        for group in groups:
            self._store(topic, site, group)
        self.on_stored()

    def _store(self, topic: str, site: str, group: list[Piece]) -> None:
        a = self.cfg.agent
        fragments = [data for _, data in group]

        def payload(seq: int) -> bytes:
            return encode(a.id, site, self.instance, seq, fragments)

        h = self.health
        stored: list[int] = []

        def counted(seq: int) -> bytes:
            data = payload(seq)
            stored.append(len(data))
            return data

        try:
            self.spool.put(topic, counted, time.time())
        except SpoolError as exc:
            h.polls_dropped += len({(p.device, p.ts) for p, _ in group})  # parts: one poll
            if h.spool_error is None:  # logged when it starts and when it ends
                log.error("site %s: %s: polls are dropped (counted) until the spool can "
                          "store again", site, exc)
            h.spool_error = str(exc)
            return
        h.traffic.note_spooled(len({(p.device, p.ts) for p, _ in group}),
                               sum(len(p.interfaces) for p, _ in group),
                               stored[-1] if stored else 0)
        if h.spool_error is not None:
            log.info("site %s: spool %s stores again; %d poll(s) dropped in all", site,
                     self.spool.path, h.polls_dropped)
            h.spool_error = None

    def flush_all(self) -> None:
        for key in list(self.pending):
            self.flush(key)
