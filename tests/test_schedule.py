from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from agent.schedule import next_slot, phase_of


def test_phase_stable_and_bounded() -> None:
    assert phase_of("rtr1", 60, 0.1) == phase_of("rtr1", 60, 0.1)
    assert 0 <= phase_of("rtr1", 60, 0.1) < 6
    assert phase_of("rtr1", 60, 0) == 0


def test_first_slot_then_regular() -> None:
    s = next_slot(100.0, 60, 5, -math.inf, 100.0)
    assert (s.at, s.skipped) == (105.0, 0)
    s = next_slot(100.0, 60, 5, 105.0, 105.2)
    assert (s.at, s.skipped) == (165.0, 0)


def test_overrun_skips_missed_slots() -> None:
    s = next_slot(0.0, 10, 0, 10.0, 35.0)
    assert (s.at, s.skipped) == (40.0, 2)


@given(st.floats(0, 1e6), st.floats(1, 3600), st.floats(0, 0.99), st.floats(0, 1e5))
def test_slot_never_in_past_never_repeats(start: float, interval: float, frac: float,
                                          later: float) -> None:
    phase = frac * interval
    first = next_slot(start, interval, phase, -math.inf, start)
    now = first.at + later
    nxt = next_slot(start, interval, phase, first.at, now)
    assert nxt.at > first.at
    assert nxt.at >= now - 1e-6 * max(1.0, now)
    k = (nxt.at - start - phase) / interval
    assert abs(k - round(k)) < 1e-6
