"""Which Counter32-only ports are read between polls, how often, and the octets carried
across those readings (pure).

A Counter32 wraps every 2**32 octets: at 1 Gbit/s every ~34 s, so over a 60 s interval
one wrap cannot be told from two and the rate is withheld (``counter32_ambiguous``,
:mod:`agent.rates`). For such ports the agent reads ifIn/OutOctets between polls, on a
sub-interval short enough for at most one wrap at the port's speed x the speed
tolerance (with a margin), bounded per device: at most ``max_readings`` readings between
two polls, never closer than ``min_interval_s``. Each reading carries the octets counted
so far (one wrap at most per step); the poll's rate then covers the whole interval and
only its last step is checked for a second wrap. A reading that fails, or a step that
could hide a second wrap, breaks the chain for that interval: the poll's rate is then
decided as without readings (docs/counters.md, "Ports too fast for Counter32").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from agent.rates import (
    COUNTER32_MODULUS,
    DeviceSample,
    IfCounters,
    IfRate,
    RatePolicy,
    RateReason,
    RateTracker,
    classify_uptime,
    counter_delta,
)

_BITS_PER_OCTET = 8
#: The sub-interval is this fraction of the time one wrap takes at the port's limit.
MARGIN = 0.8


@dataclass(frozen=True, slots=True)
class SubPollPolicy:
    """The knobs of sub-interval reading (one per device, from the agent's ``[rates]``)."""

    enabled: bool = True
    max_readings: int = 5
    """Readings between two polls, at most (each one GET of the fast ports' counters)."""
    min_interval_s: float = 5.0
    """Readings never closer than this."""


@dataclass(frozen=True, slots=True)
class SubPlan:
    """Read ``indices``' counters ``readings`` times between two polls, ``every_s`` apart."""

    every_s: float
    readings: int
    indices: tuple[int, ...]
    capped: bool
    """The bounds made the sub-interval longer than one wrap of the fastest port allows."""


def one_wrap_s(speed_bps: float, speed_tolerance: float) -> float:
    """Seconds a Counter32 takes to wrap at ``speed_bps`` x ``speed_tolerance``."""
    return COUNTER32_MODULUS * _BITS_PER_OCTET / (speed_bps * speed_tolerance)


def plan(sample: DeviceSample, rates: RatePolicy, policy: SubPollPolicy) -> SubPlan | None:
    """The readings ``sample``'s device needs between polls, or None (no Counter32-only
    port whose speed allows a second wrap within the poll interval, or disabled)."""
    if not policy.enabled or policy.max_readings < 1:
        return None
    fast: dict[int, float] = {}
    for index, port in sample.interfaces.items():
        speed = port.speed_bps or rates.unknown_speed_bps
        if port.hc or not speed or (port.in_octets is None and port.out_octets is None):
            continue
        wrap_s = one_wrap_s(speed, rates.speed_tolerance)
        if wrap_s <= rates.poll_interval_s:
            fast[index] = wrap_s
    if not fast:
        return None
    interval_s = rates.poll_interval_s
    readings = math.ceil(interval_s / (MARGIN * min(fast.values()))) - 1
    allowed = min(policy.max_readings, math.floor(interval_s / policy.min_interval_s) - 1)
    if allowed < 1:
        return None
    capped = readings > allowed
    readings = max(1, min(readings, allowed))
    return SubPlan(interval_s / (readings + 1), readings, tuple(sorted(fast)), capped)


@dataclass(frozen=True, slots=True)
class CounterReading:
    """Counter32 readings of some ports between two polls."""

    mono_s: float
    sys_uptime_cs: int | None
    counters: Mapping[int, tuple[int | None, int | None]]
    """ifIndex -> (ifInOctets, ifOutOctets)."""


@dataclass(frozen=True, slots=True)
class Bridge:
    """One port's octets from the previous poll up to its last reading."""

    mono_s: float
    readings: tuple[int | None, int | None]
    """The last (in, out) readings."""
    carried: tuple[int | None, int | None]
    """Octets counted since the previous poll, per direction (None: that chain broke)."""


def bridge_step(before: Bridge, reading: tuple[int | None, int | None], mono_s: float,
                limit_bps: float | None) -> Bridge:
    """``before`` carried on to ``reading``: each direction's delta (one wrap at most)
    added, or None when it cannot be trusted (missing, or a second wrap fits the step)."""
    carried: list[int | None] = []
    step_s = mono_s - before.mono_s
    for prev, cur, total in zip(before.readings, reading, before.carried, strict=True):
        delta = None if prev is None or cur is None else counter_delta(prev, cur, 32)
        ambiguous = (delta is not None and limit_bps is not None
                     and delta + COUNTER32_MODULUS <= limit_bps * step_s / _BITS_PER_OCTET)
        carried.append(None if total is None or delta is None or ambiguous or step_s <= 0
                       else total + delta)
    return Bridge(mono_s, reading, (carried[0], carried[1]))


def limit_bps(port: IfCounters, policy: RatePolicy) -> float | None:
    speed = port.speed_bps or policy.unknown_speed_bps
    return None if speed is None else speed * policy.speed_tolerance


class CounterBridges:
    """One device's readings between polls, carried into its :class:`RateTracker`'s next
    rates (it installs itself as the tracker's ``adjust``)."""

    def __init__(self, tracker: RateTracker) -> None:
        self.tracker = tracker
        tracker.adjust = self.adjust
        self._bridges: dict[int, Bridge] = {}
        self._broken = False  # a reading of this interval failed: no bridge until the poll
        self._clock: tuple[float, int] | None = None  # the last reading's (mono_s, uptime)
        #: rates given by readings (directions the plain computation withheld as ambiguous)
        self.rates_bridged = 0

    def observe(self, reading: CounterReading) -> None:
        """A reading between polls (the base is the tracker's last successful poll)."""
        prev = self.tracker.previous
        if prev is None or self._broken:
            return
        mono_s, uptime = self._clock or (prev.mono_s, prev.sys_uptime_cs)
        if uptime is not None and reading.sys_uptime_cs is not None and classify_uptime(
                uptime, reading.sys_uptime_cs, reading.mono_s - mono_s,
                self.tracker.policy) is not None:
            self.observe_failure()  # rebooted meanwhile: the poll's own checks will say so
            return
        if reading.sys_uptime_cs is not None:
            self._clock = (reading.mono_s, reading.sys_uptime_cs)
        for index, values in reading.counters.items():
            base = prev.interfaces.get(index)
            if base is None or base.hc:
                continue
            before = self._bridges.get(index) or Bridge(
                prev.mono_s, (base.in_octets, base.out_octets), (0, 0))
            self._bridges[index] = bridge_step(before, values, reading.mono_s,
                                               limit_bps(base, self.tracker.policy))

    def observe_failure(self) -> None:
        """A reading failed: this interval's rates are decided without readings."""
        self._bridges = {}
        self._broken = True

    def adjust(self, prev: DeviceSample, cur: DeviceSample, rates: dict[int, IfRate]) -> None:
        """Replaces, in ``rates``, the directions withheld as ambiguous by the rate the
        readings give (every other reason - reboot, gap, reset, over speed - stands)."""
        bridges, self._bridges, self._broken, self._clock = self._bridges, {}, False, None
        interval_s = cur.mono_s - prev.mono_s
        for index, bridge in bridges.items():
            now, base, plain = cur.interfaces.get(index), prev.interfaces.get(index), \
                rates.get(index)
            if now is None or base is None or plain is None or now.hc:
                continue
            if RateReason.COUNTER32_AMBIGUOUS not in (plain.in_reason, plain.out_reason):
                continue
            limit = limit_bps(now, self.tracker.policy)
            last = bridge_step(bridge, (now.in_octets, now.out_octets), cur.mono_s, limit)
            bps: list[float | None] = [plain.in_bps, plain.out_bps]
            why: list[RateReason | None] = [plain.in_reason, plain.out_reason]
            for k, total in enumerate(last.carried):
                if why[k] is not RateReason.COUNTER32_AMBIGUOUS or total is None:
                    continue
                rate = total * _BITS_PER_OCTET / interval_s
                if limit is not None and rate > limit:
                    bps[k], why[k] = None, RateReason.OVER_SPEED
                else:
                    bps[k], why[k] = rate, None
                    self.rates_bridged += 1
            speed = now.speed_bps if now.speed_bps and now.speed_bps == base.speed_bps else None
            rates[index] = IfRate(bps[0], bps[1], _utilisation(bps[0], speed),
                                  _utilisation(bps[1], speed), why[0], why[1], interval_s)


def _utilisation(bps: float | None, speed_bps: int | None) -> float | None:
    return None if bps is None or not speed_bps else bps / speed_bps * 100.0
