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

The disk can fail under it (docs/delivery.md, "When the disk fails"):

* **Corrupt file** (a power cut on a card that lies about fsync, a truncated or
  overwritten file: "database disk image is malformed", "file is not a database"):
  found by ``PRAGMA quick_check`` at start, or by any statement later. The file
  (and its WAL) is renamed aside as ``<name>.corrupt-<UTC time>`` for inspection, a
  fresh spool is started, and ``corruption`` says so (for the log and the status).
* **Sequence numbers keep increasing** across that: a side file ``<name>.seq`` holds
  a reservation (every number ever allocated is below it, written ahead in blocks of
  :data:`SEQ_BLOCK`), and a fresh spool starts at the reservation. Without the side
  file either, the fresh spool starts at the wall clock in milliseconds.
* **Disk full** (SQLITE_FULL, ENOSPC): :meth:`put` raises :class:`SpoolFull` and
  stores nothing; the next put after space came back works again.
* **Quarantine**: a message the broker can never take (larger than its Maximum
  Packet Size) is moved out of the outbox into the ``quarantine`` table (the last
  :data:`QUARANTINE_KEEP` kept for inspection) and counted (``quarantined``).
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from agent.errors import SpoolError, SpoolFull

log = logging.getLogger("xanet.agent.spool")

T = TypeVar("T")

#: Sequence numbers reserved ahead in the side file (one small write per block).
SEQ_BLOCK = 1024
#: Quarantined messages kept for inspection (the count goes on).
QUARANTINE_KEEP = 100

