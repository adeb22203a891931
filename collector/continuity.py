"""When a collector's checkpoint is restored and written: restored before it subscribes
(bounded in time), written every ``[state] checkpoint_interval_s``, at each outage
opened or closed (before Alertmanager hears of it) and at a clean stop - never while
fenced.

Wiring between the collector's state (its sequence tracker, instance owners, agents
online, alerting and availability engine) and :class:`collector.statestore.CheckpointStore`;
the document is :mod:`collector.checkpoint`. Which wins, the checkpoint or the local
``state_path`` file (open outages, last seen): the newer (the checkpoint's
``written_at`` against the file's modification time). The rest (sequences, owners,
agents online, the engine's seed) only the checkpoint carries; the engine takes its
seed only while it is younger than ``stale_after_s`` (older, every observation in it has
gone stale: the engine starts empty, as a restart does).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from collector.alerting import Alerting
from collector.alertmanager import Notifier
from collector.availability import AvailabilityEngine
from collector.checkpoint import Checkpoint, CheckpointError
from collector.config import CollectorConfig
from collector.errors import WriteRejected, WriteUnavailable
from collector.guard import Guard
from collector.readback import QueryError
from collector.sequence import SequenceTracker
from collector.statestore import CheckpointStore

log = logging.getLogger("xanet.collector.continuity")

#: An outage change waits at most this long for its checkpoint before Alertmanager is told.
NOTIFY_WAIT_S = 2.0


class Owner(Protocol):
    """What of the collector a checkpoint reads and restores."""

    cfg: CollectorConfig
    sequences: SequenceTracker
    guard: Guard
    agents_online: dict[str, bool]
    alerting: Alerting | None
    engine: AvailabilityEngine | None
    fenced: bool

    def owning(self) -> bool:
        """May it act for its partition now (False once fenced or past the lease's fencing
        deadline)?"""


class Continuity:
    """The checkpoint of one collector's partition: restored, then kept up to date."""

    def __init__(self, owner: Owner, store: CheckpointStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.owner = owner
        self.store = store
        self.clock = clock
        self.generation = 0
        self.written = 0
        self.failures = 0
        self.last_bytes = 0
        self._lock = asyncio.Lock()  # one write at a time: slots taken in turn
        self._failing = False

    # ------------------------------------------------------------------ restore

    async def restore(self) -> Checkpoint | None:
        """Read the partition's newest checkpoint and go on from it; None (logged) when
        there is none, InfluxDB does not answer within ``restore_timeout_s``, or it is
        refused: the collector then starts as it would without one."""
        p, timeout = self.store.partition, self.owner.cfg.state.restore_timeout_s
        try:
            cp = await asyncio.wait_for(asyncio.to_thread(self.store.read), timeout)
        except TimeoutError:
            log.error("checkpoint of partition %s: InfluxDB did not answer within %.0f s: "
                      "starting without it", p, timeout)
            return None
        except (QueryError, ValueError, KeyError, TypeError) as exc:  # ValueError: refused
            log.error("checkpoint of partition %s unreadable (%s): starting without it", p,
                      exc)
            return None
        if cp is None:
            log.info("no checkpoint of partition %s: starting afresh", p)
            return None
        facts = self.apply(cp, self.clock())
        when = datetime.fromtimestamp(cp.written_at, UTC).isoformat(timespec="seconds")
        log.info("restored checkpoint generation %d of partition %s from %s: %d open "
                 "outages, %d agents, %d facts (written by collector %s)", cp.generation, p,
                 when, len(cp.outages), len(cp.seen), facts, cp.collector)
        return cp

    def apply(self, cp: Checkpoint, now: float) -> int:
        """Go on from ``cp`` (before any message); return the engine facts taken."""
        o = self.owner
        self.generation = max(self.generation, cp.generation)
        o.sequences.restore(cp.sequences)
        o.guard.instances.restore(cp.instances)
        o.agents_online.update(cp.online)
        if o.alerting is not None:
            local = o.alerting.store.saved_at()
            if local is None or cp.written_at >= local:
                o.alerting.restore(cp.outages, cp.seen, now)
            else:
                log.info("outage state %s (saved %.0f s after the checkpoint) is newer: "
                         "its open outages and last seen kept", o.alerting.store.path,
                         local - cp.written_at)
        seed = cp.engine
        if o.engine is None or seed is None:
            return 0
        if now - seed.as_of > o.cfg.availability.stale_after_s:
            log.info("checkpoint's availability is %.0f s old (past stale_after_s): the "
                     "engine starts empty", now - seed.as_of)
            return 0
        return o.engine.continue_from(seed)

    # -------------------------------------------------------------------- write

    def snapshot(self, now: float) -> Checkpoint:
        """The partition's state now, as the next generation."""
        o = self.owner
        self.generation = max(self.generation + 1, round(now * 1000))
        core = o.alerting.core if o.alerting is not None else None
        return Checkpoint(
            partition=self.store.partition, collector=o.cfg.collector.id,
            generation=self.generation, written_at=now,
            outages=core.records() if core is not None else [],
            seen=core.liveness() if core is not None else {},
            sequences=o.sequences.positions(), online=dict(o.agents_online),
            instances=o.guard.instances.owners(),
            engine=o.engine.seed() if o.engine is not None else None)

    async def before_notifying(self, notifier: Notifier | None) -> None:
        """An outage opened, closed or changed: write now, Alertmanager told only after it
        (or after :data:`NOTIFY_WAIT_S`), so that a new owner never re-announces an outage
        already closed, nor opens again one already alerted."""
        if notifier is not None:
            notifier.hold()
        try:
            await asyncio.wait_for(self.write(), NOTIFY_WAIT_S)
        except TimeoutError:
            self.failures += 1
            log.warning("checkpoint of partition %s not written within %.0f s of an outage "
                        "change: Alertmanager told without it", self.store.partition,
                        NOTIFY_WAIT_S)
        finally:
            if notifier is not None:
                notifier.release()

    async def write(self) -> bool:
        """Write one generation now, unless fenced; False (logged once per failing spell)
        when InfluxDB refuses it."""
        async with self._lock:
            return await self._write()

    async def _write(self) -> bool:
        if not self.owner.owning():
            return False
        try:
            self.last_bytes = await self.store.write(self.snapshot(self.clock()))
        except (WriteUnavailable, WriteRejected, CheckpointError) as exc:
            self.failures += 1
            if not self._failing:
                log.error("checkpoint of partition %s not written (%s): a failover now "
                          "restores an older one", self.store.partition, exc)
                self._failing = True
            return False
        self.written += 1
        if self._failing:
            log.info("checkpoint of partition %s written again", self.store.partition)
            self._failing = False
        return True

    async def run(self) -> None:
        """Every ``checkpoint_interval_s``."""
        interval = self.owner.cfg.state.checkpoint_interval_s
        while True:
            await asyncio.sleep(interval)
            await self.write()

    def stats(self) -> dict[str, int]:
        return {"checkpoints_written": self.written, "checkpoint_failures": self.failures,
                "checkpoint_bytes": self.last_bytes}
