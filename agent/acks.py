"""What the broker answers that aiomqtt 2.x does not hand back: PUBACK reason codes,
the CONNACK's properties (Maximum Packet Size) and the reason of a DISCONNECT.

aiomqtt's ``publish`` waits for the PUBACK and drops its reason code, so over MQTT v5 a
publish the broker's ACL refuses (reason code 135, "not authorized") would look
delivered. :class:`BrokerAnswers` wraps the paho client underneath an aiomqtt client
(its private ``_client``, the only way in: aiomqtt 2.x has no hook for it): it chains
its own ``on_publish``/``on_connect``/``on_disconnect`` in front of aiomqtt's and
publishes through paho directly, so it learns the message id and can wait for that
message's reason code. Everything else (the socket, the loop, reconnecting) stays
aiomqtt's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

#: DISCONNECT reason code "Session taken over" (MQTT v5, 0x8E).
SESSION_TAKEN_OVER = 0x8E
#: PUBACK reason code "Packet too large" is not sent for PUBLISH; the broker disconnects
#: with 0x95 instead (Mosquitto: "disconnected due to oversize packet").
PACKET_TOO_LARGE = 0x95


class Refused(Exception):  # a broker's answer, not a program error
    """The broker answered a PUBLISH with a failure reason code (>= 0x80)."""

    def __init__(self, topic: str, code: int, reason: str) -> None:
        super().__init__(f"{topic}: PUBACK reason code {code} ({reason})")
        self.topic = topic
        self.code = code
        self.reason = reason


class BrokerAnswers:
    """Attach before ``async with client``; then :meth:`publish` instead of
    ``client.publish`` to see each PUBACK's reason code."""

    def __init__(self, client: aiomqtt.Client) -> None:
        # aiomqtt's private paho client: aiomqtt 2.x exposes no PUBACK reason code (module doc)
        self._paho = client._client
        self._loop = asyncio.get_running_loop()
        self._waiting: dict[int, asyncio.Future[ReasonCode]] = {}
        self._early: dict[int, ReasonCode] = {}
        self.max_packet_size: int | None = None
        #: the reason code of the DISCONNECT that ended the connection, if the broker sent one
        self.disconnect_code: int | None = None
        self.disconnect_reason: str | None = None
        #: the connection was lost without a DISCONNECT: the peer closed it (or it broke)
        self.closed_by_peer = False
        # aiomqtt's own callbacks (paho types them as a union of API versions: Any here)
        self._next_publish: Any = self._paho.on_publish
        self._next_connect: Any = self._paho.on_connect
        self._next_disconnect: Any = self._paho.on_disconnect
        self._paho.on_publish = self._on_publish
        self._paho.on_connect = self._on_connect
        self._paho.on_disconnect = self._on_disconnect

    # -- paho callbacks (called on the event loop's thread by aiomqtt's socket callbacks)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: ReasonCode,
                    properties: Properties) -> None:
        fut = self._waiting.pop(mid, None)
        if fut is None:
            self._early[mid] = reason_code  # acknowledged before publish() returned
        elif not fut.done():
            fut.set_result(reason_code)
        self._next_publish(client, userdata, mid, reason_code, properties)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        size = getattr(properties, "MaximumPacketSize", None) if properties else None
        self.max_packet_size = int(size) if size else None
        self._next_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        if getattr(flags, "is_disconnect_packet_from_server", False):
            self.disconnect_code = int(reason_code.value)
            self.disconnect_reason = str(reason_code)
        elif str(reason_code) == "Unspecified error":  # paho's MQTT_ERR_CONN_LOST
            self.closed_by_peer = True
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(aiomqtt.MqttError(f"disconnected: {reason_code}"))
        self._waiting.clear()
        self._next_disconnect(client, userdata, flags, reason_code, properties)

    # -- publishing

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                      timeout_s: float) -> int:
        """Publish and wait for the acknowledgement; return its reason code (0 or 16 over v5,
        0 over 3.1.1). Raises :class:`Refused` for a failure code, ``aiomqtt.MqttError`` when
        the connection fails or nothing comes back within ``timeout_s``."""
        info = self._paho.publish(topic, payload, qos, retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        code = self._early.pop(info.mid, None)
        if code is None:
            if qos == 0:
                return 0
            fut: asyncio.Future[ReasonCode] = self._loop.create_future()
            self._waiting[info.mid] = fut
            try:
                code = await asyncio.wait_for(fut, timeout_s)
            except TimeoutError:
                raise aiomqtt.MqttError(
                    f"no PUBACK for {topic} within {timeout_s:g}s") from None
            finally:
                self._waiting.pop(info.mid, None)
        if code.is_failure:
            raise Refused(topic, int(code.value), str(code))
        return int(code.value)