_SQLITE_FULL = 13
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26

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
INSERT OR IGNORE INTO meta(key, value) VALUES ('dropped', 0), ('quarantined', 0);
CREATE TABLE IF NOT EXISTS quarantine (
    seq      INTEGER PRIMARY KEY,
    topic    TEXT    NOT NULL,
    payload  BLOB    NOT NULL,
    created  REAL    NOT NULL,
    reason   TEXT    NOT NULL
);
"""


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL or "is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC

_SYNC = {"always": "FULL", "batch": "NORMAL", "off": "OFF"}
#: :meth:`Spool.pending_bytes`: summed exactly up to this depth, else estimated from the
#: oldest and newest this-many messages.
BYTES_EXACT = 2_000
BYTES_SAMPLE = 500


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
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.seq_path = path.with_name(path.name + ".seq")
        self.max_messages = max_messages
        self.max_age_s = max_age_s
        self._fsync = fsync
        self._wall = wall_clock
        #: what happened to a corrupt spool file (for the log and the status), else None
        self.corruption: str | None = None
        self._db = self._open()
        self._depth = self._scalar("SELECT count(*) FROM outbox")
        self._quarantined = self._scalar("SELECT value FROM meta WHERE key='quarantined'")
        self._timed_sync = fsync == "batch"
        self._sync_interval_s = sync_interval_s
        self._clock = clock
        self._synced_at = clock()
        self.syncs = 0  # timed checkpoints run (batch mode)

    # -- opening, and surviving a corrupt file ---------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={_SYNC[self._fsync]}")
            check = db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check[0] if check else '?'}")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
            if row is None:  # a new file: start where every earlier number is behind us
                db.execute("INSERT INTO meta(key, value) VALUES ('next_seq', ?)",
                           (self._seq_floor(),))
            self._reserved = max(self._read_reservation() or 0,
                                 int(db.execute("SELECT value FROM meta WHERE "
                                                "key='next_seq'").fetchone()[0]))
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if _is_full(exc):
                raise SpoolFull(f"spool {self.path}: {exc}") from exc
            self._set_aside(exc)
            return self._connect()

    def _set_aside(self, exc: BaseException) -> None:
        """Rename the corrupt file (and its WAL) aside, for inspection; the caller opens
        a fresh one."""
        stamp = datetime.fromtimestamp(self._wall(), UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.rename(f"{aside}{suffix}")
        Path(f"{self.path}-shm").unlink(missing_ok=True)
        floor = self._seq_floor()
        self.corruption = (f"spool file corrupt ({exc}); set aside as {aside.name}, fresh "
                           f"spool started at seq {floor}: its unsent messages are lost")
        log.error("spool %s: %s", self.path, self.corruption)

    def _recover(self, exc: sqlite3.DatabaseError) -> None:
        """A statement found the open file corrupt: set it aside and start afresh."""
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        self._set_aside(exc)
        self._db = self._connect()
        self._depth = 0
        self._quarantined = 0

    def _guard(self, what: Callable[[], T], fallback: T) -> T:
        """Run a read or an ack; a corrupt file is set aside and ``fallback`` returned."""
        try:
            return what()
        except sqlite3.DatabaseError as exc:
            if _is_full(exc):
                raise SpoolFull(f"spool {self.path}: {exc}") from exc
            if not _is_corrupt(exc):
                raise SpoolError(f"spool {self.path}: {exc}") from exc
            self._recover(exc)
            return fallback

    # -- the sequence reservation (side file) ------------------------------------

    def _read_reservation(self) -> int | None:
        try:
            return int(self.seq_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _seq_floor(self) -> int:
        """Where a fresh spool starts: the reservation, else the wall clock in ms (greater
        than any count of messages an agent could have sent)."""
        reserved = self._read_reservation()
        if reserved is not None:
            return reserved
        return 0 if not self._any_history() else int(self._wall() * 1000)

    def _any_history(self) -> bool:
        """Has this spool path ever held a spool (a set-aside file next to it)?"""
        return any(self.path.parent.glob(f"{self.path.name}.corrupt-*"))

    def _reserve(self, seq: int) -> None:
        """Make sure the side file says every number up to ``seq`` is taken."""
        if seq < self._reserved:
            return
        upto = seq + SEQ_BLOCK
        tmp = self.seq_path.with_name(self.seq_path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(f"{upto}\n")
            if self._fsync != "off":
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.seq_path)
        self._reserved = upto

    def _scalar(self, sql: str, *args: object) -> int:
        row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        self._db.close()

    # -- writing -------------------------------------------------------------

    def put(self, topic: str, make_payload: Callable[[int], bytes], now: float) -> int:
        """Allocate the next sequence number, build the payload with it, store both.

        Returns the sequence number. Enforces the bounds (drops the oldest).
        Raises :class:`SpoolFull` (disk full) or :class:`SpoolError` (another I/O error)
        having stored nothing; a corrupt file is set aside and the put retried once on a
        fresh spool.
        """
        def put() -> int | None:
            return self._put(topic, make_payload, now)

        try:
            seq = self._guard(put, None)
            if seq is None:  # the file was corrupt and set aside: once on the fresh spool
                seq = self._guard(put, None)
            if seq is None:
                raise SpoolError(f"spool {self.path}: corrupt again on a fresh file")
        except OSError as exc:  # the reservation's side file
            if _is_full(exc):
                raise SpoolFull(f"spool {self.path}: {exc}") from exc
            raise SpoolError(f"spool {self.path}: {exc}") from exc
        self._maybe_sync()
        return seq

    def _put(self, topic: str, make_payload: Callable[[int], bytes], now: float) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = self._scalar("SELECT value FROM meta WHERE key='next_seq'")
            self._reserve(seq)
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
            try:
                if db.in_transaction:  # SQLite may have rolled back by itself (SQLITE_FULL)
                    db.execute("ROLLBACK")
                self._depth = self._scalar("SELECT count(*) FROM outbox")
            except sqlite3.Error:
                pass  # the original error says more (a corrupt file is handled by put)
            raise
        return seq

    def _maybe_sync(self) -> None:
        """Batch mode: bound what a power cut can take to ``sync_interval_s`` of commits."""
        if self._timed_sync and self._clock() - self._synced_at >= self._sync_interval_s:
            self._synced_at = self._clock()
            # In WAL mode with synchronous=NORMAL a checkpoint fsyncs the WAL, then the file.
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.OperationalError as exc:  # disk full: the WAL still holds it all
                if not _is_full(exc):
                    raise
                return
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
        """The broker has the message: forget it. Raises :class:`SpoolFull` when even the
        delete cannot be logged (the message then goes again: a duplicate the collector
        recognises by its sequence number)."""

        def delete() -> None:
            cur = self._db.execute("DELETE FROM outbox WHERE seq=?", (seq,))
            self._depth -= max(cur.rowcount, 0)
            self._maybe_sync()

        self._guard(delete, None)

    def quarantine(self, seq: int, reason: str) -> None:
        """Move a message the broker can never take out of the outbox (kept for
        inspection, the last :data:`QUARANTINE_KEEP`; counted in ``quarantined``)."""

        def move() -> None:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR REPLACE INTO quarantine(seq, topic, payload, created, "
                           "reason) SELECT seq, topic, payload, created, ? FROM outbox "
                           "WHERE seq=?", (reason, seq))
                cur = db.execute("DELETE FROM outbox WHERE seq=?", (seq,))
                moved = max(cur.rowcount, 0)
                self._depth -= moved
                db.execute("UPDATE meta SET value = value + ? WHERE key='quarantined'",
                           (moved,))
                db.execute("DELETE FROM quarantine WHERE seq NOT IN (SELECT seq FROM "
                           "quarantine ORDER BY seq DESC LIMIT ?)", (QUARANTINE_KEEP,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            self._quarantined += moved

        self._guard(move, None)

    # -- reading -------------------------------------------------------------

    def peek(self, *, after: int = -1, before: int | None = None, limit: int = 100) -> list[Entry]:
        """Unacknowledged messages with ``after < seq < before``, oldest first."""
        return self._guard(lambda: self._peek(after, before, limit), [])

    def _peek(self, after: int, before: int | None, limit: int) -> list[Entry]:
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
        return self._guard(lambda: self._scalar("SELECT value FROM meta WHERE key='next_seq'"),
                           0)

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def dropped(self) -> int:
        return self._guard(lambda: self._scalar("SELECT value FROM meta WHERE key='dropped'"),
                           0)

    @property
    def quarantined(self) -> int:
        return self._quarantined

    def quarantined_entries(self) -> list[tuple[Entry, str]]:
        """The messages kept in quarantine, oldest first, with why."""
        rows: list[tuple[int, str, bytes, float, str]] = self._guard(lambda: self._db.execute(
            "SELECT seq, topic, payload, created, reason FROM quarantine ORDER BY seq"
        ).fetchall(), [])
        return [(Entry(int(s), str(t), bytes(p), float(c)), str(r)) for s, t, p, c, r in rows]

    def pending_bytes(self) -> int:
        """The payload bytes of the messages still to send: summed up to
        :data:`BYTES_EXACT` messages; beyond, the depth times the mean size of the oldest
        and newest :data:`BYTES_SAMPLE` each (a scan of a 200,000-message spool would
        stall the event loop for a third of a second at every status)."""
        def pending() -> int:
            depth = self.depth
            if depth <= BYTES_EXACT:
                return self._scalar("SELECT coalesce(sum(length(payload)), 0) FROM outbox")
            row = self._db.execute(
                "SELECT avg(n) FROM (SELECT * FROM (SELECT length(payload) AS n FROM outbox "
                "ORDER BY seq LIMIT ?) UNION ALL SELECT * FROM (SELECT length(payload) FROM "
                "outbox ORDER BY seq DESC LIMIT ?))", (BYTES_SAMPLE, BYTES_SAMPLE)).fetchone()
            return round(depth * float(row[0] or 0))

        return self._guard(pending, 0)

    def oldest_created(self) -> float | None:
        def oldest() -> float | None:
            row = self._db.execute("SELECT min(created) FROM outbox").fetchone()
            return float(row[0]) if row and row[0] is not None else None

        return self._guard(oldest, None)
