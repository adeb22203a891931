"""The checkpoint in a real InfluxDB 1.x (collector/statestore.py, collector/continuity.py):
chunks over the 64 KiB string limit put back together, two slots overwritten in turn, a
generation cut short or corrupt passed over for the one before, another partition's
never read, nothing written while fenced, InfluxDB away: a clean start without it."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

import lab
from collector.checkpoint import Checkpoint
from collector.config import CollectorConfig
from collector.continuity import Continuity
from collector.guard import Guard
from collector.schema import CHECKPOINT
from collector.sequence import SequenceTracker
from collector.statestore import CheckpointStore, slot_ms
from collector.writer import make_writer

T0 = 1_750_000_000.0


def config(url: str, db: str, partition: str = "p1") -> CollectorConfig:
    return CollectorConfig.model_validate({
        "partition": {"id": partition}, "state": {"restore_timeout_s": 5},
        "influx": {"url": url, "database": db, "timeout_s": 2}})


def big(generation: int, written_at: float) -> Checkpoint:
    """A checkpoint whose compressed form needs several chunks (random agent names)."""
    rng = random.Random(generation)
    seen = {"".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=24)): T0 + i
            for i in range(6000)}
    return Checkpoint("p1", "core-a", generation, written_at, seen=seen)


class Owner:
    def __init__(self, cfg: CollectorConfig) -> None:
        self.cfg = cfg
        self.sequences = SequenceTracker()
        self.guard = Guard(cfg.guards)
        self.agents_online: dict[str, bool] = {}
        self.alerting = None
        self.engine = None
        self.fenced = False

    def owning(self) -> bool:
        return not self.fenced


def chunks(influxdb: lab.InfluxDB1, db: str) -> list[dict[str, Any]]:
    return influxdb.query(f'SELECT "generation", "count" FROM "{CHECKPOINT.name}" '
                          'GROUP BY "partition", "chunk"', db=db, epoch="ms")


async def test_the_newest_whole_generation_of_the_partition_is_read(
        influxdb: lab.InfluxDB1, db: str, caplog: pytest.LogCaptureFixture) -> None:
    cfg = config(influxdb.url, db)
    writer = make_writer(cfg.influx)
    try:
        store = CheckpointStore(cfg, writer)
        assert store.read() is None
        for gen in (1, 2, 3):  # slots 0, 1, 0: generation 1 overwritten by 3
            await store.write(big(gen, T0 + gen))
        rows = chunks(influxdb, db)
        assert {r["generation"] for r in rows} == {2, 3}, "two slots, no stream"
        assert {r["time"] for r in rows} == {slot_ms(T0, 0), slot_ms(T0, 1)}
        assert max(r["count"] for r in rows) >= 3  # over 64 KiB: chunks
        got = store.read()
        assert got == big(3, T0 + 3)
        # another partition's newer checkpoint is not this one's
        other = CheckpointStore(config(influxdb.url, db, "p2"), writer)
        await other.write(replace_partition(big(9, T0 + 9), "p2"))
        assert store.read() == big(3, T0 + 3)
        # generation 4 dies half written (its first chunk only, in slot 1): 3 still whole
        lines = store.lines(big(4, T0 + 4))
        assert len(lines) >= 3
        await writer.write(lines[:1])
        caplog.set_level(logging.WARNING, logger="xanet.collector.statestore")
        assert store.read() == big(3, T0 + 3)
        # a whole generation 5 whose document is not this partition's: refused, logged
        foreign = store.lines(replace_partition(big(5, T0 + 5), "p2"))
        await writer.write(foreign)
        assert store.read() == big(3, T0 + 3)
        assert any("generation 5 of partition p1 refused" in r.getMessage()
                   for r in caplog.records)
    finally:
        await writer.close()


def replace_partition(cp: Checkpoint, partition: str) -> Checkpoint:
    from dataclasses import replace

    return replace(cp, partition=partition)


async def test_a_fenced_owner_writes_nothing_and_a_restore_without_influxdb_starts_clean(
        influxdb: lab.InfluxDB1, db: str, caplog: pytest.LogCaptureFixture) -> None:
    cfg = config(influxdb.url, db)
    writer = make_writer(cfg.influx)
    try:
        owner = Owner(cfg)
        owner.sequences.observe("agt-1", 7)
        keep = Continuity(owner, CheckpointStore(cfg, writer), clock=lambda: T0)
        owner.fenced = True
        assert not await keep.write()
        assert chunks(influxdb, db) == []
        owner.fenced = False
        assert await keep.write() and keep.written == 1
        fresh = Owner(cfg)
        restored = await Continuity(fresh, CheckpointStore(cfg, writer)).restore()
        assert restored is not None and fresh.sequences.highest("agt-1") == 7
    finally:
        await writer.close()
    away = config("http://127.0.0.1:9", db)  # nothing listens on the discard port
    writer = make_writer(away.influx)
    try:
        caplog.set_level(logging.ERROR, logger="xanet.collector.continuity")
        assert await Continuity(Owner(away), CheckpointStore(away, writer)).restore() is None
        assert any("checkpoint of partition p1 unreadable" in r.getMessage()
                   and "starting without it" in r.getMessage() for r in caplog.records)
    finally:
        await writer.close()


async def test_victoriametrics_keeps_no_checkpoint_and_says_so(
        victoria: lab.VictoriaMetrics, caplog: pytest.LogCaptureFixture) -> None:
    """VictoriaMetrics takes the write (204, strings stored as 0) and answers any /query
    with its database list: the restore says why it found nothing, the start is clean."""
    cfg = config(victoria.url, "xanet")
    writer = make_writer(cfg.influx)
    try:
        owner = Owner(cfg)
        owner.sequences.observe("agt-1", 7)
        assert await Continuity(owner, CheckpointStore(cfg, writer)).write()
        caplog.set_level(logging.ERROR, logger="xanet.collector.continuity")
        fresh = Owner(cfg)
        assert await Continuity(fresh, CheckpointStore(cfg, writer)).restore() is None
        assert fresh.sequences.agents() == []
        assert any("VictoriaMetrics cannot keep a checkpoint" in r.getMessage()
                   for r in caplog.records)
    finally:
        await writer.close()
