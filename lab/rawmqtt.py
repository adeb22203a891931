"""A minimal MQTT 3.1.1 QoS 1 publisher on a non-blocking socket: cheap enough to play a
country's agents from one process.

A PUBLISH is the topic's pre-encoded bytes, a packet id and the payload appended to an
output buffer (no per-message object, no thread); PUBACKs are only counted. It does not
retry or reconnect: a lost connection is an error of the load generator, reported.
Clean session (the generator needs no session state). Only for the lab's brokers on
loopback.
"""

from __future__ import annotations

import socket
import struct


class MqttProtocolError(RuntimeError):
    """The broker refused the connection or sent something this publisher does not read."""


def varint(n: int) -> bytes:
    """MQTT's Remaining Length encoding."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def topic_bytes(topic: str) -> bytes:
    """A topic as it sits in a PUBLISH (length-prefixed UTF-8): encode once, publish often."""
    raw = topic.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, keepalive_s: int) -> bytes:
    cid = client_id.encode()
    body = (b"\x00\x04MQTT\x04\x02" + struct.pack("!H", keepalive_s)
            + struct.pack("!H", len(cid)) + cid)
    return b"\x10" + varint(len(body)) + body


class Publisher:
    """One connection. ``publish`` only buffers; ``send`` and ``receive`` move bytes when
    the socket is ready (the caller selects on :meth:`fileno`)."""

    def __init__(self, host: str, port: int, client_id: str, keepalive_s: int = 60) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id, keepalive_s))
        ack = b""
        while len(ack) < 4:
            chunk = self.sock.recv(4 - len(ack))
            if not chunk:
                raise MqttProtocolError(f"{client_id}: connection closed before CONNACK")
            ack += chunk
        if ack[0] != 0x20 or ack[3] != 0:
            raise MqttProtocolError(f"{client_id}: CONNACK {ack.hex()}")
        self.sock.setblocking(False)
        self.out = bytearray()
        self._in = bytearray()
        self._next_id = 1
        self.published = 0
        self.acked = 0
        self.bytes_out = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def unacked(self) -> int:
        return self.published - self.acked

    def publish(self, topic: bytes, payload: bytes, retain: bool = False) -> None:
        pid = self._next_id
        self._next_id = pid % 65535 + 1
        header = 0x33 if retain else 0x32
        self.out += bytes((header,)) + varint(len(topic) + 2 + len(payload))
        self.out += topic
        self.out += struct.pack("!H", pid)
        self.out += payload
        self.published += 1

    def ping(self) -> None:
        self.out += b"\xc0\x00"

    def send(self) -> None:
        if not self.out:
            return
        try:
            n = self.sock.send(self.out)
        except BlockingIOError:
            return
        del self.out[:n]
        self.bytes_out += n

    def receive(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            raise MqttProtocolError("the broker closed the connection")
        buf = self._in
        buf += data
        i = 0
        while len(buf) - i >= 2:
            kind = buf[i] >> 4
            length = buf[i + 1]  # PUBACK (2) and PINGRESP (0): one length byte
            if length & 0x80:
                raise MqttProtocolError(f"unexpected packet {buf[i]:#x} of length > 127")
            if len(buf) - i < 2 + length:
                break
            if kind == 4:  # PUBACK
                self.acked += 1
            elif kind != 13:  # PINGRESP
                raise MqttProtocolError(f"unexpected packet type {kind}")
            i += 2 + length
        del buf[:i]

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.sendall(bytes(self.out) + b"\xe0\x00")
        except OSError:
            pass
        self.sock.close()
