"""How device polls are cut into telemetry messages that fit a size limit. Pure.

A message must fit both the core's payload limit (``batch.max_payload_bytes``, at most
the collector's ``ingest.max_payload_bytes``) and the broker's Maximum Packet Size
(learnt from the MQTT v5 CONNACK). :func:`pack` groups polls greedily, in order, into
messages no larger than ``limit_bytes``; a single poll larger than that on its own is
split (:func:`split_poll`) into several ``DevicePoll`` parts with the same device,
timestamp and reachability: its profile readings first, then its interfaces, each in
one part only (a reading too large for a part is cut by values), its power state in the
first part. The collector stores such parts as one ``device`` point (same series and
time: the parts overwrite each other with equal values), each interface and each
profile value once; availability sees the device ``up`` once per part at the same
instant (docs/delivery.md, "Size").

Each poll is encoded once (:func:`poll_json`); a message is its polls' JSON spliced
into the envelope (:func:`encode`), byte for byte what :func:`xanet.wire.encode` makes of
the same message (tests/test_reconnect.py checks it). Sizes are those exact lengths, with
the envelope sized for the largest sequence number, so a message packed here never grows
past the limit once its number is allocated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

from xanet import wire

#: One poll and its JSON (what :func:`encode` splices into a message).
Piece = tuple[wire.DevicePoll, bytes]

_MAX_SEQ = 2**63 - 1
_PROBE = wire.DevicePoll.model_construct(device="x", reachable=True, interfaces=[])


def poll_json(poll: wire.DevicePoll) -> bytes:
    """The poll's JSON exactly as it appears inside an encoded message."""
    return poll.model_dump_json(exclude_none=True).encode()


@lru_cache(maxsize=256)
def _frame(agent: str, site: str, instance: str | None, seq: int) -> tuple[bytes, bytes]:
    probe = poll_json(_PROBE)
    msg = wire.Telemetry.model_construct(agent=agent, site=site, seq=seq, instance=instance,
                                         polls=[_PROBE]).model_dump_json(exclude_none=True)
    raw = msg.encode()
    at = raw.index(probe)
    return raw[:at], raw[at + len(probe):]


def encode(agent: str, site: str, instance: str | None, seq: int,
           polls: Sequence[bytes]) -> bytes:
    """A telemetry message from its polls' JSON (:func:`poll_json`): the bytes
    ``wire.encode(wire.Telemetry(agent=..., site=..., seq=..., instance=..., polls=...))``
    would produce, without encoding the polls again."""
    head, tail = _frame(agent, site, instance, 0)
    if seq:
        marker = b'"seq":0,'
        at = head.index(marker)  # agent and site are identifiers: no quote before it
        head = head[:at] + b'"seq":%d,' % seq + head[at + len(marker):]
    return head + b",".join(polls) + tail


def envelope_bytes(agent: str, site: str, instance: str | None) -> int:
    """The JSON of a message around its polls (with the longest ``seq`` and the ``sent``
    stamp that :func:`stamp_sent` adds at hand-off), commas excluded."""
    head, tail = _frame(agent, site, instance, _MAX_SEQ)
    return len(head) + len(tail) + SENT_FIELD_BYTES


#: What :func:`stamp_sent` adds: ``"sent":"2026-11-29T15:40:00.123456Z",``.
SENT_FIELD_BYTES = len(b'"sent":"0000-00-00T00:00:00.000000Z",')


