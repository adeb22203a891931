"""The agent's MQTT edge: drains the spool to the broker, QoS 1, acknowledged.

A message leaves the spool only after the broker's PUBACK **with a success reason
code** (MQTT v5, :mod:`agent.acks`). On (re)connect the agent publishes a retained
``online`` status (birth) and has registered a retained ``offline`` Last Will, so the
core learns within the keepalive when the agent vanishes; over v5 the Will waits
``mqtt.will_delay_s`` so a quick reconnect or a session takeover fires no false
offline.

Two lanes share the connection: *live* (messages stored since this connection
came up) go out at once; *replay* (the backlog from before, oldest first) goes only in
the capacity left: never while a live message waits, at most a second of the budget
unacknowledged, within a bandwidth budget in bytes/s (``spool.replay_budget_bytes_per_s``,
a number or ``"auto"`` from PUBACK throughput) and ``spool.replay_rate_per_s`` messages/s
(:mod:`agent.budget` decides, :mod:`agent.backlog` waits: ``backlog.turn`` before each
backlog publish, ``backlog.done`` after it). Status messages are never paced. When the
core announced compact batches (its retained capability message), the replay lane sends
runs of backlog entries as one compact message each, priced by its real size and counted
as the messages it carries (:mod:`agent.backlogbatch` decides which; docs/delivery.md,
"Backlog batches").

What the broker refuses stays in the spool (docs/delivery.md, "Refused"):

* a telemetry publish answered "not authorized" (or any failure code) stops both
  lanes; the agent logs one error naming the topic and the MQTT user, reports it in
  its status, and tries the head message again every ``mqtt.reconnect_max_s``;
* its own status topic refused: the credentials are another site's. After
  :data:`STATUS_REFUSED_TRIES` connections the agent gives up with
  :class:`agent.errors.UplinkFatal` (``xanet agent`` exits 78).

With ``remote_config`` the uplink also subscribes (QoS 1) to the agent's own config topic
and hands every message on it to ``on_config`` (:mod:`agent.configstore` judges it).

A message larger than the broker's Maximum Packet Size (MQTT v5 CONNACK) would make
the broker drop the connection at every attempt: it is quarantined in the spool,
counted and reported instead of sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.acks import SESSION_TAKEN_OVER, BrokerAnswers, Refused
from agent.backlog import BacklogPacing
from agent.backlogbatch import Batch
from agent.budget import BURST_S
from agent.config import AgentMqttConfig
from agent.errors import UplinkFatal
from agent.packing import stamp_sent
from agent.reconnect import Loss, ReconnectPolicy
from agent.spool import Entry, Spool
from agent.telemetry import StatusKind
from agent.traffic import Lane, Traffic
from agent.uplink_batches import PEEK_BATCH, BatchLane, forget, packet_bytes
from xanet import capabilities, topics, wire
from xanet.mqtt import connect_kwargs

log = logging.getLogger("xanet.agent.uplink")

#: How much lateness the replay throttle may make up at once (:mod:`agent.budget`).
REPLAY_BURST_S = BURST_S
#: Connections whose birth status the broker refused before the agent gives up.
STATUS_REFUSED_TRIES = 3


def first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception in a (nested) exception group: what ``except*`` caught."""
    first = group.exceptions[0]
    return first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


