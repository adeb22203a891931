"""How a partition member talks to the broker about the lease: its own lease connection.

The collector's second MQTT edge (tests/test_private_reaches.py allows it beside
collector/mqtt_in.py; it reaches into no library internals). :class:`LeaseLink` keeps one
connection per member: its own client id ``xanet-collector-{id}`` and the member's
``[mqtt]`` user, MQTT v5, clean start, **no Will**, the partition's keepalive, subscribed
(QoS 1) to ``xanet/v1/core/lease/{partition}``. It reports what happens as
:class:`LinkEvent` s on a queue (subscribed, a lease message with its retain flag, gone)
and publishes claims and releases (retained, QoS 1). After a demotion the supervisor asks
for a **fresh** connection (:meth:`LeaseLink.restart`): a member cut from the broker comes
back as a newcomer and must win a claim on it before it connects the data session again.

Renewals do not go here but on the data session (collector/mqtt_in.py
``publish_lease``): the connection that carries the Will. The broker publishes the Will
1.5 x keepalive after that connection's last packet; a renewal acknowledged on it proves
the broker heard that connection then, so the owner's fencing deadline (last acknowledged
renewal + 1 x keepalive) always comes before its Will. A renewal on this connection
would prove nothing about the data session: it could be gone (its Will out, a standby
claiming) while this connection still renews. Only before the data session is up (the new
owner restoring its checkpoint) the owner renews here: there is no Will then, a standby
only claims after 3 x keepalive without a renewal, and it hears these.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import aiomqtt

from collector.config import CollectorConfig
from collector.lease import LeaseDecodeError, LeaseMessage, decode
from xanet import topics
from xanet.mqtt import backoff_s, connect_kwargs

log = logging.getLogger("xanet.collector.lease")


def lease_topic(partition: str) -> str:
    """The retained lease of ``partition``."""
    return f"{topics.ROOT}/{topics.VERSION}/core/lease/{partition}"


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """``subscribed``: the lease connection is up (the retained lease follows); ``message``:
    a lease message (``retained``: delivered for our subscription); ``gone``: the
    connection ended."""

    kind: str
    message: LeaseMessage | None = None
    retained: bool = False


class LeaseLink:
    """One member's lease connection, reconnected until stopped."""

    def __init__(self, cfg: CollectorConfig, events: asyncio.Queue[LinkEvent], *,
                 rng: random.Random | None = None) -> None:
        if cfg.partition.id is None:
            raise ValueError("a lease link needs [partition] id")
        self.cfg = cfg
        self.topic = lease_topic(cfg.partition.id)
        self.events = events
        self._client: aiomqtt.Client | None = None
        self._restart = asyncio.Event()
        self._rng = rng or random.Random()

    def client_options(self) -> dict[str, object]:
        c = self.cfg
        mqtt = c.mqtt.model_copy(update={"keepalive_s": c.partition.keepalive_s})
        return {**connect_kwargs(mqtt, f"xanet-collector-{c.collector.id}"),
                "protocol": aiomqtt.ProtocolVersion.V5, "clean_start": True}

    def restart(self) -> None:
        """Drop the connection and make a fresh one (after a demotion)."""
        self._restart.set()

    async def publish(self, msg: LeaseMessage) -> bool:
        """Publish ``msg`` retained, QoS 1; True once the broker acknowledged it."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(self.topic, msg.encode(), qos=1, retain=True,
                                 timeout=self.cfg.partition.keepalive_s)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("lease %s: publish of %s epoch %d failed: %s", self.topic, msg.op,
                        msg.epoch, exc)
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        m = self.cfg.mqtt
        attempt = 0
        while not stop.is_set():
            self._restart.clear()
            try:
                async with aiomqtt.Client(**self.client_options()) as client:  # type: ignore[arg-type]
                    await client.subscribe(self.topic, qos=1)
                    self._client = client
                    attempt = 0
                    await self.events.put(LinkEvent("subscribed"))
                    try:
                        await self._read(client, stop)
                    finally:
                        self._client = None
                        await self.events.put(LinkEvent("gone"))
                continue
            except aiomqtt.MqttError as exc:
                delay = backoff_s(attempt, m.reconnect_min_s,
                                  min(m.reconnect_max_s, self.cfg.partition.keepalive_s),
                                  self._rng)
                attempt += 1
                log.warning("lease connection to %s:%d: %s; retry in %.1fs", m.host, m.port,
                            exc, delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def _read(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Messages to the queue until stopped, restarted, or the connection ends."""
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._restart.wait())}
        try:
            messages = aiomqtt_messages(client)
            while True:
                nxt = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({nxt, *waiters},
                                             return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    nxt.cancel()
                    return
                message = nxt.result()  # raises MqttError once the connection is gone
                payload = message.payload
                if not isinstance(payload, bytes | bytearray):
                    payload = str(payload).encode()
                if not payload:
                    continue  # a retained lease deleted by hand: nothing to say
                try:
                    lease = decode(bytes(payload))
                except LeaseDecodeError as exc:
                    log.warning("lease %s: ignored: %s", self.topic, exc)
                    continue
                await self.events.put(LinkEvent("message", lease, bool(message.retain)))
        finally:
            for w in waiters:
                w.cancel()


def aiomqtt_messages(client: aiomqtt.Client) -> aiomqtt.client.MessagesIterator:
    """The client's message iterator (one per connection)."""
    return client.messages
