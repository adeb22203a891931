"""Where a partition's checkpoint is kept: InfluxDB's ``collector_checkpoint`` measurement,
written in chunks, read back as the newest complete generation.

Each generation's chunks are written in one request at one timestamp of two *slots* per
hour (the hour's start + 0 or 1 ms, alternating): a write overwrites the slot before the
previous one (same series and timestamp), so InfluxDB holds two generations an hour per
partition, never a stream of them, and a write cut short leaves the other slot whole.
Reading takes the generations of the newest slots of chunk 0, newest first, and the first
that assembles and decodes wins (collector/checkpoint.py). The reads are InfluxQL
(``/query``: InfluxDB 1.x, 2.x with a DBRP mapping); VictoriaMetrics stores string fields
as 0 and answers no InfluxQL, so it cannot keep a checkpoint (docs/delivery.md).
"""

from __future__ import annotations

import logging
import math

from collector.checkpoint import (
    Checkpoint,
    CheckpointError,
    Chunk,
    assemble,
    decode,
    encode,
    to_chunks,
)
from collector.config import CollectorConfig
from collector.readback import InfluxQL, QueryError
from collector.schema import CHECKPOINT, checkpoint_line
from collector.writer import LineWriter

log = logging.getLogger("xanet.collector.statestore")

SLOT_PERIOD_MS = 3_600_000
#: Newest slots of chunk 0 looked at when reading (two an hour).
CANDIDATES = 4


def slot_ms(written_at: float, slot: int) -> int:
    """The timestamp a generation written at ``written_at`` in ``slot`` (0 or 1) takes."""
    return math.floor(written_at * 1000 / SLOT_PERIOD_MS) * SLOT_PERIOD_MS + slot


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class CheckpointStore:
    """The checkpoints of one partition in the collector's InfluxDB."""

    def __init__(self, cfg: CollectorConfig, writer: LineWriter) -> None:
        self.cfg = cfg
        self.partition = cfg.partition_id()
        self.max_bytes = cfg.state.max_checkpoint_bytes
        self.writer = writer
        self._slot = 0

    def lines(self, cp: Checkpoint) -> list[str]:
        """The checkpoint's lines (:class:`CheckpointError` when it is over the limit)."""
        blob = encode(cp, self.max_bytes)
        ts = slot_ms(cp.written_at, self._slot)
        return [checkpoint_line(self.partition, c.index, c.count, c.generation, c.sha,
                                c.data, cp.collector, len(blob), ts)
                for c in to_chunks(cp.generation, blob)]

    async def write(self, cp: Checkpoint) -> int:
        """Write one generation; return its encoded size. Raises the writer's errors and
        :class:`CheckpointError`."""
        lines = self.lines(cp)
        await self.writer.write(lines)
        self._slot ^= 1
        return sum(len(ln) for ln in lines)

    def read(self) -> Checkpoint | None:
        """The newest checkpoint of the partition that is whole and valid; None when there
        is none. Raises :class:`collector.readback.QueryError` when InfluxDB cannot answer.
        A generation that does not decode is logged and the one before is tried."""
        where = f'"partition" = {_quote(self.partition)}'
        db = InfluxQL(self.cfg)
        try:
            heads = db.rows(f'SELECT "generation", "count", "sha" FROM "{CHECKPOINT.name}" '
                            f"WHERE {where} AND \"chunk\" = '0' ORDER BY time DESC "
                            f"LIMIT {CANDIDATES}")
            if any(not isinstance(h.get("time"), int) or not isinstance(
                    h.get("generation"), int) for h in heads):
                raise QueryError(f"{db.url}/query: not the InfluxQL answer asked for (a "
                                 "VictoriaMetrics cannot keep a checkpoint: docs/delivery.md)")
            for head in sorted(heads, key=lambda r: -int(r["generation"])):
                rows = db.rows(f'SELECT "generation", "count", "sha", "data" FROM '
                               f'"{CHECKPOINT.name}" WHERE {where} AND time = {head["time"]}ms '
                               f'GROUP BY "chunk"')
                chunks = [_chunk(r) for r in rows]
                for gen, blob in assemble(c for c in chunks if c is not None):
                    try:
                        cp = decode(blob, self.partition, self.max_bytes)
                    except CheckpointError as exc:
                        log.error("checkpoint generation %d of partition %s refused: %s",
                                  gen, self.partition, exc)
                        continue
                    self._slot = 1 if head["time"] % 2 == 0 else 0  # the other slot next
                    return cp
                log.warning("checkpoint of partition %s at %d ms incomplete: trying an "
                            "older one", self.partition, head["time"])
        finally:
            db.close()
        return None


def _chunk(row: dict[str, object]) -> Chunk | None:
    try:
        index = int(str(row["chunk"]))
        gen, count = row["generation"], row["count"]
        sha, data = row["sha"], row["data"]
    except (KeyError, ValueError):
        return None
    if not (isinstance(gen, int) and isinstance(count, int) and isinstance(sha, str)
            and isinstance(data, str)):
        return None
    return Chunk(gen, index, count, sha, data)
