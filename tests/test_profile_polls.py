"""Profiles in the agent's poll loop, the pure parts and the edge with a fake SNMP port:
counter rates (agent/profiles/counters.py), when a profile is due and sysObjectID read
(agent/profiles/due.py), the wire conversion (agent/profiles/reading.py), the edge's
failure rules (agent/profilepoll.py: a failing profile never fails the poll; logged once
each way; counted), and packing polls with large profile readings (agent/packing.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import packing
from agent.errors import SnmpAccessError, SnmpTimeout
from agent.profilepoll import ProfilePolls, device_profiles
from agent.profiles.counters import CounterRate, ProfileCounters
from agent.profiles.due import ProfileDue
from agent.profiles.evaluate import ProfileSample, ProfileValue, Unknown, evaluate
from agent.profiles.load import load_catalog
from agent.profiles.model import Oid, Profile
from agent.profiles.reading import failed_reading, to_reading, value_on_wire
from agent.rates import RatePolicy, RateReason
from agent.snmp import SnmpTarget, SnmpV2c, ber
from agent.telemetry import Health, profiles_note
from tests.factories import poll
from tests.test_profiles import SENSOR, profile
from xanet import wire

CATALOG = load_catalog()
UPS = CATALOG["ups-mib"]
POLICY = RatePolicy(poll_interval_s=60)
KEY = ("p", "octets", (("index", "1"),))


# ------------------------------------------------------------------- counter rates

@given(first=st.integers(0, 2**32 - 1), second=st.integers(0, 2**32 - 1),
       interval_s=st.floats(1, 120))
def test_a_counter32_rate_is_never_negative_and_a_wrap_is_the_exact_delta(
        first: int, second: int, interval_s: float) -> None:
    counters = ProfileCounters(POLICY)
    assert counters.observe("p", 60, 0.0, 1000, {KEY: (first, 32)}) == {
        KEY: CounterRate(None, RateReason.FIRST_POLL)}
    uptime = 1000 + round(interval_s * 100)
    got = counters.observe("p", 60, interval_s, uptime, {KEY: (second, 32)})[KEY]
    delta = second - first if second >= first else second + 2**32 - first
    assert got == CounterRate(delta / interval_s, None)
    assert got.per_s is not None and got.per_s >= 0


@given(first=st.integers(0, 2**64 - 1), second=st.integers(0, 2**64 - 1))
def test_a_counter64_that_went_back_was_reset(first: int, second: int) -> None:
    counters = ProfileCounters(POLICY)
    counters.observe("p", 60, 0.0, 0, {KEY: (first, 64)})
    got = counters.observe("p", 60, 60.0, 6000, {KEY: (second, 64)})[KEY]
    if second >= first:
        assert got.note is None and got.per_s == pytest.approx((second - first) / 60, rel=1e-12)
    else:
        assert got == CounterRate(None, RateReason.COUNTER_WENT_BACK)


@pytest.mark.parametrize(("uptime_after", "mono_after", "failed", "bits", "note"), [
    (6000, 60.0, None, 32, None),
    (100, 60.0, None, 32, RateReason.REBOOT),                 # sysUpTime went back
    (6000, 60.0, "p", 32, RateReason.AFTER_FAILED_POLL),      # this profile failed between
    (6000, 60.0, "all", 32, RateReason.AFTER_FAILED_POLL),    # the device's poll failed
    (6000, 60.0, "other", 32, None),                          # another profile failed
    (40000, 400.0, None, 32, RateReason.GAP),                 # > 3 x the profile's interval
    (6000, 60.0, None, 64, RateReason.COUNTER_WIDTH_CHANGED),
    (6000, 0.1, None, 32, RateReason.INTERVAL_TOO_SHORT),
])
def test_counter_notes_are_the_interface_notes(uptime_after: int, mono_after: float,
                                               failed: str | None, bits: int,
                                               note: RateReason | None) -> None:
    counters = ProfileCounters(POLICY)
    counters.observe("p", 120, 0.0, 0, {KEY: (10, 32)})
    counters.observe("other", 120, 0.0, 0, {})
    if failed is not None:
        counters.observe_failure(None if failed == "all" else failed)
    got = counters.observe("p", 120, mono_after, uptime_after, {KEY: (610, bits)})[KEY]
    assert got.note == note
    assert (got.per_s is None) == (note is not None)
    if note is None:
        assert got.per_s == 600 / mono_after


def test_a_series_new_in_this_poll_starts_with_first_poll() -> None:
    counters = ProfileCounters(POLICY)
    counters.observe("p", 60, 0.0, 0, {KEY: (1, 64)})
    other = ("p", "octets", (("index", "2"),))
    got = counters.observe("p", 60, 60.0, 6000, {KEY: (61, 64), other: (5, 64)})
    assert got == {KEY: CounterRate(1.0, None), other: CounterRate(None, RateReason.FIRST_POLL)}


# ------------------------------------------------------------------- when a profile is due

def test_a_profile_rides_on_the_device_polls_at_its_own_interval() -> None:
    slow = UPS.model_copy(update={"interval_s": 300.0})
    catalog = {**CATALOG, "ups-mib": slow}
    due = ProfileDue(["ups-mib", "entity-sensor", "if-mib"], catalog, 60)
    stamps = [0.0, 60.4, 119.8, 180.0, 241.0, 299.5, 360.2, 420.0, 480.0, 540.0, 600.1]
    polled = [[p.name for p in due.due(t)] for t in stamps]
    assert [t for t, names in zip(stamps, polled, strict=True) if "ups-mib" in names] == \
        [0.0, 299.5, 600.1]  # a stamp half a second early still counts (admission jitter)
    assert all("entity-sensor" in names for names in polled)  # the device's interval
    assert not any("if-mib" in names for names in polled)  # the interface path's own


def test_sys_object_id_read_once_again_after_a_reboot_or_a_failed_read() -> None:
    due = ProfileDue(["auto"], CATALOG, 60)
    assert due.wants_sys_object_id(1000)
    assert due.due(0.0) == []  # not known yet: auto chooses nothing
    due.learn_sys_object_id((1, 3, 6, 1, 4, 1, 25461, 2, 3, 9))
    assert [p.name for p in due.due(60.0)] == ["paloalto-pan-common"]
    assert not due.wants_sys_object_id(7000)
    assert due.wants_sys_object_id(50)  # sysUpTime went back: rebooted
    due.forget_sys_object_id()  # ... and the read failed
    assert due.wants_sys_object_id(6050)
    due.learn_sys_object_id(None)  # the device has none
    assert not due.wants_sys_object_id(12050)
    assert due.due(120.0) == []
    assert not ProfileDue(["ups-mib"], CATALOG, 60).wants_sys_object_id(1)  # no auto


def test_at_most_the_wires_number_of_profiles_is_chosen() -> None:
    many = {f"p-{i:02d}": profile({**SENSOR, "name": f"p-{i:02d}"}) for i in range(20)}
    due = ProfileDue(list(many), many, 60)
    assert len(due.due(0.0)) == wire.MAX_PROFILES_PER_POLL
    assert due.dropped == ["p-16", "p-17", "p-18", "p-19"]


# ------------------------------------------------------------------- on the wire

SENSORS = profile(SENSOR)


def cells(index: int, value: ber.VarBind | None = None) -> list[ber.VarBind]:
    rows: list[ber.VarBind] = [
        ((1, 9, 1, index), ber.INTEGER, 8), ((1, 9, 2, index), ber.INTEGER, 9),
        ((1, 9, 3, index), ber.INTEGER, 1), ((1, 9, 4, index), ber.INTEGER, 215),
        ((1, 9, 5, index), ber.INTEGER, 1), ((1, 9, 6, index), ber.COUNTER64, 12345),
        ((1, 8, 7, index), ber.OCTET_STRING, b"inlet"),
    ]
    return rows if value is None else [value if v[0] == value[0] else v for v in rows]


def test_each_kind_on_the_wire() -> None:
    sample = evaluate(SENSORS, cells(4))
    key = ("sensors", "octets", (("index", "4"), ("entity", "inlet"), ("kind_of", "celsius")))
    reading = to_reading(sample, {key: CounterRate(None, RateReason.FIRST_POLL)})
    got = {v.metric: v.model_dump(exclude_none=True) for v in reading.values}
    tags = {"index": "4", "entity": "inlet", "kind_of": "celsius"}
    assert got == {
        "value": {"metric": "value", "tags": tags, "value": 21.5},
        "status": {"metric": "status", "tags": tags, "text": "ok", "code": 1},
        "octets": {"metric": "octets", "tags": tags, "counter": 12345,
                   "rate_note": "first_poll"},
    }
    ups = to_reading(evaluate(UPS, [((1, 3, 6, 1, 2, 1, 33, 1, 2, 3, 0), ber.INTEGER, -1),
                                    ((1, 3, 6, 1, 2, 1, 33, 1, 2, 5, 0), ber.INTEGER, 2130)]))
    scalars = {v.metric: v.model_dump(exclude_none=True) for v in ups.values}
    assert scalars["minutes_remaining"] == {"metric": "minutes_remaining", "unit": "min",
                                            "unknown": "sentinel"}
    assert scalars["battery_voltage"] == {"metric": "battery_voltage", "unit": "V",
                                          "value": 213.0}
    assert scalars["battery_status"] == {"metric": "battery_status", "unknown": "absent"}
    assert failed_reading("ups-mib", "access", "").model_dump(exclude_none=True) == {
        "profile": "ups-mib", "values": [], "error": "access", "cause": "access"}


KINDS = st.sampled_from(["gauge", "counter", "enum", "string", "timeticks"])


@st.composite
def profile_values(draw: st.DrawFn) -> ProfileValue:
    kind = draw(KINDS)
    unknown = draw(st.none() | st.sampled_from(list(Unknown)))
    value: float | int | str | None = None
    if unknown is None:
        value = {"gauge": draw(st.floats(-1e12, 1e12)), "timeticks": draw(st.floats(0, 5e7)),
                 "counter": draw(st.integers(0, 2**64 - 1)),
                 "enum": draw(st.text(min_size=1, max_size=300)),
                 "string": draw(st.text(max_size=300))}[kind]
    raw = draw(st.integers(-(2**40), 2**40)) if kind == "enum" else None
    tags = tuple((f"t{i}", draw(st.text(max_size=300))) for i in range(draw(st.integers(0, 8))))
    return ProfileValue("p", "m", tags, kind, draw(st.sampled_from(["", "V", "°C"])), value,
                        unknown, raw, 64 if kind == "counter" and value is not None else None)


@given(value=profile_values(), rate=st.none() | st.floats(0, 1e9))
def test_a_value_is_always_valid_on_the_wire_and_never_a_number_when_unknown(
        value: ProfileValue, rate: float | None) -> None:
    got = value_on_wire(value, None if rate is None else CounterRate(rate, None))
    again = wire.ProfileValue.model_validate_json(got.model_dump_json())
    assert again == got
    if value.unknown is not None:
        assert (got.value, got.counter, got.text, got.unknown) == (None, None, None,
                                                                   value.unknown.value)
    elif value.kind in ("gauge", "timeticks"):
        assert got.value == value.value
    elif value.kind == "counter":
        assert (got.counter, got.rate) == (value.value, rate)
    else:
        assert isinstance(value.value, str) and got.text == value.value[:256]


def test_warnings_and_values_are_bounded_as_the_wire_wants() -> None:
    values = tuple(ProfileValue("p", "m", (("i", str(i)),), "gauge", "", float(i), None)
                   for i in range(wire.MAX_PROFILE_VALUES + 5))
    warnings = tuple(f"w{i}: " + "x" * 300 for i in range(40))
    got = to_reading(ProfileSample("d", "p", values, warnings))
    assert len(got.values) == wire.MAX_PROFILE_VALUES
    assert got.warnings is not None and len(got.warnings) == wire.MAX_PROFILE_WARNINGS
    assert got.warnings[0] == f"5 value(s) beyond {wire.MAX_PROFILE_VALUES} not sent"
    assert got.warnings[-1] == "... and 26 more warning(s)"
    assert all(len(w) <= 256 for w in got.warnings)


# ------------------------------------------------------------------- the edge, fake port

class FakeReader:
    """The profile port answering what a UPS would, or failing as told."""

    def __init__(self) -> None:
        self.fail: dict[str, Exception] = {}
        self.read_count: dict[str, int] = {}
        self.oid_reads = 0
        self.oid: Oid | None = (1, 3, 6, 1, 4, 1, 25461, 2, 3, 9)  # a Palo Alto

    async def sys_object_id(self, target: SnmpTarget) -> Oid | None:
        self.oid_reads += 1
        if "sysObjectID" in self.fail:
            raise self.fail["sysObjectID"]
        return self.oid

    async def read(self, target: SnmpTarget, profile: Profile) -> ProfileSample:
        self.read_count[profile.name] = self.read_count.get(profile.name, 0) + 1
        if profile.name in self.fail:
            raise self.fail[profile.name]
        return evaluate(profile, [((1, 3, 6, 1, 2, 1, 33, 1, 4, 1, 0), ber.INTEGER, 5),
                                  ((1, 3, 6, 1, 2, 1, 33, 1, 2, 3, 0), ber.INTEGER, 42)],
                        device=target.device)


TARGET = SnmpTarget(device="site-a/ups-1", host="127.0.0.1", credentials=SnmpV2c("x"))
TS = datetime(2026, 11, 29, 12, tzinfo=UTC)


def edge(names: list[str]) -> tuple[ProfilePolls, FakeReader, Health, list[float]]:
    reader, health, now = FakeReader(), Health(), [0.0]
    state = device_profiles(names, CATALOG, 60, POLICY)
    return ProfilePolls({"site-a/ups-1": state}, reader, health, lambda: now[0]), reader, \
        health, now


async def test_a_failing_profile_never_fails_the_poll_and_is_logged_once_each_way(
        caplog: pytest.LogCaptureFixture) -> None:
    polls, reader, health, now = edge(["ups-mib", "auto"])
    caplog.set_level(logging.INFO, logger="xanet.agent")
    device_poll = poll("ups-1", ts=TS, n_if=0)
    first = await polls.add("site-a/ups-1", "ups-1", "site-a", device_poll, TARGET, "127.0.0.1")
    assert first.reachable and first.interfaces == []
    assert [r.profile for r in first.profiles or []] == ["ups-mib", "paloalto-pan-common"]
    assert first.power == wire.PowerReading(state="on_battery", profile="ups-mib",
                                            minutes_remaining=42.0)
    reader.fail["ups-mib"] = SnmpAccessError("site-a/ups-1", "noAccess on upsBatteryStatus")
    for k in range(1, 4):
        now[0] = 60.0 * k
        got = await polls.add("site-a/ups-1", "ups-1", "site-a", device_poll, TARGET, "127.0.0.1")
        assert got.reachable and got.cause is None  # the device's poll stands
        failed = (got.profiles or [])[0]
        assert (failed.profile, failed.cause, failed.values) == ("ups-mib", "access", [])
        assert failed.error is not None and "noAccess" in failed.error
        assert got.power == wire.PowerReading(state="unknown", profile="ups-mib")
    assert health.profile_failures == 3 and health.monitoring_errors == 1
    note = profiles_note(health)
    assert note is not None and note.startswith("profiles failing: 1 on 1 device(s) (ups-mib)")
    del reader.fail["ups-mib"]
    now[0] = 240.0
    await polls.add("site-a/ups-1", "ups-1", "site-a", device_poll, TARGET, "127.0.0.1")
    assert health.monitoring_errors == 0 and profiles_note(health) is None
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("WARNING", "device ups-1 (site site-a): profile ups-mib failed (cause access): "
                    "site-a/ups-1: noAccess on upsBatteryStatus; the device's poll stands"),
        ("INFO", "device ups-1 (site site-a): profile ups-mib polled again"),
    ]
    assert reader.oid_reads == 1  # read once, kept


async def test_after_a_timeout_the_other_profiles_wait_for_the_next_poll() -> None:
    polls, reader, _, _ = edge(["ups-mib", "entity-sensor", "host-resources"])
    reader.fail["ups-mib"] = SnmpTimeout("site-a/ups-1", "no answer")
    got = await polls.add("site-a/ups-1", "ups-1", "site-a", poll("ups-1", n_if=1), TARGET,
                          "127.0.0.1")
    assert [(r.profile, r.cause) for r in got.profiles or []] == [
        ("ups-mib", "timeout"), ("entity-sensor", "timeout"), ("host-resources", "timeout")]
    assert reader.read_count == {"ups-mib": 1}  # bounded: one timeout per poll at most
    assert got.interfaces == poll("ups-1", n_if=1).interfaces


async def test_a_surprise_in_one_profile_fails_that_profile_only_traceback_once(
        caplog: pytest.LogCaptureFixture) -> None:
    polls, reader, health, now = edge(["entity-sensor", "ups-mib"])
    reader.fail["entity-sensor"] = RuntimeError("a bug")
    for k in range(3):
        now[0] = 60.0 * k
        got = await polls.add("site-a/ups-1", "ups-1", "site-a", poll("ups-1", n_if=0),
                              TARGET, "127.0.0.1")
        assert got.reachable
        assert [(r.profile, r.cause) for r in got.profiles or []] == [
            ("entity-sensor", "protocol"), ("ups-mib", None)]
        assert got.power is not None and got.power.state == "on_battery"
    assert health.contained["profile_exception"] == 3
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


async def test_a_profile_auto_no_longer_chooses_no_longer_counts_as_failing() -> None:
    polls, reader, health, now = edge(["auto"])
    reader.fail["paloalto-pan-common"] = SnmpTimeout("site-a/ups-1", "no answer")
    await polls.add("site-a/ups-1", "ups-1", "site-a", poll("ups-1", uptime_cs=5000),
                    TARGET, "127.0.0.1")
    assert health.monitoring_errors == 1
    reader.oid = (1, 3, 6, 1, 4, 1, 8072)  # rebooted into another firmware
    now[0] = 60.0
    got = await polls.add("site-a/ups-1", "ups-1", "site-a", poll("ups-1", uptime_cs=10),
                          TARGET, "127.0.0.1")
    assert got.profiles is None and reader.oid_reads == 2
    assert health.monitoring_errors == 0


async def test_a_failed_sys_object_id_read_is_tried_again_and_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    polls, reader, _, now = edge(["auto", "ups-mib"])
    caplog.set_level(logging.INFO, logger="xanet.agent")
    reader.fail["sysObjectID"] = SnmpTimeout("site-a/ups-1", "no answer")
    for k in range(3):
        now[0] = 60.0 * k
        got = await polls.add("site-a/ups-1", "ups-1", "site-a", poll("ups-1"), TARGET,
                              "127.0.0.1")
        assert [r.profile for r in got.profiles or []] == ["ups-mib"]  # named: still polled
    del reader.fail["sysObjectID"]
    now[0] = 180.0
    got = await polls.add("site-a/ups-1", "ups-1", "site-a", poll("ups-1"), TARGET, "127.0.0.1")
    assert [r.profile for r in got.profiles or []] == ["paloalto-pan-common", "ups-mib"]
    assert reader.oid_reads == 4
    assert [r.levelname for r in caplog.records if "sysObjectID" in r.getMessage()] == \
        ["WARNING", "INFO"]


async def test_no_profile_after_a_failed_poll_and_no_rate_across_it() -> None:
    polls, reader, _, _ = edge(["ups-mib"])
    down = poll("ups-1", reachable=False, cause="timeout", error="x", interfaces=[],
                rtt_ms=None, uptime_cs=None)
    assert await polls.add("site-a/ups-1", "ups-1", "site-a", down, TARGET, "127.0.0.1") == down
    assert reader.read_count == {}


# ------------------------------------------------------------------- packing

def reading(name: str, n: int, warnings: int = 0) -> wire.ProfileReading:
    return wire.ProfileReading(
        profile=name, warnings=[f"w{i}" for i in range(warnings)] or None,
        values=[wire.ProfileValue(metric="sensor_value", tags={"index": str(i), "entity":
                                  f"sensor {i} " + "x" * (i % 40)}, unit="°C", value=i / 10)
                for i in range(n)])


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 300), min_size=0, max_size=4),
       n_if=st.integers(0, 200), power=st.booleans(), warnings=st.integers(0, 16),
       limit=st.sampled_from([4_096, 8_192, 20_000, 65_536]))
def test_a_poll_with_large_profile_readings_fits_and_loses_or_repeats_nothing(
        sizes: list[int], n_if: int, power: bool, warnings: int, limit: int) -> None:
    readings = [reading(f"p-{i}", n, warnings) for i, n in enumerate(sizes)]
    whole = poll("ups-1", ts=TS, n_if=n_if, profiles=readings or None,
                 power=wire.PowerReading(state="on_battery", profile="p-0",
                                         minutes_remaining=40) if power else None)
    envelope = packing.envelope_bytes("agent-1", "hub-1", None)
    groups = packing.pack([whole], limit_bytes=limit, max_polls=10, envelope=envelope)
    parts = [p for g in groups for p, _ in g]
    for g in groups:
        assert len(packing.encode("agent-1", "hub-1", None, 2**63 - 1,
                                  [data for _, data in g])) + packing.SENT_FIELD_BYTES <= limit
    assert [p.power for p in parts] == [whole.power] + [None] * (len(parts) - 1)
    assert [i.index for p in parts for i in p.interfaces] == list(range(1, n_if + 1))
    for part in parts:  # a profile at most once per part
        names = [r.profile for r in part.profiles or []]
        assert len(names) == len(set(names))
        assert part.parts == (len(parts) if len(parts) > 1 else None)
        assert (part.device, part.ts, part.reachable) == ("ups-1", TS, True)
    merged: dict[str, list[wire.ProfileValue]] = {}
    warned: dict[str, list[str]] = {}
    for part in parts:
        for r in part.profiles or []:
            merged.setdefault(r.profile, []).extend(r.values)
            warned.setdefault(r.profile, []).extend(r.warnings or [])
    assert merged == {r.profile: r.values for r in readings}
    assert warned == {r.profile: r.warnings or [] for r in readings}
    positions = [i for i, p in enumerate(parts) for _ in (p.profiles or [])]
    firsts = [i for i, p in enumerate(parts) if p.interfaces]
    assert not positions or not firsts or max(positions) <= min(firsts)  # profiles first


def test_a_small_poll_with_profiles_travels_whole() -> None:
    whole = poll("ups-1", ts=TS, n_if=2, profiles=[reading("ups-mib", 3)],
                 power=wire.PowerReading(state="mains", profile="ups-mib"))
    groups = packing.pack([whole], limit_bytes=65_536, max_polls=10,
                          envelope=packing.envelope_bytes("a", "s", None))
    assert [[p for p, _ in g] for g in groups] == [[whole]]
