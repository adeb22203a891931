"""Which spool entries of the backlog form one MQTT message, and how it is encoded. Pure.

When the core announced compact batches (:mod:`xanet.capabilities`), the replay lane
sends a run of consecutive telemetry entries of one site as ONE compact batch
(:mod:`xanet.compact`) on the site's ``.../batch`` topic, each message stamped ``sent``
at hand-off as in JSON. A batch holds at most the announced messages and polls, its
body at most the announced decompressed size, its payload at most ``limit_bytes`` (the
agent's ``[batch] backlog_batch_bytes``, the core's announced maximum and the broker's
packet size, whichever is least): the run is shortened until it fits. Anything else
(a status entry, a core that announced nothing, an entry that is not valid telemetry,
one too large for a batch alone) goes as it is, JSON, one entry per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.spool import Entry
from xanet import compact, wire
from xanet.capabilities import Capabilities

TELEMETRY = "/telemetry"
BATCH = "/batch"


@dataclass(frozen=True, slots=True)
class Batch:
    """One compact message carrying ``entries`` (all acknowledged by its PUBACK)."""

    topic: str
    payload: bytes
    entries: list[Entry]

    @property
    def seqs(self) -> list[int]:
        return [e.seq for e in self.entries]


def batch_topic(topic: str) -> str | None:
    """The site's batch topic for a telemetry topic (None for any other topic)."""
    return topic[: -len(TELEMETRY)] + BATCH if topic.endswith(TELEMETRY) else None


def next_batch(entries: Sequence[Entry], caps: Capabilities | None, limit_bytes: int,
               now: datetime) -> Batch | None:
    """The compact batch that begins with ``entries[0]``, or None: send that entry alone."""
    if caps is None or not caps.batches or not entries:
        return None
    topic = batch_topic(entries[0].topic)
    if topic is None:
        return None
    limit = min(limit_bytes, caps.max_batch_bytes)
    run: list[Entry] = []
    messages: list[wire.Telemetry] = []
    polls = 0
    for entry in entries[: caps.max_batch_messages]:
        if entry.topic != entries[0].topic:
            break
        try:
            message = wire.decode(entry.payload, "telemetry")
        except wire.DecodeError:
            break
        assert isinstance(message, wire.Telemetry)
        if polls + len(message.polls) > caps.max_batch_polls:
            break
        polls += len(message.polls)
        run.append(entry)
        messages.append(message.model_copy(update={"sent": now}))
    n = len(run)
    while n:
        body = compact.body(messages[:n])
        if len(body) <= caps.max_batch_decompressed_bytes:
            payload = compact.frame(body)
            if len(payload) <= limit:
                return Batch(topic, payload, run[:n])
            shrink = limit / len(payload)
        else:
            shrink = caps.max_batch_decompressed_bytes / len(body)
        n = min(n - 1, int(n * shrink * 0.9))
    return None
