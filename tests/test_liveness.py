"""Restart-correct agent liveness (collector/outages.py): after a collector restart,
stale retained statuses are no sign of life, and "silent since" is the last real one."""

from __future__ import annotations

from pathlib import Path

from collector.alerting import OutageStore
from collector.outages import AlertCore, AlertEvent, OutageRecord, alert_topology, sign_of_life
from tests.test_outages import CLEAR, HOLD, POLICY, SILENT, T0, inventory

TOLERANCE = 30.0


def core(now: float, seen: dict[str, float] | None = None,
         restored: tuple[OutageRecord, ...] = ()) -> AlertCore:
    return AlertCore(alert_topology(inventory()), POLICY, now=now, seen=seen,
                     restored=restored)


def run(c: AlertCore, start: float, end: float, live: tuple[str, ...] = (),
        step: float = 1.0) -> list[AlertEvent]:
    """Evaluate every ``step`` s; the ``live`` agents send a fresh message each time."""
    out: list[AlertEvent] = []
    t = start
    while t < end:
        t = min(end, t + step)
        for agent in live:
            c.agent_seen(agent, t)
        out += c.evaluate(t)
    return out


def test_sign_of_life_is_the_receive_time_unless_the_message_is_old_news() -> None:
    assert sign_of_life(1000.0, None, TOLERANCE) == 1000.0  # no send time (older agent)
    assert sign_of_life(1000.0, 990.0, TOLERANCE) == 1000.0  # fresh (clock error absorbed)
    assert sign_of_life(1000.0, 1005.0, TOLERANCE) == 1000.0  # agent clock ahead
    assert sign_of_life(1000.0, 400.0, TOLERANCE) == 400.0  # a retained status: old news


def test_restart_stale_retained_status_is_no_sign_of_life_silent_since_is_the_truth() -> None:
    last_life = T0 - 600.0  # agt-hub-b really went silent 10 minutes before the restart
    c = core(T0, seen={"agt-hub-a": T0 - 5.0, "agt-hub-b": last_life})
    # the broker hands over both retained "online" statuses at once
    c.agent_seen("agt-hub-a", sign_of_life(T0 + 0.1, T0 - 20.0, TOLERANCE))  # fresh
    c.agent_seen("agt-hub-b", sign_of_life(T0 + 0.1, last_life, TOLERANCE))  # stale
    events = run(c, T0, T0 + SILENT + HOLD + 2, live=("agt-hub-a",))
    firing = [e for e in events if e.action == "firing"]
    assert [e.alert.labels["agent"] for e in firing] == ["agt-hub-b"]
    assert firing[0].alert.starts_at == last_life  # silent since: its last sign of life
    assert c.silent_since("agt-hub-b") == last_life
    assert c.silent_since("agt-hub-a") is None
    assert c.liveness()["agt-hub-b"] == last_life


def test_restart_does_not_judge_agents_before_they_could_speak() -> None:
    """Last seen long ago (the collector was down an hour): no alert at the first
    evaluation, before the retained statuses and fresh telemetry had a chance."""
    c = core(T0, seen={"agt-hub-a": T0 - 3600.0, "agt-hub-b": T0 - 3600.0})
    assert run(c, T0, T0 + 5.0) == []
    events = run(c, T0 + 5.0, T0 + SILENT + HOLD + 2, live=("agt-hub-a", "agt-hub-b"))
    assert events == []


def test_restored_silence_stays_open_until_the_agent_is_heard() -> None:
    c = core(T0 - 1000.0)
    run(c, T0 - 1000.0, T0 - 800.0, live=("agt-hub-a", "agt-hub-b"))
    run(c, T0 - 800.0, T0 - 600.0, live=("agt-hub-a",))  # hub-b silent from T0-800
    [rec] = [r for r in c.records() if r.kind == "agent_silent"]
    assert rec.started_at == T0 - 800.0
    # restart: no news from hub-b yet is not good news: the silence is not resolved
    again = core(T0, seen=c.liveness(), restored=(rec,))
    events = run(again, T0, T0 + CLEAR + 20.0, live=("agt-hub-a",))
    assert [e.action for e in events] == ["firing"]  # re-announced, not resolved
    assert events[0].alert.starts_at == T0 - 800.0
    # it speaks again: resolved after the clear-down, never paged twice
    events = run(again, T0 + CLEAR + 20.0, T0 + 2 * CLEAR + 40.0, live=("agt-hub-a", "agt-hub-b"))
    assert [e.action for e in events] == ["resolved"]


def test_last_seen_survives_in_the_state_file(tmp_path: Path) -> None:
    store = OutageStore(tmp_path / "outages.json")
    store.save([], {"agt-hub-a": T0 - 1.5, "agt-hub-b": T0 - 600.0})
    assert store.load_seen() == {"agt-hub-a": T0 - 1.5, "agt-hub-b": T0 - 600.0}
    assert store.load() == []
    (tmp_path / "outages.json").write_text('{"v": 1, "open": [], "agents": {"x": "soon"}}')
    assert store.load_seen() == {}  # a bad entry is skipped (and logged), not fatal
