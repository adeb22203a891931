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

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.spool import Entry
from xanet import compact, wire
from xanet.capabilities import Capabilities
from xanet.compact_columns import Writer

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
               now: datetime, *, first_try: int | None = None) -> Batch | None:
    """The compact batch that begins with ``entries[0]``, or None: send that entry alone.

    ``first_try``: how many entries to encode first (:func:`next_try` of the previous
    batch), so that a batch is usually encoded once or twice instead of shrinking from
    the announced maximum."""
    if caps is None or not caps.batches or not entries:
        return None
    topic = batch_topic(entries[0].topic)
    if topic is None:
        return None
    limit = min(limit_bytes, caps.max_batch_bytes)
    same = list(itertools.takewhile(lambda e: e.topic == entries[0].topic,
                                    entries[: caps.max_batch_messages]))
    if first_try is None:  # a first guess: compact is ~1/20 of the JSON, say 1/16
        first_try = limit * 16 * len(same) // max(1, sum(len(e.payload) for e in same)) + 1
    writer = Writer()
    run: list[Entry] = []
    polls = 0
    for entry in same[: max(1, first_try)]:
        try:
            message = wire.decode(entry.payload, "telemetry")
        except wire.DecodeError:
            break
        assert isinstance(message, wire.Telemetry)
        if polls + len(message.polls) > caps.max_batch_polls:
            break
        polls += len(message.polls)
        run.append(entry)
        writer.add(message.model_copy(update={"sent": now}))
    n = len(run)
    while n:
        body = writer.body_of(n)
        if len(body) <= caps.max_batch_decompressed_bytes:
            payload = compact.frame(body)
            if len(payload) <= limit:
                return Batch(topic, payload, run[:n])
            shrink = limit / len(payload)
        else:
            shrink = caps.max_batch_decompressed_bytes / len(body)
        n = min(n - 1, int(n * shrink * 0.95))
    return None


def next_try(batch: Batch | None, first_try: int | None, announced: int) -> int | None:
    """Where the next batch starts its search: a quarter more than this one when it was
    taken whole (room may be left), as many when it had to shrink."""
    if batch is None:
        return first_try
    n = len(batch.entries)
    return min(announced, n + n // 4 + 1) if n == first_try else n
