from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.spool import QUARANTINE_KEEP, Spool


def open_spool(path: Path, **kw: object) -> Spool:
    args: dict[str, object] = {"max_messages": 100, "max_age_s": 3600.0, "fsync": "off"}
    args.update(kw)
    return Spool(path, **args)  # type: ignore[arg-type]


def test_sequence_survives_restart_and_ack(tmp_path: Path) -> None:
    p = tmp_path / "s.sqlite3"
    sp = open_spool(p)
    seqs = [sp.put("t", lambda n: f"m{n}".encode(), 1000.0) for _ in range(3)]
    assert seqs == [0, 1, 2]
    sp.ack(1)
    sp.close()
    sp = open_spool(p)
    assert [(e.seq, e.payload) for e in sp.peek()] == [(0, b"m0"), (2, b"m2")]
    assert sp.put("t", lambda n: b"x", 1000.0) == 3
    assert sp.depth == 3
    assert [e.seq for e in sp.peek(after=0, before=3)] == [2]


def test_bounds_drop_oldest_and_count(tmp_path: Path) -> None:
    sp = open_spool(tmp_path / "s", max_messages=10, max_age_s=100.0)
    for i in range(15):
        sp.put("t", lambda n: b"x", 1000.0 + i)
    assert sp.depth == 10 and sp.dropped == 5
    assert sp.peek(limit=1)[0].seq == 5
    sp.put("t", lambda n: b"x", 1200.0)    # everything older than 1100 is too old
    assert sp.depth == 1 and sp.dropped == 15
    assert sp.oldest_created() == 1200.0


def test_failed_payload_build_leaves_nothing(tmp_path: Path) -> None:
    sp = open_spool(tmp_path / "s")

    def boom(n: int) -> bytes:
        raise RuntimeError("encode failed")

    try:
        sp.put("t", boom, 1.0)
    except RuntimeError:
        pass
    assert sp.depth == 0 and sp.next_seq == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("put"), st.floats(0, 500)),
                          st.tuples(st.just("ack"), st.integers(0, 60))), max_size=60),
       st.integers(1, 8), st.floats(1, 200))
def test_bounds_match_a_model(tmp_path_factory: pytest.TempPathFactory,
                              ops: list[tuple[str, float]], max_messages: int,
                              max_age_s: float) -> None:
    """Puts (times not monotonic) and acks against a dict: same rows, depth and dropped."""
    path = tmp_path_factory.mktemp("spool") / "s.sqlite3"
    sp = Spool(path, max_messages=max_messages, max_age_s=max_age_s, fsync="off")
    model: dict[int, float] = {}
    dropped = next_seq = 0
    for op, value in ops:
        if op == "put":
            seq = sp.put("t", lambda n: b"x", value)
            assert seq == next_seq
            next_seq += 1
            model[seq] = value
            too_old = [s for s, c in model.items() if c < value - max_age_s]
            excess = sorted(s for s in model if s not in too_old)[:max(
                0, len(model) - len(too_old) - max_messages)]
            for s in (*too_old, *excess):
                del model[s]
            dropped += len(too_old) + len(excess)
        else:
            sp.ack(int(value))
            model.pop(int(value), None)
        assert sp.depth == len(model) and sp.dropped == dropped
    assert [(e.seq, e.created) for e in sp.peek(limit=1000)] == sorted(model.items())
    sp.close()
    reopened = Spool(path, max_messages=max_messages, max_age_s=max_age_s, fsync="off")
    assert (reopened.next_seq, reopened.depth) == (next_seq, len(model))
    reopened.close()


# -- the disk fails (issue 14 rows 10, 11): corrupt files, the sequence reservation ---------


def _fill_spool(path: Path, n: int) -> int:
    sp = open_spool(path)
    for _ in range(n):
        sp.put("t", lambda seq: b"x" * 3000, 1000.0)
    next_seq = sp.next_seq
    sp.close()
    return next_seq


