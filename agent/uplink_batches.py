"""When the uplink's replay lane sends compact backlog batches, and how each is sent.

The core announces that it reads compact batches in its retained capability message
(:mod:`xanet.capabilities`); :class:`BatchLane` keeps what this connection learned (the
announcement, whether the broker refused the batch topic), picks the next batch
(:mod:`agent.backlogbatch` decides which entries; encoded in a thread) and sends it: every
entry it carries leaves the spool on the batch's PUBACK (docs/delivery.md, "Backlog
batches"). Without an announcement, or once the broker refused a batch, the backlog goes as
JSON, one message each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from agent.acks import BrokerAnswers, Refused
from agent.backlogbatch import Batch, next_batch, next_try
from agent.errors import SpoolError
from agent.spool import Entry, Spool
from agent.traffic import Traffic
from xanet import capabilities

log = logging.getLogger("xanet.agent.uplink")

#: How many backlog entries the replay lane peeks at once (more when batches carry more).
PEEK_BATCH = 200
#: How long the replay lane waits for the core's retained capability message after a
#: connect (it comes right after the SUBACK; an older core has none: JSON then).
CAPABILITIES_WAIT_S = 2.0
#: A backlog batch's least payload: below it compression pays too little (7.3 bytes per
#: interface sample at 64 KiB, 8.4 at 16 KiB, ~19 at 2-4 KiB: bench/compact.py). Above it a
#: batch is kept within a second of the bandwidth budget (live first, docs/delivery.md); at
#: 64 kbit/s a 32 KiB batch is four seconds on the wire, what a live poll may wait behind.
MIN_BATCH_BYTES = 32 * 1024


def packet_bytes(topic: str, payload: bytes, *, v5: bool) -> int:
    """The size of a QoS 1 PUBLISH packet carrying ``payload`` (what the broker compares
    with its Maximum Packet Size)."""
    body = 2 + len(topic.encode()) + 2 + (1 if v5 else 0) + len(payload)
    length_bytes = 1 if body < 128 else 2 if body < 16_384 else 3 if body < 2_097_152 else 4
    return 1 + length_bytes + body


class BatchLane:
    """The compact-batch side of one agent's uplink (its state lasts across connections;
    :meth:`connected` forgets the announcement of the previous one)."""

    def __init__(self, spool: Spool, traffic: Traffic, *, enabled: bool, max_bytes: int,
                 v5: bool) -> None:
        self.spool = spool
        self.traffic = traffic
        self.enabled = enabled  # [batch] compact: the agent may send batches at all
        self.max_bytes = max_bytes  # [batch] backlog_batch_bytes
        self.v5 = v5
        #: the core's announcement on this connection (None: none seen)
        self.capabilities: capabilities.Capabilities | None = None
        self.capabilities_seen = asyncio.Event()
        self.refused = False  # the broker refused the batch topic: JSON from then on
        self.sent = 0
        self.entries = 0
        self._try: int | None = None  # entries the next batch is first encoded with

    def connected(self) -> None:
        """A new connection: its announcement is still to come."""
        self.capabilities = None
        self.capabilities_seen.clear()

    def announced(self, payload: bytes) -> None:
        """The core's retained capability message arrived."""
        caps = capabilities.decode(payload)
        if caps != self.capabilities:
            log.info("mqtt: the core %s compact backlog batches",
                     "reads" if caps is not None and caps.batches else "does not read")
        self.capabilities = caps
        self.capabilities_seen.set()

    @property
    def on(self) -> bool:
        caps = self.capabilities
        return self.enabled and not self.refused and caps is not None and caps.batches

    async def await_capabilities(self) -> None:
        """Give the core's retained announcement a moment before replaying a backlog."""
        if not self.enabled or self.capabilities_seen.is_set() or not self.spool.depth:
            return
        try:
            await asyncio.wait_for(self.capabilities_seen.wait(), CAPABILITIES_WAIT_S)
        except TimeoutError:
            pass

    def peek_size(self) -> int:
        caps = self.capabilities
        return max(PEEK_BATCH, caps.max_batch_messages) if caps and self.on else PEEK_BATCH

    async def next(self, entries: list[Entry], cap_bytes: float,
                   max_packet_size: int | None) -> Batch | None:
        """The compact batch that begins with ``entries[0]``, or None: that entry alone,
        as JSON (no announcement, not telemetry, too large for a batch). ``cap_bytes``: a
        second of the bandwidth budget. Encoded in a thread: ~0.1-0.6 ms per poll, a batch
        of a thousand would stall the pollers."""
        if not self.on:
            return None
        limit = min(self.max_bytes, max(MIN_BATCH_BYTES, int(min(cap_bytes, 2**31))))
        if max_packet_size is not None:
            limit = min(limit, max_packet_size - packet_bytes(entries[0].topic, b"",
                                                              v5=self.v5) - 16)
        caps = self.capabilities
        assert caps is not None  # self.on
        batch = await asyncio.to_thread(next_batch, entries, caps, limit, datetime.now(UTC),
                                        first_try=self._try)
        self._try = next_try(batch, self._try, caps.max_batch_messages)
        return batch

    async def send(self, answers: BrokerAnswers, batch: Batch, timeout_s: float,
                   on_done: Callable[[bool], None]) -> None:
        """One compact message on the wire; every entry in it leaves the spool on its
        PUBACK. ``on_done(acked)`` runs whatever happened (the lane's pacing)."""
        sent = False
        try:
            await answers.publish(batch.topic, batch.payload, timeout_s=timeout_s)
            sent = True
        except Refused as exc:
            # The core reads batches but the broker's ACL lacks this site's batch topic:
            # JSON from now on (the entries are still in the spool, sent again).
            if not self.refused:
                log.warning("mqtt: the broker refused a compact batch on %s (reason code %d, "
                            "%s): sending the backlog as JSON from now on. Add the site's "
                            "batch topic to the broker's ACL (docs/security.md)",
                            batch.topic, exc.code, exc.reason)
            self.refused = True
            raise
        finally:
            on_done(sent)
        raw = sum(packet_bytes(e.topic, e.payload, v5=self.v5) for e in batch.entries)
        nbytes = packet_bytes(batch.topic, batch.payload, v5=self.v5)
        self.traffic.note_sent("backlog", raw, nbytes)  # JSON it stands for, and the wire
        for entry in batch.entries:
            forget(self.spool, entry)
        self.sent += 1
        self.entries += len(batch.entries)


def forget(spool: Spool, entry: Entry) -> None:
    """``entry`` was delivered: out of the spool (a failure here sends it again, a duplicate
    the core recognises)."""
    try:
        spool.ack(entry.seq)
    except SpoolError as exc:
        log.warning("spool %s: cannot forget delivered message seq %d: %s",
                    spool.path, entry.seq, exc)
