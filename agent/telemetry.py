"""What the agent reports: a device's DevicePoll, and the agent's Status with its health.

Pure: no asyncio, sockets, files or clocks (times are passed in). The agent
(:mod:`agent.app`) feeds it raw polls, ping results, errors and counters; it returns
the wire's messages (:mod:`xanet.wire`), and says which changes are worth a log line
(state changes, not every poll).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from agent.errors import SnmpError
from agent.rates import DeviceSample, IfCounters, RateTracker
from agent.traffic import Period, Traffic, drain_eta_s
from xanet import wire

if TYPE_CHECKING:  # the type only: this module needs none of the SNMP machinery
    from agent.snmp import RawPoll
    from agent.subpoll import SubPlan

#: Which status to build: the birth/refresh, the Last Will (registered at connect, so it
#: carries no timestamp: the broker sends it later), or the goodbye of a clean stop.
StatusKind = Literal["online", "will", "stopped"]

#: Bound of the wire's short texts (``error``, ``reason``).
SHORT_TEXT = 256


# ----------------------------------------------------------------------- device polls


def to_device_poll(
    device: str, ts: datetime, raw: RawPoll, tracker: RateTracker, mono_s: float,
    ping: wire.PingResult | None = None,
) -> wire.DevicePoll:
    """A successful SNMP poll + rate state → the wire's DevicePoll."""
    sample = DeviceSample(
        mono_s=mono_s,
        sys_uptime_cs=raw.sys_uptime_cs,
        interfaces={
            i.index: IfCounters(
                index=i.index, name=i.name, in_octets=i.in_octets, out_octets=i.out_octets,
                hc=i.hc, speed_bps=i.speed_bps, discontinuity_cs=i.discontinuity_cs,
            )
            for i in raw.interfaces
        },
    )
    rates = tracker.observe(sample)
    interfaces = []
    for i in raw.interfaces:
        r = rates.get(i.index)
        note = None
        if r is not None and (r.in_reason is not None or r.out_reason is not None):
            reasons = {x.value for x in (r.in_reason, r.out_reason) if x is not None}
            note = ",".join(sorted(reasons))
        interfaces.append(
            wire.InterfacePoll(
                index=i.index, name=i.name, oper=_enum_or_none(i.oper_status, 7),
                admin=_enum_or_none(i.admin_status, 3), speed_bps=i.speed_bps, hc=i.hc,
                in_octets=i.in_octets, out_octets=i.out_octets,
                in_bps=r.in_bps if r else None, out_bps=r.out_bps if r else None,
                in_util_pct=r.in_util_pct if r else None,
                out_util_pct=r.out_util_pct if r else None,
                rate_note=note, alias=i.alias,
            )
        )
    return wire.DevicePoll(
        device=device, ts=ts, reachable=True, rtt_ms=round(raw.rtt_s * 1000, 3),
        uptime_cs=raw.sys_uptime_cs, interfaces=interfaces, ping=ping,
    )


def ping_only_poll(device: str, ts: datetime, ping: wire.PingResult | None) -> wire.DevicePoll:
    """A ping-only device's poll. Reachable when an echo came back; else ``timeout``
    (no answer), or ``config`` when this agent could not ping it at all (``ping`` None)."""
    if ping is None:
        return wire.DevicePoll(device=device, ts=ts, reachable=False, cause="config",
                               error="ICMP echo unavailable or not sendable on this agent "
                                     "(the agent's log says why)")
    if ping.received:
        return wire.DevicePoll(device=device, ts=ts, reachable=True, rtt_ms=ping.rtt_ms,
                               ping=ping)
    return wire.DevicePoll(device=device, ts=ts, reachable=False, cause="timeout",
                           error=f"no ICMP echo reply ({ping.sent} sent)", ping=ping)


def failed_poll(device: str, ts: datetime, exc: SnmpError,
                ping: wire.PingResult | None) -> wire.DevicePoll:
    """A failed poll with its cause and the human text (bounded as the wire wants)."""
    return wire.DevicePoll(device=device, ts=ts, reachable=False, cause=exc.cause,
                           error=str(exc)[:SHORT_TEXT], ping=ping)


def unbuilt_poll(device: str, ts: datetime, exc: Exception) -> wire.DevicePoll:
    """The poll of a device whose poll raised what no bound foresaw (a bug, a surprise):
    a monitoring fault of this device only (cause ``protocol``)."""
    return wire.DevicePoll(
        device=device, ts=ts, reachable=False, cause="protocol",
        error=f"poll could not be built: {type(exc).__name__}: {exc}"[:SHORT_TEXT])


