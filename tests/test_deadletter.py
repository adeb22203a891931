"""collector.deadletter: the byte and file budget holds with today's file included, removed
records are counted, an unwritable store is counted and never raises."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.deadletter import DeadLetter, keep_lines, mark_replayed, read_records, replayed_ids

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def _size(d: Path) -> int:
    return sum(p.stat().st_size for p in d.glob("deadletter-*.jsonl"))


def test_one_day_flood_stays_within_the_byte_budget_and_counts_what_it_removed(
    tmp_path: Path,
) -> None:
    store = DeadLetter(tmp_path, max_bytes=64 * 1024)
    for i in range(2000):
        assert store.keep(T0, "t/x", "invalid", "bad", b"x" * 200 + str(i).encode())
        assert _size(tmp_path) <= 64 * 1024
    assert store.bytes == _size(tmp_path)
    kept = store.records()
    assert store.written == 2000
    assert store.dropped + len(kept) == 2000 and store.dropped > 0
    assert kept[-1]["payload"].endswith("1999")  # the newest survive
    assert all(p.name.startswith("deadletter-20261129-") for p in tmp_path.glob("*.jsonl"))


def test_file_budget(tmp_path: Path) -> None:
    store = DeadLetter(tmp_path, max_bytes=1 << 20, max_files=3)
    for day in range(6):
        store.keep(T0 + timedelta(days=day), "t", "invalid", "", b"{}")
    names = sorted(p.name for p in tmp_path.glob("deadletter-*.jsonl"))
    assert names == ["deadletter-20261202-0000.jsonl", "deadletter-20261203-0000.jsonl",
                     "deadletter-20261204-0000.jsonl"]
    assert store.dropped == 3 and store.files_dropped == 3


def test_restart_continues_the_budget_with_the_files_on_disk(tmp_path: Path) -> None:
    first = DeadLetter(tmp_path, max_bytes=16 * 1024)
    for _ in range(40):
        first.keep(T0, "t", "invalid", "", b"y" * 300)
    first.close()
    second = DeadLetter(tmp_path, max_bytes=16 * 1024)
    for _ in range(40):
        second.keep(T0, "t", "invalid", "", b"z" * 300)
        assert _size(tmp_path) <= 16 * 1024
    assert len({p.name for p in tmp_path.glob("*.jsonl")}) >= 2


def test_unwritable_directory_is_counted_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = DeadLetter(blocker / "dead", max_bytes=1 << 20)  # mkdir fails: ENOTDIR
    assert store.keep(T0, "t", "invalid", "", b"{}") is None
    assert store.failed == 1 and store.written == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only directories anyway")
def test_read_only_directory_is_counted(tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    store = DeadLetter(d, max_bytes=1 << 20)
    d.chmod(0o500)
    try:
        assert store.keep(T0, "t", "invalid", "", b"{}") is None
        assert store.failed == 1
    finally:
        d.chmod(0o700)


def test_reader_skips_a_torn_line_and_replay_marks(tmp_path: Path) -> None:
    store = DeadLetter(tmp_path, max_bytes=1 << 20)
    rid = store.keep(T0, "t", "ts_future", "", b'{"a":1}')
    store.close()
    (path,) = tmp_path.glob("deadletter-*.jsonl")
    with path.open("a") as fh:
        fh.write('{"id": "torn", "recei')
    records = [r for _, r in read_records(tmp_path)]
    assert [r["id"] for r in records] == [rid]
    mark_replayed(tmp_path, [str(rid)])
    assert replayed_ids(tmp_path) == {rid}


def test_refused_lines_are_chunked_so_none_is_truncated(tmp_path: Path) -> None:
    store = DeadLetter(tmp_path, max_bytes=16 << 20)
    lines = [f"m,t=x v={i}i {i}" for i in range(20_000)]
    kept = keep_lines(store, T0, "partial write", lines)
    records = store.records()
    assert kept == len(records) > 1
    assert not any(r.get("truncated") for r in records)
    assert [ln for r in records for ln in str(r["payload"]).split("\n")] == lines
    assert {r["kind"] for r in records} == {"lines"}
    assert json.dumps(records[0])  # plain JSON
