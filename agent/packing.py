"""How device polls are cut into telemetry messages that fit a size limit. Pure.

A message must fit both the core's payload limit (``batch.max_payload_bytes``, at most
the collector's ``ingest.max_payload_bytes``) and the broker's Maximum Packet Size
(learnt from the MQTT v5 CONNACK). :func:`pack` groups polls greedily, in order, into
messages no larger than ``limit_bytes``; a single poll larger than that on its own is
split by interfaces into several ``DevicePoll`` parts with the same device, timestamp
and reachability and disjoint interfaces. The collector stores such parts as one
``device`` point (same series and time: the parts overwrite each other with equal
values) and each interface once; availability sees the device ``up`` once per part at
the same instant (docs/delivery.md, "Size").

Sizes are the exact JSON lengths :func:`xanet.wire.encode` produces, with the
envelope (agent, site, instance, ``seq``) sized for the largest sequence number, so a
message packed here never grows past the limit once its number is allocated.
"""

from __future__ import annotations

from collections.abc import Sequence

from xanet import wire

#: Upper bounds of one element's JSON (every string at its maximum length, every
#: character escaped as \\uXXXX): below them no encoding is needed to know a batch fits.
_MAX_INTERFACE_JSON = 3584
_MAX_POLL_JSON = 3072
_MAX_ENVELOPE_JSON = 1024
_MAX_SEQ = 2**63 - 1


def _json_len(poll: wire.DevicePoll) -> int:
    return len(poll.model_dump_json(exclude_none=True).encode())


def envelope_bytes(agent: str, site: str, instance: str | None) -> int:
    """The JSON of a message around its polls (with the longest ``seq``), commas excluded."""
    probe = wire.DevicePoll.model_construct(device="x", ts=None, reachable=True)
    probe_len = len(probe.model_dump_json(exclude_none=True).encode())
    msg = wire.Telemetry.model_construct(agent=agent, site=site, seq=_MAX_SEQ,
                                         instance=instance, polls=[probe])
    return len(msg.model_dump_json(exclude_none=True).encode()) - probe_len


def surely_fits(polls: Sequence[wire.DevicePoll], limit_bytes: int) -> bool:
    """True when the polls fit one message by the worst-case bounds alone (no encoding)."""
    bound = _MAX_ENVELOPE_JSON + sum(
        _MAX_POLL_JSON + _MAX_INTERFACE_JSON * len(p.interfaces) for p in polls)
    return bound <= limit_bytes


def split_poll(poll: wire.DevicePoll, room_bytes: int) -> list[wire.DevicePoll]:
    """``poll`` cut into parts whose JSON is at most ``room_bytes`` each (by interfaces,
    in order). A part of one interface is returned even if it is still too large: the
    caller's send-time check sets such a message aside."""
    base = _json_len(poll.model_copy(update={"interfaces": []}))
    parts: list[wire.DevicePoll] = []
    chunk: list[wire.InterfacePoll] = []
    size = base
    for iface in poll.interfaces:
        n = len(iface.model_dump_json(exclude_none=True).encode()) + (1 if chunk else 0)
        if chunk and size + n > room_bytes:
            parts.append(poll.model_copy(update={"interfaces": chunk}))
            chunk, size = [], base
            n -= 1
        chunk.append(iface)
        size += n
    parts.append(poll.model_copy(update={"interfaces": chunk}))
    return parts


def pack(polls: Sequence[wire.DevicePoll], *, limit_bytes: int, max_polls: int,
         envelope: int) -> list[list[wire.DevicePoll]]:
    """Group ``polls`` (in order) into messages of at most ``max_polls`` polls whose
    encoded size, with an ``envelope`` from :func:`envelope_bytes`, is at most
    ``limit_bytes``; polls too large alone are split by :func:`split_poll` first."""
    max_polls = min(max_polls, wire.MAX_POLLS_PER_MESSAGE)
    room = limit_bytes - envelope
    if len(polls) <= max_polls and surely_fits(polls, limit_bytes):
        return [list(polls)]
    out: list[list[wire.DevicePoll]] = []
    batch: list[wire.DevicePoll] = []
    size = 0
    for poll in polls:
        n = _json_len(poll)
        pieces = [(poll, n)] if n <= room else [(p, _json_len(p)) for p in split_poll(poll, room)]
        for piece, m in pieces:
            extra = m + (1 if batch else 0)
            if batch and (size + extra > room or len(batch) >= max_polls):
                out.append(batch)
                batch, size, extra = [], 0, m
            batch.append(piece)
            size += extra
    if batch:
        out.append(batch)
    return out