def resolve_failure(host: str, exc: Exception) -> str:
    """The text of a failed name look-up (``TimeoutError``: the bound ran out)."""
    why = "look-up timed out" if isinstance(exc, TimeoutError) else str(exc)
    return f"cannot resolve {host!r}: {why}"


def should_recheck(snmp_failed: SnmpError | None, ping: wire.PingResult | None) -> bool:
    """Ask SNMP once more: it timed out while the host answered ICMP.

    That reads as a monitoring fault (``snmp_silent``), so it must hold once the echo is
    known to come back: at the end of a cut the SNMP request may have left while the path
    was still down and the echo after it came back (docs/availability.md)."""
    return (snmp_failed is not None and snmp_failed.cause == "timeout"
            and ping is not None and ping.received > 0)


def first_answer(poll: wire.DevicePoll) -> str:
    """What a device's first answered poll found, in one line for the log."""
    parts = []
    if poll.interfaces:
        up = sum(i.oper == 1 for i in poll.interfaces)
        parts.append(f"{len(poll.interfaces)} interface(s), {up} up")
    if poll.uptime_cs is not None:
        days = poll.uptime_cs / 8_640_000
        parts.append(f"uptime {days:.1f} d" if days >= 1 else f"uptime {days * 24:.1f} h")
    if poll.rtt_ms is not None:
        parts.append(f"{poll.rtt_ms:g} ms")
    if poll.ping is not None:
        parts.append(f"ICMP echo {poll.ping.received}/{poll.ping.sent}")
    if poll.power is not None:
        parts.append(f"power {poll.power.state}")
    return "first poll answered" + (f": {', '.join(parts)}" if parts else "")


def _enum_or_none(value: int | None, top: int) -> int | None:
    return value if value is not None and 1 <= value <= top else None


# ----------------------------------------------------------------------- health


@dataclass
class Health:
    """The agent's counters and per-device states, fed one poll at a time."""

    poll_overruns: int = 0
    polls_ok: int = 0
    polls_failed: int = 0
    #: polls that waited for admission while the lag limit was below max_concurrent
    polls_throttled: int = 0
    #: device key -> the cause of its last poll's failure (absent: its last poll was fine)
    failing: dict[str, wire.PollCause] = field(default_factory=dict)
    warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: per-device faults contained by a bound, by reason (docs/counters.md, "Contained")
    contained: collections.Counter[str] = field(default_factory=collections.Counter)
    #: devices whose ping failed (logged once each until it works again)
    ping_failing: set[str] = field(default_factory=set)
    #: SNMP polls asked again because SNMP timed out while the host answered ICMP
    snmp_rechecks: int = 0
    #: polls that could not be stored (disk full, I/O error), and the last reason
    polls_dropped: int = 0
    spool_error: str | None = None
    #: (device key, profile) -> the cause of that profile's last failed poll (absent: fine)
    profiles_failing: dict[tuple[str, str], wire.PollCause] = field(default_factory=dict)
    #: profile polls that failed, in all (the device's poll stood: docs/profiles.md)
    profile_failures: int = 0
    #: devices that have answered a poll since the agent started
    answered: set[str] = field(default_factory=set)
    #: the uplink's bytes: by lane, per poll and interface sample, compression
    traffic: Traffic = field(default_factory=Traffic)

    def note_sent(self, raw_bytes: int, wire_bytes: int, *, backlog: bool = True) -> None:
        """A telemetry publish acknowledged: ``raw_bytes`` of JSON in ``wire_bytes``."""
        self.traffic.note_sent("backlog" if backlog else "live", raw_bytes, wire_bytes)

    @property
    def monitoring_errors(self) -> int:
        """Devices whose last poll failed for a cause other than ``timeout``, or one of
        whose profiles failed at its last poll (whatever the cause: the device answered)."""
        failing = {key for key, cause in self.failing.items() if cause != "timeout"}
        return len(failing | {key for key, _ in self.profiles_failing})

    def record_profile(self, key: str, profile: str, cause: wire.PollCause | None) -> bool:
        """Counts a profile's poll of device ``key`` (``cause``: why it failed; None: it
        did not); True when it started failing (or failing otherwise) or recovered."""
        if cause is None:
            return self.profiles_failing.pop((key, profile), None) is not None
        self.profile_failures += 1
        if self.profiles_failing.get((key, profile)) == cause:
            return False
        self.profiles_failing[(key, profile)] = cause
        return True

    def record(self, key: str, poll: wire.DevicePoll) -> str | None:
        """Counts a device's poll; returns what changed for the device (for the log: a
        failure when ``poll`` is unreachable, else a recovery), None when nothing did."""
        if poll.reachable:
            self.polls_ok += 1
            was = self.failing.pop(key, None)
            return None if was is None else f"polled again (was failing: {was})"
        self.polls_failed += 1
        cause = poll.cause or "protocol"
        if cause == "limit":
            self.contained["poll_limit"] += 1
        if self.failing.get(key) == cause:
            return None
        self.failing[key] = cause
        if cause == "timeout":
            seen = ("ping answers" if poll.ping and poll.ping.received else
                    "no ping answer" if poll.ping else "no ping")
            return f"unreachable ({seen}): {poll.error}"
        return f"monitoring error, cause {cause}: {poll.error}"

    def record_first_answer(self, key: str, poll: wire.DevicePoll,
                            change: str | None) -> str | None:
        """The log line of device ``key``'s first answered poll since start (what it found,
        with the recovery ``change`` :meth:`record` returned, if any); None after that:
        a technician watching the journal sees each device work once."""
        if not poll.reachable or key in self.answered:
            return None
        self.answered.add(key)
        return first_answer(poll) + (f" ({change})" if change else "")
    def forget(self, key: str) -> None:
        """A device removed from the config (or restarted with fresh state): its states."""
        self.failing.pop(key, None)
        self.warnings.pop(key, None)
        self.ping_failing.discard(key)
        for pair in [p for p in self.profiles_failing if p[0] == key]:
            del self.profiles_failing[pair]

    def record_warnings(self, key: str, warnings: tuple[str, ...]) -> tuple[str, ...]:
        """Keeps a device's poll warnings; returns them when they changed (to be logged),
        else nothing: logged when they change, not at every poll."""
        if warnings == self.warnings.get(key, ()):
            return ()
        self.warnings[key] = warnings
        return warnings

    def record_ping(self, key: str, works: bool) -> bool:
        """Whether the device's ping changed from working to failing or back (to be
        logged once each way)."""
        if works:
            if key in self.ping_failing:
                self.ping_failing.discard(key)
                return True
            return False
        if key in self.ping_failing:
            return False
        self.ping_failing.add(key)
        return True


