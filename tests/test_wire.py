from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import test_fuzz as fuzz
from tests.factories import interface, poll, telemetry
from tests.profiledata import power_readings, profile_readings
from xanet import wire

idents = st.from_regex(wire.IDENT_PATTERN, fullmatch=True)
utc_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                         timezones=st.just(UTC))


@st.composite
def interfaces(draw: st.DrawFn) -> wire.InterfacePoll:
    return wire.InterfacePoll(
        index=draw(st.integers(1, 2**31 - 1)),
        name=draw(st.text(max_size=64)),
        oper=draw(st.none() | st.integers(1, 7)),
        admin=draw(st.none() | st.integers(1, 3)),
        speed_bps=draw(st.none() | st.integers(0, 2**64 - 1)),
        hc=draw(st.booleans()),
        in_octets=draw(st.none() | st.integers(0, 2**64 - 1)),
        out_octets=draw(st.none() | st.integers(0, 2**64 - 1)),
        in_bps=draw(st.none() | st.floats(0, 1e15)),
        out_bps=draw(st.none() | st.floats(0, 1e15)),
        rate_note=draw(st.none() | st.sampled_from(["first_poll", "reboot", "gap"])),
    )


@st.composite
def telemetries(draw: st.DrawFn) -> wire.Telemetry:
    polls = draw(st.lists(st.builds(
        wire.DevicePoll, device=idents, ts=utc_times, reachable=st.booleans(),
        rtt_ms=st.none() | st.floats(0, 1e5), uptime_cs=st.none() | st.integers(0, 2**32 - 1),
        error=st.none() | st.text(max_size=50),
        interfaces=st.lists(interfaces(), max_size=4),
        profiles=st.none() | st.lists(profile_readings(), max_size=3),
        power=st.none() | power_readings), min_size=1, max_size=3))
    return wire.Telemetry(agent=draw(idents), site=draw(idents),
                          seq=draw(st.integers(0, 2**63 - 1)), polls=polls)


@given(telemetries())
def test_decode_encode_roundtrip(msg: wire.Telemetry) -> None:
    assert wire.decode(wire.encode(msg), "telemetry") == msg


def test_status_roundtrip() -> None:
    msg = wire.Status(agent="a1", site="s1", state="online", ts=datetime.now(UTC),
                      health=wire.AgentHealth(spool_depth=3, spool_dropped=1))
    assert wire.decode(wire.encode(msg), "status") == msg


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe not json", "not_json"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"v": 2, "agent": "a"}', "unknown_version"),
        (b'{"agent": "a"}', "unknown_version"),
        (b'{"v": 1, "kind": "status"}', "wrong_kind"),
        (b'{"v": 1, "agent": "a", "site": "s", "seq": 1, "polls": []}', "invalid"),
        (b'{"v": 1, "agent": "a/b", "site": "s", "seq": 1, "polls": [{"device": "d", '
         b'"ts": "2026-01-01T00:00:00Z", "reachable": true}]}', "invalid"),
    ],
)
def test_decode_rejects_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(wire.DecodeError) as info:
        wire.decode(payload, "telemetry")
    assert info.value.reason == reason


def test_unknown_field_rejected_and_named() -> None:
    raw = json.loads(wire.encode(telemetry()))
    raw["polls"][0]["interfaces"][0]["colour"] = "red"
    with pytest.raises(wire.DecodeError) as info:
        wire.decode(json.dumps(raw).encode(), "telemetry")
    assert info.value.reason == "invalid"
    assert "polls.0.interfaces.0.colour" in info.value.detail


def test_naive_timestamp_rejected() -> None:
    raw = json.loads(wire.encode(telemetry()))
    raw["polls"][0]["ts"] = "2026-01-01T00:00:00"
    with pytest.raises(wire.DecodeError, match="timezone"):
        wire.decode(json.dumps(raw).encode(), "telemetry")


def test_timestamps_normalised_to_utc() -> None:
    ts = datetime(2026, 1, 1, 7, 0, tzinfo=timezone(timedelta(hours=7)))
    assert poll(ts=ts).ts == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


