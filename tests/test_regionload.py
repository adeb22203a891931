"""lab.regionload's audit: what counts as lost, re-delivered and out of order (pure)."""

from __future__ import annotations

import pytest

from lab.regionload import audit

SENT = {("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)}


@pytest.mark.parametrize(("arrivals", "lost", "redelivered", "out_of_order"), [
    # in order, agents interleaved: all good
    ([("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2)], [], 0, []),
    # a re-delivery after a reconnection (the window again, in order): counted, not judged
    ([("a", 0), ("a", 1), ("b", 0), ("a", 0), ("a", 1), ("a", 2), ("b", 1)], [], 2, []),
    # a first arrival after a later one of its agent: out of order (b is not concerned)
    ([("a", 0), ("a", 2), ("b", 0), ("a", 1), ("b", 1)], [], 0, [("a", 1, 2)]),
    # a re-delivered message that arrived once in order is not out of order
    ([("a", 0), ("a", 1), ("a", 2), ("a", 1), ("b", 0), ("b", 1)], [], 1, []),
    # missing messages are listed, whatever else came
    ([("a", 0), ("a", 2), ("b", 1)], [("a", 1), ("b", 0)], 0, []),
])
def test_audit(arrivals: list[tuple[str, int]], lost: list[tuple[str, int]], redelivered: int,
               out_of_order: list[tuple[str, int, int]]) -> None:
    result = audit(SENT, arrivals)
    assert (result.lost, result.redelivered, result.out_of_order) == (
        lost, redelivered, out_of_order)
    assert result.sent == len(SENT) and result.received == len(arrivals)
    assert result.ok == (not lost and not out_of_order)
