"""Poll admission: the AIMD limit on loop lag (pure) and the resizable gate (asyncio, no timing)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.concurrency import AdmissionLimit
from agent.gate import Gate, Naps


def test_high_lag_halves_down_to_the_floor_low_lag_climbs_back_by_one() -> None:
    lim = AdmissionLimit(ceiling=64, max_lag_s=0.1, floor=2)
    assert [lim.observe(0.5) for _ in range(7)] == [32, 16, 8, 4, 2, 2, 2]
    assert (lim.decreases, lim.lowest, lim.throttled) == (5, 2, True)
    assert [lim.observe(0.05) for _ in range(3)] == [3, 4, 5]  # 0.05 = half the threshold
    assert [lim.observe(0.07) for _ in range(3)] == [5, 5, 5]  # between half and the threshold
    assert lim.observe(0.1) == 5  # at the threshold: not above it
    for _ in range(100):
        lim.observe(0.0)
    assert (lim.limit, lim.throttled, lim.worst_lag_s) == (64, False, 0.5)


def test_off_keeps_the_ceiling_but_still_records_the_lag() -> None:
    lim = AdmissionLimit(ceiling=8, max_lag_s=0)
    assert [lim.observe(3.0) for _ in range(3)] == [8, 8, 8]
    assert (lim.enabled, lim.decreases, lim.worst_lag_s) == (False, 0, 3.0)


@pytest.mark.parametrize(("ceiling", "floor", "lag"), [(4, 5, 0.1), (4, 0, 0.1), (4, 1, -1)])
def test_incoherent_bounds_are_refused(ceiling: int, floor: int, lag: float) -> None:
    with pytest.raises(ValueError):
        AdmissionLimit(ceiling=ceiling, max_lag_s=lag, floor=floor)


@given(st.integers(1, 4096), st.integers(1, 4096), st.floats(0, 5),
       st.lists(st.floats(0, 10), max_size=200))
def test_limit_stays_within_bounds_and_moves_by_the_rule(
        a: int, b: int, max_lag_s: float, lags: list[float]) -> None:
    floor, ceiling = min(a, b), max(a, b)
    lim = AdmissionLimit(ceiling=ceiling, max_lag_s=max_lag_s, floor=floor)
    for lag in lags:
        before = lim.limit
        after = lim.observe(lag)
        assert floor <= after <= ceiling
        if max_lag_s == 0:
            assert after == ceiling
        elif lag > max_lag_s:
            assert after == max(floor, before // 2)
        elif lag <= max_lag_s / 2:
            assert after == min(ceiling, before + 1)
        else:
            assert after == before


async def test_gate_admits_up_to_the_limit_first_come_first_served() -> None:
    gate = Gate(2)
    order: list[int] = []
    release = asyncio.Event()

    async def worker(i: int) -> None:
        await gate.acquire()
        order.append(i)
        await release.wait()
        gate.release()

    tasks = [asyncio.create_task(worker(i)) for i in range(5)]
    await asyncio.sleep(0)
    assert (order, gate.active, gate.waiting) == ([0, 1], 2, 3)
    release.set()
    await asyncio.gather(*tasks)
    assert (order, gate.active, gate.waited) == ([0, 1, 2, 3, 4], 0, 3)


async def test_gate_shrink_lets_holders_finish_and_grow_admits_waiters() -> None:
    gate = Gate(3)
    assert [await gate.acquire() for _ in range(3)] == [False, False, False]
    gate.resize(1)  # three still hold it; none is interrupted
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()
    gate.release()
    await asyncio.sleep(0)
    assert not waiter.done() and gate.active == 1  # one left, limit 1: still full
    gate.resize(2)
    assert await waiter is True
    assert gate.active == 2


async def test_gate_cancelled_waiter_passes_its_turn_on() -> None:
    gate = Gate(1)
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    first.cancel()
    gate.release()
    assert await second is True
    assert first.cancelled() and gate.active == 1
    gate.release()
    assert await gate.acquire() is False  # only cancelled waiters were left: no wait


async def test_gate_admitted_then_cancelled_releases() -> None:
    gate = Gate(1)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # admits the waiter (its future is done) before it resumes
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.active == 0


async def test_naps_all_end_when_stopped_and_later_ones_do_not_start() -> None:
    naps = Naps()
    sleepers = [asyncio.create_task(naps.sleep(3600)) for _ in range(3)]
    short = await naps.sleep(0)
    await asyncio.sleep(0)
    assert short is False and not any(t.done() for t in sleepers)
    naps.stop()
    assert await asyncio.gather(*sleepers) == [True, True, True]
    assert await naps.sleep(3600) is True
