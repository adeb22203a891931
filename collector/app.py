"""The collector program: MQTT in, admission, accounting, InfluxDB out.

Wiring only: the decisions are in :mod:`collector.ingest`,
:mod:`collector.sequence` and :mod:`collector.lineproto`; the I/O in
:mod:`collector.sink`, :mod:`collector.writer` and :mod:`collector.deadletter`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from datetime import UTC, datetime

import aiomqtt

from collector import lineproto
from collector.config import CollectorConfig
from collector.deadletter import DeadLetter
from collector.ingest import Accepted, Limits, Rejected, admit
from collector.sequence import Seen, SequenceTracker
from collector.sink import Sink
from collector.writer import LineWriter, make_writer
from xanet import topics, wire
from xanet.mqtt import backoff_s, connect_kwargs

log = logging.getLogger("xanet.collector")


class Collector:
    def __init__(self, cfg: CollectorConfig, *, writer: LineWriter | None = None) -> None:
        self.cfg = cfg
        self.writer = writer or make_writer(cfg.influx)
        self.sink = Sink(cfg.influx, self.writer)
        i = cfg.ingest
        self.limits = Limits(max_payload_bytes=i.max_payload_bytes,
                             max_future_s=i.max_future_s, max_past_s=i.max_past_s)
        self.dead_letter = DeadLetter(i.dead_letter_dir, i.dead_letter_max_bytes)
        self.sequences = SequenceTracker()
        self.rejected: Counter[str] = Counter()
        self.received = 0
        self.accepted = 0
        self.polls = 0
        self.agents_online: dict[str, bool] = {}
        self.subscribed = asyncio.Event()
        self._rng = random.Random()

    # -- message handling (no network here: tests drive it directly) --------

    async def handle(self, topic: str, payload: bytes, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        self.received += 1
        verdict = admit(topic, payload, now, self.limits)
        if isinstance(verdict, Rejected):
            self._reject(now, topic, verdict.reason, verdict.detail, payload)
            return
        for reason, n in verdict.dropped.items():
            self.rejected[reason] += n
            log.warning("topic %s: %d poll(s) dropped: %s", topic, n, reason)
        self.accepted += 1
        await self._store(verdict, now)

    def _reject(self, now: datetime, topic: str, reason: str, detail: str,
                payload: bytes) -> None:
        self.rejected[reason] += 1
        log.warning("topic %s: rejected (%s): %s", topic[:200], reason, detail[:300])
        self.dead_letter.keep(now, topic, reason, detail, payload)

    async def _store(self, ok: Accepted, now: datetime) -> None:
        msg = ok.message
        if isinstance(msg, wire.Status):
            was = self.agents_online.get(msg.agent)
            online = msg.state == "online"
            if was != online:
                log.info("agent %s (site %s): %s%s", msg.agent, msg.site, msg.state,
                         f" ({msg.reason})" if msg.reason else "")
            self.agents_online[msg.agent] = online
            await self.sink.put([lineproto.status_line(ok.where, msg, now)])
            return
        if self.sequences.observe(msg.agent, msg.seq) is Seen.DUPLICATE:
            log.debug("agent %s: seq %d already stored (replay)", msg.agent, msg.seq)
        self.polls += len(msg.polls)
        await self.sink.put(lineproto.telemetry_lines(ok.where, msg))

    # -- stats -------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        out = {
            "received": self.received,
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "polls": self.polls,
            "lines_written": self.sink.written,
            "lines_buffered": self.sink.buffered,
            "write_retries": self.sink.retries,
            "duplicates": self.sequences.duplicates,
            "seq_gaps": sum(self.sequences.gaps(a) for a in self.sequences.agents()),
            "dead_letters": self.dead_letter.written,
        }
        out.update({f"rejected_{k}": v for k, v in self.rejected.items()})
        return out

    async def _stats_loop(self) -> None:
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(self.cfg.collector.stats_interval_s)
            stats = self.stats()
            if stats != last:
                log.info("stats %s", " ".join(f"{k}={v}" for k, v in sorted(stats.items())))
                last = stats
            ln = lineproto.line("collector_stats", {"collector": self.cfg.collector.id},
                                dict(stats), lineproto.to_ms(datetime.now(UTC)))
            if ln:
                await self.sink.put([ln])

    # -- run ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        c = self.cfg
        log.info("collector %s starting: broker %s:%d, influx %s (%s)", c.collector.id,
                 c.mqtt.host, c.mqtt.port, c.influx.url, c.influx.api)
        sink_stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                sink = tg.create_task(self.sink.run(sink_stop), name="sink")
                stats = tg.create_task(self._stats_loop(), name="stats")
                mqtt = tg.create_task(self._mqtt_loop(stop), name="mqtt")
                await stop.wait()
                mqtt.cancel()
                stats.cancel()
                sink_stop.set()
                await sink
        finally:
            await self.writer.close()
            log.info("collector %s stopped: %s", c.collector.id, self.stats())

    async def _mqtt_loop(self, stop: asyncio.Event) -> None:
        c = self.cfg
        attempt = 0
        filters = [topics.subscription(k, c.collector.province) for k in topics.KINDS]
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    **connect_kwargs(c.mqtt, f"xanet-collector-{c.collector.id}"),
                    clean_session=False,
                    max_queued_incoming_messages=0,
                ) as client:
                    for f in filters:
                        await client.subscribe(f, qos=1)
                    log.info("mqtt connected to %s:%d, subscribed to %s", c.mqtt.host,
                             c.mqtt.port, ", ".join(filters))
                    self.subscribed.set()
                    attempt = 0
                    async for message in client.messages:
                        payload = message.payload
                        if not isinstance(payload, bytes | bytearray):
                            payload = str(payload).encode()
                        await self.handle(str(message.topic), bytes(payload))
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                delay = backoff_s(attempt, c.mqtt.reconnect_min_s, c.mqtt.reconnect_max_s,
                                  self._rng)
                attempt += 1
                log.warning("mqtt %s:%d: %s; retry in %.1fs", c.mqtt.host, c.mqtt.port, exc,
                            delay)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass
