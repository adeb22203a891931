"""agent.budget: live first, the bandwidth budget and its auto estimator, on a fake clock
and a simulated thin link (pure: no sockets, no sleeping)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.budget import (
    AUTO_BACKOFF,
    AUTO_MAX_BYTES_PER_S,
    AUTO_MIN_ACKS,
    AUTO_MIN_BYTES_PER_S,
    AUTO_PROBE,
    AUTO_SLOW_START_WINDOW_S,
    AUTO_START_BYTES_PER_S,
    AUTO_WINDOW_MAX_S,
    AUTO_WINDOW_S,
    BURST_S,
    LIVE_WAIT_S,
    AutoBudget,
    BacklogBudget,
    BacklogGate,
    Bucket,
    Meter,
    Pacer,
    Window,
    cap_bytes,
    window_over,
)

# ----------------------------------------------------------------------- the budget


def _send_all(pacer: Pacer, arrivals: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """Each message (ready at, size) sent as early as the pacer lets it, in order."""
    now, sent = 0.0, []
    for ready, size in arrivals:
        now = max(now, ready)
        now += pacer.delay_s(now)
        assert pacer.delay_s(now) < 1e-9
        pacer.take(now, size)
        sent.append((now, size))
    return sent


def _worst_window(sent: list[tuple[float, int]], window_s: float) -> tuple[int, int]:
    """The most bytes and messages sent within any ``window_s`` (closed on both ends)."""
    most_bytes = most_msgs = 0
    for i, (start, _) in enumerate(sent):
        inside = [size for t, size in sent[i:] if t <= start + window_s]
        most_bytes = max(most_bytes, sum(inside))
        most_msgs = max(most_msgs, len(inside))
    return most_bytes, most_msgs


arrivals = st.lists(
    st.tuples(st.floats(0, 5, allow_nan=False), st.integers(1, 30_000)), min_size=1,
    max_size=80).map(lambda xs: sorted(xs))


@settings(max_examples=150, deadline=None)
@given(arrivals, st.floats(500, 1e6), st.floats(1, 1000), st.floats(0.05, 3))
def test_no_window_exceeds_the_budget(arrivals: list[tuple[float, int]], bytes_per_s: float,
                                      per_s: float, window_s: float) -> None:
    """Both bounds apply: in any window the backlog sends at most rate x (window +
    BURST_S) plus one message, in bytes and in messages: the long-run average never
    exceeds the budget."""
    sent = _send_all(Pacer(bytes_per_s, per_s), arrivals)
    most_bytes, most_msgs = _worst_window(sent, window_s)
    biggest = max(size for _, size in arrivals)
    assert most_bytes <= bytes_per_s * (window_s + BURST_S) + biggest + 1e-6
    assert most_msgs <= per_s * (window_s + BURST_S) + 1 + 1e-9
    span = sent[-1][0] - sent[0][0]
    total = sum(size for _, size in sent)
    assert total - sent[-1][1] <= bytes_per_s * (span + BURST_S) + 1e-6  # the average


def test_lateness_is_made_up_only_up_to_the_burst() -> None:
    b = Bucket(10.0)  # 10 units/s
    assert b.delay_s(0.0) == 0.0
    b.take(0.0, 1)
    assert b.delay_s(0.0) == pytest.approx(0.1)
    b.take(5.0, 1)  # 4.9 s late: only BURST_S of it is made up
    assert b.next_at == pytest.approx(5.0 - BURST_S + 0.1)
    assert b.delay_s(5.0) == 0.0  # one more at once (the burst) ...
    b.take(5.0, 1)
    assert b.delay_s(5.0) == pytest.approx(0.1)  # ... then the rate again


@pytest.mark.parametrize(("bytes_per_s", "per_s", "size", "expected_gap_s"), [
    (1000.0, 100.0, 500, 0.5),     # the bytes bound is the tighter one
    (1e6, 2.0, 500, 0.5),          # the messages bound is
    (None, 4.0, 500, 0.25),        # "off": messages/s only, as before the budget
    (2000.0, None, 1000, 0.5),     # bytes only
    (None, None, 1000, 0.0),       # nothing bounds the backlog
])
def test_both_bounds_apply(bytes_per_s: float | None, per_s: float | None, size: int,
                           expected_gap_s: float) -> None:
    pacer = Pacer(bytes_per_s, per_s)
    pacer.take(0.0, size)
    assert pacer.delay_s(0.0) == pytest.approx(expected_gap_s)


# ----------------------------------------------------------------------- live first


def test_live_first_and_the_in_flight_cap() -> None:
    gate = BacklogGate(cap_bytes=3000)
    assert gate.may_send(5000, live_waiting=False)  # alone, any size goes
    assert not gate.may_send(10, live_waiting=True)  # never while live waits
    gate.sent(2000)
    assert gate.may_send(1000, live_waiting=False)
    assert not gate.capped
    assert not gate.may_send(1001, live_waiting=False)
    assert gate.capped and gate.reset_capped() and not gate.capped
    gate.done(2000)
    assert gate.in_flight == 0 and gate.may_send(9999, live_waiting=False)
    assert cap_bytes(8000.0) == 8000.0 * LIVE_WAIT_S
    assert cap_bytes(None) == float("inf")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 20_000), st.booleans()),
                max_size=60), st.integers(1000, 50_000))
def test_backlog_in_flight_never_exceeds_the_cap_but_for_one(
        steps: list[tuple[bool, int, bool]], cap: int) -> None:
    """Whatever the order of sends and acks: the backlog bytes unacknowledged are at most
    the cap, or one message alone; and nothing goes while live waits."""
    gate, in_flight = BacklogGate(cap), deque[int]()
    for live_waiting, size, ack_first in steps:
        if ack_first and in_flight:
            gate.done(in_flight.popleft())
        if gate.may_send(size, live_waiting=live_waiting):
            assert not live_waiting
            gate.sent(size)
            in_flight.append(size)
        assert gate.in_flight_bytes == sum(in_flight)
        assert gate.in_flight_bytes <= cap or len(in_flight) == 1


# ----------------------------------------------------------------------- auto


def _w(sent: int, acked: int, *, capped: bool = False, busy: bool = True,
       duration_s: float = 2.0) -> Window:
    return Window(duration_s=duration_s, sent_bytes=sent, acked_bytes=acked, acks=8,
                  busy=busy, capped=capped)


@pytest.mark.parametrize(("windows", "expected"), [
    # the budget was the limit and the link kept up: doubling until the first back-off
    ([_w(8_000, 8_000)], 2 * AUTO_START_BYTES_PER_S),
    ([_w(8_000, 8_000), _w(16_000, 16_000)], 4 * AUTO_START_BYTES_PER_S),
    # the cap held the backlog: 0.8 x what was acknowledged per second
    ([_w(16_000, 10_000, capped=True)], AUTO_BACKOFF * 5_000),
    # after a back-off, the probe is gentle
    ([_w(16_000, 10_000, capped=True), _w(8_000, 8_000)], AUTO_BACKOFF * 5_000 * AUTO_PROBE),
    # sent at the budget, but the acks fell behind: no probe
    ([_w(8_000, 6_000)], AUTO_START_BYTES_PER_S),
    # something else limited the backlog (messages/s, the loop): the budget holds
    ([_w(2_000, 2_000)], AUTO_START_BYTES_PER_S),
    # an idle backlog measures nothing
    ([_w(0, 0, busy=False, capped=True)], AUTO_START_BYTES_PER_S),
    # bounded below and above
    ([_w(100, 0, capped=True)], AUTO_MIN_BYTES_PER_S),
    ([_w(2 * int(AUTO_MAX_BYTES_PER_S), 2 * int(AUTO_MAX_BYTES_PER_S))] * 40,
     AUTO_MAX_BYTES_PER_S),
])
def test_auto_budget_table(windows: list[Window], expected: float) -> None:
    auto = AutoBudget()
    for window in windows:
        budget = auto.observe(window)
    assert budget == pytest.approx(expected)
    assert AUTO_MIN_BYTES_PER_S <= budget <= AUTO_MAX_BYTES_PER_S


def test_a_window_lasts_until_enough_acks_came_back() -> None:
    assert not window_over(AUTO_WINDOW_S * 0.9, 100)
    assert not window_over(AUTO_WINDOW_S, AUTO_MIN_ACKS - 1)  # big batches: more PUBACKs
    assert window_over(AUTO_WINDOW_S, AUTO_MIN_ACKS)
    assert window_over(AUTO_WINDOW_MAX_S, 0)  # but not for ever
    assert window_over(AUTO_SLOW_START_WINDOW_S, AUTO_MIN_ACKS, slow_start=True)
    assert not window_over(AUTO_SLOW_START_WINDOW_S, AUTO_MIN_ACKS)
    meter = Meter(10.0)
    meter.sent(5000)
    for _ in range(AUTO_MIN_ACKS):
        meter.acked(1000)
    assert meter.close(10.0 + AUTO_WINDOW_S / 2, capped=False) is None
    window = meter.close(10.0 + AUTO_WINDOW_S, capped=True)
    assert window == Window(duration_s=AUTO_WINDOW_S, sent_bytes=5000,
                            acked_bytes=1000 * AUTO_MIN_ACKS, acks=AUTO_MIN_ACKS,
                            busy=True, capped=True)
    assert (meter.started, meter.sent_bytes, meter.acks) == (10.0 + AUTO_WINDOW_S, 0, 0)


# ------------------------------------------------- a simulated thin link, live and backlog


@dataclass
class _Msg:
    live: bool
    size: int
    queued_at: float
    left: float


def _simulate(link_bytes_per_s: float, budget: float | str, *, backlog_size: int,
              live_every_s: float = 1.0, live_size: int = 600, seconds: float = 120.0,
              rtt_s: float = 0.05, dt: float = 0.005) -> dict[str, float]:
    """The uplink's lanes over a FIFO link of ``link_bytes_per_s`` (fake clock): an
    endless backlog of ``backlog_size`` messages, a live message every ``live_every_s``.
    Returns the backlog's average throughput over the second half, the worst time a
    live message waited in the link behind others, and the budget at the end."""
    b = BacklogBudget(budget, None, 0.0)
    link: deque[_Msg] = deque()
    acks: list[tuple[float, _Msg]] = []
    live_waiting: list[_Msg] = []
    backlog_acked: list[tuple[float, int]] = []
    live_wait_s, next_live, now = 0.0, 0.0, 0.0
    while now < seconds:
        if now >= next_live:  # a poll is stored: the live lane sends it at once
            live_waiting.append(_Msg(True, live_size, now, live_size))
            next_live += live_every_s
        while live_waiting:
            link.append(live_waiting.pop(0))
        while b.delay_s(now) == 0 and b.may_send(backlog_size, live_waiting=bool(live_waiting)):
            b.sent(now, backlog_size)
            link.append(_Msg(False, backlog_size, now, backlog_size))
        room = link_bytes_per_s * dt
        while link and room > 0:
            head = link[0]
            used = min(room, head.left)
            head.left -= used
            room -= used
            if head.left <= 0:
                link.popleft()
                acks.append((now + rtt_s, head))
                if head.live:
                    own_s = head.size / link_bytes_per_s
                    live_wait_s = max(live_wait_s, now - head.queued_at - own_s)
        for at, msg in [a for a in acks if a[0] <= now]:
            acks.remove((at, msg))
            if not msg.live:
                b.done(msg.size, acked=True)
                backlog_acked.append((at, msg.size))
        now += dt
    half = seconds / 2
    late = sum(size for at, size in backlog_acked if at >= half)
    return {"backlog_bytes_per_s": late / (seconds - half), "live_wait_s": live_wait_s,
            "budget": b.bytes_per_s or 0.0}


@pytest.mark.parametrize("link_bytes_per_s", [4_000, 8_000, 40_000])
def test_fixed_budget_below_the_link_keeps_live_waits_short(link_bytes_per_s: int) -> None:
    """A budget of half the link: the backlog drains at the budget, live never queues
    behind more than the in-flight cap."""
    budget = link_bytes_per_s / 2
    r = _simulate(link_bytes_per_s, budget, backlog_size=2_000)
    assert r["backlog_bytes_per_s"] <= budget * 1.02
    assert r["backlog_bytes_per_s"] >= budget * 0.8
    assert r["live_wait_s"] <= (budget * LIVE_WAIT_S + 2_000) / link_bytes_per_s + 0.05


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([2_500, 8_000, 25_000, 120_000]), st.sampled_from([500, 2_200, 20_000]))
def test_auto_finds_the_link_and_live_waits_stay_bounded(link_bytes_per_s: int,
                                                         backlog_size: int) -> None:
    """Auto on links of 20 kbit/s to ~1 Mbit/s, small messages to big batches: the
    backlog gets most of the link (live polls take their share: ~600 bytes/s), the
    budget stays within reach of the link, and a live message waits behind at most
    ~LIVE_WAIT_S of budget (+ a message in the link and one being sent)."""
    r = _simulate(link_bytes_per_s, "auto", backlog_size=backlog_size)
    live_share = 600.0
    assert r["backlog_bytes_per_s"] <= link_bytes_per_s
    assert r["backlog_bytes_per_s"] >= 0.55 * (link_bytes_per_s - live_share)
    assert r["budget"] <= 2.5 * link_bytes_per_s
    # (until the first window closed, the budget is where auto starts, which may be
    # above the thinnest links)
    budget_at_most = max(AUTO_START_BYTES_PER_S, 2.5 * link_bytes_per_s)
    assert r["live_wait_s"] <= (budget_at_most * LIVE_WAIT_S + 2 * backlog_size
                                ) / link_bytes_per_s


def test_off_means_messages_per_second_only() -> None:
    b = BacklogBudget("off", 50.0, 0.0)
    assert b.bytes_per_s is None and b.auto is None
    assert b.tick(100.0) is None
    b.sent(0.0, 10**6)
    assert b.delay_s(0.0) == pytest.approx(1 / 50)
    assert b.may_send(10**9, live_waiting=False)  # no byte cap
