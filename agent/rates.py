"""Rates of interface octet counters, decided at the source (pure).

Feed two consecutive polls of one device (:class:`DeviceSample`) to
:func:`compute_rates` and get, per ifIndex, either a rate in bits per second
(with utilisation when the speed is known) or the reason there is none
(:class:`RateReason`). :class:`RateTracker` keeps the previous sample for one
device and counts withheld rates by reason.

The rules (docs/counters.md has the table):

* Intervals are the agent's own monotonic poll timestamps, never arrival times.
* No rate across a failed poll, nor across a gap longer than
  ``max_gap_factor`` x the poll interval.
* A reboot (sysUpTime advanced differently from the elapsed time, beyond
  ``uptime_slack_s`` + ``uptime_drift`` x elapsed) gives no rate. sysUpTime
  wrapping at 2**32 centiseconds (~497 days) while advancing by the elapsed
  time is not a reboot.
* A changed ifCounterDiscontinuityTime, an ifIndex now naming another
  interface, or a counter that switched between 32 and 64 bits gives no rate.
* A Counter32 that went backwards wrapped once: the delta is exact. A Counter64
  that went backwards was reset (2**64 octets cannot pass between polls).
* A Counter32 delta that could also have been one more wrap within the
  interface speed is ambiguous and withheld, unless the policy allows it.
* A rate above speed x ``speed_tolerance`` is withheld (an undetected reset
  shows up this way) - never published as a spike.
* Counter32 readings between two polls (sub-interval polling, :mod:`agent.subpoll`) may
  give the rate a Counter32 check withheld as ambiguous (:attr:`RateTracker.adjust`).

No I/O, no clock, no asyncio: everything comes in through the arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

COUNTER32_MODULUS = 2**32
COUNTER64_MODULUS = 2**64
UPTIME_MODULUS_CS = 2**32
"""sysUpTime is TimeTicks (hundredths of a second) and wraps at 2**32 (~497 days)."""

_CS_PER_S = 100
_BITS_PER_OCTET = 8


class RateReason(StrEnum):
    """Why an interface direction has no rate for an interval.

    The values are the strings recorded on the wire and in InfluxDB.
    """

    FIRST_POLL = "first_poll"
    """No earlier sample of this device or of this ifIndex."""
    AFTER_FAILED_POLL = "after_failed_poll"
    """The poll before this one failed: no rate across a failed poll."""
    INTERVAL_TOO_SHORT = "interval_too_short"
    """Polls closer than ``min_interval_s`` (or not increasing in time)."""
    REBOOT = "reboot"
    """sysUpTime went backwards or advanced less than the elapsed time."""
    UPTIME_INCONSISTENT = "uptime_inconsistent"
    """sysUpTime advanced more than the elapsed time: not the same clock."""
    GAP = "gap"
    """Interval longer than ``max_gap_factor`` x ``poll_interval_s``."""
    IFINDEX_REUSED = "ifindex_reused"
    """The ifIndex now names another interface (ifName changed)."""
    DISCONTINUITY = "discontinuity"
    """ifCounterDiscontinuityTime changed: the counters were reset."""
    COUNTER_WIDTH_CHANGED = "counter_width_changed"
    """The counter switched between 32-bit and 64-bit."""
    NO_COUNTER = "no_counter"
    """The counter is missing from this poll or from the previous one."""
    COUNTER_OUT_OF_RANGE = "counter_out_of_range"
    """A counter value outside [0, 2**bits): not a valid reading."""
    COUNTER_WENT_BACK = "counter_went_back"
    """A 64-bit counter decreased: a reset without any other signal."""
    COUNTER32_AMBIGUOUS = "counter32_ambiguous"
    """A Counter32 could have wrapped more than once at the interface speed."""
    OVER_SPEED = "over_speed"
    """The rate exceeds the interface speed x ``speed_tolerance``."""


@dataclass(frozen=True, slots=True)
class IfCounters:
    """One interface's counters as polled."""

    index: int
    name: str
    """ifName (or ifDescr fallback): identity check across polls."""
    in_octets: int | None
    out_octets: int | None
    hc: bool
    """True: 64-bit ifHC*Octets, False: 32-bit ifIn/OutOctets."""
    speed_bps: int | None
    """From ifHighSpeed x 1e6 or ifSpeed; None or 0 means unknown."""
    discontinuity_cs: int | None = None
    """ifCounterDiscontinuityTime (TimeTicks), None if not polled."""

    @property
    def bits(self) -> int:
        return 64 if self.hc else 32


