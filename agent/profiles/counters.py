"""Rates of a device's profile counters, poll after poll: reset-, wrap- and reboot-aware. Pure.

The same engine as the interface rates (:mod:`agent.rates`): the device-level rules
(first poll, after a failed poll, interval too short, reboot or inconsistent sysUpTime,
gap) are :func:`agent.rates.device_reason`'s, the delta :func:`agent.rates.counter_delta`'s
(a Counter32 that went backwards wrapped once: the exact delta; a Counter64 that went
backwards was reset: no rate). Each series - ``(profile, metric, tags)`` - keeps its
previous reading; the interval is the profile's own (``interval_s``: the gap rule is
``max_gap_factor`` x that interval). A rate is per second; a missing one says why, with
the interface notes' words (:class:`agent.rates.RateReason`).

Without an interface speed there is no ambiguity or over-speed check: a Counter32 that
wraps twice between two polls of its profile reads as one wrap (choose the profile's
``interval_s`` short enough for its counters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from agent.rates import DeviceSample, RatePolicy, RateReason, counter_delta, device_reason

#: What names a series across polls: profile, metric, tags (``ProfileValue.key``).
SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class CounterRate:
    """One counter's rate over the last interval, per second, or why there is none."""

    per_s: float | None
    note: RateReason | None  # None exactly when ``per_s`` is a rate


@dataclass(frozen=True, slots=True)
class _Poll:
    """A profile's last successful poll: when, and sysUpTime then."""

    mono_s: float
    uptime_cs: int | None


class ProfileCounters:
    """The previous reading of every counter series of one device's profiles."""

    def __init__(self, policy: RatePolicy) -> None:
        self.policy = policy
        self._polls: dict[str, _Poll] = {}
        self._readings: dict[str, dict[SeriesKey, tuple[int, int]]] = {}
        self._failed: set[str] = set()

    def observe(self, profile: str, interval_s: float, mono_s: float, uptime_cs: int | None,
                readings: Mapping[SeriesKey, tuple[int, int]]) -> dict[SeriesKey, CounterRate]:
        """Rates of ``readings`` (``{key: (reading, bits)}``, :func:`counter_readings`) from
        the profile's last successful poll; they become its new base."""
        before = self._polls.get(profile)
        previous = self._readings.get(profile, {})
        now = _Poll(mono_s, uptime_cs)
        reason = None
        if before is not None:
            policy = dataclasses.replace(self.policy, poll_interval_s=interval_s)
            reason = device_reason(_sample(before), _sample(now), policy,
                                   prev_failed=profile in self._failed)
        rates = {}
        for key, (reading, bits) in readings.items():
            if before is None or key not in previous:
                rates[key] = CounterRate(None, RateReason.FIRST_POLL)
            elif reason is not None:
                rates[key] = CounterRate(None, reason)
            else:
                rates[key] = series_rate(previous[key], (reading, bits),
                                         mono_s - before.mono_s)
        self._polls[profile] = now
        self._readings[profile] = dict(readings)
        self._failed.discard(profile)
        return rates

    def observe_failure(self, profile: str | None = None) -> None:
        """``profile``'s poll failed (None: the device's poll failed, every profile's
        counters with it): its next rates are ``after_failed_poll``."""
        self._failed.update(self._polls if profile is None else (profile,))


def series_rate(before: tuple[int, int], now: tuple[int, int], interval_s: float) -> CounterRate:
    """One series' rate over an interval the device-level rules accepted."""
    (prev, prev_bits), (cur, bits) = before, now
    if prev_bits != bits:
        return CounterRate(None, RateReason.COUNTER_WIDTH_CHANGED)
    if not (0 <= prev < 1 << bits and 0 <= cur < 1 << bits):
        return CounterRate(None, RateReason.COUNTER_OUT_OF_RANGE)
    delta = counter_delta(prev, cur, bits)
    if delta is None:
        return CounterRate(None, RateReason.COUNTER_WENT_BACK)
    return CounterRate(delta / interval_s, None)


def _sample(poll: _Poll) -> DeviceSample:
    return DeviceSample(mono_s=poll.mono_s, sys_uptime_cs=poll.uptime_cs, interfaces={})
