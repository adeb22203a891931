from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
