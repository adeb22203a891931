from __future__ import annotations

from pathlib import Path

from agent.spool import Spool


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