@dataclass(frozen=True, slots=True)
class DeviceSample:
    """One successful poll of one device."""

    mono_s: float
    """The agent's monotonic clock at the poll."""
    sys_uptime_cs: int | None
    """sysUpTime in centiseconds (TimeTicks, wraps at 2**32); None if not polled."""
    interfaces: Mapping[int, IfCounters]
    """By ifIndex."""


@dataclass(frozen=True, slots=True)
class IfRate:
    """The outcome for one interface over one interval."""

    in_bps: float | None
    out_bps: float | None
    in_util_pct: float | None
    out_util_pct: float | None
    in_reason: RateReason | None
    """None exactly when ``in_bps`` is a real rate."""
    out_reason: RateReason | None
    """None exactly when ``out_bps`` is a real rate."""
    interval_s: float | None
    """Time between the two polls (None on a first poll)."""

    @classmethod
    def withheld(cls, reason: RateReason, interval_s: float | None) -> IfRate:
        """No rate in either direction, for the same reason."""
        return cls(None, None, None, None, reason, reason, interval_s)


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """The knobs of rate computation (one per device, from the agent config)."""

    poll_interval_s: float
    max_gap_factor: float = 3.0
    """No rate across a gap longer than this x ``poll_interval_s``."""
    speed_tolerance: float = 1.1
    """Withhold a rate above the interface speed x this."""
    min_interval_s: float = 0.5
    """Guard against division by tiny intervals."""
    uptime_slack_s: float = 10.0
    """How far the sysUpTime advance may differ from the elapsed monotonic time
    (SNMP latency and retries between ``mono_s`` and the device reading its clock)."""
    uptime_drift: float = 0.005
    """Added to ``uptime_slack_s`` as a fraction of the elapsed time (device clock rate)."""
    allow_ambiguous_counter32: bool = False
    """Publish a Counter32 rate even when another wrap would have fitted in the speed."""
    unknown_speed_bps: int | None = None
    """Assumed speed for the over-speed and Counter32 checks when an interface reports
    none (never used for utilisation). None: no such checks without a speed."""

    def __post_init__(self) -> None:
        if not self.poll_interval_s > 0:
            raise ValueError(f"poll_interval_s must be > 0, got {self.poll_interval_s!r}")
        if not self.max_gap_factor >= 1:
            raise ValueError(f"max_gap_factor must be >= 1, got {self.max_gap_factor!r}")
        if not self.speed_tolerance >= 1:
            raise ValueError(f"speed_tolerance must be >= 1, got {self.speed_tolerance!r}")
        if not self.min_interval_s > 0:
            raise ValueError(f"min_interval_s must be > 0, got {self.min_interval_s!r}")
        if not self.uptime_slack_s >= 0:
            raise ValueError(f"uptime_slack_s must be >= 0, got {self.uptime_slack_s!r}")
        if not 0 <= self.uptime_drift < 1:
            raise ValueError(f"uptime_drift must be in [0, 1), got {self.uptime_drift!r}")
        if self.unknown_speed_bps is not None and self.unknown_speed_bps <= 0:
            raise ValueError(f"unknown_speed_bps must be > 0, got {self.unknown_speed_bps!r}")

    @property
    def max_interval_s(self) -> float:
        return self.max_gap_factor * self.poll_interval_s


def counter_delta(prev: int, cur: int, bits: int) -> int | None:
    """Octets counted between two readings of a ``bits``-wide counter.

    A Counter32 that went backwards wrapped once: the exact delta is
    ``cur + 2**32 - prev``. A Counter64 that went backwards was reset (None).
    None as well for readings outside ``[0, 2**bits)``.
    """
    if bits not in (32, 64):
        raise ValueError(f"counter width must be 32 or 64 bits, got {bits}")
    modulus = 1 << bits
    if not (0 <= prev < modulus and 0 <= cur < modulus):
        return None
    if cur >= prev:
        return cur - prev
    if bits == 32:
        return cur + modulus - prev
    return None


