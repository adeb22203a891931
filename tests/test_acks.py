from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from collector.acks import AckQueue


def test_acks_wait_for_earlier_messages() -> None:
    q = AckQueue()
    a, b, c = q.receive(1, 1), q.receive(2, 1), q.receive(3, 1)
    assert q.settle(b) == []
    assert q.settle(c) == []
    assert [t.mid for t in q.settle(a)] == [1, 2, 3]
    assert q.unacked == 0


def test_qos0_needs_no_ack() -> None:
    q = AckQueue()
    t = q.receive(0, 0)
    assert t.settled and q.unacked == 0 and q.settle(t) == []


def test_reconnect_forgets_stale_tickets() -> None:
    q = AckQueue()
    old = q.receive(7, 1)
    q.new_connection()
    new = q.receive(7, 1)  # the broker reuses packet ids on the new connection
    assert q.settle(old) == []
    assert [t.mid for t in q.settle(new)] == [7]


@given(st.integers(1, 60), st.randoms())
def test_every_message_acked_once_in_arrival_order(n: int, rnd: random.Random) -> None:
    q = AckQueue()
    tickets = [q.receive(i, 1) for i in range(n)]
    order = list(tickets)
    rnd.shuffle(order)
    acked = [ready.mid for t in order for ready in q.settle(t)]
    assert acked == list(range(n))
