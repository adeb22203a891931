"""agent.stretch and its use: non-critical profiles stretch under a saturated uplink,
availability polls never; agent.traffic: the bytes the status reports (pure)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.profilepoll import ProfilePolls, device_profiles
from agent.profiles.due import ProfileDue
from agent.profiles.load import load_catalog
from agent.profiles.model import Profile
from agent.rates import RatePolicy
from agent.stretch import MAX_FACTOR, Stretch, stretched_interval_s
from agent.telemetry import Delivery, Health, agent_health, stretch_note
from agent.traffic import Traffic, drain_eta_s
from xanet import wire


def _run(readings: list[tuple[int, bool]]) -> list[int]:
    s = Stretch()
    out = []
    for backlog, connected in readings:
        s.observe(backlog, connected)
        out.append(s.factor)
    return out


C = True


@pytest.mark.parametrize(("readings", "factors"), [
    # growing while connected: x2 after SATURATED_AFTER intervals, again after as many
    ([(10, C), (20, C), (30, C), (40, C)], [1, 1, 1, 2]),
    ([(i * 10 + 10, C) for i in range(7)], [1, 1, 1, 2, 2, 2, 4]),
    # bounded
    ([(i + 1, C) for i in range(40)], [min(MAX_FACTOR, 2 ** (i // 3)) for i in range(40)]),
    # shrinking halves, an empty backlog is back to 1 at once
    ([(10, C), (20, C), (30, C), (40, C), (35, C)], [1, 1, 1, 2, 1]),
    ([(i + 1, C) for i in range(10)] + [(5, C), (0, C)], [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 4, 1]),
    # a cut is not saturation: growth while disconnected counts for nothing
    ([(10, False), (20, False), (30, False), (40, False), (50, False)], [1] * 5),
    ([(10, C), (20, C), (30, False), (40, C), (50, C)], [1, 1, 1, 1, 1]),
    # flat: holds
    ([(10, C), (20, C), (30, C), (40, C), (40, C), (40, C)], [1, 1, 1, 2, 2, 2]),
])
def test_stretch_table(readings: list[tuple[int, bool]], factors: list[int]) -> None:
    assert _run(readings) == factors


@given(st.lists(st.tuples(st.integers(0, 10**9), st.booleans()), max_size=80))
def test_stretch_is_bounded_and_an_empty_backlog_ends_it(readings: list[tuple[int, bool]]
                                                         ) -> None:
    s = Stretch()
    for backlog, connected in readings:
        changed = s.observe(backlog, connected)
        assert s.factor in (1, 2, 4, 8)
        assert isinstance(changed, bool)
        if connected and backlog == 0:
            assert s.factor == 1 and not s.saturated


def test_the_log_hears_of_each_change_once() -> None:
    s = Stretch()
    changes = [s.observe(b, True) for b in (1, 2, 3, 4, 5, 6, 6, 0)]
    assert changes == [False, False, False, True, False, False, False, True]


# ----------------------------------------------------------------------- profiles


def _profile(name: str, *, stretches: bool, interval_s: float | None = None) -> Profile:
    return Profile.model_validate({
        "name": name, "description": "test", "interval_s": interval_s,
        "stretch_when_saturated": stretches,
        "scalars": [{"name": "x", "oid": "1.3.6.1.4.1.9.1.0", "kind": "gauge"}]})


def test_only_stretching_profiles_stretch() -> None:
    catalog = {"sensors": _profile("sensors", stretches=True),
               "ups": _profile("ups", stretches=False, interval_s=60)}
    due = ProfileDue(["sensors", "ups"], catalog, device_interval_s=60)
    polled: dict[str, list[float]] = {"sensors": [], "ups": []}
    for minute in range(16):
        for p in due.due(minute * 60.0, stretch=4):
            polled[p.name].append(minute)
    assert polled["ups"] == list(range(16))  # availability-critical: every poll
    assert polled["sensors"] == [0, 4, 8, 12]  # x4 its interval
    assert due.stretchable() == 1
    assert due.interval_s(catalog["sensors"], 8) == 480
    assert stretched_interval_s(60, 8, False) == 60


def test_the_interface_profile_never_stretches() -> None:
    shipped = load_catalog(None)
    assert not shipped["if-mib"].stretch_when_saturated
    assert shipped["entity-sensor"].stretch_when_saturated
    assert shipped["host-resources"].stretch_when_saturated
    assert not shipped["ups-mib"].stretch_when_saturated  # the power state is critical
    data = shipped["if-mib"].model_dump()
    data["stretch_when_saturated"] = True
    with pytest.raises(ValidationError, match="never stretches"):
        Profile.model_validate(data)


# ----------------------------------------------------------------------- bytes


def test_traffic_period_figures() -> None:
    t = Traffic()
    t.period(0.0)  # the first period starts
    t.note_spooled(polls=2, interfaces=20, nbytes=4000)
    t.note_sent("backlog", raw_bytes=3000, wire_bytes=1000)
    t.note_sent("live", raw_bytes=1000, wire_bytes=1000)
    p = t.period(10.0)
    assert (t.bytes_sent, t.bytes_live, t.bytes_backlog) == (2000, 1000, 1000)
    assert p.compression_ratio == 2.0
    assert p.bytes_per_poll == 1000.0  # 4000 JSON bytes / 2 polls, at 2:1 on the wire
    assert p.bytes_per_interface == 100.0
    assert p.drain_bytes_per_s == 100.0  # 1000 backlog bytes in 10 s
    empty = t.period(20.0)
    assert empty.bytes_per_poll is None and empty.compression_ratio is None
    assert empty.drain_bytes_per_s == 0.0
    assert drain_eta_s(0, None) == 0.0
    assert drain_eta_s(5000, 0.0) is None
    assert drain_eta_s(5000, 100.0) == 50.0


def test_the_status_reports_bytes_and_the_stretch() -> None:
    h = Health()
    h.traffic.note_spooled(1, 10, 2200)
    h.note_sent(2200, 2200)
    d = Delivery(backlog_bytes=44_000, budget_bytes_per_s=7_999.96,
                 period=h.traffic.period(5.0), saturated=True, profiles_stretched=3,
                 stretch_factor=4)
    health = agent_health(d, h, devices=2, now_s=0)
    assert health.bytes_sent == 2200 and health.bytes_backlog == 2200
    assert health.bytes_live == 0 and health.backlog_bytes == 44_000
    assert health.compression_ratio == 1.0  # JSON: raw == wire until a compact encoding
    assert health.bytes_per_poll == 2200.0 and health.bytes_per_interface == 220.0
    assert health.drain_bytes_per_s is None  # the first period has no length yet
    assert health.drain_eta_s is None
    assert health.budget_bytes_per_s == 8000.0
    assert (health.saturated, health.profiles_stretched, health.stretch_factor) == (
        True, 3, 4)
    assert stretch_note(d) == "uplink saturated: 3 profile(s) polled at x4 their interval"
    assert stretch_note(Delivery()) is None
    # round trip on the wire
    assert wire.AgentHealth.model_validate_json(health.model_dump_json()) == health
    # no byte report: the health is what an agent before them sent, byte for byte
    assert agent_health(Delivery(), Health(), 2, 0).model_dump(exclude_none=True) == (
        wire.AgentHealth(devices=2).model_dump(exclude_none=True))


def test_the_agent_stretches_its_profiles_and_logs_each_change_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """agent.profilepoll.ProfilePolls: the saturation signal from the status, the factor
    its devices' profiles are due with, one log line per change."""
    catalog = load_catalog(None)
    devices = {f"hub/d{i}": device_profiles(["if-mib", "entity-sensor", "ups-mib"], catalog,
                                            60.0, RatePolicy(poll_interval_s=60.0))
               for i in range(2)}
    polls = ProfilePolls(devices, reader=None, health=Health(), clock=lambda: 0.0)
    caplog.set_level(logging.INFO, logger="xanet")
    for backlog in (1_000, 2_000, 3_000, 4_000, 5_000):
        polls.observe_uplink(backlog, connected=True)
    assert polls.stretch == 2 and polls.stretched() == 2  # entity-sensor on two devices
    due = devices["hub/d0"].due
    assert [p.name for p in due.due(0.0, polls.stretch)] == ["entity-sensor", "ups-mib"]
    assert [p.name for p in due.due(60.0, polls.stretch)] == ["ups-mib"]  # stretched x2
    assert [p.name for p in due.due(120.0, polls.stretch)] == ["entity-sensor", "ups-mib"]
    polls.observe_uplink(0, connected=True)
    assert polls.stretch == 1 and polls.stretched() == 0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "uplink saturated" in lines[0] and "2 profile(s)" in lines[0] and "x2" in lines[0]
    assert "keeps up again" in lines[1]