def uptime_delta_cs(prev: int, cur: int) -> int:
    """sysUpTime advance in centiseconds, across its 2**32 wrap.

    Always in ``[0, 2**32)``; whether it is plausible is decided by comparing it
    with the elapsed time (:func:`classify_uptime`).
    """
    return (cur - prev) % UPTIME_MODULUS_CS


def classify_uptime(
    prev_cs: int, cur_cs: int, interval_s: float, policy: RatePolicy
) -> RateReason | None:
    """Did the device keep running between two polls ``interval_s`` apart?

    None when the sysUpTime advance (wrap included) matches the elapsed time
    within ``uptime_slack_s + uptime_drift * interval_s``; REBOOT when it went
    backwards or advanced too little; UPTIME_INCONSISTENT when it advanced too
    much. Undecidable cases (readings out of range, an interval at least as
    long as the sysUpTime period) return None: the other checks still apply.
    """
    in_range = 0 <= prev_cs < UPTIME_MODULUS_CS and 0 <= cur_cs < UPTIME_MODULUS_CS
    tolerance_cs = (policy.uptime_slack_s + policy.uptime_drift * interval_s) * _CS_PER_S
    expected_cs = interval_s * _CS_PER_S
    if not in_range or interval_s <= 0 or expected_cs + tolerance_cs >= UPTIME_MODULUS_CS:
        return None
    advance_cs = uptime_delta_cs(prev_cs, cur_cs)
    if abs(advance_cs - expected_cs) <= tolerance_cs:
        return None
    if cur_cs < prev_cs or advance_cs < expected_cs:
        return RateReason.REBOOT
    return RateReason.UPTIME_INCONSISTENT


def device_reason(
    prev: DeviceSample | None,
    cur: DeviceSample,
    policy: RatePolicy,
    *,
    prev_failed: bool = False,
) -> RateReason | None:
    """Why no interface of this device gets a rate for this interval, if so.

    Precedence: first_poll, after_failed_poll, interval_too_short, reboot /
    uptime_inconsistent, gap (a reboot during a long gap is reported as reboot).
    """
    if prev is None:
        return RateReason.FIRST_POLL
    if prev_failed:
        return RateReason.AFTER_FAILED_POLL
    interval_s = cur.mono_s - prev.mono_s
    if not interval_s >= policy.min_interval_s:
        return RateReason.INTERVAL_TOO_SHORT
    if prev.sys_uptime_cs is not None and cur.sys_uptime_cs is not None:
        verdict = classify_uptime(prev.sys_uptime_cs, cur.sys_uptime_cs, interval_s, policy)
        if verdict is not None:
            return verdict
    if interval_s > policy.max_interval_s:
        return RateReason.GAP
    return None


def compute_rates(
    prev: DeviceSample | None,
    cur: DeviceSample,
    policy: RatePolicy,
    *,
    prev_failed: bool = False,
) -> dict[int, IfRate]:
    """Rates for every interface of ``cur``, from the previous successful poll.

    ``prev_failed``: a poll between ``prev`` and ``cur`` failed. Interfaces
    gone since ``prev`` are absent from the result.
    """
    interval_s = None if prev is None else cur.mono_s - prev.mono_s
    reason = device_reason(prev, cur, policy, prev_failed=prev_failed)
    if prev is None or interval_s is None:
        return {index: IfRate.withheld(RateReason.FIRST_POLL, None) for index in cur.interfaces}
    if reason is not None:
        return {index: IfRate.withheld(reason, interval_s) for index in cur.interfaces}
    return {
        index: interface_rate(prev.interfaces.get(index), now, interval_s, policy)
        for index, now in cur.interfaces.items()
    }


