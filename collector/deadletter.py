"""Rejected payloads, kept where an operator can inspect them and replay them.

One JSON object per line in ``deadletter-YYYYMMDD-NNNN.jsonl`` under the configured
directory (UTC day, then a segment number): ``id`` (unique, for replay), ``received_at``,
``topic``, ``reason``, ``detail``, ``size`` and the payload (as text when it is UTF-8,
else base64 in ``payload_b64``). Payloads larger than 64 KiB are truncated
(``truncated: true``; such a record cannot be replayed). ``kind`` is ``"lines"`` for
line protocol InfluxDB refused (the payload is the lines), absent for an MQTT message.

Bounded, today's file included: a segment is closed at ``max_bytes / 8`` (and at the day
boundary), and before every write the oldest segments are removed while the directory
would exceed ``max_bytes`` or ``max_files``; the records removed are counted
(:attr:`DeadLetter.dropped`). A store that cannot be written (disk full, read-only,
permissions) never stops the collector: the record is counted in :attr:`failed`, logged
once when it starts failing and once when it works again.

Records already replayed (``xanet deadletter replay``) are listed by id in
``replayed.txt`` in the same directory; they stay until the budget removes their file.

Inspect with e.g. ``xanet deadletter list`` or
``jq -r '.reason' deadletter-*.jsonl | sort | uniq -c``.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

log = logging.getLogger("xanet.collector.deadletter")

KEEP_BYTES = 64 * 1024
SEGMENTS_PER_BUDGET = 8
PATTERN = "deadletter-*.jsonl"
REPLAYED = "replayed.txt"


class DeadLetter:
    def __init__(self, directory: Path, max_bytes: int, max_files: int = 1000) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_files = max(2, max_files)
        self.segment_bytes = max(1024, max_bytes // SEGMENTS_PER_BUDGET)
        self.written = 0  # records kept
        self.dropped = 0  # records removed to stay within the budget (or larger than it)
        self.failed = 0  # records that could not be written (disk full, I/O error)
        self.files_dropped = 0
        self._files: dict[Path, int] = {}  # segment -> bytes, oldest first
        self._total = 0  # sum of self._files' sizes
        self._current: Path | None = None
        self._fd: int | None = None
        self._failing: str | None = None  # why the store cannot be written, while it cannot
        self._ready = False
        self._open_dir()

    # -- the directory -------------------------------------------------------

    def _open_dir(self) -> bool:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
            files = {p: p.stat().st_size for p in self.directory.glob(PATTERN)}
        except OSError as exc:
            self._fail(f"dead-letter directory {self.directory}: {exc}")
            return False
        self._files = dict(sorted(files.items()))
        self._total = sum(files.values())
        self._ready = True
        return True

    def _fail(self, why: str) -> None:
        if self._failing is None:
            log.error("%s: rejected payloads are counted (dead_letters_failed) but not kept "
                      "until this is fixed; ingestion goes on", why)
        self._failing = why

    # -- writing -----------------------------------------------------------

    def keep(self, received_at: datetime, topic: str, reason: str, detail: str,
             payload: bytes, *, kind: str | None = None) -> str | None:
        """Keep one record; its id, or ``None`` when it could not be kept (counted)."""
        rid = uuid.uuid4().hex
        record: dict[str, object] = {
            "id": rid,
            "received_at": received_at.isoformat(),
            "topic": topic,
            "reason": reason,
            "detail": detail,
            "size": len(payload),
        }
        if kind is not None:
            record["kind"] = kind
        body = payload[:KEEP_BYTES]
        if len(payload) > KEEP_BYTES:
            record["truncated"] = True
        try:
            record["payload"] = body.decode("utf-8")
        except UnicodeDecodeError:
            record["payload_b64"] = base64.b64encode(body).decode()
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        if len(data) > self.max_bytes - self.max_bytes // SEGMENTS_PER_BUDGET:
            self.dropped += 1  # could never fit: counted as removed by the budget
            return None
        if not self._ready and not self._open_dir():
            self.failed += 1
            return None
        try:
            self._append(received_at, data)
        except OSError as exc:
            self.failed += 1
            self._close()
            self._fail(f"dead-letter store {self.directory}: {exc}")
            return None
        if self._failing is not None:
            log.info("dead-letter store %s writable again (%d record(s) could not be kept "
                     "meanwhile)", self.directory, self.failed)
            self._failing = None
        self.written += 1
        return rid

    def _append(self, received_at: datetime, data: bytes) -> None:
        day = f"deadletter-{received_at:%Y%m%d}-"
        cur = self._current
        if cur is None or not cur.name.startswith(day) or \
                self._files.get(cur, 0) + len(data) > self.segment_bytes:
            self._roll(day)
        self._trim(len(data))
        assert self._current is not None and self._fd is not None
        before = self._files[self._current]
        try:
            n = os.write(self._fd, data)
            if n != len(data):
                raise OSError(errno.ENOSPC, f"short write ({n} of {len(data)} bytes)")
        except OSError:
            try:  # no half record left behind for the reader to trip on
                os.ftruncate(self._fd, before)
            except OSError:
                pass
            raise
        self._files[self._current] = before + n
        self._total += n

    def _roll(self, day: str) -> None:
        """Start the next segment of ``day`` (after the newest that exists)."""
        self._close()
        taken = [int(p.name[len(day):-len(".jsonl")]) for p in self._files
                 if p.name.startswith(day) and p.name[len(day):-len(".jsonl")].isdigit()]
        path = self.directory / f"{day}{max(taken, default=-1) + 1:04d}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._current = path
        size = os.fstat(self._fd).st_size
        self._files[path] = size
        self._total += size
        self._files = dict(sorted(self._files.items()))

    def _trim(self, incoming: int) -> None:
        """Remove the oldest segments (never the current one) until ``incoming`` bytes fit."""
        while (self._total + incoming > self.max_bytes
               or len(self._files) > self.max_files):
            oldest = next(iter(self._files))
            if oldest == self._current:
                break  # the current segment alone fits: segment_bytes < max_bytes
            self._remove(oldest)

    def _remove(self, path: Path) -> None:
        try:
            with path.open("rb") as fh:
                records = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
            path.unlink()
        except FileNotFoundError:
            records = 0
        self._total -= self._files.pop(path)
        self.dropped += records
        self.files_dropped += 1
        log.warning("dead-letter store over its budget (%d bytes, %d files): removed %s "
                    "(%d record(s))", self.max_bytes, self.max_files, path.name, records)

    def _close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None
        self._current = None

    def close(self) -> None:
        self._close()

    # -- reading -------------------------------------------------------------

    @property
    def bytes(self) -> int:
        return self._total

    def records(self) -> list[dict[str, object]]:
        return [r for _, r in read_records(self.directory)]


def read_records(directory: Path) -> Iterator[tuple[Path, dict[str, object]]]:
    """Every record, oldest file first; a line that is not a JSON object is skipped."""
    for path in sorted(directory.glob(PATTERN)):
        try:
            fh = path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:  # removed by the budget meanwhile
            continue
        with fh:
            for ln in fh:
                try:
                    record = json.loads(ln)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield path, record


def replayed_ids(directory: Path) -> set[str]:
    try:
        text = (directory / REPLAYED).read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    return {ln.strip() for ln in text.splitlines() if ln.strip()}


def mark_replayed(directory: Path, ids: list[str]) -> None:
    """Record ``ids`` as replayed (appended and fsynced before the caller reports success)."""
    if not ids:
        return
    with (directory / REPLAYED).open("a", encoding="utf-8") as fh:
        fh.write("".join(f"{i}\n" for i in ids))
        fh.flush()
        os.fsync(fh.fileno())


def keep_lines(store: DeadLetter, received_at: datetime, reason: str, lines: list[str]) -> int:
    """Line protocol InfluxDB refused, as ``kind: lines`` records of at most ~60 KiB each (so
    none is truncated and every one can be replayed); returns the records kept."""
    kept = 0
    chunk: list[str] = []
    size = 0
    for ln in [*lines, None]:
        n = len(ln.encode()) + 1 if ln is not None else 0
        if chunk and (ln is None or size + n > KEEP_BYTES - 4096):
            if store.keep(received_at, "", "write_rejected", reason,
                          "\n".join(chunk).encode(), kind="lines") is not None:
                kept += 1
            chunk, size = [], 0
        if ln is not None:
            chunk.append(ln)
            size += n
    return kept
