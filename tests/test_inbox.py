"""collector.mqtt_in.Inbox against a real Mosquitto: the collector's backlog of received,
unhandled messages stays bounded even when the broker sends past the Receive Maximum,
and every message still arrives once, in order."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import lab
from collector.mqtt_in import Inbox, ack, enable_manual_acks

N = 600
LIMIT = 40


def _publish(port: int, n: int) -> None:
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", "inbox/t", "-l"],
        input=b"".join(b"m%d\n" % i for i in range(n)), check=True, timeout=60)


async def _receive_all(port: int) -> tuple[list[bytes], int, int]:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # untyped paho
    props.ReceiveMaximum = 20
    client = aiomqtt.Client("127.0.0.1", port, identifier="inbox-test",
                            protocol=aiomqtt.ProtocolVersion.V5, properties=props)
    enable_manual_acks(client)
    got: list[bytes] = []
    async with client:
        await client.subscribe("inbox/#", qos=1)
        inbox = Inbox(client, LIMIT)
        # Acknowledge the first 20 at once: Mosquitto 2.0 then keeps sending past the
        # window of 20 (what the inbox guards against) while nothing else is consumed.
        await asyncio.to_thread(_publish, port, N)
        for _ in range(20):
            m = await inbox.get()
            ack(client, m.mid, m.qos)
            got.append(bytes(m.payload))  # type: ignore[arg-type]  # bytes from paho
        await asyncio.sleep(1.0)  # the broker sends what it will; the inbox stops reading
        backlog = inbox.backlog
        while len(got) < N:
            m = await asyncio.wait_for(inbox.get(), timeout=10)
            ack(client, m.mid, m.qos)
            got.append(bytes(m.payload))  # type: ignore[arg-type]  # bytes from paho
    return got, backlog, inbox.pauses


def test_inbox_bounds_the_backlog_and_loses_nothing(
    make_mosquitto: Callable[..., lab.Mosquitto],
) -> None:
    broker = make_mosquitto()
    got, backlog, pauses = asyncio.run(_receive_all(broker.port))
    assert got == [b"m%d" % i for i in range(N)]  # each once, in order
    assert backlog <= LIMIT
    assert pauses >= 1
