"""The collector program: MQTT in, admission, accounting, InfluxDB out.

Wiring only: the decisions are in :mod:`collector.admission`,
:mod:`collector.sequence`, :mod:`collector.lineproto` and :mod:`collector.acks`;
the I/O in :mod:`collector.sink`, :mod:`collector.writer` and
:mod:`collector.deadletter`.

Delivery: MQTT v5 persistent session (clean start off, session expiry from
config) and **manual acknowledgement** — a QoS 1 message is acknowledged only
after its points are written to InfluxDB (or it was rejected and dead-lettered).
aiomqtt 2.x does not expose paho's manual acks (aiomqtt issue #345), so
:func:`_enable_manual_acks` reaches the paho client underneath; :class:`_Inbox`
is the other place this module touches aiomqtt internals (reading its queue
cheaply, and not reading the socket while ``receive_maximum`` messages wait).
The broker should keep at most ``receive_maximum`` unacknowledged messages in
flight to the collector; the sink is told to flush as soon as half of that
window is waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector import lineproto
from collector.acks import AckQueue, Ticket
from collector.admission import Accepted, Limits, Rejected, admit
from collector.alerting import Alerting
from collector.alertmanager import Notifier, notifier_for
from collector.availability import AvailabilityEngine, Fact, Topology
from collector.config import CollectorConfig
from collector.deadletter import KEEP_BYTES, DeadLetter, keep_lines
from collector.facts import FactMapper, emission_lines
from collector.guard import Guard, split_to_fit
from collector.maintenance_sync import MaintenanceSync
from collector.sequence import Seen, SequenceTracker
from collector.sink import Sink
from collector.unmapped import UnmappedLog
from collector.writer import LineWriter, make_writer
from xanet import topics, wire
from xanet.inventory import Inventory, load_inventory
from xanet.mqtt import backoff_s, connect_kwargs

log = logging.getLogger("xanet.collector")


class Collector:
    def __init__(self, cfg: CollectorConfig, *, writer: LineWriter | None = None,
                 inventory: Inventory | None = None) -> None:
        self.cfg = cfg
        self.writer = writer or make_writer(cfg.influx)
        self.sink = Sink(cfg.influx, self.writer, on_rejected=self._lines_rejected)
        i = cfg.ingest
        self.limits = Limits(max_payload_bytes=i.max_payload_bytes,
                             max_future_s=i.max_future_s, max_past_s=i.max_past_s)
        self.dead_letter = DeadLetter(i.dead_letter_dir, i.dead_letter_max_bytes,
                                      i.dead_letter_max_files)
        self.sequences = SequenceTracker()
        self.guard = Guard(cfg.guards)  # duplicate agents, clock skew, cardinality
        # One delivery to Alertmanager for every alert: outages, monitoring, agent faults.
        self.notifier: Notifier | None = (notifier_for(cfg.alerts)
                                          if cfg.alerts.url is not None else None)
        self.rejected: Counter[str] = Counter()
        self.received = 0
        self.accepted = 0
        self.polls = 0
        self.agents_online: dict[str, bool] = {}
        self.subscribed = asyncio.Event()
        self.acks = AckQueue()
        self.acked = 0
        self._client: aiomqtt.Client | None = None
        self._inbox: _Inbox | None = None
        self._rng = random.Random()
        if inventory is None and cfg.inventory is not None:
            inventory = load_inventory(cfg.inventory.path)
        self.inventory = inventory
        self.site_agents: dict[str, str] = (
            {site.id: site.agent for site in inventory.sites if site.agent}
            if inventory is not None else {}
        )
        self.engine: AvailabilityEngine | None = None
        self.mapper: FactMapper | None = None
        self.facts: Counter[str] = Counter()
        if inventory is not None:
            a = cfg.availability
            self.engine = AvailabilityEngine(Topology.from_inventory(inventory),
                                             stale_after_s=a.stale_after_s, bucket_s=a.bucket_s)
            self.mapper = FactMapper(inventory)
        self.alerting: Alerting | None = None  # outage alerts (collector/alerting.py)
        if inventory is not None and cfg.alerts.url is not None:
            self.alerting = Alerting(cfg.alerts, inventory, now=time.time(),
                                     notifier=self.notifier,
                                     stale_after_s=cfg.availability.stale_after_s)
        self.unmapped_log = UnmappedLog()
        self.maintenance: MaintenanceSync | None = None  # declared maintenance windows
        if inventory is not None and self.engine is not None:
            self.maintenance = MaintenanceSync(cfg, inventory, self.engine, self.alerting)

    # -- message handling (no network here: tests drive it directly) --------

    async def handle(self, topic: str, payload: bytes, now: datetime | None = None,
                     ticket: Ticket | None = None) -> None:
        """Admit, account and store one message; settle ``ticket`` once it is durable."""
        now = now or datetime.now(UTC)
        self.received += 1
        verdict = admit(topic, payload, now, self.limits, self.site_agents)
        if isinstance(verdict, Rejected):
            if verdict.message is not None and verdict.where is not None:
                self.guard.clock(verdict.where, verdict.message, now)
                self._submit_faults()
            self._reject(now, topic, verdict.reason, verdict.detail, payload)
            if ticket is not None:
                self._settle(ticket)
            return
        for reason, n in verdict.dropped.items():
            self.rejected[reason] += n
            log.warning("topic %s: %d poll(s) dropped: %s", topic, n, reason)
        for reason, polls in verdict.dropped_polls.items():  # kept, replayable
            self._keep_part(now, topic, reason, f"{len(polls)} poll(s) out of time bounds",
                            verdict.message.model_copy(update={"polls": polls}))
        outcome = self.guard.check(verdict.where, verdict.message, now)
        self._submit_faults()
        for part in outcome.refused:
            self.rejected[part.reason] += 1
            log.warning("topic %s: refused (%s): %s", topic[:200], part.reason,
                        part.detail[:300])
            self._keep_part(now, topic, part.reason, part.detail, part.message)
        if outcome.message is None:
            if ticket is not None:
                self._settle(ticket)
            return
        if outcome.message is not verdict.message:
            verdict = replace(verdict, message=outcome.message)
        self.accepted += 1
        await self._store(verdict, now, ticket)

    def _submit_faults(self) -> None:
        """Hand the agent-fault alerts' events to the notifier (dropped without one)."""
        events = self.guard.faults.events()
        if events and self.notifier is not None:
            self.notifier.submit(events)

    def sweep_faults(self, now: float | None = None) -> None:
        """Resolve the agent faults that have been quiet long enough."""
        self.guard.faults.sweep(time.time() if now is None else now)
        self._submit_faults()

    def _keep_part(self, now: datetime, topic: str, reason: str, detail: str,
                   message: wire.Telemetry | wire.Status) -> None:
        """Dead-letter a refused part of an admitted message as a message of its own
        (valid and whole, so ``xanet deadletter replay`` can put it back through admission)."""
        parts = (split_to_fit(message, KEEP_BYTES) if isinstance(message, wire.Telemetry)
                 else [message])
        for part in parts:
            self.dead_letter.keep(now, topic, reason, detail, wire.encode(part))

    def _settle(self, ticket: Ticket) -> None:
        client = self._client
        for t in self.acks.settle(ticket):
            if client is not None:
                client._client.ack(t.mid, t.qos)  # paho manual ack, see module doc
                self.acked += 1
        if self._inbox is not None:
            self._inbox.resume_if_drained()

    def _reject(self, now: datetime, topic: str, reason: str, detail: str,
                payload: bytes) -> None:
        self.rejected[reason] += 1
        log.warning("topic %s: rejected (%s): %s", topic[:200], reason, detail[:300])
        self.dead_letter.keep(now, topic, reason, detail, payload)

    def _lines_rejected(self, lines: list[str], reason: str) -> None:
        """Lines InfluxDB refused (collector/sink.py): dead-lettered, replayable."""
        keep_lines(self.dead_letter, datetime.now(UTC), reason, lines)

    async def _store(self, ok: Accepted, now: datetime, ticket: Ticket | None) -> None:
        on_durable = (lambda: self._settle(ticket)) if ticket is not None else None
        msg = ok.message
        if isinstance(msg, wire.Status):
            was = self.agents_online.get(msg.agent)
            online = msg.state == "online"
            if was != online:
                age_s = (now - msg.ts).total_seconds() if msg.ts else 0.0
                log.info("agent %s (site %s): %s%s%s", msg.agent, msg.site, msg.state,
                         f" ({msg.reason})" if msg.reason else "",
                         f" (said {age_s:.0f} s ago: old news, e.g. retained)"
                         if age_s > 60 else "")
            self.agents_online[msg.agent] = online
            if self.mapper is not None:
                self._add_facts(self.mapper.status_facts(msg, now))
            if self.alerting is not None:
                self.alerting.agent_status(msg.agent, online, now.timestamp(),
                                           msg.ts.timestamp() if msg.ts else None)
            await self.sink.put([lineproto.status_line(ok.where, msg, now)], on_durable)
            return
        if self.sequences.observe(msg.agent, msg.seq) is Seen.DUPLICATE:
            # Written again all the same: the same points, so storage stays exactly-once.
            log.debug("agent %s: seq %d already stored (replay)", msg.agent, msg.seq)
        else:
            self.polls += len(msg.polls)
        if self.mapper is not None:
            facts, verdicts = self.mapper.map_telemetry(msg)
            self._add_facts(facts)
            if self.alerting is not None:
                self.alerting.device_verdicts(verdicts)
            self.unmapped_log.check(msg, self.mapper.counts.unmapped_devices, time.monotonic())
        if self.alerting is not None:
            self.alerting.agent_seen(msg.agent, now.timestamp(),
                                     msg.sent.timestamp() if msg.sent else None)
        await self.sink.put(lineproto.telemetry_lines(ok.where, msg), on_durable)

    def _add_facts(self, facts: list[Fact]) -> None:
        assert self.engine is not None
        for fact in facts:
            self.facts[self.engine.add(fact)] += 1

    async def _availability_loop(self) -> None:
        """Write state changes and roll-ups as they become final; forget old facts;
        resolve the agent faults gone quiet."""
        while True:
            await asyncio.sleep(self.cfg.availability.emit_interval_s)
            self.sweep_faults()
            await self.emit_availability()

    async def emit_availability(self, now: float | None = None) -> int:
        """Write what the availability engine has to say up to ``now``; return the line count."""
        if self.engine is None or self.inventory is None:
            return 0
        now = time.time() if now is None else now
        emission = self.engine.emit(now)
        lines = emission_lines(emission, self.inventory)
        if self.alerting is not None:
            lines += self.alerting.update(emission.elements, now)
        if lines:
            await self.sink.put(lines)
        self.engine.compact(now - self.cfg.availability.horizon_s)
        return len(lines)

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
            "rejected_lines": self.sink.rejected_lines,
            "dead_letters": self.dead_letter.written,
            "dead_letters_dropped": self.dead_letter.dropped,
            "dead_letters_failed": self.dead_letter.failed,
            **self.guard.counts,
            "alerts_faults_firing": len(self.guard.faults.firing),
            "alerts_faults_raised": self.guard.faults.raised,
            "acked": self.acked,
            "unacked": self.acks.unacked,
        }
        out.update({f"facts_{k}": v for k, v in self.facts.items()})
        if self.notifier is not None:  # every post: outage, monitoring and fault alerts
            out["alertmanager_posts"] = self.notifier.posts
            out["alertmanager_failures"] = self.notifier.failures
            out["alertmanager_rejected"] = self.notifier.rejected
        if self.alerting is not None:
            out.update(self.alerting.stats())
        if self.mapper is not None:
            out["polls_unmapped"] = self.mapper.counts.unmapped_polls
            out["interfaces_missing"] = self.mapper.counts.interface_missing
        out.update({f"rejected_{k}": v for k, v in self.rejected.items()})
        return out

    async def _stats_loop(self) -> None:
        last: dict[str, int] = {}
        holes_logged: dict[str, list[tuple[int, int]]] = {}
        while True:
            await asyncio.sleep(self.cfg.collector.stats_interval_s)
            stats = self.stats()
            if stats != last:
                log.info("stats %s", " ".join(f"{k}={v}" for k, v in sorted(stats.items())))
                last = stats
            # Gaps are logged when they change (a replay in progress fills them again).
            for agent in self.sequences.agents():
                holes = self.sequences.holes(agent)
                if holes != holes_logged.get(agent, []):
                    if holes:
                        log.warning("agent %s: %d sequence number(s) not received (yet): %s",
                                    agent, self.sequences.gaps(agent),
                                    ", ".join(f"{a}-{b}" if a != b else str(a)
                                              for a, b in holes))
                    else:
                        log.info("agent %s: no sequence gaps any more", agent)
                    holes_logged[agent] = holes
            ts_ms = lineproto.to_ms(datetime.now(UTC))
            ln = lineproto.line("collector_stats", {"collector": self.cfg.collector.id},
                                dict(stats), ts_ms)
            lines = [ln] if ln else []
            if self.mapper is not None:
                lines += self.unmapped_log.lines(self.mapper.counts.unmapped_devices,
                                                 self.cfg.collector.id, ts_ms)
            if lines:
                await self.sink.put(lines)

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
                states = tg.create_task(self._availability_loop(), name="availability")
                if self.notifier is not None:
                    tg.create_task(self._deliver_alerts(self.notifier, sink_stop),
                                   name="alerts")
                reload = (tg.create_task(self.maintenance.run(), name="maintenance")
                          if self.maintenance is not None else None)
                await self._mqtt_loop(stop)
                stats.cancel()
                states.cancel()
                if reload is not None:
                    reload.cancel()
                await self.emit_availability()
                sink_stop.set()
                await sink
        finally:
            await self.writer.close()
            self.dead_letter.close()
            log.info("collector %s stopped: %s", c.collector.id, self.stats())

    async def _deliver_alerts(self, notifier: Notifier, stop: asyncio.Event) -> None:
        """Every alert to Alertmanager until ``stop`` (then a last bounded attempt)."""
        try:
            await notifier.run(stop)
        finally:
            if self.alerting is not None:
                self.alerting.save()
            await notifier.port.close()

    def _client_options(self) -> dict[str, object]:
        c = self.cfg
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # untyped paho
        props.SessionExpiryInterval = c.collector.session_expiry_s
        props.ReceiveMaximum = c.collector.receive_maximum
        return {
            **connect_kwargs(c.mqtt, f"xanet-collector-{c.collector.id}"),
            "protocol": aiomqtt.ProtocolVersion.V5,
            "clean_start": False,
            "properties": props,
            "max_queued_incoming_messages": 0,
        }

    async def _mqtt_loop(self, stop: asyncio.Event) -> None:
        c = self.cfg
        attempt = 0
        filters = [topics.subscription(k, c.collector.province) for k in topics.KINDS]
        while not stop.is_set():
            try:
                client = aiomqtt.Client(**self._client_options())  # type: ignore[arg-type]
                _enable_manual_acks(client)
                async with client:
                    self.acks.new_connection()
                    self._client = client
                    try:
                        for f in filters:
                            await client.subscribe(f, qos=1)
                        log.info("mqtt connected to %s:%d, subscribed to %s", c.mqtt.host,
                                 c.mqtt.port, ", ".join(filters))
                        self.subscribed.set()
                        attempt = 0
                        reader = asyncio.create_task(self._read(client), name="mqtt-read")
                        stopper = asyncio.create_task(stop.wait(), name="mqtt-stop")
                        done, _ = await asyncio.wait({reader, stopper},
                                                     return_when=asyncio.FIRST_COMPLETED)
                        if reader in done:
                            stopper.cancel()
                            reader.result()  # raises the MqttError that ended it
                            raise aiomqtt.MqttError("message stream ended")
                        reader.cancel()
                        await self._drain()
                    finally:
                        self._client = None
                        self.subscribed.clear()
            except aiomqtt.MqttError as exc:
                delay = backoff_s(attempt, c.mqtt.reconnect_min_s, c.mqtt.reconnect_max_s,
                                  self._rng)
                attempt += 1
                log.warning("mqtt %s:%d: %s; %d message(s) unacknowledged (the broker "
                            "redelivers them); retry in %.1fs", c.mqtt.host, c.mqtt.port, exc,
                            self.acks.unacked, delay)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass

    async def _read(self, client: aiomqtt.Client) -> None:
        window = max(1, self.cfg.collector.receive_maximum // 2)
        # Handled-but-unacknowledged messages count too: twice the window bounds the
        # collector's memory without ever pausing while the broker honours the window.
        inbox = _Inbox(client, 2 * self.cfg.collector.receive_maximum,
                       lambda: self.acks.unacked)
        self._inbox = inbox
        while True:
            message = await inbox.get()
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode()
            ticket = self.acks.receive(message.mid, message.qos)
            try:
                await self.handle(str(message.topic), bytes(payload), ticket=ticket)
            except (aiomqtt.MqttError, asyncio.CancelledError):
                raise
            except Exception as exc:
                # A bug must not stop the flow of good messages: keep the message where an
                # operator finds it (dead-letter, reason internal_error) and go on.
                log.exception("topic %s: internal error handling a message", message.topic)
                self._reject(datetime.now(UTC), str(message.topic), "internal_error",
                             repr(exc), bytes(payload))
                self._settle(ticket)
            if self.acks.unacked == window:  # crossing half the window: one flush request
                self.sink.flush_soon()

    async def _drain(self, timeout_s: float = 10.0) -> None:
        """On a clean stop: write what is buffered and acknowledge it before disconnecting."""
        self.sink.flush_soon()
        deadline = asyncio.get_running_loop().time() + timeout_s
        # Polling a counter that ack callbacks change; bounded by the deadline.
        while self.acks.unacked and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self.acks.unacked:
            log.warning("stopping with %d message(s) unacknowledged: the broker keeps them "
                        "for the next start", self.acks.unacked)


def _enable_manual_acks(client: aiomqtt.Client) -> None:
    """Make paho wait for our ``ack()`` instead of acknowledging on receipt.

    aiomqtt 2.x creates its paho client in ``__init__`` and offers no option for
    this (aiomqtt issue #345); paho 2.x has ``manual_ack_set``.
    """
    paho_client = client._client
    paho_client.manual_ack_set(True)


class _Inbox:
    """aiomqtt's queue of received messages, read cheaply and kept bounded.

    * A waiting message is taken with ``get_nowait``; aiomqtt's message iterator
      (a task and an ``asyncio.wait`` per message, ~12 µs) is used only to wait
      for the next one, and to learn that the connection is gone.
    * Flow control: Mosquitto 2.0 does not hold the collector's Receive Maximum
      once acknowledgements flow (measured: 3,300 messages unacknowledged with a
      window of 100), and aiomqtt queues without bound: in bench/ingest.py the
      queue grew to 25,000 messages and the garbage collector's full passes over
      them took ~30 % of the collector's CPU. While ``limit`` messages wait
      (queued, or handled and not yet acknowledged: ``unacked()``), the socket is
      not read (TCP then holds the broker back); reading resumes at half.

    aiomqtt internals used here (as :func:`_enable_manual_acks` does): the paho
    client (``_client``), the queue (``_queue``) and the disconnection future
    (``_disconnected``); the paho client's ``loop_read`` is wrapped on the instance,
    so aiomqtt's reader callback goes through :meth:`_loop_read`.
    """

    def __init__(self, client: aiomqtt.Client, limit: int,
                 unacked: Callable[[], int] = lambda: 0) -> None:
        self._client = client
        self._paho = client._client
        self._queue: asyncio.Queue[aiomqtt.Message] = client._queue
        self._messages = client.messages
        self._limit = max(2, limit)  # 1 would never read while get() waits (see _waiting)
        self._unacked = unacked
        self._resume_at = self._limit // 2
        self._loop = asyncio.get_running_loop()
        self._paused_fd: int | None = None
        # While get() waits in aiomqtt's iterator, the message its queue.get() task takes
        # is in neither the queue nor unacked() for a few loop iterations: count it.
        self._waiting = 0
        self.pauses = 0
        self._paho_loop_read = self._paho.loop_read
        self._paho.loop_read = self._loop_read  # type: ignore[method-assign]  # see class doc

    def _loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self._queue.qsize() + self._unacked() + self._waiting < self._limit:
            return self._paho_loop_read(max_packets)
        sock = self._paho.socket()
        if sock is not None and self._paused_fd is None:
            self._paused_fd = sock.fileno()
            self._loop.remove_reader(self._paused_fd)
            self.pauses += 1
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _on_readable(self) -> None:
        """What aiomqtt's reader callback does: read, and a failure ends the connection."""
        try:
            self._paho.loop_read()
        except Exception as exc:  # a broken socket; aiomqtt's own callback does the same
            if not self._client._disconnected.done():
                self._client._disconnected.set_exception(exc)

    def _resume(self) -> None:
        fd, self._paused_fd = self._paused_fd, None
        sock = self._paho.socket()
        # Only the socket that was paused, and only while connected (a closed fd's
        # number may already belong to another socket).
        if (fd is not None and sock is not None and sock.fileno() == fd
                and not self._client._disconnected.done()):
            self._loop.add_reader(fd, self._on_readable)

    async def get(self) -> aiomqtt.Message:
        try:
            message = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            self._waiting = 1
            try:
                message = await anext(self._messages)  # raises MqttError once disconnected
            finally:
                self._waiting = 0
        self.resume_if_drained()
        return message

    def resume_if_drained(self) -> None:
        if self._paused_fd is not None and \
                self._queue.qsize() + self._unacked() <= self._resume_at:
            self._resume()
