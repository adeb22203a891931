from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.admission import Accepted, Limits, Rejected, admit
from tests.factories import STATUS_TOPIC, TOPIC, poll, telemetry
from xanet import wire

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def test_good_telemetry_accepted() -> None:
    v = admit(TOPIC, wire.encode(telemetry(polls=[poll(ts=NOW)])), NOW, Limits())
    assert isinstance(v, Accepted)
    assert v.where.commune == "00688"
    assert isinstance(v.message, wire.Telemetry)
    assert not v.dropped


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b"x" * 2000, "too_large"),
        ("xanet/v1/hg/c/s", b"{}", "bad_topic"),
        (TOPIC, b"not json", "not_json"),
        (TOPIC, b'{"v": 7}', "unknown_version"),
        (TOPIC, b'{"v": 1, "seq": "one"}', "invalid"),
        (STATUS_TOPIC, wire.encode(telemetry()), "wrong_kind"),
        ("xanet/v1/ha-giang/00688/site-b/telemetry", wire.encode(telemetry()),
         "topic_mismatch"),
    ],
)
def test_rejections(topic: str, payload: bytes, reason: str) -> None:
    v = admit(topic, payload, NOW, Limits(max_payload_bytes=1024))
    assert isinstance(v, Rejected)
    assert v.reason == reason
    assert v.detail


def test_out_of_bounds_polls_dropped_good_kept() -> None:
    msg = telemetry(polls=[
        poll("d1", ts=NOW),
        poll("d2", ts=NOW + timedelta(hours=2)),
        poll("d3", ts=NOW - timedelta(days=400)),
    ])
    v = admit(TOPIC, wire.encode(msg), NOW, Limits())
    assert isinstance(v, Accepted)
    assert isinstance(v.message, wire.Telemetry)
    assert [p.device for p in v.message.polls] == ["d1"]
    assert v.dropped == {"ts_future": 1, "ts_past": 1}


def test_all_polls_out_of_bounds_rejected() -> None:
    msg = telemetry(polls=[poll(ts=NOW + timedelta(hours=1))])
    v = admit(TOPIC, wire.encode(msg), NOW, Limits())
    assert isinstance(v, Rejected) and v.reason == "ts_future"


def test_status_accepted() -> None:
    payload = wire.encode(wire.Status(agent="a", site="site-a", state="offline"))
    v = admit(STATUS_TOPIC, payload, NOW, Limits())
    assert isinstance(v, Accepted) and isinstance(v.message, wire.Status)


def test_agent_must_be_the_one_the_inventory_names() -> None:
    payload = wire.encode(telemetry(agent="agent-a", polls=[poll(ts=NOW)]))
    assert isinstance(admit(TOPIC, payload, NOW, Limits(), {"site-a": "agent-a"}), Accepted)
    assert isinstance(admit(TOPIC, payload, NOW, Limits(), {"other-site": "x"}), Accepted)
    v = admit(TOPIC, payload, NOW, Limits(), {"site-a": "agent-z"})
    assert isinstance(v, Rejected) and v.reason == "agent_mismatch" and "agent-z" in v.detail
    status = wire.encode(wire.Status(agent="agent-b", site="site-a", state="online"))
    v = admit(STATUS_TOPIC, status, NOW, Limits(), {"site-a": "agent-a"})
    assert isinstance(v, Rejected) and v.reason == "agent_mismatch"


# -- profile values: the bounds beyond the wire model's -----------------------------------


def _values(n: int, tags: dict[str, str] | None = None) -> list[wire.ProfileValue]:
    return [wire.ProfileValue(metric=f"m{i}", value=float(i), tags=tags) for i in range(n)]


def _with_profiles(device: str, n: int, **kw: object) -> wire.DevicePoll:
    return poll(device, ts=NOW, profiles=[wire.ProfileReading(profile="p", values=_values(n))],
                power=wire.PowerReading(state="mains", profile="p"), **kw)


def test_a_message_without_profiles_is_admitted_as_before() -> None:
    msg = telemetry(polls=[poll("d1", ts=NOW), poll("d2", ts=NOW)])
    v = admit(TOPIC, wire.encode(msg), NOW, Limits(max_profile_values=1))
    assert isinstance(v, Accepted) and v.message == msg and not v.dropped


def test_polls_past_the_value_limit_keep_everything_but_their_profiles() -> None:
    msg = telemetry(polls=[_with_profiles("d1", 6), _with_profiles("d2", 6),
                           _with_profiles("d3", 4)])
    v = admit(TOPIC, wire.encode(msg), NOW, Limits(max_profile_values=10))
    assert isinstance(v, Accepted) and isinstance(v.message, wire.Telemetry)
    assert v.dropped == {"too_many_values": 1}
    d1, d2, d3 = v.message.polls
    assert d1 == msg.polls[0] and d3 == msg.polls[2]  # 6 + 4 fit, in order
    assert d2.profiles is None and d2.interfaces == msg.polls[1].interfaces
    assert d2.power == msg.polls[1].power and d2.reachable
    (part,) = v.dropped_polls["too_many_values"]
    assert part.profiles == msg.polls[1].profiles and part.interfaces == [] and part.power is None


def test_a_value_with_too_long_row_tags_is_the_only_one_refused() -> None:
    long_ = {"entity": "x" * 250, "name": "é" * 200}  # 6 + 250 + 4 + 400 bytes
    values = [*_values(2), *_values(1, long_), *_values(1, {"line": "1"})]
    msg = telemetry(polls=[poll("d1", ts=NOW, profiles=[
        wire.ProfileReading(profile="p", values=values, warnings=["w"])])])
    assert isinstance(admit(TOPIC, wire.encode(msg), NOW, Limits(max_profile_tag_bytes=660)),
                      Accepted)
    v = admit(TOPIC, wire.encode(msg), NOW, Limits(max_profile_tag_bytes=659))
    assert isinstance(v, Accepted) and isinstance(v.message, wire.Telemetry)
    assert v.dropped == {"tag_too_long": 1}
    (kept,) = v.message.polls[0].profiles or []
    assert kept.values == [values[0], values[1], values[3]] and kept.warnings == ["w"]
    (part,) = v.dropped_polls["tag_too_long"]
    assert part.profiles is not None and part.profiles[0].values == [values[2]]
    # the dead-lettered part is a valid message of its own: replayable
    again = msg.model_copy(update={"polls": [part]})
    assert wire.decode(wire.encode(again), "telemetry") == again


def test_profile_bounds_and_time_bounds_together() -> None:
    msg = telemetry(polls=[_with_profiles("d1", 3),
                           poll("d2", ts=NOW + timedelta(hours=2)), _with_profiles("d3", 3)])
    v = admit(TOPIC, wire.encode(msg), NOW, Limits(max_profile_values=4))
    assert isinstance(v, Accepted) and isinstance(v.message, wire.Telemetry)
    assert v.dropped == {"ts_future": 1, "too_many_values": 1}
    assert [p.device for p in v.message.polls] == ["d1", "d3"]
    assert v.message.polls[1].profiles is None
