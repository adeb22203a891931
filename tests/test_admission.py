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