def stamp_sent(payload: bytes, now: datetime) -> bytes:
    """A spooled telemetry message (:func:`encode`, no ``sent`` yet) with ``sent`` = ``now``
    (UTC), the moment it is handed to MQTT: the collector compares it with its receive
    time to see a wrong agent clock (a poll's ``ts`` cannot tell: a replayed spool is
    legitimately old). A message re-sent after a lost PUBACK gets the time of that
    hand-off; the collector deduplicates by ``seq``, not by bytes."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
    return b'{"sent":"' + stamp + b'",' + payload[1:]


def split_poll(poll: wire.DevicePoll, room_bytes: int) -> list[Piece]:
    """``poll`` cut into parts whose JSON is at most ``room_bytes`` each.

    The profile readings come first, in order, then the interfaces, in order; each part
    is filled before the next begins, and ``power`` travels in the first part only. A
    reading that does not fit the room left begins a part; one too large for a part is
    cut by values into readings of the same profile, in consecutive parts (never twice
    in one part; its warnings in the first piece). A part of one interface or one value
    is returned even if it is still too large: the caller's send-time check sets such a
    message aside."""
    # with room for the ``parts`` count every part carries
    base = len(poll_json(poll.model_copy(update={
        "interfaces": [], "profiles": None, "power": None,
        "parts": wire.MAX_INTERFACES_PER_POLL})))
    power = 0 if poll.power is None else len(_POWER_KEY) + len(_json(poll.power))
    parts = _Parts(base, room_bytes, power)
    for reading in poll.profiles or []:
        parts.add_reading(reading)
    for iface in poll.interfaces:
        parts.add_interface(iface)
    done = parts.finish()
    update: dict[str, object] = {"parts": len(done)} if len(done) > 1 else {}
    out = []
    for i, (readings, ifaces) in enumerate(done):
        out.append(poll.model_copy(update={
            **update, "interfaces": ifaces, "profiles": readings or None,
            "power": poll.power if i == 0 else None}))
    return [(part, poll_json(part)) for part in out]


_POWER_KEY = b',"power":'
_PROFILES_KEY = b',"profiles":[]'


def _json(model: wire.ProfileReading | wire.ProfileValue | wire.InterfacePoll
          | wire.PowerReading) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()


class _Parts:
    """The parts of one poll being filled: each its readings and interfaces."""

    def __init__(self, base: int, room: int, first_extra: int) -> None:
        self.base, self.room = base, room
        self.done: list[tuple[list[wire.ProfileReading], list[wire.InterfacePoll]]] = []
        self.readings: list[wire.ProfileReading] = []
        self.ifaces: list[wire.InterfacePoll] = []
        self.size = base + first_extra  # of the part being filled

    @property
    def empty(self) -> bool:
        return not self.readings and not self.ifaces

    def left(self) -> int:
        """Bytes left in the part being filled for one more reading."""
        return self.room - self.size - (1 if self.readings else len(_PROFILES_KEY))

    def close(self) -> None:
        self.done.append((self.readings, self.ifaces))
        self.readings, self.ifaces, self.size = [], [], self.base

    def add_reading(self, reading: wire.ProfileReading) -> None:
        n = len(_json(reading))
        if n > self.left() and not self.empty:
            self.close()  # a reading that does not fit the room left begins a part
        if n <= self.left() or len(reading.values) < 2:
            self._put(reading, n)
        else:
            self._cut(reading)

    def _cut(self, reading: wire.ProfileReading) -> None:
        """``reading`` cut by values into pieces, each filling the room of its part; the
        first keeps the warnings."""
        piece = reading.model_copy(update={"values": []})
        size, chunk = len(_json(piece)), list[wire.ProfileValue]()
        for value in reading.values:
            n = len(_json(value)) + (1 if chunk else 0)
            if chunk and size + n > self.left():
                self._put(piece.model_copy(update={"values": chunk}), size)
                self.close()
                piece = reading.model_copy(update={"values": [], "warnings": None})
                size, chunk, n = len(_json(piece)), [], n - 1
            chunk.append(value)
            size += n
        self._put(piece.model_copy(update={"values": chunk}), size)

    def _put(self, reading: wire.ProfileReading, n: int) -> None:
        self.size += n + (1 if self.readings else len(_PROFILES_KEY))
        self.readings.append(reading)

    def add_interface(self, iface: wire.InterfacePoll) -> None:
        n = len(_json(iface)) + (1 if self.ifaces else 0)
        if not self.empty and self.size + n > self.room:
            self.close()
            n = len(_json(iface))
        self.size += n
        self.ifaces.append(iface)

    def finish(self) -> list[tuple[list[wire.ProfileReading], list[wire.InterfacePoll]]]:
        if not self.empty or not self.done:
            self.close()
        return self.done


def pack(polls: Sequence[wire.DevicePoll], *, limit_bytes: int, max_polls: int,
         envelope: int) -> list[list[Piece]]:
    """Group ``polls`` (in order) into messages of at most ``max_polls`` polls whose
    encoded size, with an ``envelope`` from :func:`envelope_bytes`, is at most
    ``limit_bytes``; polls too large alone are split by :func:`split_poll` first. Each
    piece carries its JSON for :func:`encode`."""
    max_polls = min(max_polls, wire.MAX_POLLS_PER_MESSAGE)
    room = limit_bytes - envelope
    out: list[list[Piece]] = []
    batch: list[Piece] = []
    size = 0
    for poll in polls:
        data = poll_json(poll)
        pieces = [(poll, data)] if len(data) <= room else split_poll(poll, room)
        for piece in pieces:
            extra = len(piece[1]) + (1 if batch else 0)
            if batch and (size + extra > room or len(batch) >= max_polls):
                out.append(batch)
                batch, size, extra = [], 0, len(piece[1])
            batch.append(piece)
            size += extra
    if batch:
        out.append(batch)
    return out