def test_counter_bounds() -> None:
    interface(in_octets=2**64 - 1)
    with pytest.raises(ValueError):
        interface(in_octets=2**64)
    with pytest.raises(ValueError):
        interface(in_octets=-1)
    with pytest.raises(ValueError):
        interface(in_bps=-0.1)


# --- the decode fast path (pydantic-core's JSON parser) against the checked path


@st.composite
def telemetry_payloads(draw: st.DrawFn) -> bytes:
    """Valid telemetry, telemetry with one or two mutations (tests/test_fuzz.py), garbage."""
    model = draw(fuzz.good_telemetry())
    pick = draw(st.sampled_from(["good", "mutated", "mutated", "garbage"]))
    if pick == "good":
        return wire.encode(model)
    if pick == "mutated":
        return fuzz.mutated(draw, model).payload
    return fuzz.garbage(draw, model).payload


def _checked(payload: bytes) -> wire.Message | None:
    try:
        return wire._decode_checked(payload, "telemetry")
    except wire.DecodeError:
        return None


@given(telemetry_payloads())
def test_fast_path_agrees_with_checked_path(payload: bytes) -> None:
    # Same accept/reject, and the same decoded value when accepted.
    assert wire._decode_fast(payload) == _checked(payload)


@given(telemetry_payloads())
def test_decode_rejects_exactly_as_the_checked_path(payload: bytes) -> None:
    try:
        expected: object = wire._decode_checked(payload, "telemetry")
    except wire.DecodeError as exc:
        expected = (exc.reason, exc.detail)
    try:
        got: object = wire.decode(payload, "telemetry")
    except wire.DecodeError as exc:
        got = (exc.reason, exc.detail)
    assert got == expected


@given(telemetries())
def test_fast_path_takes_every_valid_telemetry(msg: wire.Telemetry) -> None:
    assert wire._decode_fast(wire.encode(msg)) == msg


def test_fast_path_leaves_what_it_cannot_judge_to_the_checked_path() -> None:
    body = wire.encode(telemetry())
    raw = json.loads(body)
    del raw["v"]  # the model's default would accept it: unknown_version, as before
    assert wire._decode_fast(json.dumps(raw).encode()) is None
    with pytest.raises(wire.DecodeError) as info:
        wire.decode(json.dumps(raw).encode(), "telemetry")
    assert info.value.reason == "unknown_version"
    # A UTF-8 byte-order mark: pydantic-core refuses it, Python's json accepts it.
    assert wire._decode_fast(b"\xef\xbb\xbf" + body) is None
    assert wire.decode(b"\xef\xbb\xbf" + body, "telemetry") == wire.decode(body, "telemetry")


@pytest.mark.parametrize(("value", "problem"), [
    ({"metric": "m", "value": 1.0, "text": "x"}, "value and text both set"),
    ({"metric": "m"}, "no value, counter or text"),
    ({"metric": "m", "value": 1.0, "unknown": "sentinel"}, "value set and unknown"),
    ({"metric": "m", "rate": 1.0, "unknown": "absent"}, "rate without a counter"),
    ({"metric": "m", "unknown": "dunno"}, "unknown"),
    ({"metric": "m", "value": 1.0, "tags": {"Entity": "x"}}, "tags"),
])
def test_a_profile_value_that_is_not_one_thing_is_invalid_and_named(
        value: dict[str, object], problem: str) -> None:
    raw = json.loads(wire.encode(telemetry()))
    raw["polls"][0]["profiles"] = [{"profile": "ups-mib", "values": [value]}]
    with pytest.raises(wire.DecodeError) as info:
        wire.decode(json.dumps(raw).encode(), "telemetry")
    assert info.value.reason == "invalid"
    assert "polls.0.profiles.0.values.0" in info.value.detail and problem in info.value.detail


def test_a_v1_message_without_profiles_encodes_as_before() -> None:
    """The fields added to v1 are left out when absent: an agent that polls no profile sends
    byte for byte what it sent before they existed."""
    body = wire.encode(telemetry())
    assert b"profiles" not in body and b"power" not in body
