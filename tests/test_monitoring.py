"""Monitoring alerts (collector/monitoring.py): one warning per device whose monitoring is
broken, after a hold-down, resolved when polls tell the truth again; never an outage."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.monitoring import ALERTNAME, WHAT_TO_CHECK, MonitoringCore
from collector.outages import AlertEvent, Policy
from collector.witness import DOWN, UP, Decision
from tests.test_outages import T0, inventory
from xanet import wire

HOLD = 30.0
CLEAR = 60.0
POLL = 10.0
POLICY = Policy(hold_down_s=HOLD, clear_down_s=CLEAR, agent_silent_after_s=90.0)
AUTH = Decision("unknown", "auth")


def fault(cause: str) -> Decision:
    return Decision("unknown", cause)


def mcore(now: float = T0) -> MonitoringCore:
    return MonitoringCore(inventory(), POLICY, now=now, stale_after_s=3 * POLL)


def poll_until(c: MonitoringCore, start: float, end: float, decision: Decision,
               device: tuple[str, str] = ("hub-a", "rtr-1")) -> list[AlertEvent]:
    """A poll every POLL s with this verdict, evaluated after each."""
    out: list[AlertEvent] = []
    t = start
    while t < end:
        c.add(*device, t, decision)
        out += c.evaluate(t)
        t += POLL
    return out


def test_every_cause_has_what_to_check_in_both_languages() -> None:
    for cause in [*wire.POLL_CAUSES, "snmp_silent"]:
        if cause == "timeout":
            continue  # a timeout is snmp_silent or a real outage, never itself a fault
        en, vi = WHAT_TO_CHECK[cause]
        assert en and vi and en != vi


def test_fault_held_is_one_warning_with_cause_then_resolved_when_polls_succeed() -> None:
    c = mcore()
    events = poll_until(c, T0, T0 + 300, AUTH)
    [ev] = events
    assert ev.action == "firing"
    assert ev.alert.labels == {
        "alertname": ALERTNAME, "severity": "warning", "province": "08", "commune": "02266",
        "site": "hub-a", "device": "rtr-1", "cause": "auth"}
    assert ev.alert.starts_at == T0
    assert ev.alert.kind == "monitoring_broken"
    assert ev.alert.annotations["summary_en"].startswith(
        "monitoring broken: rtr-1: auth, check the SNMPv3 user")
    assert "lỗi giám sát: rtr-1: auth" in ev.alert.annotations["summary_vi"]
    assert c.open_alerts() == {("hub-a", "rtr-1"): "auth"}
    events = poll_until(c, T0 + 300, T0 + 300 + CLEAR + POLL, UP)
    [res] = events
    assert res.action == "resolved" and res.alert.ends_at == T0 + 300
    assert c.open_alerts() == {}


def test_short_fault_raises_nothing() -> None:
    c = mcore()
    events = poll_until(c, T0, T0 + HOLD - 5, fault("snmp_silent"))
    events += poll_until(c, T0 + HOLD, T0 + 400, UP)
    assert events == []


def test_really_down_resolves_the_monitoring_alert() -> None:
    c = mcore()
    poll_until(c, T0, T0 + 100, fault("snmp_silent"))
    events = poll_until(c, T0 + 100, T0 + 100 + CLEAR + POLL, DOWN)
    assert [e.action for e in events] == ["resolved"]


def test_cause_change_is_one_alert_at_a_time() -> None:
    c = mcore()
    poll_until(c, T0, T0 + 100, AUTH)
    events = poll_until(c, T0 + 100, T0 + 200, fault("access"))
    assert [(e.action, e.alert.labels["cause"]) for e in events] == [
        ("resolved", "auth"), ("firing", "access")]
    assert events[0].alert.ends_at == T0 + 100 and events[1].alert.starts_at == T0 + 100


def test_no_polls_any_more_neither_opens_nor_closes() -> None:
    c = mcore()
    poll_until(c, T0, T0 + 100, AUTH)
    assert c.evaluate(T0 + 1000) == []  # the agent went silent: its own alert says so
    assert c.open_alerts() == {("hub-a", "rtr-1"): "auth"}


def test_unknown_device_is_refused() -> None:
    c = mcore()
    assert c.add("hub-a", "not-there", T0, AUTH) is False
    assert c.add("hub-a", "rtr-1", T0, AUTH) is True


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["", "auth", "snmp_silent"]), min_size=1, max_size=40),
       st.randoms())
def test_alerts_follow_fault_runs_in_any_delivery_order(causes: list[str],
                                                     rnd: random.Random) -> None:
    """Polls every POLL s, delivered shuffled before one evaluation per poll time: the
    alerts are those of the in-order runs. A run of one fault that lasts the hold-down
    fires once; nothing else fires."""
    polls = [(T0 + i * POLL, c) for i, c in enumerate(causes)]
    shuffled = list(polls)
    rnd.shuffle(shuffled)
    c = mcore()
    for ts, cause in shuffled:
        c.add("hub-a", "rtr-1", ts, fault(cause) if cause else UP)
    events: list[AlertEvent] = []
    for ts, _ in polls:
        events += c.evaluate(ts)
    # expected from the runs (a fault run's duration: until the next different poll)
    runs: list[tuple[float, str, float]] = []
    for i, (ts, cause) in enumerate(polls):
        if runs and runs[-1][1] == cause:
            continue
        end = next((t for t, x in polls[i:] if x != cause), polls[-1][0])
        runs.append((ts, cause, end))
    firing = [e for e in events if e.action == "firing"]
    open_now = 0
    for e in events:
        open_now += 1 if e.action == "firing" else -1
        assert 0 <= open_now <= 1  # one monitoring alert per device at a time
    for e in firing:
        start = e.alert.starts_at
        [run] = [r for r in runs if r[0] <= start and r[1] == e.alert.labels["cause"]
                 and (r[2] > start or r[2] == polls[-1][0])]
        assert run[1] != ""
    # evaluated at poll times: a run is seen held if some evaluation inside it is HOLD
    # after its start (the last run includes its last poll)
    last = polls[-1][0]
    long_runs = [r for r in runs if r[1] and (r[2] - r[0] >= HOLD + POLL or (
        r[2] == last and polls[-1][1] == r[1] and r[2] - r[0] >= HOLD))]
    if long_runs:
        assert firing, (runs, events)
    if not any(r[1] for r in runs):
        assert events == []


def test_a_long_fault_keeps_a_few_polls_and_its_start() -> None:
    c = mcore()
    poll_until(c, T0, T0 + 5000, AUTH)
    [track] = c._tracks.values()  # the memory bound is the point here
    assert len(track.points) <= c.retain_s / POLL + 2
    assert min(track.points) == T0  # where the fault began: startsAt stays the truth
    events = poll_until(c, T0 + 5000, T0 + 5000 + CLEAR + POLL, UP)
    assert [(e.action, e.alert.starts_at, e.alert.ends_at) for e in events] == [
        ("resolved", T0, T0 + 5000)]
