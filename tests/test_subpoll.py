"""Counter32-only ports too fast for the poll interval: which are read between polls, how
often, and the rate those readings give (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.rates import DeviceSample, IfCounters, RatePolicy, RateReason, RateTracker
from agent.subpoll import CounterBridges, CounterReading, SubPlan, SubPollPolicy, plan

G = 1_000_000_000
M32 = 2**32


def sample(mono_s: float, ports: dict[int, tuple[int, int, bool, int | None]],
           uptime_cs: int | None = None) -> DeviceSample:
    return DeviceSample(mono_s, int(mono_s * 100) if uptime_cs is None else uptime_cs, {
        i: IfCounters(i, f"p{i}", in_o, out_o, hc, speed)
        for i, (in_o, out_o, hc, speed) in ports.items()})


@pytest.mark.parametrize(("interval_s", "ports", "policy", "want"), [
    # gigabit Counter32-only at 60 s: one wrap takes 31 s at 1.1 Gbit/s -> every 20 s
    (60, {1: (0, 0, False, G)}, SubPollPolicy(), SubPlan(20.0, 2, (1,), False)),
    # the same port with 64-bit counters, or a slow one, or a short interval: nothing
    (60, {1: (0, 0, True, G)}, SubPollPolicy(), None),
    (60, {1: (0, 0, False, 100_000_000)}, SubPollPolicy(), None),
    (30, {1: (0, 0, False, G)}, SubPollPolicy(), None),
    # no speed known: nothing (no check without a speed either)
    (60, {1: (0, 0, False, None)}, SubPollPolicy(), None),
    # only the fast ports are read
    (60, {1: (0, 0, False, G), 2: (0, 0, False, 10_000_000), 3: (0, 0, False, 2 * G)},
     SubPollPolicy(), SubPlan(12.0, 4, (1, 3), False)),
    # 10G Counter32-only: 3 s per wrap; bounded: 5 readings, 10 s apart at most -> capped
    (60, {1: (0, 0, False, 10 * G)}, SubPollPolicy(), SubPlan(10.0, 5, (1,), True)),
    (60, {1: (0, 0, False, 10 * G)}, SubPollPolicy(min_interval_s=20),
     SubPlan(20.0, 2, (1,), True)),
    (60, {1: (0, 0, False, G)}, SubPollPolicy(enabled=False), None),
    (60, {1: (0, 0, False, G)}, SubPollPolicy(min_interval_s=40), None),
])
def test_plan(interval_s: float, ports: dict[int, tuple[int, int, bool, int | None]],
              policy: SubPollPolicy, want: SubPlan | None) -> None:
    assert plan(sample(0, ports), RatePolicy(poll_interval_s=interval_s), policy) == want


RATE = 700e6 / 8  # 700 Mbit/s in octets/s


def counter(t: float, start: int = M32 - 10**9) -> int:
    return int(start + RATE * t) % M32


def run(read_at: list[float], *, fail: float | None = None) -> tuple[float | None, str | None]:
    """A gigabit Counter32-only port at 700 Mbit/s, polled at 0 and 60 s, read at
    ``read_at`` in between (``fail``: that reading failed)."""
    tracker = RateTracker(RatePolicy(poll_interval_s=60))
    bridges = CounterBridges(tracker)
    tracker.observe(sample(0, {1: (counter(0), counter(0), False, G)}))
    for t in read_at:
        if t == fail:
            bridges.observe_failure()
        else:
            bridges.observe(CounterReading(t, int(t * 100), {1: (counter(t), counter(t))}))
    rate = tracker.observe(sample(60, {1: (counter(60), counter(60), False, G)}))[1]
    return rate.in_bps, rate.in_reason


def test_without_readings_the_rate_is_ambiguous() -> None:
    assert run([]) == (None, RateReason.COUNTER32_AMBIGUOUS)


def test_readings_every_20_s_give_the_exact_rate() -> None:
    bps, why = run([20, 40])
    assert why is None and bps == pytest.approx(700e6, rel=1e-6)


def test_a_failed_reading_falls_back_to_ambiguous() -> None:
    assert run([20, 40], fail=20) == (None, RateReason.COUNTER32_AMBIGUOUS)
    assert run([20, 40], fail=40) == (None, RateReason.COUNTER32_AMBIGUOUS)


def test_a_step_long_enough_for_a_second_wrap_breaks_the_chain() -> None:
    assert run([5]) == (None, RateReason.COUNTER32_AMBIGUOUS)  # 55 s left: ambiguous


def test_a_reboot_between_readings_gives_no_rate() -> None:
    tracker = RateTracker(RatePolicy(poll_interval_s=60))
    bridges = CounterBridges(tracker)
    tracker.observe(sample(0, {1: (counter(0), counter(0), False, G)}))
    bridges.observe(CounterReading(20, 5, {1: (100, 100)}))  # sysUpTime went back
    rate = tracker.observe(sample(60, {1: (counter(60), counter(60), False, G)}, 4000))[1]
    assert rate.in_bps is None and rate.in_reason is RateReason.REBOOT


@given(st.integers(0, M32 - 1), st.floats(1e6, 1.0e9))
def test_readings_never_give_a_negative_or_impossible_rate(start: int, bps: float) -> None:
    octets_s = bps / 8
    tracker = RateTracker(RatePolicy(poll_interval_s=60))
    bridges = CounterBridges(tracker)

    def at(t: float) -> int:
        return int(start + octets_s * t) % M32

    tracker.observe(sample(0, {1: (at(0), at(0), False, G)}))
    for t in (20, 40):
        bridges.observe(CounterReading(t, int(t * 100), {1: (at(t), at(t))}))
    rate = tracker.observe(sample(60, {1: (at(60), at(60), False, G)}))[1]
    assert rate.in_bps is not None and rate.in_reason is None
    assert rate.in_bps == pytest.approx(bps, rel=1e-6, abs=1.0)
