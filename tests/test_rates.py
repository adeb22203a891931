"""Counter deltas and rates (agent/rates.py): table-driven cases and properties."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from agent.rates import (
    COUNTER32_MODULUS,
    COUNTER64_MODULUS,
    UPTIME_MODULUS_CS,
    DeviceSample,
    IfCounters,
    IfRate,
    RatePolicy,
    RateReason,
    RateTracker,
    classify_uptime,
    compute_rates,
    counter_delta,
    device_reason,
    uptime_delta_cs,
)

GIG = 1_000_000_000
MEG100 = 100_000_000
POLICY = RatePolicy(poll_interval_s=60.0)
R = RateReason


def withheld_reasons(*polls: Mapping[int, IfRate]) -> Counter[RateReason]:
    """Every interface direction of these polls that got no rate, by reason."""
    return Counter(reason for rates in polls for rate in rates.values()
                   for reason in (rate.in_reason, rate.out_reason) if reason is not None)


def iface(
    *,
    index: int = 1,
    name: str = "ge-0/0/1",
    in_octets: int | None = 0,
    out_octets: int | None = 0,
    hc: bool = True,
    speed_bps: int | None = GIG,
    discontinuity_cs: int | None = None,
) -> IfCounters:
    return IfCounters(index, name, in_octets, out_octets, hc, speed_bps, discontinuity_cs)


def sample(mono_s: float, uptime_cs: int | None, *ifaces: IfCounters) -> DeviceSample:
    return DeviceSample(mono_s, uptime_cs, {i.index: i for i in ifaces})


T0 = 1000.0
UP0 = 10_000_000  # ~27.8 hours
PREV = sample(T0, UP0, iface())


def after(seconds: float = 60.0, uptime_cs: int | None = None, **changes: object) -> DeviceSample:
    """A poll ``seconds`` after PREV, sysUpTime consistent unless given."""
    up = UP0 + round(seconds * 100) if uptime_cs is None else uptime_cs
    return sample(T0 + seconds, up, replace(PREV.interfaces[1], **changes))  # type: ignore[arg-type]  # test helper forwards field overrides


Pair = tuple[float | None, float | None]
Reasons = tuple[RateReason | None, RateReason | None]
OK: Reasons = (None, None)


@dataclass(frozen=True)
class Case:
    prev: DeviceSample | None
    cur: DeviceSample
    reasons: Reasons
    bps: Pair = (None, None)
    util_pct: Pair = (None, None)
    prev_failed: bool = False
    policy: RatePolicy = field(default=POLICY)


def both(reason: RateReason) -> Reasons:
    return (reason, reason)


SLOW_PREV = sample(T0, UP0, iface(speed_bps=MEG100))
WRAP32 = 501_000 * 8 / 60  # bit/s of a 501,000-octet delta over 60 s

# Over 60 s: 750e6 octets = 100 Mbit/s (10 % of 1 Gbit/s), 75e6 octets = 10 Mbit/s.
CASES = {
    "steady 64-bit": Case(
        PREV, after(in_octets=750_000_000, out_octets=75_000_000), OK, (1e8, 1e7), (10.0, 1.0)
    ),
    "first poll of the device": Case(None, PREV, both(R.FIRST_POLL)),
    "after a failed poll": Case(
        PREV, after(in_octets=750_000_000), both(R.AFTER_FAILED_POLL), prev_failed=True
    ),
    "interval below min_interval_s": Case(
        PREV, after(0.2, in_octets=10), both(R.INTERVAL_TOO_SHORT)
    ),
    "monotonic time not increasing": Case(
        PREV, after(-1.0, uptime_cs=UP0), both(R.INTERVAL_TOO_SHORT)
    ),
    "reboot: sysUpTime went backwards": Case(
        PREV, after(uptime_cs=3000, in_octets=750_000_000), both(R.REBOOT)
    ),
    "reboot: sysUpTime advanced far less than elapsed": Case(
        sample(T0, 500, iface()), after(uptime_cs=2000, in_octets=1000), both(R.REBOOT)
    ),
    "sysUpTime advanced far more than elapsed": Case(
        PREV, after(uptime_cs=UP0 + 100_000, in_octets=1000), both(R.UPTIME_INCONSISTENT)
    ),
    "sysUpTime 2**32 wrap is not a reboot": Case(
        sample(T0, UPTIME_MODULUS_CS - 3000, iface()),
        after(uptime_cs=3000, in_octets=750_000_000),
        OK, (1e8, 0.0), (10.0, 0.0),
    ),
    "sysUpTime off by 9 s (latency) is within slack": Case(
        PREV, after(uptime_cs=UP0 + 6900, in_octets=750_000_000), OK, (1e8, 0.0), (10.0, 0.0)
    ),
    "sysUpTime unknown on one side: no reboot check": Case(
        sample(T0, None, iface()),
        after(uptime_cs=5, in_octets=750_000_000),
        OK, (1e8, 0.0), (10.0, 0.0),
    ),
    "gap longer than max_gap_factor x interval": Case(
        PREV, after(180.5, in_octets=1000), both(R.GAP)
    ),
    "interval exactly at the gap limit still gives a rate": Case(
        PREV, after(180.0, in_octets=2_250_000_000), OK, (1e8, 0.0), (10.0, 0.0)
    ),
    "reboot during a gap is recorded as reboot": Case(
        PREV, after(600.0, uptime_cs=100), both(R.REBOOT)
    ),
    "ifIndex now names another interface": Case(
        PREV, after(name="ge-0/0/2", in_octets=1000), both(R.IFINDEX_REUSED)
    ),
    "ifCounterDiscontinuityTime changed": Case(
        sample(T0, UP0, iface(discontinuity_cs=0)),
        after(discontinuity_cs=7_000_000, in_octets=1000),
        both(R.DISCONTINUITY),
    ),
    "ifCounterDiscontinuityTime first polled now: not a discontinuity": Case(
        PREV, after(discontinuity_cs=1234, in_octets=750_000_000), OK, (1e8, 0.0), (10.0, 0.0)
    ),
    "counter switched from 32 to 64 bits": Case(
        sample(T0, UP0, iface(hc=False)),
        after(hc=True, in_octets=1000),
        both(R.COUNTER_WIDTH_CHANGED),
    ),
    "in counter missing now, out fine": Case(
        PREV,
        after(in_octets=None, out_octets=75_000_000),
        (R.NO_COUNTER, None), (None, 1e7), (None, 1.0),
    ),
    "counter missing in the previous poll": Case(
        sample(T0, UP0, iface(out_octets=None)),
        after(in_octets=7_500_000),
        (None, R.NO_COUNTER), (1e6, None), (0.1, None),
    ),
    "32-bit reading beyond 2**32": Case(
        sample(T0, UP0, iface(hc=False, speed_bps=MEG100)),
        after(hc=False, speed_bps=MEG100, in_octets=COUNTER32_MODULUS, out_octets=750),
        (R.COUNTER_OUT_OF_RANGE, None), (None, 100.0), (None, 1e-4),
    ),
    "negative reading": Case(
        PREV, after(in_octets=-1), (R.COUNTER_OUT_OF_RANGE, None), (None, 0.0), (None, 0.0)
    ),
    "64-bit counter went back: reset, not a wrap": Case(
        sample(T0, UP0, iface(in_octets=5_000_000_000, out_octets=10)),
        after(in_octets=1000, out_octets=75_000_010),
        (R.COUNTER_WENT_BACK, None), (None, 1e7), (None, 1.0),
    ),
    "single Counter32 wrap gives the exact delta": Case(
        sample(T0, UP0, iface(hc=False, speed_bps=MEG100, in_octets=COUNTER32_MODULUS - 1000)),
        after(hc=False, speed_bps=MEG100, in_octets=500_000),
        OK, (WRAP32, 0.0), (WRAP32 / MEG100 * 100, 0.0),
    ),
    "rate above speed x tolerance is withheld": Case(
        SLOW_PREV,
        after(speed_bps=MEG100, in_octets=1_500_000_000, out_octets=750_000_000),
        (R.OVER_SPEED, None), (None, 1e8), (None, 100.0),
    ),
    "rate within tolerance above speed is published": Case(
        SLOW_PREV,
        after(speed_bps=MEG100, in_octets=787_500_000),
        OK, (1.05e8, 0.0), (105.0, 0.0),
    ),
    "Counter32 reset seen as a wrap is over speed, not a spike": Case(
        sample(T0, UP0, iface(hc=False, speed_bps=MEG100, in_octets=3_000_000_000)),
        after(hc=False, speed_bps=MEG100, in_octets=1000),
        (R.OVER_SPEED, None), (None, 0.0), (None, 0.0),
    ),
    "Counter32 that could have wrapped twice at 1 Gbit/s": Case(
        sample(T0, UP0, iface(hc=False, in_octets=100)),
        after(hc=False, in_octets=750_000_100),
        both(R.COUNTER32_AMBIGUOUS),
    ),
    "ambiguous Counter32 published when the policy allows it": Case(
        sample(T0, UP0, iface(hc=False, in_octets=100)),
        after(hc=False, in_octets=750_000_100),
        OK, (1e8, 0.0), (10.0, 0.0),
        policy=RatePolicy(60.0, allow_ambiguous_counter32=True),
    ),
    "speed unknown (None): rate, no utilisation": Case(
        sample(T0, UP0, iface(speed_bps=None)),
        after(speed_bps=None, in_octets=750_000_000),
        OK, (1e8, 0.0),
    ),
    "speed 0: rate, no utilisation": Case(
        sample(T0, UP0, iface(speed_bps=0)),
        after(speed_bps=0, in_octets=750_000_000),
        OK, (1e8, 0.0),
    ),
    "speed changed in the interval: rate against the higher, no utilisation": Case(
        PREV, after(speed_bps=MEG100, in_octets=3_750_000_000), OK, (5e8, 0.0)
    ),
    "speed learnt now: utilisation against it": Case(
        sample(T0, UP0, iface(speed_bps=None)),
        after(in_octets=750_000_000),
        OK, (1e8, 0.0), (10.0, 0.0),
    ),
    "speed unknown, policy ceiling: over speed": Case(
        sample(T0, UP0, iface(speed_bps=None)),
        after(speed_bps=None, in_octets=1_500_000_000),
        (R.OVER_SPEED, None), (None, 0.0),
        policy=RatePolicy(60.0, unknown_speed_bps=MEG100),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_rate_table(case: Case) -> None:
    rates = compute_rates(case.prev, case.cur, case.policy, prev_failed=case.prev_failed)
    assert set(rates) == set(case.cur.interfaces)
    rate = rates[1]
    assert (rate.in_reason, rate.out_reason) == case.reasons
    assert (rate.in_bps, rate.out_bps) == pytest.approx(case.bps)
    assert (rate.in_util_pct, rate.out_util_pct) == pytest.approx(case.util_pct)
    expected_interval = None if case.prev is None else case.cur.mono_s - case.prev.mono_s
    assert rate.interval_s == expected_interval


def test_new_interface_is_first_poll_and_vanished_one_is_absent() -> None:
    prev = sample(T0, UP0, iface(index=1), iface(index=2, name="lo"))
    cur = sample(
        T0 + 60, UP0 + 6000, iface(index=1, in_octets=750_000_000), iface(index=3, name="ppp0")
    )
    rates = compute_rates(prev, cur, POLICY)
    assert set(rates) == {1, 3}
    assert rates[1].in_bps == pytest.approx(1e8)
    assert rates[3] == IfRate.withheld(R.FIRST_POLL, 60.0)


@pytest.mark.parametrize(
    ("prev", "cur", "bits", "expected"),
    [
        (0, 0, 32, 0),
        (10, 25, 32, 15),
        (COUNTER32_MODULUS - 1, 0, 32, 1),
        (COUNTER32_MODULUS - 10, 5, 32, 15),
        (5, 4, 32, COUNTER32_MODULUS - 1),
        (10, 25, 64, 15),
        (COUNTER64_MODULUS - 1, 0, 64, None),
        (5, 4, 64, None),
        (COUNTER32_MODULUS, 0, 32, None),
        (0, -1, 64, None),
        (0, COUNTER64_MODULUS, 64, None),
    ],
)
def test_counter_delta(prev: int, cur: int, bits: int, expected: int | None) -> None:
    assert counter_delta(prev, cur, bits) == expected


def test_counter_delta_rejects_other_widths() -> None:
    with pytest.raises(ValueError, match="32 or 64"):
        counter_delta(0, 1, 16)


@pytest.mark.parametrize(
    ("prev", "cur", "expected"),
    [(0, 6000, 6000), (UPTIME_MODULUS_CS - 100, 50, 150), (6000, 0, UPTIME_MODULUS_CS - 6000)],
)
def test_uptime_delta_cs(prev: int, cur: int, expected: int) -> None:
    assert uptime_delta_cs(prev, cur) == expected


def test_uptime_undecidable_cases_defer_to_other_checks() -> None:
    # Readings out of TimeTicks range, or an interval as long as the wrap period.
    assert classify_uptime(-5, 100, 60.0, POLICY) is None
    assert classify_uptime(0, UPTIME_MODULUS_CS, 60.0, POLICY) is None
    assert classify_uptime(0, 0, UPTIME_MODULUS_CS / 100, POLICY) is None


def test_device_reason_matches_the_interface_outcome() -> None:
    assert device_reason(None, PREV, POLICY) is R.FIRST_POLL
    assert device_reason(PREV, after(uptime_cs=10), POLICY) is R.REBOOT
    assert device_reason(PREV, after(), POLICY) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"poll_interval_s": 0.0},
        {"poll_interval_s": 60.0, "max_gap_factor": 0.5},
        {"poll_interval_s": 60.0, "speed_tolerance": 0.9},
        {"poll_interval_s": 60.0, "min_interval_s": 0.0},
        {"poll_interval_s": 60.0, "uptime_slack_s": -1.0},
        {"poll_interval_s": 60.0, "uptime_drift": 1.0},
        {"poll_interval_s": 60.0, "unknown_speed_bps": 0},
        {"poll_interval_s": math.nan},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RatePolicy(**kwargs)  # type: ignore[arg-type]  # kwargs from the parameter table


def test_reason_values_are_the_recorded_strings() -> None:
    assert {r.value for r in RateReason} == {
        "first_poll", "after_failed_poll", "interval_too_short", "reboot",
        "uptime_inconsistent", "gap", "ifindex_reused", "discontinuity",
        "counter_width_changed", "no_counter", "counter_out_of_range",
        "counter_went_back", "counter32_ambiguous", "over_speed",
    }  # fmt: skip


def test_tracker_sequence_failure_and_discard_counts() -> None:
    tracker = RateTracker(RatePolicy(60.0))
    slow = iface(speed_bps=MEG100)
    first = tracker.observe(sample(0.0, 0, slow))
    assert first[1] == IfRate.withheld(R.FIRST_POLL, None)

    second = tracker.observe(sample(60.0, 6000, replace(slow, in_octets=750_000_000)))
    assert second[1].in_bps == pytest.approx(1e8)
    assert second[1].in_util_pct == pytest.approx(100.0)

    tracker.observe_failure()
    third = tracker.observe(sample(180.0, 18000, replace(slow, in_octets=900_000_000)))
    assert third[1] == IfRate.withheld(R.AFTER_FAILED_POLL, 120.0)

    # The base is now the third poll; this one is twice the speed.
    fourth = tracker.observe(
        sample(240.0, 24000, replace(slow, in_octets=2_400_000_000, out_octets=75_000_000))
    )
    assert (fourth[1].in_bps, fourth[1].in_reason) == (None, R.OVER_SPEED)
    assert fourth[1].out_bps == pytest.approx(1e7)

    assert withheld_reasons(first, second, third, fourth) == {
        R.FIRST_POLL: 2, R.AFTER_FAILED_POLL: 2, R.OVER_SPEED: 1}


# ---------------------------------------------------------------- properties

counter32 = st.integers(0, COUNTER32_MODULUS - 1)
counter64 = st.integers(0, COUNTER64_MODULUS - 1)


@given(prev=counter32, delta=counter32)
def test_counter32_single_wrap_is_exact(prev: int, delta: int) -> None:
    assert counter_delta(prev, (prev + delta) % COUNTER32_MODULUS, 32) == delta


@given(prev=counter64, cur=counter64)
def test_counter64_never_wraps(prev: int, cur: int) -> None:
    delta = counter_delta(prev, cur, 64)
    assert delta == (cur - prev if cur >= prev else None)


@given(
    delta=st.integers(1, 700_000_000),
    before_wrap=st.integers(1, 700_000_000),
    interval_s=st.floats(60.0, 120.0),
    out_prev=counter32,
)
def test_counter32_wrap_rate_is_exact(
    delta: int, before_wrap: int, interval_s: float, out_prev: int
) -> None:
    """At 100 Mbit/s a Counter32 wraps at most once a minute: the rate is exact."""
    before_wrap = min(before_wrap, delta)
    in_prev = COUNTER32_MODULUS - before_wrap
    in_cur = (in_prev + delta) % COUNTER32_MODULUS
    assert in_cur < in_prev  # it did wrap
    before = iface(hc=False, speed_bps=MEG100, in_octets=in_prev, out_octets=out_prev)
    prev = sample(T0, UP0, before)
    cur = sample(T0 + interval_s, UP0 + round(interval_s * 100), replace(before, in_octets=in_cur))
    rate = compute_rates(prev, cur, POLICY)[1]
    assert rate.in_reason is None and rate.in_bps is not None and rate.interval_s is not None
    assert rate.in_bps == delta * 8 / rate.interval_s
    assert rate.interval_s == pytest.approx(interval_s)


speeds = st.one_of(
    st.none(), st.sampled_from([0, 10**6, MEG100, GIG, 10 * GIG]), st.integers(-1, 10**11)
)
readings = st.one_of(st.none(), st.integers(-2, COUNTER64_MODULUS + 2), counter32)


@st.composite
def interfaces(draw: st.DrawFn) -> dict[int, IfCounters]:
    indexes = draw(st.sets(st.integers(1, 3), max_size=3))
    return {
        i: IfCounters(
            index=i,
            name=draw(st.sampled_from(["eth0", "eth1"])),
            in_octets=draw(readings),
            out_octets=draw(readings),
            hc=draw(st.booleans()),
            speed_bps=draw(speeds),
            discontinuity_cs=draw(st.one_of(st.none(), st.integers(0, 2))),
        )
        for i in indexes
    }


@st.composite
def device_histories(draw: st.DrawFn) -> list[DeviceSample | None]:
    """Arbitrary polls (None = a failed poll), time mostly but not always advancing."""
    mono_s = draw(st.floats(0.0, 1e6))
    events: list[DeviceSample | None] = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.booleans()) and draw(st.booleans()):
            events.append(None)
            continue
        mono_s += draw(st.floats(-5.0, 400.0))
        uptime = draw(st.one_of(st.none(), st.integers(-1, UPTIME_MODULUS_CS)))
        events.append(DeviceSample(mono_s, uptime, draw(interfaces())))
    return events


policies = st.builds(
    RatePolicy,
    poll_interval_s=st.sampled_from([10.0, 60.0, 300.0]),
    speed_tolerance=st.sampled_from([1.0, 1.1, 2.0]),
    allow_ambiguous_counter32=st.booleans(),
    unknown_speed_bps=st.one_of(st.none(), st.just(GIG)),
)


@given(history=device_histories(), policy=policies)
def test_rates_are_never_negative_and_always_explained(
    history: list[DeviceSample | None], policy: RatePolicy
) -> None:
    tracker = RateTracker(policy)
    withheld = 0
    seen_success = failed_since = False
    observed: list[Mapping[int, IfRate]] = []
    for event in history:
        if event is None:
            tracker.observe_failure()
            failed_since = True
            continue
        observed.append(tracker.observe(event))
        for rate in observed[-1].values():
            if not seen_success:
                assert rate == IfRate.withheld(R.FIRST_POLL, None)
            elif failed_since:
                assert rate == IfRate.withheld(R.AFTER_FAILED_POLL, rate.interval_s)
            for bps, util, reason in (
                (rate.in_bps, rate.in_util_pct, rate.in_reason),
                (rate.out_bps, rate.out_util_pct, rate.out_reason),
            ):
                assert (bps is None) == (reason is not None)
                withheld += bps is None
                if bps is not None:
                    assert math.isfinite(bps) and bps >= 0
                    assert rate.interval_s is not None
                    assert policy.min_interval_s <= rate.interval_s <= policy.max_interval_s
                if util is not None:
                    assert bps is not None
                    assert 0 <= util <= 100 * policy.speed_tolerance * (1 + 1e-9)
        seen_success, failed_since = True, False
    assert sum(withheld_reasons(*observed).values()) == withheld


@given(
    uptime0=st.integers(0, UPTIME_MODULUS_CS - 1),
    interval_s=st.floats(15.0, 180.0),
    downtime_s=st.floats(15.0, 180.0),
    up_before_s=st.floats(0.0, 1.0),
    prev_if=interfaces(),
    cur_if=interfaces(),
)
def test_a_reboot_never_yields_a_rate(
    uptime0: int,
    interval_s: float,
    downtime_s: float,
    up_before_s: float,
    prev_if: dict[int, IfCounters],
    cur_if: dict[int, IfCounters],
) -> None:
    """The device ran ``a`` s, was down ``b`` s (>= 15 s, longer than the uptime
    slack), then up ``c`` s until the next poll: whatever the counters say, no rate.
    """
    downtime_s = min(downtime_s, interval_s)
    a = up_before_s * (interval_s - downtime_s)
    c = max(interval_s - a - downtime_s, 0.0)
    # Precondition: the old sysUpTime would not have wrapped in this interval either
    # (a reboot that lands exactly where the wrap would is indistinguishable from it).
    assume(uptime0 + (interval_s + 60) * 100 < UPTIME_MODULUS_CS)
    prev = DeviceSample(T0, uptime0, prev_if)
    cur = DeviceSample(T0 + interval_s, int(c * 100), cur_if)
    for rate in compute_rates(prev, cur, POLICY).values():
        assert rate == IfRate.withheld(R.REBOOT, rate.interval_s)


@given(
    interval_s=st.floats(15.0, 180.0),
    wrap_at=st.floats(0.0, 1.0),
    latency_cs=st.integers(-900, 900),
    in_delta=st.integers(0, 10**9),
)
def test_sysuptime_wrap_is_not_a_reboot(
    interval_s: float, wrap_at: float, latency_cs: int, in_delta: int
) -> None:
    uptime0 = UPTIME_MODULUS_CS - 1 - int(wrap_at * interval_s * 100)
    advanced = uptime0 + round(interval_s * 100) + latency_cs
    assume(advanced >= UPTIME_MODULUS_CS)
    prev = sample(T0, uptime0, iface(in_octets=0))
    cur = sample(T0 + interval_s, advanced - UPTIME_MODULUS_CS, iface(in_octets=in_delta))
    assert device_reason(prev, cur, POLICY) is None
    rate = compute_rates(prev, cur, POLICY)[1]
    assert rate.in_reason is None and rate.out_reason is None


@given(
    rate_bps=st.floats(0.0, MEG100),
    hc=st.booleans(),
    start_octets=counter64,
    uptime0=st.integers(0, UPTIME_MODULUS_CS - 1),
    jitter=st.lists(st.floats(0.8, 1.2), min_size=1, max_size=20),
    latency_s=st.lists(st.floats(0.0, 2.0), min_size=21, max_size=21),
)
def test_poll_jitter_changes_rates_only_within_tolerance(
    rate_bps: float,
    hc: bool,
    start_octets: int,
    uptime0: int,
    jitter: list[float],
    latency_s: list[float],
) -> None:
    """Constant true rate; polls every 60 s +-20 %; each device reading up to 2 s late
    relative to the agent's timestamp. Every rate is the true rate, give or take
    that latency and one octet of quantisation; none is withheld; counters wrap.
    """
    modulus = COUNTER64_MODULUS if hc else COUNTER32_MODULUS
    # A Counter32 wraps here every few minutes; a Counter64 never does in practice.
    start_octets %= COUNTER64_MODULUS // 2 if hc else COUNTER32_MODULUS
    tracker = RateTracker(POLICY)
    elapsed_s = 0.0
    for poll, factor in enumerate([0.0, *jitter]):
        elapsed_s += 60.0 * factor
        read_s = elapsed_s + latency_s[poll]
        octets = (start_octets + math.floor(rate_bps * read_s / 8)) % modulus
        uptime = (uptime0 + math.floor(read_s * 100)) % UPTIME_MODULUS_CS
        counters = iface(in_octets=octets, out_octets=0, hc=hc, speed_bps=MEG100)
        result = tracker.observe(sample(T0 + elapsed_s, uptime, counters))[1]
        if poll == 0:
            continue
        assert result.in_bps is not None and result.interval_s is not None, result
        bound = (rate_bps * 2.0 + 8) / result.interval_s + rate_bps * 1e-9
        assert abs(result.in_bps - rate_bps) <= bound
        assert result.out_bps == 0.0


@given(
    old=st.text(min_size=1, max_size=8),
    new=st.text(min_size=1, max_size=8),
    in_prev=counter64,
    in_cur=counter64,
)
def test_ifindex_renamed_gives_no_rate(old: str, new: str, in_prev: int, in_cur: int) -> None:
    assume(old != new)
    prev = sample(T0, UP0, iface(name=old, in_octets=in_prev))
    cur = after(name=new, in_octets=in_cur)
    assert compute_rates(prev, cur, POLICY)[1] == IfRate.withheld(R.IFINDEX_REUSED, 60.0)


@given(
    speed=st.sampled_from([None, 0]),
    in_prev=counter64,
    in_delta=st.integers(0, 10**12),
)
def test_unknown_speed_gives_rate_without_utilisation(
    speed: int | None, in_prev: int, in_delta: int
) -> None:
    assume(in_prev + in_delta < COUNTER64_MODULUS)
    prev = sample(T0, UP0, iface(speed_bps=speed, in_octets=in_prev))
    cur = after(speed_bps=speed, in_octets=in_prev + in_delta)
    rate = compute_rates(prev, cur, POLICY)[1]
    assert rate.in_bps == in_delta * 8 / 60.0
    assert rate.in_util_pct is None and rate.out_util_pct is None


@given(
    speed=st.sampled_from([10**6, MEG100, GIG, 10 * GIG]),
    interval_s=st.floats(1.0, 180.0),
    in_prev=st.integers(0, 2**62),
    in_delta=st.integers(0, 10**13),
    tolerance=st.sampled_from([1.0, 1.1, 1.5]),
)
def test_over_speed_is_withheld_never_published(
    speed: int, interval_s: float, in_prev: int, in_delta: int, tolerance: float
) -> None:
    policy = RatePolicy(60.0, speed_tolerance=tolerance)
    prev = sample(T0, UP0, iface(speed_bps=speed, in_octets=in_prev))
    cur = sample(
        T0 + interval_s,
        UP0 + round(interval_s * 100),
        iface(speed_bps=speed, in_octets=in_prev + in_delta),
    )
    tracker = RateTracker(policy)
    before = tracker.observe(prev)
    now = tracker.observe(cur)
    rate = now[1]
    assert rate.interval_s is not None
    if in_delta * 8 / rate.interval_s > speed * tolerance:
        assert (rate.in_bps, rate.in_reason) == (None, R.OVER_SPEED)
        assert withheld_reasons(before, now)[R.OVER_SPEED] == 1
    else:
        assert rate.in_bps is not None and rate.in_bps <= speed * tolerance
        assert R.OVER_SPEED not in withheld_reasons(before, now)