class Uplink:
    def __init__(
        self,
        cfg: AgentMqttConfig,
        spool: Spool,
        *,
        client_id: str,
        status_topic: str,
        make_status: Callable[[StatusKind], wire.Status],
        replay_rate_per_s: float,
        status_interval_s: float,
        replay_budget_bytes_per_s: float | Literal["auto", "off"] = "off",
        traffic: Traffic | None = None,
        rng: random.Random | None = None,
        config_topic: str | None = None,
        on_config: Callable[[bytes], None] | None = None,
        backlog_batch_bytes: int = 64 * 1024,
        compact_batches: bool = True,
    ) -> None:
        self.cfg = cfg
        self.spool = spool
        self.client_id = client_id
        self.status_topic = status_topic
        self.make_status = make_status
        self.replay_rate_per_s = replay_rate_per_s
        #: the backlog lane's pacing: live first, the budget (agent.backlog, agent.budget)
        self.backlog = BacklogPacing(replay_budget_bytes_per_s, replay_rate_per_s)
        self.traffic = traffic or Traffic()
        self._live_seen = -1  # spool seqs up to this were handed on by the live lane
        self.status_interval_s = status_interval_s
        self.rng = rng or random.Random()
        #: the pushed config's topic and who judges its messages (None: not subscribed)
        self.config_topic = config_topic
        self.on_config = on_config
        self.v5 = cfg.protocol == "5"
        self.wakeup = asyncio.Event()
        self.connected = asyncio.Event()
        self._status_soon = asyncio.Event()
        self.published = 0
        self.replayed = 0
        #: messages the broker refused (each counted once), and the refusal in force
        self.refused = 0
        self.refusal: Refused | None = None
        self._refused_seqs: set[int] = set()
        self.status_refusals = 0
        #: the broker's Maximum Packet Size, from the last CONNACK (None: not announced)
        self.max_packet_size: int | None = None
        self.policy = ReconnectPolicy(cfg.reconnect_min_s, cfg.reconnect_max_s,
                                      stable_s=cfg.reconnect_max_s)
        #: compact backlog batches: the core's announcement, our bound, the broker's refusal
        self.batches = BatchLane(spool, self.traffic, enabled=compact_batches,
                                 max_bytes=backlog_batch_bytes, v5=self.v5)

    @property
    def taken_over(self) -> int:
        return self.policy.taken_over

    @property
    def capabilities(self) -> capabilities.Capabilities | None:
        """The core's announcement on this connection (None: none seen)."""
        return self.batches.capabilities

    @property
    def batches_sent(self) -> int:
        return self.batches.sent

    @property
    def batched_entries(self) -> int:
        return self.batches.entries

    @property
    def batches_refused(self) -> bool:
        return self.batches.refused

    @property
    def user(self) -> str:
        return self.cfg.username or "(anonymous)"

    def notify(self) -> None:
        """A new message is in the spool."""
        self.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, deliver, reconnect, until ``stop``. Raises :class:`UplinkFatal` when the
        broker keeps refusing the agent's own status topic."""
        if not self.v5:
            log.warning("mqtt: protocol 3.1.1 (mqtt.protocol): a publish the broker refuses "
                        "is acknowledged like a delivered one and lost; no maximum packet "
                        "size, no Will Delay (docs/delivery.md, \"Refused\")")
        while not stop.is_set():
            answers: list[BrokerAnswers] = []
            up_at: list[float] = []
            refused: BaseException | None = None
            loss: Loss = "other"
            try:
                await self._session(stop, answers, up_at)
                continue
            except* Refused as group:
                refused = first_leaf(group)
                what = "status refused"
            except* (aiomqtt.MqttError, TimeoutError) as group:
                loss = self._loss(answers[0] if answers else None)
                what = str(first_leaf(group))
            # Out here, not in the except* block: that block may not await, continue or
            # raise a plain exception.
            if refused is not None:
                self._status_refused(refused)
            self.connected.clear()
            lasted = time.monotonic() - up_at[0] if up_at else None
            taken = self.policy.lost(loss, lasted)
            delay = self.policy.delay_s(self.rng)
            if taken:
                log.warning("mqtt %s:%d: session taken over (%d so far): another client "
                            "connected with user %s - a second box with this agent's "
                            "credentials? Backing off: retry in %.1fs", self.cfg.host,
                            self.cfg.port, self.taken_over, self.user, delay)
            else:
                log.warning("mqtt %s:%d: %s; spool depth %d; retry in %.1fs",
                            self.cfg.host, self.cfg.port, what, self.spool.depth, delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    def _loss(self, answers: BrokerAnswers | None) -> Loss:
        if answers is None:
            return "other"
        if answers.disconnect_code == SESSION_TAKEN_OVER:
            return "taken_over"
        if answers.closed_by_peer:
            return "closed"
        return "other"

    def _status_refused(self, exc: BaseException) -> None:
        self.status_refusals += 1
        msg = (f"the broker refuses this agent's status topic {self.status_topic} for MQTT "
               f"user {self.user} ({exc}): these credentials belong to another site or "
               f"the broker's ACL lacks this agent. Nothing is lost: "
               f"{self.spool.depth} message(s) stay in the spool")
        if self.status_refusals >= STATUS_REFUSED_TRIES:
            raise UplinkFatal(f"{msg}; giving up after {self.status_refusals} connections")
        if self.status_refusals == 1:
            log.error("mqtt %s:%d: %s", self.cfg.host, self.cfg.port, msg)

    def _client(self) -> aiomqtt.Client:
        will_props = None
        options: dict[str, object] = {}
        if self.v5:
            options["protocol"] = aiomqtt.ProtocolVersion.V5
            options["clean_start"] = True
            if self.cfg.will_delay_s:
                # The Will waits will_delay_s, or until the session ends: keep it that long.
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = self.cfg.will_delay_s
                options["properties"] = props
                will_props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
                will_props.WillDelayInterval = self.cfg.will_delay_s
        else:
            options["protocol"] = aiomqtt.ProtocolVersion.V311
            options["clean_session"] = True
        will = aiomqtt.Will(self.status_topic, wire.encode(self.make_status("will")),
                            qos=1, retain=True, properties=will_props)
        return aiomqtt.Client(
            **connect_kwargs(self.cfg, self.client_id),
            **options,  # type: ignore[arg-type]
            will=will,
            max_inflight_messages=self.cfg.max_inflight,
            timeout=self.cfg.publish_timeout_s,
        )

    async def _session(self, stop: asyncio.Event, answers_out: list[BrokerAnswers],
                       up_at: list[float]) -> None:
        client = self._client()
        answers = BrokerAnswers(client)
        answers_out.append(answers)
        async with client:
            up_at.append(time.monotonic())
            self.max_packet_size = answers.max_packet_size
            await answers.publish(self.status_topic, wire.encode(self.make_status("online")),
                                  retain=True, timeout_s=self.cfg.publish_timeout_s)
            if self.status_refusals:
                log.info("mqtt: the broker accepts this agent's status topic again")
            self.status_refusals = 0
            await self._subscribe_config(client)
            self.batches.connected()
            if self.batches.enabled:
                await client.subscribe(topics.CAPABILITIES, qos=1)
            self.connected.set()
            backlog = self.spool.depth
            log.info("mqtt connected to %s:%d as %s (MQTT %s%s); backlog %d message(s) to "
                     "replay", self.cfg.host, self.cfg.port, self.user, self.cfg.protocol,
                     f", max packet {self.max_packet_size} bytes" if self.max_packet_size
                     else "", backlog)
            try:
                async with asyncio.TaskGroup() as tg:
                    deliver = tg.create_task(self._deliver(answers), name="uplink-deliver")
                    status = tg.create_task(self._status_loop(answers), name="uplink-status")
                    watch = tg.create_task(self._watch(client), name="uplink-watch")
                    await stop.wait()
                    for task in (deliver, status, watch):
                        task.cancel()
                try:
                    await answers.publish(self.status_topic,
                                          wire.encode(self.make_status("stopped")),
                                          retain=True, timeout_s=5)
                except Refused:
                    pass  # already logged when the birth was refused
            finally:
                self.connected.clear()

    async def _deliver(self, answers: BrokerAnswers) -> None:
        """Both lanes, until the broker refuses a message; then wait, and try again from
        the oldest message in the spool."""
        while True:
            boundary = self.spool.next_seq
            try:
                async with asyncio.TaskGroup() as tg:
                    sem = asyncio.Semaphore(self.cfg.max_inflight)
                    tg.create_task(self._live(answers, sem, boundary), name="uplink-live")
                    tg.create_task(self._replay(answers, sem, boundary), name="uplink-replay")
            except* Refused as group:
                first = first_leaf(group)
                assert isinstance(first, Refused)
                if self.refusal is None:
                    log.error("mqtt %s:%d: the broker refused a telemetry message on %s for "
                              "MQTT user %s (reason code %d, %s): publishing stopped, nothing "
                              "is lost (%d message(s) kept in the spool); trying again every "
                              "%.0fs. Check the broker's ACL for this user, or the agent's "
                              "[agent] province/commune/site", self.cfg.host, self.cfg.port,
                              first.topic, self.user, first.code, first.reason,
                              self.spool.depth, self.cfg.reconnect_max_s)
                self.refusal = first
                self.status_now()
            await asyncio.sleep(self.cfg.reconnect_max_s)

    def _refused(self, entry: Entry, exc: Refused) -> None:
        if entry.seq not in self._refused_seqs:
            self._refused_seqs.add(entry.seq)
            self.refused += 1

    def _accepted(self) -> None:
        if self.refusal is not None:
            log.info("mqtt: the broker accepts telemetry on %s again", self.refusal.topic)
            self.refusal = None
            self._refused_seqs.clear()

    def _too_large(self, entry: Entry, payload: bytes) -> bool:
        """Quarantine a message the broker cannot take (its Maximum Packet Size)."""
        limit = self.max_packet_size
        if limit is None:
            return False
        size = packet_bytes(entry.topic, payload, v5=self.v5)
        if size <= limit:
            return False
        reason = f"packet of {size} bytes > the broker's maximum packet size {limit}"
        self.spool.quarantine(entry.seq, reason)
        log.error("spool: message seq %d on %s quarantined, not sent: %s (kept in the spool's "
                  "quarantine table; %d quarantined so far)", entry.seq, entry.topic, reason,
                  self.spool.quarantined)
        self.status_now()
        return True

    async def _send(self, answers: BrokerAnswers, entry: Entry, sem: asyncio.Semaphore,
                    lane: Lane = "live") -> None:
        payload = entry.payload
        if entry.topic.endswith("/telemetry"):
            payload = stamp_sent(payload, datetime.now(UTC))
        nbytes = packet_bytes(entry.topic, payload, v5=self.v5)
        sent = False
        try:
            if self._too_large(entry, payload):
                return
            await answers.publish(entry.topic, payload, timeout_s=self.cfg.publish_timeout_s)
            sent = True
        except Refused as exc:
            self._refused(entry, exc)
            raise
        finally:
            sem.release()
            if lane == "backlog":
                self.backlog.done(nbytes, acked=sent)
        self._accepted()
        self.traffic.note_sent(lane, nbytes, nbytes)  # JSON as it goes: raw == wire
        forget(self.spool, entry)
        self.published += 1

    def _live_waiting(self) -> bool:
        """A message is stored that the live lane has not handed on yet."""
        return self.spool.next_seq - 1 > self._live_seen

    def _live_handed(self, seq: int) -> None:
        self._live_seen = max(self._live_seen, seq)
        self.backlog.live_handed()

    async def _live(self, answers: BrokerAnswers, sem: asyncio.Semaphore, boundary: int) -> None:
        last = boundary - 1
        self._live_seen = last
        async with asyncio.TaskGroup() as tg:
            while True:
                self.wakeup.clear()
                entries = self.spool.peek(after=last, limit=PEEK_BATCH)
                if not entries:
                    # Nothing to send: whatever was stored up to here is gone (acked,
                    # dropped by the spool's bounds), so the backlog need not wait for it.
                    last = max(last, self.spool.next_seq - 1)
                    self._live_handed(last)
                    await self.wakeup.wait()
                    continue
                for entry in entries:
                    await sem.acquire()
                    tg.create_task(self._send(answers, entry, sem))
                    last = entry.seq
                    self._live_handed(last)

    @property
    def budget_bytes_per_s(self) -> float | None:
        """The backlog's bytes/s budget now (None: only messages/s bound it)."""
        return self.backlog.bytes_per_s

    async def _replay(self, answers: BrokerAnswers, sem: asyncio.Semaphore,
                      boundary: int) -> None:
        await self.batches.await_capabilities()
        last = -1
        started = time.monotonic()
        self.backlog.start()
        sent = 0
        async with asyncio.TaskGroup() as tg:
            while True:
                entries = self.spool.peek(after=last, before=boundary,
                                          limit=self.batches.peek_size())
                if not entries:
                    break
                while entries:
                    batch = await self.batches.next(entries, self.backlog.cap_bytes,
                                                    self.max_packet_size)
                    n = len(batch.entries) if batch is not None else 1
                    head = entries[0]
                    # Priced by its packet (a compact batch costs its real size) and counted
                    # as the messages it carries (the messages/s bound keeps its meaning).
                    nbytes = (packet_bytes(batch.topic, batch.payload, v5=self.v5)
                              if batch is not None
                              else packet_bytes(head.topic, head.payload, v5=self.v5))
                    await self.backlog.turn(nbytes, self._live_waiting, messages=n)
                    await sem.acquire()
                    if batch is not None:
                        tg.create_task(self._send_batch(answers, batch, sem, nbytes))
                    else:
                        tg.create_task(self._send(answers, head, sem, "backlog"))
                    last = entries[n - 1].seq
                    entries = entries[n:]
                    sent += n
        self.replayed += sent
        if sent:
            log.info("replay done: %d message(s) in %.1fs (%d compact batch(es) so far)",
                     sent, time.monotonic() - started, self.batches.sent)

    async def _subscribe_config(self, client: aiomqtt.Client) -> None:
        """Subscribe to the agent's config topic; the broker sends its retained config."""
        if self.config_topic is None:
            return
        granted = await client.subscribe(self.config_topic, qos=1)
        code = getattr(granted[0], "value", granted[0]) if granted else 0
        if isinstance(code, int) and code >= 0x80:
            log.error("mqtt %s:%d: the broker refuses this agent's config topic %s for MQTT "
                      "user %s (SUBACK reason code %d): no pushed config will arrive; check "
                      "the ACL's 'topic read xanet/v1/config/AGENT' line", self.cfg.host,
                      self.cfg.port, self.config_topic, self.user, code)

    async def _send_batch(self, answers: BrokerAnswers, batch: Batch,
                          sem: asyncio.Semaphore, nbytes: int) -> None:
        """One compact message of ``nbytes`` on the wire (:mod:`agent.uplink_batches`)."""

        def done(acked: bool) -> None:
            sem.release()
            self.backlog.done(nbytes, acked=acked)

        await self.batches.send(answers, batch, self.cfg.publish_timeout_s, done)
        self._accepted()
        self.published += len(batch.entries)

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Hand config messages over and read the core's capability message; raise
        MqttError as soon as the connection drops (the message iterator only ever ends by
        a disconnect)."""
        async for message in client.messages:
            payload = message.payload
            if str(message.topic) == topics.CAPABILITIES:
                self.batches.announced(payload if isinstance(payload, bytes) else b"")
            elif (self.on_config is not None and self.config_topic is not None
                    and message.topic.matches(self.config_topic)
                    and isinstance(payload, bytes | bytearray)):
                self.on_config(bytes(payload))
        raise aiomqtt.MqttError("message stream ended")

    def status_now(self) -> None:
        """Something the core should know at once (a refusal, a quarantine): send the
        status now instead of at the next interval."""
        self._status_soon.set()

    async def _status_loop(self, answers: BrokerAnswers) -> None:
        while True:
            try:
                await asyncio.wait_for(self._status_soon.wait(), self.status_interval_s)
            except TimeoutError:
                pass
            self._status_soon.clear()
            await answers.publish(self.status_topic, wire.encode(self.make_status("online")),
                                  retain=True, timeout_s=self.cfg.publish_timeout_s)
