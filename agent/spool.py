"""The agent's on-disk outbox: every message is stored before it is sent and
deleted only after the broker acknowledged it (PUBACK).

SQLite in WAL mode. Sequence numbers are allocated here, inside the same
transaction that stores the message, so they survive restarts and are never
reused. Bounded by count and age: when full, the oldest messages are dropped
and counted (``dropped``), never silently.

fsync policy (``SpoolConfig.fsync``):

* ``always`` — ``synchronous=FULL``: a committed message survives a power cut.
* ``batch`` (default) — ``synchronous=NORMAL`` in WAL mode: a commit is not
  fsynced, so it survives a crash or SIGKILL of the agent (the OS has it) but
  not by itself a power cut. SQLite alone would sync only at its automatic
  checkpoints (every 1,000 WAL pages: ~300 polls, half an hour of a 10-device
  site polled every minute while the backhaul is down), so the spool runs a
  checkpoint — which syncs the WAL first — once ``sync_interval_s`` (1 s) has
  passed since the last one, on the next write. A power cut loses at most the
  polls committed in that last second, and the sequence numbers allocated in it
  are allocated again after the restart (the collector then counts them as
  duplicates; the points themselves carry their own timestamps). The database
  is never corrupted.
* ``off`` — ``synchronous=OFF``, no timed checkpoint: for RAM disks / tests.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY,
    topic    TEXT    NOT NULL,
    payload  BLOB    NOT NULL,
    created  REAL    NOT NULL
);
-- The age bound deletes by created on every put: without this index that is a scan of
-- the whole backlog per message (O(depth) CPU: 30 ms per put at 20,000 waiting).
CREATE INDEX IF NOT EXISTS outbox_created ON outbox(created);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta(key, value) VALUES ('next_seq', 0), ('dropped', 0);
"""

_SYNC = {"always": "FULL", "batch": "NORMAL", "off": "OFF"}


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    topic: str
    payload: bytes
    created: float


class Spool:
    """A durable FIFO of MQTT messages keyed by sequence number. Not thread-safe."""

    def __init__(
        self,
        path: Path,
        *,
        max_messages: int,
        max_age_s: float,
        fsync: Literal["always", "batch", "off"] = "batch",
        sync_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_messages = max_messages
        self.max_age_s = max_age_s
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={_SYNC[fsync]}")
        self._db.executescript(_SCHEMA)
        self._depth = self._scalar("SELECT count(*) FROM outbox")
        self._timed_sync = fsync == "batch"
        self._sync_interval_s = sync_interval_s
        self._clock = clock
        self._synced_at = clock()
        self.syncs = 0  # timed checkpoints run (batch mode)

    def _scalar(self, sql: str, *args: object) -> int:
        row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        self._db.close()

    # -- writing -------------------------------------------------------------

    def put(self, topic: str, make_payload: Callable[[int], bytes], now: float) -> int:
        """Allocate the next sequence number, build the payload with it, store both.

        Returns the sequence number. Enforces the bounds (drops the oldest).
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = self._scalar("SELECT value FROM meta WHERE key='next_seq'")
            payload = make_payload(seq)
            db.execute(
                "INSERT INTO outbox(seq, topic, payload, created) VALUES (?, ?, ?, ?)",
                (seq, topic, payload, now),
            )
            db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq + 1,))
            self._depth += 1
            self._enforce_bounds(now)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._depth = self._scalar("SELECT count(*) FROM outbox")
            raise
        self._maybe_sync()
        return seq

    def _maybe_sync(self) -> None:
        """Batch mode: bound what a power cut can take to ``sync_interval_s`` of commits."""
        if self._timed_sync and self._clock() - self._synced_at >= self._sync_interval_s:
            # In WAL mode with synchronous=NORMAL a checkpoint fsyncs the WAL, then the file.
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._synced_at = self._clock()
            self.syncs += 1

    def _enforce_bounds(self, now: float) -> None:
        dropped = 0
        cur = self._db.execute("DELETE FROM outbox WHERE created < ?", (now - self.max_age_s,))
        dropped += max(cur.rowcount, 0)
        excess = self._depth - dropped - self.max_messages
        if excess > 0:
            cur = self._db.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                (excess,),
            )
            dropped += max(cur.rowcount, 0)
        if dropped:
            self._depth -= dropped
            self._db.execute("UPDATE meta SET value = value + ? WHERE key='dropped'", (dropped,))

    def ack(self, seq: int) -> None:
        """The broker has the message: forget it."""
        cur = self._db.execute("DELETE FROM outbox WHERE seq=?", (seq,))
        self._depth -= max(cur.rowcount, 0)
        self._maybe_sync()

    # -- reading -------------------------------------------------------------

    def peek(self, *, after: int = -1, before: int | None = None, limit: int = 100) -> list[Entry]:
        """Unacknowledged messages with ``after < seq < before``, oldest first."""
        if before is None:
            rows = self._db.execute(
                "SELECT seq, topic, payload, created FROM outbox WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT seq, topic, payload, created FROM outbox WHERE seq > ? AND seq < ? "
                "ORDER BY seq LIMIT ?",
                (after, before, limit),
            ).fetchall()
        return [Entry(int(s), str(t), bytes(p), float(c)) for s, t, p, c in rows]

    @property
    def next_seq(self) -> int:
        return self._scalar("SELECT value FROM meta WHERE key='next_seq'")

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def dropped(self) -> int:
        return self._scalar("SELECT value FROM meta WHERE key='dropped'")

    def oldest_created(self) -> float | None:
        row = self._db.execute("SELECT min(created) FROM outbox").fetchone()
        return float(row[0]) if row and row[0] is not None else None
