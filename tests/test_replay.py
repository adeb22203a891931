"""collector.replay.plan: what a replay would write (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.config import CollectorConfig
from collector.replay import Selection, plan
from tests.factories import poll, telemetry
from xanet import topics, wire

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TOPIC = topics.build("ha-giang", "00688", "site-a", "telemetry")


def _record(rid: str, msg: wire.Telemetry, reason: str = "ts_future",
            received: datetime = NOW) -> dict[str, object]:
    return {"id": rid, "received_at": received.isoformat(), "topic": TOPIC, "reason": reason,
            "payload": wire.encode(msg).decode()}


def test_clock_ahead_polls_are_corrected_or_still_refused() -> None:
    received = NOW - timedelta(hours=2)
    ahead = telemetry(seq=3, polls=[poll(ts=received + timedelta(days=1))]).model_copy(
        update={"sent": received + timedelta(days=1)})
    records = [_record("a", ahead, received=received)]
    cfg = CollectorConfig()
    still = plan(records, set(), cfg, NOW)
    assert still.items == [] and still.refused == {"ts_future": 1}
    fixed = plan(records, set(), cfg, NOW, correct_clock=True)
    (item,) = fixed.items
    assert item[0] == "a" and fixed.polls == 1
    ms = int(received.timestamp() * 1000)
    assert item[1][0].endswith(f" {ms}")  # the poll lands at its true time
    assert plan(records, {"a"}, cfg, NOW, correct_clock=True).skipped == {"already replayed": 1}


def test_lines_truncated_and_selection() -> None:
    cfg = CollectorConfig()
    records = [
        {"id": "l", "kind": "lines", "reason": "write_rejected", "received_at": NOW.isoformat(),
         "topic": "", "payload": "device,site=x error=\"t\" 1\ndevice,site=x error=\"t\" 2"},
        {"id": "t", "reason": "invalid", "received_at": NOW.isoformat(), "topic": TOPIC,
         "payload": "{", "truncated": True},
        {"reason": "invalid", "received_at": NOW.isoformat(), "topic": TOPIC, "payload": "{}"},
    ]
    p = plan(records, set(), cfg, NOW)
    assert [(rid, len(ls)) for rid, ls, _ in p.items] == [("l", 2)]
    assert p.skipped == {"payload not kept whole": 1,
                         "no id (written by an older collector)": 1}
    sel = Selection(reasons={"write_rejected"})
    assert [r["id"] for r in records if sel.matches(r)] == ["l"]
    assert Selection(since=NOW + timedelta(seconds=1)).matches(records[0]) is False
