"""How the collector's messages come in over MQTT and go back acknowledged.

The only collector module that imports aiomqtt or paho (tests/test_private_reaches.py
keeps it so). :class:`MqttIn` connects (MQTT v5, persistent session: clean start off,
session expiry and Receive Maximum from config), subscribes, announces what it reads (the
retained capability message), hands each message to the collector with its
:class:`~collector.acks.Ticket`, acknowledges a message only once the
collector settled it (durable in InfluxDB, or dead-lettered), reconnects with capped
jittered backoff, and on a clean stop drains: waits (on an Event, bounded) until what was
handled is acknowledged.

Partitioned (``[partition] id``, collector/partition.py): the session is the partition's,
shared by its members (client id ``xanet-collector-part-{id}``, or the partition's MQTT
user), with a Will that clears the lease; it is never reconnected: a lost session (taken
over by another member: reason 0x8E, or a broken connection whose Will may be out) is
reported to ``on_lost`` and ends :meth:`MqttIn.run`. Once ``fenced`` nothing more is
acknowledged and a stop neither drains nor says goodbye (:func:`abandon`).
:meth:`MqttIn.publish_lease` carries the owner's lease renewals on this same connection.

aiomqtt 2.x does not expose paho's manual acks (aiomqtt issue #345), so
:func:`enable_manual_acks` and :func:`ack` reach the paho client underneath; :class:`Inbox`
reads aiomqtt's queue cheaply and stops reading the socket while ``limit`` messages wait.
Every such reach is marked on its line with the versions it was checked against
(aiomqtt 2.5.1, paho-mqtt 2.2.0).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.acks import AckQueue, Ticket
from collector.config import CollectorConfig
from xanet import topics
from xanet.mqtt import backoff_s, connect_kwargs

log = logging.getLogger("xanet.collector")

#: The library's error for a lost or refused connection (for the collector's handler,
#: which must let it through).
MqttError = aiomqtt.MqttError


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the collector handles it."""

    topic: str
    payload: bytes
    ticket: Ticket


Handler = Callable[[Received], Awaitable[None]]


