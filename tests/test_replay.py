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


def test_profiles_cut_by_a_limit_replay_once_it_is_raised() -> None:
    """A poll's profiles dead-lettered as ``too_many_values`` are refused again under the
    same limit and written once the operator raised it (replay admits with the config's
    profile limits)."""
    values = [wire.ProfileValue(metric=f"m{i}", value=float(i)) for i in range(20)]
    part = telemetry(seq=4, polls=[poll("ups-1", ts=NOW - timedelta(minutes=5), n_if=0,
                                        profiles=[wire.ProfileReading(profile="ups-mib",
                                                                      values=values)])])
    records = [_record("p", part, reason="too_many_values")]
    low = CollectorConfig.model_validate({"ingest": {"max_profile_values": 10}})
    assert plan(records, set(), low, NOW).refused == {"too_many_values": 1}
    high = CollectorConfig.model_validate({"ingest": {"max_profile_values": 20}})
    (item,) = plan(records, set(), high, NOW).items
    assert sum(ln.startswith("profile,") for ln in item[1]) == 20