def interface_rate(
    before: IfCounters | None, now: IfCounters, interval_s: float, policy: RatePolicy
) -> IfRate:
    """One interface's rates over an interval the device-level checks accepted."""
    if before is None:
        return IfRate.withheld(RateReason.FIRST_POLL, interval_s)
    if before.name != now.name:
        return IfRate.withheld(RateReason.IFINDEX_REUSED, interval_s)
    if (
        before.discontinuity_cs is not None
        and now.discontinuity_cs is not None
        and before.discontinuity_cs != now.discontinuity_cs
    ):
        return IfRate.withheld(RateReason.DISCONTINUITY, interval_s)
    if before.hc != now.hc:
        return IfRate.withheld(RateReason.COUNTER_WIDTH_CHANGED, interval_s)

    known = [s for s in (before.speed_bps, now.speed_bps) if s is not None and s > 0]
    check_speed = max(known) if known else policy.unknown_speed_bps
    limit_bps = None if check_speed is None else check_speed * policy.speed_tolerance
    # Utilisation only against a speed that held over the whole interval.
    util_speed = now.speed_bps if now.speed_bps in known and len(set(known)) == 1 else None

    in_bps, in_reason = _direction_rate(
        before.in_octets, now.in_octets, now.bits, interval_s, limit_bps, policy
    )
    out_bps, out_reason = _direction_rate(
        before.out_octets, now.out_octets, now.bits, interval_s, limit_bps, policy
    )
    return IfRate(
        in_bps=in_bps,
        out_bps=out_bps,
        in_util_pct=_utilisation(in_bps, util_speed),
        out_util_pct=_utilisation(out_bps, util_speed),
        in_reason=in_reason,
        out_reason=out_reason,
        interval_s=interval_s,
    )


def _direction_rate(
    prev: int | None,
    cur: int | None,
    bits: int,
    interval_s: float,
    limit_bps: float | None,
    policy: RatePolicy,
) -> tuple[float | None, RateReason | None]:
    if prev is None or cur is None:
        return None, RateReason.NO_COUNTER
    modulus = 1 << bits
    if not (0 <= prev < modulus and 0 <= cur < modulus):
        return None, RateReason.COUNTER_OUT_OF_RANGE
    delta = counter_delta(prev, cur, bits)
    if delta is None:
        return None, RateReason.COUNTER_WENT_BACK
    if limit_bps is not None:
        max_octets = limit_bps * interval_s / _BITS_PER_OCTET
        if (
            bits == 32
            and not policy.allow_ambiguous_counter32
            and delta + COUNTER32_MODULUS <= max_octets
        ):
            return None, RateReason.COUNTER32_AMBIGUOUS
    bps = delta * _BITS_PER_OCTET / interval_s
    if limit_bps is not None and bps > limit_bps:
        return None, RateReason.OVER_SPEED
    return bps, None


def _utilisation(bps: float | None, speed_bps: int | None) -> float | None:
    if bps is None or speed_bps is None or speed_bps <= 0:
        return None
    return bps / speed_bps * 100.0


class RateTracker:
    """Rates for one device, poll after poll (pure: the caller brings the samples).

    Every interface direction that got no rate says why in its :class:`IfRate`
    (``in_reason`` / ``out_reason``); the agent publishes that as the poll's ``rate_note``.
    """

    def __init__(self, policy: RatePolicy) -> None:
        self.policy = policy
        self._prev: DeviceSample | None = None
        self._prev_failed = False
        #: called with (previous, sample, rates) on an interval with a base: may replace
        #: rates (agent.subpoll's readings between polls); None: nothing to add
        self.adjust: Callable[[DeviceSample, DeviceSample, dict[int, IfRate]], None] | None \
            = None

    @property
    def previous(self) -> DeviceSample | None:
        """The base of the next rate: the last successful poll, None after a failure."""
        return None if self._prev_failed else self._prev

    def observe(self, sample: DeviceSample) -> dict[int, IfRate]:
        """Rates from the last successful poll to ``sample``, which becomes the new base."""
        rates = compute_rates(self._prev, sample, self.policy, prev_failed=self._prev_failed)
        if self.adjust is not None and self._prev is not None and not self._prev_failed:
            self.adjust(self._prev, sample, rates)
        self._prev = sample
        self._prev_failed = False
        return rates

    def observe_failure(self) -> None:
        """A poll failed: the next :meth:`observe` yields AFTER_FAILED_POLL, no rate."""
        self._prev_failed = True