class MqttIn:
    """The collector's subscription: one session after another until stopped."""

    def __init__(self, cfg: CollectorConfig, acks: AckQueue, *,
                 rng: random.Random | None = None, announce: bytes | None = None) -> None:
        self.cfg = cfg
        #: the capability message published (retained) once subscribed (None: none)
        self.announce = announce
        self.acks = acks
        self.subscribed = asyncio.Event()
        self.acked = 0
        scopes = cfg.partition.scopes(cfg.collector.province)
        self.filters = [topics.subscription(k, p, c) for k in topics.KINDS for p, c in scopes
                        if k != "batch" or announce is not None]
        self._client: aiomqtt.Client | None = None
        self._inbox: Inbox | None = None
        self._rng = rng or random.Random()
        self._attempt = 0  # connection attempts since the last subscription
        self._all_acked = asyncio.Event()  # set while nothing handled waits for its ack
        self._all_acked.set()
        #: partitioned: the Will (topic, payload: the lease cleared) and the callback told
        #: why the session ended (set by collector/partition.py before run())
        self.will: tuple[str, bytes] | None = None
        self.on_lost: Callable[[str], None] | None = None
        self.fenced = False  # no more acks, no drain (collector/partition.py)

    def received(self, mid: int, qos: int) -> Ticket:
        """A message came in: its ticket (acknowledged once settled)."""
        ticket = self.acks.receive(mid, qos)
        if self.acks.unacked:
            self._all_acked.clear()
        return ticket

    def settle(self, ticket: Ticket) -> None:
        """``ticket``'s message is durable: acknowledge it and every one before it that is."""
        client = None if self.fenced else self._client
        for t in self.acks.settle(ticket):
            if client is not None:
                ack(client, t.mid, t.qos)
                self.acked += 1
        if not self.acks.unacked:
            self._all_acked.set()
        if self._inbox is not None:
            self._inbox.resume_if_drained()

    def client_options(self) -> dict[str, object]:
        c = self.cfg
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # untyped paho
        props.SessionExpiryInterval = c.collector.session_expiry_s
        props.ReceiveMaximum = c.collector.receive_maximum
        p = c.partition
        if p.id is None:
            identity = connect_kwargs(c.mqtt, f"xanet-collector-{c.collector.id}")
        else:  # the partition's session: its own client id (or user), shared by members
            mqtt = c.mqtt.model_copy(update={
                "client_id": None, "keepalive_s": p.keepalive_s,
                **({"username": p.username, "password": p.password} if p.username else {})})
            identity = connect_kwargs(mqtt, data_client_id(p.id))
        out: dict[str, object] = {
            **identity,
            "protocol": aiomqtt.ProtocolVersion.V5,
            "clean_start": False,
            "properties": props,
            "max_queued_incoming_messages": 0,
        }
        if self.will is not None:
            out["will"] = aiomqtt.Will(self.will[0], self.will[1], qos=1, retain=True)
        return out

    async def publish_lease(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        """Publish (retained, QoS 1) on this session; True once the broker acknowledged it,
        False when not connected or not acknowledged within ``timeout_s``."""
        client = self._client
        if client is None or not self.subscribed.is_set():
            return False
        try:
            await client.publish(topic, payload, qos=1, retain=True, timeout=timeout_s)
        except (aiomqtt.MqttError, TimeoutError):
            return False
        return True

    async def run(self, stop: asyncio.Event, handle: Handler,
                  flush: Callable[[], None]) -> None:
        """Receive until ``stop``; ``flush`` asks the sink to write what waits (when half
        the in-flight window waits, and before draining)."""
        m = self.cfg.mqtt
        self._attempt = 0
        while not stop.is_set():
            try:
                client = aiomqtt.Client(**self.client_options())  # type: ignore[arg-type]
                enable_manual_acks(client)
                async with client:
                    self.acks.new_connection()
                    self._all_acked.set()
                    self._client = client
                    try:
                        await self._session(client, stop, handle, flush)
                    finally:
                        self._client = None
                        self.subscribed.clear()
            except aiomqtt.MqttError as exc:
                if self.on_lost is not None:  # partitioned: never reconnected
                    log.warning("mqtt %s:%d: partition data session ended: %s", m.host,
                                m.port, exc)
                    self.on_lost(str(exc))
                    return
                delay = backoff_s(self._attempt, m.reconnect_min_s, m.reconnect_max_s,
                                  self._rng)
                self._attempt += 1
                log.warning("mqtt %s:%d: %s; %d message(s) unacknowledged (the broker "
                            "redelivers them); retry in %.1fs", m.host, m.port, exc,
                            self.acks.unacked, delay)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event, handle: Handler,
                       flush: Callable[[], None]) -> None:
        """Subscribed and reading until ``stop`` (then drained) or the connection ends."""
        m = self.cfg.mqtt
        for f in self.filters:
            await client.subscribe(f, qos=1)
        log.info("mqtt connected to %s:%d, subscribed to %s", m.host, m.port,
                 ", ".join(self.filters))
        if self.announce is not None:
            # Retained: an agent connecting later reads it at once (xanet/capabilities.py).
            await client.publish(topics.CAPABILITIES, self.announce, qos=1, retain=True)
        self.subscribed.set()
        self._attempt = 0
        reader = asyncio.create_task(self._read(client, handle, flush), name="mqtt-read")
        stopper = asyncio.create_task(stop.wait(), name="mqtt-stop")
        done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if reader in done:
            stopper.cancel()
            reader.result()  # raises the MqttError that ended it
            raise aiomqtt.MqttError("message stream ended")
        reader.cancel()
        if self.fenced:  # nothing more on this session: no drain, no DISCONNECT
            abandon(client)
            return
        await self.drain(flush)

    async def _read(self, client: aiomqtt.Client, handle: Handler,
                    flush: Callable[[], None]) -> None:
        receive_maximum = self.cfg.collector.receive_maximum
        window = max(1, receive_maximum // 2)
        # Handled-but-unacknowledged messages count too: twice the window bounds the
        # collector's memory without ever pausing while the broker honours the window.
        inbox = Inbox(client, 2 * receive_maximum, lambda: self.acks.unacked)
        self._inbox = inbox
        while True:
            message = await inbox.get()
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode()
            ticket = self.received(message.mid, message.qos)
            await handle(Received(str(message.topic), bytes(payload), ticket))
            if self.acks.unacked == window:  # crossing half the window: one flush request
                flush()

    async def drain(self, flush: Callable[[], None], timeout_s: float = 10.0) -> None:
        """On a clean stop: write what is buffered and acknowledge it before disconnecting."""
        if self.fenced:
            return
        flush()
        if self.acks.unacked:
            try:
                await asyncio.wait_for(self._all_acked.wait(), timeout=timeout_s)
            except TimeoutError:
                pass
        if self.acks.unacked:
            log.warning("stopping with %d message(s) unacknowledged: the broker keeps them "
                        "for the next start", self.acks.unacked)


def data_client_id(partition: str) -> str:
    """The MQTT client id of a partition's data session (shared by its members)."""
    return f"xanet-collector-part-{partition}"


def enable_manual_acks(client: aiomqtt.Client) -> None:
    """Make paho wait for our :func:`ack` instead of acknowledging on receipt.

    aiomqtt 2.x creates its paho client in ``__init__`` and offers no option for
    this (aiomqtt issue #345); paho 2.x has ``manual_ack_set``.
    """
    paho_client = client._client  # private: no manual-ack option (aiomqtt 2.5.1, paho 2.2.0)
    paho_client.manual_ack_set(True)


def abandon(client: aiomqtt.Client) -> None:
    """Close the connection at once, without DISCONNECT (a fenced partition session: it
    must send nothing more, and it may be dead already, which would make aiomqtt's exit
    wait for a DISCONNECT it cannot write). The broker publishes the Will, clearing the
    lease, as for a crash; the client's exit then returns at once."""
    client._client._sock_close()  # private: paho 2.2.0; aiomqtt 2.5.1 unregisters the fd
    disconnected = client._disconnected  # private: done = __aexit__ returns (aiomqtt 2.5.1)
    if not disconnected.done():
        disconnected.set_result(None)


def ack(client: aiomqtt.Client, mid: int, qos: int) -> None:
    """Acknowledge one received message (after :func:`enable_manual_acks`)."""
    client._client.ack(mid, qos)  # private: paho's manual ack (aiomqtt 2.5.1, paho 2.2.0)


class Inbox:
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

    aiomqtt internals used here: the paho client (``_client``), the queue (``_queue``)
    and the disconnection future (``_disconnected``); the paho client's ``loop_read`` is
    wrapped on the instance, so aiomqtt's reader callback goes through :meth:`_loop_read`.
    """

    def __init__(self, client: aiomqtt.Client, limit: int,
                 unacked: Callable[[], int] = lambda: 0) -> None:
        self._client = client
        self._paho = client._client  # private: to pause its socket (aiomqtt 2.5.1, paho 2.2.0)
        # private: its queue, read without a task per message (aiomqtt 2.5.1)
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
        # private: aiomqtt 2.5.1's add_reader callback calls this paho 2.2.0 method
        self._paho.loop_read = self._loop_read  # type: ignore[method-assign]  # class doc

    @property
    def backlog(self) -> int:
        """Messages received and not yet taken."""
        return self._queue.qsize()

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
            disconnected = self._client._disconnected  # private: ends it (aiomqtt 2.5.1)
            if not disconnected.done():
                disconnected.set_exception(exc)

    def _resume(self) -> None:
        fd, self._paused_fd = self._paused_fd, None
        sock = self._paho.socket()
        # Only the socket that was paused, and only while connected (a closed fd's
        # number may already belong to another socket).
        if (fd is not None and sock is not None and sock.fileno() == fd
                and not self._client._disconnected.done()):  # private: connected? (aiomqtt 2.5.1)
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