@dataclass
class Overload:
    """What the online status says about overload since the previous status."""

    #: the worst event loop lag since the previous status
    lag_peak_s: float = 0.0
    #: ``Health.polls_throttled`` when the previous status was built
    throttled_reported: int = 0

    def observe_lag(self, lag_s: float) -> None:
        self.lag_peak_s = max(self.lag_peak_s, lag_s)

    def note(self, throttled: int, limit: int, ceiling: int, throttling: bool) -> str | None:
        """Whether polls were throttled since the previous status (``throttled``: the
        total so far; ``limit``/``ceiling``: polls admitted at a time now / at most;
        ``throttling``: the limit is below its ceiling now). Starts the next period."""
        recent = throttled - self.throttled_reported
        lag_peak_s, self.lag_peak_s = self.lag_peak_s, 0.0
        self.throttled_reported = throttled
        if not recent and not throttling:
            return None
        return (f"overloaded: {limit}/{ceiling} polls admitted at a time; since the last "
                f"status: {recent} poll(s) throttled, event loop lag up to {lag_peak_s:.2f}s")


# ----------------------------------------------------------------------- status


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the spool and the uplink say at one moment, for the status."""

    spool_depth: int = 0
    #: when the oldest message still in the spool was stored (epoch seconds)
    spool_oldest_created_s: float | None = None
    spool_dropped: int = 0
    quarantined: int = 0
    #: why the spool file was set aside as corrupt, when it was
    corruption: str | None = None
    refused: int = 0
    #: the broker's refusal in force: (topic, reason code)
    refusal: tuple[str, int] | None = None
    user: str | None = None
    taken_over: int = 0
    #: the uplink's bytes (None: not reported, and no byte figure is sent)
    backlog_bytes: int | None = None
    budget_bytes_per_s: float | None = None
    #: the figures since the previous online status (None: not an online status)
    period: Period | None = None
    #: the saturated uplink's stretch (agent.stretch): whether, how many profiles, factor
    saturated: bool = False
    profiles_stretched: int = 0
    stretch_factor: int = 1


def agent_health(delivery: Delivery, health: Health, devices: int,
                 now_s: float) -> wire.AgentHealth:
    """The status's health block (``now_s``: epoch seconds, for the spool's oldest age)."""
    oldest = delivery.spool_oldest_created_s
    return wire.AgentHealth(
        **_bytes_health(delivery, health.traffic),
        spool_depth=delivery.spool_depth,
        spool_oldest_age_s=max(0.0, now_s - oldest) if oldest else None,
        spool_dropped=delivery.spool_dropped,
        poll_overruns=health.poll_overruns,
        devices=devices,
        monitoring_errors=health.monitoring_errors,
        refused=delivery.refused,
        quarantined=delivery.quarantined,
        polls_dropped=health.polls_dropped,
    )


def _bytes_health(d: Delivery, traffic: Traffic) -> dict[str, Any]:
    """The health's byte fields (none when ``d`` reports no bytes: an older agent's
    status, byte for byte)."""
    if d.backlog_bytes is None:
        return {}
    p = d.period
    drain = p.drain_bytes_per_s if p else None
    return {
        "bytes_sent": traffic.bytes_sent, "bytes_live": traffic.bytes_live,
        "bytes_backlog": traffic.bytes_backlog, "backlog_bytes": d.backlog_bytes,
        "bytes_per_poll": p.bytes_per_poll if p else None,
        "bytes_per_interface": p.bytes_per_interface if p else None,
        "compression_ratio": p.compression_ratio if p else None,
        "drain_bytes_per_s": drain,
        "drain_eta_s": drain_eta_s(d.backlog_bytes, drain) if p else None,
        "budget_bytes_per_s": (round(d.budget_bytes_per_s, 1)
                               if d.budget_bytes_per_s is not None else None),
        "saturated": d.saturated, "profiles_stretched": d.profiles_stretched,
        "stretch_factor": d.stretch_factor,
    }


def stretch_note(d: Delivery) -> str | None:
    """Which profiles stretch under a saturated uplink, for the online status."""
    if d.stretch_factor <= 1:
        return None
    return (f"uplink saturated: {d.profiles_stretched} profile(s) polled at "
            f"x{d.stretch_factor} their interval")


def delivery_note(delivery: Delivery, health: Health) -> str | None:
    """What is wrong with delivery right now, for the online status."""
    d, notes = delivery, []
    if d.refusal is not None:
        topic, code = d.refusal
        notes.append(f"refused: broker refuses {topic} for user {d.user} "
                     f"(reason code {code}), {d.refused} message(s) kept")
    if d.quarantined:
        notes.append(f"quarantined: {d.quarantined} message(s) too large for the broker")
    if health.spool_error is not None:
        notes.append(f"polls dropped: {health.polls_dropped} ({health.spool_error})")
    if d.corruption is not None:
        notes.append(d.corruption)
    if d.taken_over:
        notes.append(f"session taken over {d.taken_over} time(s): a second agent with "
                     f"user {d.user}?")
    return "; ".join(notes) if notes else None


def between_note(plans: Iterable[SubPlan]) -> str | None:
    """Which ports' counters are read between polls (agent.subpoll), for the status."""
    listed = list(plans)
    if not listed:
        return None
    ports = sum(len(p.indices) for p in listed)
    capped = sum(1 for p in listed if p.capped)
    return (f"Counter32 readings between polls: {ports} port(s) on {len(listed)} device(s)"
            + (f", {capped} device(s) still too fast" if capped else ""))


def profiles_note(health: Health) -> str | None:
    """Which device profiles fail now, for the status."""
    failing = health.profiles_failing
    if not failing:
        return None
    names = sorted({profile for _, profile in failing})
    devices = len({key for key, _ in failing})
    return (f"profiles failing: {len(failing)} on {devices} device(s) ({', '.join(names)}); "
            f"{health.profile_failures} failed profile poll(s) in all")


def online_reason(*notes: str | None) -> str | None:
    """The online status's reason: its notes (delivery, overload), bounded."""
    present = [n for n in notes if n]
    return "; ".join(present)[:SHORT_TEXT] if present else None


def status(kind: StatusKind, *, agent: str, site: str, version: str, instance: str | None,
           ts: datetime | None, reason: str | None,
           health: wire.AgentHealth) -> wire.Status:
    """The agent's status message of ``kind`` (``reason``: the online status's own; the
    will's and the stop's are fixed; ``ts``: now, None for the will, sent later)."""
    return wire.Status(
        agent=agent,
        site=site,
        state="online" if kind == "online" else "offline",
        ts=None if kind == "will" else ts,
        reason={"online": reason, "will": "connection lost (last will)",
                "stopped": "agent stopped"}[kind],
        version=version,
        instance=instance,
        health=health,
    )
