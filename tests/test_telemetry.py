"""agent.telemetry, without sockets: DevicePolls from raw polls, pings and errors; the
health counters and what they log; the status and its notes. Tables, one row per case."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.errors import (
    SnmpAccessError,
    SnmpAuthError,
    SnmpConfigError,
    SnmpError,
    SnmpLimitError,
    SnmpProtocolError,
    SnmpResolveError,
    SnmpTimeout,
)
from agent.rates import RatePolicy, RateTracker
from agent.snmp import RawInterface, RawPoll
from agent.telemetry import (
    Delivery,
    Health,
    Overload,
    StatusKind,
    agent_health,
    delivery_note,
    failed_poll,
    online_reason,
    ping_only_poll,
    resolve_failure,
    should_recheck,
    status,
    to_device_poll,
    unbuilt_poll,
)
from xanet import wire

TS = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
DEV = "bts-00001"


def ping(sent: int = 2, received: int = 2, rtt_ms: float | None = 1.5) -> wire.PingResult:
    return wire.PingResult(sent=sent, received=received, rtt_ms=rtt_ms)


def iface(index: int = 1, *, octets: int = 0, oper: int | None = 1, admin: int | None = 1,
          speed_bps: int | None = 10**9, hc: bool = True) -> RawInterface:
    return RawInterface(index=index, name=f"ge-0/0/{index}", descr=None, oper_status=oper,
                        admin_status=admin, speed_bps=speed_bps, in_octets=octets,
                        out_octets=octets // 2, hc=hc, discontinuity_cs=None)


def raw(*interfaces: RawInterface, uptime_cs: int = 100_000, rtt_s: float = 0.0041234,
        warnings: tuple[str, ...] = ()) -> RawPoll:
    return RawPoll(device=DEV, sys_uptime_cs=uptime_cs, interfaces=interfaces, rtt_s=rtt_s,
                   warnings=warnings)


def tracker(interval_s: float = 60.0) -> RateTracker:
    return RateTracker(RatePolicy(poll_interval_s=interval_s))


# ------------------------------------------------------------------ successful SNMP polls


def test_first_poll_has_counters_no_rates_and_says_why() -> None:
    p = to_device_poll(DEV, TS, raw(iface(1, octets=1000)), tracker(), mono_s=10.0,
                       ping=ping())
    assert (p.device, p.ts, p.reachable, p.cause, p.error) == (DEV, TS, True, None, None)
    assert p.rtt_ms == 4.123  # seconds -> ms, rounded to the microsecond
    assert p.uptime_cs == 100_000 and p.ping == ping()
    assert p.parts is None  # a whole poll; only packing splits one into parts
    [i] = p.interfaces
    assert (i.in_octets, i.out_octets, i.in_bps, i.out_bps) == (1000, 500, None, None)
    assert i.rate_note == "first_poll"


def test_second_poll_has_rates_and_utilisation() -> None:
    t = tracker(60.0)
    to_device_poll(DEV, TS, raw(iface(1, octets=0)), t, mono_s=0.0)
    # 750 MB in 60 s in, half out: 100 Mb/s and 50 Mb/s on a 1 Gb/s port
    p = to_device_poll(DEV, TS + timedelta(seconds=60),
                       raw(iface(1, octets=750_000_000), uptime_cs=106_000), t, mono_s=60.0)
    [i] = p.interfaces
    assert (i.in_bps, i.out_bps) == (100_000_000.0, 50_000_000.0)
    assert (i.in_util_pct, i.out_util_pct) == (10.0, 5.0)
    assert i.rate_note is None and p.ping is None


@dataclass(frozen=True)
class RateCase:
    name: str
    second: RawPoll
    mono_s: float
    note: str | None
    failure_between: bool = False


RATE_CASES = [
    RateCase("rate", raw(iface(1, octets=7_500_000), uptime_cs=106_000), 60.0, None),
    RateCase("reboot", raw(iface(1, octets=7_500_000), uptime_cs=50), 60.0, "reboot"),
    RateCase("after a failed poll", raw(iface(1, octets=7_500_000), uptime_cs=106_000),
             60.0, "after_failed_poll", failure_between=True),
    RateCase("gap", raw(iface(1, octets=7_500_000), uptime_cs=160_000), 600.0, "gap"),
    RateCase("counter width changed",
             raw(iface(1, octets=7_500_000, hc=False), uptime_cs=106_000), 60.0,
             "counter_width_changed"),
    RateCase("over speed", raw(iface(1, octets=10**12), uptime_cs=106_000), 60.0,
             "over_speed"),
]


@pytest.mark.parametrize("case", RATE_CASES, ids=lambda c: c.name)
def test_withheld_rates_carry_their_reason_as_rate_note(case: RateCase) -> None:
    t = tracker(60.0)
    to_device_poll(DEV, TS, raw(iface(1, octets=0)), t, mono_s=0.0)
    if case.failure_between:
        t.observe_failure()
    p = to_device_poll(DEV, TS, case.second, t, mono_s=case.mono_s)
    [i] = p.interfaces
    assert i.rate_note == case.note
    assert (i.in_bps is None) == (case.note is not None)
    assert i.in_octets == case.second.interfaces[0].in_octets  # counters always published


@pytest.mark.parametrize(("oper", "admin", "want"), [
    (1, 1, (1, 1)), (7, 3, (7, 3)), (8, 4, (None, None)), (0, 0, (None, None)),
    (None, None, (None, None)), (2, 2, (2, 2)),
])
def test_out_of_range_statuses_are_dropped(oper: int | None, admin: int | None,
                                           want: tuple[int | None, int | None]) -> None:
    p = to_device_poll(DEV, TS, raw(iface(1, oper=oper, admin=admin)), tracker(), 0.0)
    assert (p.interfaces[0].oper, p.interfaces[0].admin) == want


# ------------------------------------------------------------------ failures and pings


@pytest.mark.parametrize(("exc", "cause"), [
    (SnmpTimeout(DEV, "no answer after 2 tries"), "timeout"),
    (SnmpAuthError(DEV, "wrong digest"), "auth"),
    (SnmpAccessError(DEV, "noAccess"), "access"),
    (SnmpResolveError(DEV, "cannot resolve"), "resolve"),
    (SnmpProtocolError(DEV, "garbage"), "protocol"),
    (SnmpConfigError(DEV, "key too short"), "config"),
    (SnmpLimitError(DEV, "walk too long"), "limit"),
    (SnmpError(DEV, "unplaced"), "protocol"),
])
@pytest.mark.parametrize("echo", [None, ping(), ping(received=0, rtt_ms=None)])
def test_failed_poll_has_the_errors_cause(exc: SnmpError, cause: wire.PollCause,
                                          echo: wire.PingResult | None) -> None:
    p = failed_poll(DEV, TS, exc, echo)
    assert (p.reachable, p.cause, p.error, p.ping) == (False, cause, str(exc), echo)
    assert p.interfaces == [] and p.rtt_ms is None


def test_failed_poll_error_text_is_bounded() -> None:
    p = failed_poll(DEV, TS, SnmpProtocolError(DEV, "x" * 1000), None)
    assert p.error is not None and len(p.error) == 256


@pytest.mark.parametrize(("exc", "error"), [
    (ValueError("bad"), "poll could not be built: ValueError: bad"),
    (KeyError(3), "poll could not be built: KeyError: 3"),
    (RuntimeError("y" * 400), ("poll could not be built: RuntimeError: " + "y" * 400)[:256]),
])
def test_unbuilt_poll_is_a_protocol_fault(exc: Exception, error: str) -> None:
    p = unbuilt_poll(DEV, TS, exc)
    assert (p.reachable, p.cause, p.error) == (False, "protocol", error)


@pytest.mark.parametrize(("exc", "text"), [
    (TimeoutError(), "cannot resolve 'bts.example': look-up timed out"),
    (OSError("[Errno -2] Name or service not known"),
     "cannot resolve 'bts.example': [Errno -2] Name or service not known"),
])
def test_resolve_failure_text(exc: Exception, text: str) -> None:
    assert resolve_failure("bts.example", exc) == text


@pytest.mark.parametrize(("echo", "reachable", "cause", "error", "rtt_ms"), [
    (None, False, "config",
     "ICMP echo unavailable or not sendable on this agent (the agent's log says why)", None),
    (ping(2, 2, 3.25), True, None, None, 3.25),
    (ping(2, 1, 9.0), True, None, None, 9.0),
    (ping(3, 0, None), False, "timeout", "no ICMP echo reply (3 sent)", None),
])
def test_ping_only_poll(echo: wire.PingResult | None, reachable: bool,
                        cause: str | None, error: str | None, rtt_ms: float | None) -> None:
    p = ping_only_poll(DEV, TS, echo)
    assert (p.reachable, p.cause, p.error, p.rtt_ms, p.ping) == (
        reachable, cause, error, rtt_ms, echo)
    assert p.interfaces == [] and p.uptime_cs is None


@pytest.mark.parametrize(("failed", "echo", "recheck"), [
    (SnmpTimeout(DEV, "t"), ping(2, 1), True),
    (SnmpTimeout(DEV, "t"), ping(2, 0, None), False),   # the host is silent too: down
    (SnmpTimeout(DEV, "t"), None, False),               # no witness
    (SnmpAuthError(DEV, "a"), ping(2, 2), False),       # an answer, wrong: no retry helps
    (None, ping(2, 2), False),                          # SNMP answered
])
def test_snmp_is_asked_again_only_when_silent_while_icmp_answers(
        failed: SnmpError | None, echo: wire.PingResult | None, recheck: bool) -> None:
    assert should_recheck(failed, echo) is recheck


# ------------------------------------------------------------------ health: what it logs


def ok() -> wire.DevicePoll:
    return wire.DevicePoll(device=DEV, ts=TS, reachable=True)


def bad(cause: wire.PollCause | None, echo: wire.PingResult | None = None,
        error: str = "why") -> wire.DevicePoll:
    return wire.DevicePoll(device=DEV, ts=TS, reachable=False, cause=cause, error=error,
                           ping=echo)


@dataclass(frozen=True)
class HealthCase:
    name: str
    polls: list[wire.DevicePoll]
    logged: list[str | None]  # what each poll's record() returns
    monitoring_errors: int
    failing: wire.PollCause | None
    contained: dict[str, int] = field(default_factory=dict)


HEALTH_CASES = [
    HealthCase("all fine", [ok(), ok()], [None, None], 0, None),
    HealthCase("timeout, once logged, then back",
               [bad("timeout"), bad("timeout"), ok()],
               ["unreachable (no ping): why", None, "polled again (was failing: timeout)"],
               0, None),
    HealthCase("timeout with the ping answering",
               [bad("timeout", ping(2, 2))], ["unreachable (ping answers): why"], 0,
               "timeout"),
    HealthCase("timeout with the ping silent",
               [bad("timeout", ping(2, 0, None))], ["unreachable (no ping answer): why"], 0,
               "timeout"),
    HealthCase("a cause change is logged again",
               [bad("auth"), bad("auth"), bad("timeout"), bad("access")],
               ["monitoring error, cause auth: why", None, "unreachable (no ping): why",
                "monitoring error, cause access: why"], 1, "access"),
    HealthCase("limit counts as contained at every poll",
               [bad("limit"), bad("limit")], ["monitoring error, cause limit: why", None], 1,
               "limit", {"poll_limit": 2}),
    HealthCase("no cause reads as protocol",
               [bad(None)], ["monitoring error, cause protocol: why"], 1, "protocol"),
    HealthCase("config", [bad("config")], ["monitoring error, cause config: why"], 1,
               "config"),
]


@pytest.mark.parametrize("case", HEALTH_CASES, ids=lambda c: c.name)
def test_health_records_polls_and_logs_changes_only(case: HealthCase) -> None:
    h = Health()
    assert [h.record("s/d", p) for p in case.polls] == case.logged
    assert h.monitoring_errors == case.monitoring_errors
    assert h.failing.get("s/d") == case.failing
    assert dict(h.contained) == case.contained
    assert h.polls_ok == sum(p.reachable for p in case.polls)
    assert h.polls_failed == sum(not p.reachable for p in case.polls)


def test_monitoring_errors_count_devices_not_polls() -> None:
    h = Health()
    causes: list[tuple[str, wire.PollCause]] = [
        ("s/a", "auth"), ("s/b", "timeout"), ("s/c", "config"), ("s/a", "auth")]
    for key, cause in causes:
        h.record(key, bad(cause))
    assert h.monitoring_errors == 2
    h.record("s/c", ok())
    assert h.monitoring_errors == 1


@pytest.mark.parametrize(("sequence", "logged"), [
    ([(), (), ()], [(), (), ()]),
    ([("w1",), ("w1",), ("w1", "w2"), ()], [("w1",), (), ("w1", "w2"), ()]),
    ([("w1",), ("w2",)], [("w1",), ("w2",)]),
])
def test_warnings_are_logged_when_they_change(sequence: list[tuple[str, ...]],
                                              logged: list[tuple[str, ...]]) -> None:
    h = Health()
    assert [h.record_warnings("s/d", w) for w in sequence] == logged
    assert h.warnings.get("s/d", ()) == sequence[-1]


@pytest.mark.parametrize(("works", "logged"), [
    ([True, True], [False, False]),
    ([False, False, True, True], [True, False, True, False]),
    ([False, True, False], [True, True, True]),
])
def test_ping_failures_are_logged_once_each_way(works: list[bool],
                                                logged: list[bool]) -> None:
    h = Health()
    assert [h.record_ping("s/d", w) for w in works] == logged
    assert ("s/d" in h.ping_failing) is (not works[-1])


# ------------------------------------------------------------------ status


@pytest.mark.parametrize(("throttled", "limit", "throttling", "lags", "note"), [
    ([0], 64, False, [0.01], [None]),
    ([5], 32, True, [0.2, 0.7, 0.1],
     ["overloaded: 32/64 polls admitted at a time; since the last status: 5 poll(s) "
      "throttled, event loop lag up to 0.70s"]),
    # throttled earlier, not since: said once more only while the limit is still lowered
    ([5, 5], 64, False, [], [
        "overloaded: 64/64 polls admitted at a time; since the last status: 5 poll(s) "
        "throttled, event loop lag up to 0.00s", None]),
    ([3, 3], 16, True, [], [
        "overloaded: 16/64 polls admitted at a time; since the last status: 3 poll(s) "
        "throttled, event loop lag up to 0.00s",
        "overloaded: 16/64 polls admitted at a time; since the last status: 0 poll(s) "
        "throttled, event loop lag up to 0.00s"]),
])
def test_overload_note_per_status_period(throttled: list[int], limit: int, throttling: bool,
                                         lags: list[float], note: list[str | None]) -> None:
    o = Overload()
    for lag in lags:
        o.observe_lag(lag)
    assert [o.note(t, limit, 64, throttling) for t in throttled] == note
    assert o.lag_peak_s == 0.0  # each status starts the next period


@pytest.mark.parametrize(("delivery", "health", "note"), [
    (Delivery(), Health(), None),
    (Delivery(refused=3, refusal=("xanet/v1/08/x/s/telemetry", 135), user="agent-1"),
     Health(),
     "refused: broker refuses xanet/v1/08/x/s/telemetry for user agent-1 (reason code 135), "
     "3 message(s) kept"),
    (Delivery(quarantined=2), Health(),
     "quarantined: 2 message(s) too large for the broker"),
    (Delivery(), Health(polls_dropped=7, spool_error="disk full"),
     "polls dropped: 7 (disk full)"),
    (Delivery(), Health(polls_dropped=7), None),  # dropped earlier, stores again now
    (Delivery(corruption="spool file corrupt (x); set aside"), Health(),
     "spool file corrupt (x); set aside"),
    (Delivery(taken_over=2, user="agent-1"), Health(),
     "session taken over 2 time(s): a second agent with user agent-1?"),
    (Delivery(quarantined=1, taken_over=1, user=None), Health(),
     "quarantined: 1 message(s) too large for the broker; session taken over 1 time(s): "
     "a second agent with user None?"),
])
def test_delivery_note(delivery: Delivery, health: Health, note: str | None) -> None:
    assert delivery_note(delivery, health) == note


@pytest.mark.parametrize(("notes", "reason"), [
    ((None, None), None),
    (("a", None), "a"),
    ((None, "b"), "b"),
    (("a", "b"), "a; b"),
    (("a" * 200, "b" * 200), ("a" * 200 + "; " + "b" * 200)[:256]),
])
def test_online_reason_joins_and_bounds(notes: tuple[str | None, str | None],
                                        reason: str | None) -> None:
    assert online_reason(*notes) == reason


@pytest.mark.parametrize(("oldest", "now_s", "age"), [
    (None, 1000.0, None), (990.0, 1000.0, 10.0), (1005.0, 1000.0, 0.0),  # clock stepped back
])
def test_agent_health(oldest: float | None, now_s: float, age: float | None) -> None:
    h = Health(poll_overruns=4, polls_dropped=2, failing={"s/a": "auth", "s/b": "timeout"})
    d = Delivery(spool_depth=9, spool_oldest_created_s=oldest, spool_dropped=1,
                 quarantined=3, refused=5)
    assert agent_health(d, h, devices=12, now_s=now_s) == wire.AgentHealth(
        spool_depth=9, spool_oldest_age_s=age, spool_dropped=1, poll_overruns=4, devices=12,
        monitoring_errors=1, refused=5, quarantined=3, polls_dropped=2)


@pytest.mark.parametrize(("kind", "state", "ts", "reason"), [
    ("online", "online", TS, "overloaded"),
    ("will", "offline", None, "connection lost (last will)"),
    ("stopped", "offline", TS, "agent stopped"),
])
def test_status_per_kind(kind: StatusKind, state: str, ts: datetime | None,
                        reason: str) -> None:
    health = wire.AgentHealth(devices=3)
    s = status(kind, agent="agent-1", site="hub-1", version="0.1.0", instance="vm-1", ts=TS,
               reason="overloaded", health=health)
    assert (s.agent, s.site, s.state, s.ts, s.reason) == ("agent-1", "hub-1", state, ts, reason)
    assert (s.version, s.instance, s.health) == ("0.1.0", "vm-1", health)
    assert wire.decode(wire.encode(s), "status") == s  # a valid message on the wire


# ------------------------------------------------------------------ purity


def test_telemetry_imports_no_io() -> None:
    """The pure core: no asyncio, sockets, files or clocks (times come in as arguments)."""
    path = Path(__file__).resolve().parent.parent / "agent" / "telemetry.py"
    tree = ast.parse(path.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0}
    forbidden = {"asyncio", "socket", "time", "os", "pathlib", "sqlite3", "aiomqtt", "paho",
                 "icmplib", "threading", "subprocess", "logging"}
    assert not imported & forbidden
    runtime = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert "agent.snmp" not in runtime  # the RawPoll type only, under TYPE_CHECKING