@pytest.mark.parametrize("damage", ["truncate", "overwrite", "garbage-header"])
def test_corrupt_file_is_set_aside_and_numbers_keep_increasing(tmp_path: Path,
                                                               damage: str) -> None:
    p = tmp_path / "s.sqlite3"
    used = _fill_spool(p, 40)
    size = p.stat().st_size
    with p.open("r+b") as f:
        if damage == "truncate":
            f.truncate(size // 3)
        elif damage == "overwrite":
            f.seek(size // 2)
            f.write(b"\xa5" * 20_000)
        else:
            f.write(b"not a database, not at all" * 10)
    sp = open_spool(p)
    assert sp.corruption is not None and "set aside" in sp.corruption
    aside = [x.name for x in tmp_path.glob("s.sqlite3.corrupt-*")]
    assert len(aside) == 1
    assert sp.depth == 0
    seq = sp.put("t", lambda n: b"y", 1000.0)
    assert seq >= used  # the reservation (side file) is above every number used
    assert seq - used <= 1024  # ... by at most one block: the collector's gap
    sp.close()
    assert open_spool(p).corruption is None  # the fresh file is sound


def test_reservation_lost_too_falls_back_to_the_clock(tmp_path: Path) -> None:
    p = tmp_path / "s.sqlite3"
    _fill_spool(p, 3)
    p.write_bytes(b"\0" * 4096)  # the spool gone ...
    p.with_name("s.sqlite3.seq").unlink()  # ... and its reservation
    (tmp_path / "s.sqlite3.corrupt-20260101T000000Z").write_bytes(b"")  # an earlier loss
    sp = Spool(p, max_messages=10, max_age_s=10.0, fsync="off", wall_clock=lambda: 1.8e9)
    assert sp.put("t", lambda n: b"y", 1.0) == 1_800_000_000_000


def test_quarantine_moves_counts_and_keeps_the_last(tmp_path: Path) -> None:
    sp = open_spool(tmp_path / "s", max_messages=1000)
    seqs = [sp.put("t", lambda n: f"m{n}".encode(), 1000.0) for _ in range(QUARANTINE_KEEP + 5)]
    for s in seqs[:-1]:
        sp.quarantine(s, "too large")
    assert sp.depth == 1 and sp.quarantined == QUARANTINE_KEEP + 4
    kept = sp.quarantined_entries()
    assert len(kept) == QUARANTINE_KEEP and kept[-1][0].seq == seqs[-2]
    assert [e.seq for e in sp.peek()] == [seqs[-1]]
    sp.close()
    assert open_spool(tmp_path / "s").quarantined == QUARANTINE_KEEP + 4


def test_corruption_found_while_running_is_set_aside(tmp_path: Path) -> None:
    """The file is damaged under a running spool; the next statement that reads the damaged
    pages sets it aside and carries on with a fresh spool (sequence numbers still rising)."""
    p = tmp_path / "s.sqlite3"
    sp = open_spool(p, max_messages=1000)
    for _ in range(40):
        sp.put("t", lambda seq: b"x" * 3000, 1000.0)
    sp._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # test: everything in the main file
    with p.open("r+b") as f:
        f.seek(8192)
        f.write(b"\xa5" * 60_000)
    other = sqlite3.connect(p, isolation_level=None)  # a write elsewhere: the running
    other.execute("CREATE TABLE IF NOT EXISTS poke(x)")  # connection's page cache is stale
    other.close()
    assert sp.peek() == []  # the reader got the fallback, not an exception
    assert sp.corruption is not None and "set aside" in sp.corruption
    assert sp.put("t", lambda n: b"y", 1000.0) >= 40
    assert len(list(tmp_path.glob("s.sqlite3.corrupt-*"))) >= 1


def test_pending_bytes_exact_then_estimated(tmp_path: Path) -> None:
    """The backlog's bytes for the status: summed while small, estimated from the oldest
    and newest messages beyond (no scan of a deep spool at every status)."""
    from agent.spool import BYTES_EXACT

    sp = Spool(tmp_path / "s.sqlite3", max_messages=10 * BYTES_EXACT, max_age_s=1e6,
               fsync="off")
    assert sp.pending_bytes() == 0
    for i in range(BYTES_EXACT):
        sp.put("t", lambda seq, i=i: b"x" * (100 + i % 7), 1.0)
    exact = sum(100 + i % 7 for i in range(BYTES_EXACT))
    assert sp.pending_bytes() == exact
    for _ in range(BYTES_EXACT):
        sp.put("t", lambda seq: b"y" * 103, 1.0)
    assert abs(sp.pending_bytes() - (exact + 103 * BYTES_EXACT)) <= 0.01 * exact
    sp.ack(0)
    assert sp.pending_bytes() > 0
    sp.close()
