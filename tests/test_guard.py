"""The pure guards: duplicate instances, clock skew, cardinality, fault alerts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from collector.alertmanager import AlertmanagerUnavailable, Notifier, iso, payload
from collector.app import Collector
from collector.cardinality import CardinalityGuard
from collector.config import CollectorConfig, GuardsConfig
from collector.faults import KIND, FaultBook, Texts
from collector.guard import Guard
from collector.instances import InstanceTracker, Verdict
from collector.skew import ClockWatch
from tests.factories import TOPIC, interface, poll, telemetry
from tests.pipeline import ROOT
from tests.test_fuzz import RecordingWriter
from xanet import topics, wire

WHERE = topics.parse("xanet/v1/ha-giang/00688/site-a/telemetry")
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


# -- duplicate instances ------------------------------------------------------

def test_second_live_instance_is_refused_and_the_owner_kept() -> None:
    t = InstanceTracker(takeover_after_s=60)
    assert t.observe("a", "one", 0) is Verdict.OWNER
    assert t.observe("a", "two", 10) is Verdict.DUPLICATE
    assert t.observe("a", "one", 20) is Verdict.OWNER
    assert t.observe("a", "two", 30) is Verdict.DUPLICATE
    assert t.owner("a") == "one" and t.duplicates("a", 30) == ["two"]


def test_restart_takes_over_at_once_after_a_clean_stop_or_last_will() -> None:
    t = InstanceTracker(takeover_after_s=60)
    t.observe("a", "one", 0)
    t.observe("a", "one", 5, offline=True)  # stop or Last Will
    assert t.observe("a", "two", 6) is Verdict.TAKEOVER
    assert t.observe("a", "two", 7) is Verdict.OWNER
    assert t.observe("a", "one", 8, offline=True) is Verdict.STALE  # a late Will: ignored
    assert t.owner("a") == "two"


def test_restarted_agent_delivers_its_predecessors_spool() -> None:
    """The instance id is stamped at spool time: the backlog of the old process, polled
    before the new one took over, is stored; a fresh poll under the old id is not."""
    t = InstanceTracker(takeover_after_s=60)
    t.observe("a", "old", 0, polled_until=0)
    t.observe("a", "old", 10, offline=True)
    assert t.observe("a", "new", 20, polled_until=19) is Verdict.TAKEOVER
    for k in range(30):  # a long replay, beyond takeover_after_s, live polls in between
        assert t.observe("a", "old", 21 + 5 * k, polled_until=9 - k * 0.1) is Verdict.BACKLOG
        assert t.observe("a", "new", 22 + 5 * k, polled_until=22 + 5 * k) is Verdict.OWNER
    assert t.observe("a", "old", 200, polled_until=199) is Verdict.DUPLICATE  # alive: fresh
    assert t.owner("a") == "new"


def test_restart_on_the_same_box_takes_over_without_any_offline() -> None:
    """After a crash the Last Will may never come (delayed, then cancelled by the new
    connection): a new instance of the same host takes over at once; the old one coming
    back with fresh polls is a duplicate; another host must wait."""
    t = InstanceTracker(takeover_after_s=60)
    t.observe("a", "bts-17-0a0b0c0d", 0, polled_until=0)
    assert t.observe("a", "bts-17-99887766", 5, polled_until=5) is Verdict.TAKEOVER
    assert t.observe("a", "bts-17-0a0b0c0d", 6, polled_until=4) is Verdict.BACKLOG
    assert t.observe("a", "bts-17-0a0b0c0d", 7, polled_until=7) is Verdict.DUPLICATE
    assert t.observe("a", "other-box-11223344", 8, polled_until=8) is Verdict.DUPLICATE


def test_silent_owner_is_taken_over_after_the_timeout() -> None:
    t = InstanceTracker(takeover_after_s=60)
    t.observe("a", "one", 0)
    assert t.observe("a", "two", 59) is Verdict.DUPLICATE
    assert t.observe("a", "two", 61) is Verdict.TAKEOVER


def test_two_boxes_knocking_each_other_off_the_broker_settle_on_one() -> None:
    """Shared credentials: each connect fires the other's Last Will. The instance that
    comes back after being displaced is the duplicate, for good."""
    t = InstanceTracker(takeover_after_s=60)
    t.observe("a", "A", 0, polled_until=0)
    t.observe("a", "A", 1, offline=True)  # B connects: A's Last Will
    assert t.observe("a", "B", 1.1) is Verdict.TAKEOVER
    verdicts = []
    now = 2.0
    for _ in range(20):  # they keep alternating, each polling as it goes
        t.observe("a", "B", now, offline=True)  # A connects: B's Will
        verdicts.append(t.observe("a", "A", now + 0.1, polled_until=now + 0.05))
        t.observe("a", "A", now + 0.5, offline=True)  # B connects: A's Will
        verdicts.append(t.observe("a", "B", now + 0.6, polled_until=now + 0.55))
        now += 1
    assert verdicts[0::2] == [Verdict.DUPLICATE] * 20
    assert verdicts[1::2] == [Verdict.OWNER] * 20
    assert t.takeovers == 1


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.floats(0, 5), st.booleans()),
                max_size=60))
def test_at_most_one_instance_stored_at_any_time(events: list[tuple[str, float, bool]]) -> None:
    """Whatever the interleaving of live messages (polls taken as they are sent), every
    message stored comes from the owner at that moment, and the owner only changes by a
    takeover verdict."""
    t = InstanceTracker(takeover_after_s=10)
    now = 0.0
    owner = None
    for inst, dt, offline in events:
        now += dt
        v = t.observe("a", inst, now, offline=offline, polled_until=None if offline else now)
        if v is Verdict.TAKEOVER or owner is None:
            owner = inst
        if v in (Verdict.OWNER, Verdict.TAKEOVER):
            assert inst == owner == t.owner("a")
        assert v is not Verdict.BACKLOG  # live polls are never taken for a backlog


# -- clock skew ---------------------------------------------------------------

def test_clock_ahead_is_seen_at_once_behind_only_when_consistent() -> None:
    w = ClockWatch(threshold_s=120, window=3)  # (12 by default)
    assert w.observe("a", T0 + timedelta(days=1), T0).state == "ahead"
    assert w.observe("b", T0 - timedelta(seconds=600), T0).state == "ok"  # one late resend
    assert w.observe("b", T0, T0 + timedelta(seconds=1)).state == "ok"
    for i in range(3):
        r = w.observe("c", T0 - timedelta(days=1), T0 + timedelta(seconds=i))
    assert r.state == "behind" and -86_403 < r.offset_s < -86_399


# -- cardinality ----------------------------------------------------------------

def _msg(agent: str, device: str, names: list[str], seq: int = 0) -> wire.Telemetry:
    return telemetry(seq=seq, agent=agent, polls=[poll(device, ts=T0, n_if=0, interfaces=[
        interface(i + 1, name=n) for i, n in enumerate(names)])])


def test_flooding_device_is_refused_a_legit_one_keeps_storing_new_interfaces() -> None:
    g = CardinalityGuard(window_s=3600, max_new_interfaces_per_device=100,
                         max_new_series_per_agent=1000)
    first = g.check(_msg("evil", "d", [f"x{i}" for i in range(100)]), 0)
    assert not first.refused
    flood = g.check(_msg("evil", "d", [f"y{i}" for i in range(50)]), 1)
    assert flood.message is not None and flood.message.polls[0].interfaces == []
    assert flood.series_refused == 50 and flood.refused[0].scope == "device"
    again = g.check(_msg("evil", "d", [f"x{i}" for i in range(100)]), 2)  # known: fine
    assert not again.refused
    legit = g.check(_msg("good", "r1", ["ge-0/0/1", "ge-0/0/2"]), 3)
    assert not legit.refused and legit.message is not None
    assert g.check(_msg("good", "r1", ["ge-0/0/1", "ge-0/0/3"]), 4).refused == ()
    assert not g.check(_msg("evil", "d", ["z"]), 3600).refused  # next window


def test_agent_limit_spans_its_devices() -> None:
    g = CardinalityGuard(window_s=3600, max_new_interfaces_per_device=4096,
                         max_new_series_per_agent=30)
    refused = 0
    for d in range(10):
        refused += g.check(_msg("evil", f"d{d}", [f"n{i}" for i in range(10)]), d).series_refused
    assert refused == 10 * 11 - 30  # devices count as series too


# -- fault book and the guard ------------------------------------------------

def test_fault_fires_once_and_resolves_when_quiet() -> None:
    b = FaultBook()
    assert b.raise_("XanetClockSkew", {"agent": "a"}, Texts("s", "s vi"), 0, quiet_s=10)
    assert not b.raise_("XanetClockSkew", {"agent": "a"}, Texts("s", "s vi"), 5, quiet_s=10)
    (fired,) = b.events()
    assert fired.action == "firing" and fired.alert.kind == KIND
    assert b.sweep(14) == [] and b.events() == []
    assert [f.key for f in b.sweep(15)] == [fired.alert.fingerprint]
    (ev,) = b.events()
    assert ev.action == "resolved" and ev.alert.ends_at == 15
    assert ev.alert.fingerprint == fired.alert.fingerprint  # one alert in Alertmanager
    p = payload(ev.alert, now=15, expire_after_s=900)
    assert p["labels"] == {"alertname": "XanetClockSkew", "severity": "warning", "agent": "a"}
    assert p["endsAt"].startswith("1970-01-01T00:00:15")
    assert p["annotations"]["summary_en"] == p["annotations"]["summary"] == "s"
    assert p["annotations"]["summary_vi"] == "s vi"


def test_new_text_for_a_firing_fault_updates_it_without_a_new_alert() -> None:
    b = FaultBook()
    b.raise_("XanetClockSkew", {"agent": "a"}, Texts("by 100s", "100 giây"), 0, quiet_s=10)
    b.raise_("XanetClockSkew", {"agent": "a"}, Texts("by 101s", "101 giây"), 1, quiet_s=10)
    first, second = b.events()
    assert (first.action, second.action) == ("firing", "firing")
    assert first.alert.fingerprint == second.alert.fingerprint
    assert second.alert.annotations["summary_en"] == "by 101s"
    assert second.alert.starts_at == 0 and b.raised == 1


def test_guard_refuses_a_duplicate_whole_and_names_both_instances() -> None:
    g = Guard(GuardsConfig())
    a = telemetry(seq=1).model_copy(update={"instance": "alpha-0a0b0c0d", "sent": T0})
    b = telemetry(seq=1).model_copy(update={"instance": "beta-0a0b0c0d", "sent": T0})
    assert g.check(WHERE, a, T0).message is a
    out = g.check(WHERE, b, T0 + timedelta(seconds=1))
    assert out.message is None and out.refused[0].reason == "duplicate_agent"
    (fault,) = g.faults.firing.values()
    summary = fault.annotations["summary"]
    assert "alpha-0a0b0c0d" in summary and "beta-0a0b0c0d" in summary
    vi = fault.annotations["summary_vi"]
    assert "alpha-0a0b0c0d" in vi and "beta-0a0b0c0d" in vi and "trạm site-a" in vi
    # routed and grouped like every xanet alert (deploy/alertmanager/alertmanager.yml)
    assert fault.labels == {"alertname": "XanetDuplicateAgent", "severity": "major",
                            "province": "ha-giang", "commune": "00688", "site": "site-a",
                            "agent": "agent-a"}


def test_every_fault_alert_is_bilingual_and_placed() -> None:
    g = Guard(GuardsConfig(max_new_interfaces_per_device=2, max_new_series_per_agent=100))
    ahead = telemetry(seq=1).model_copy(update={"sent": T0 + timedelta(days=1)})
    g.clock(WHERE, ahead, T0)
    flood = telemetry(seq=2, polls=[poll("rtr1", ts=T0, n_if=0,
                                         interfaces=[interface(i + 1, name=f"x{i}")
                                                     for i in range(5)])])
    g.check(WHERE, flood.model_copy(update={"sent": T0}), T0)
    alerts = {e.alert.labels["alertname"]: e.alert for e in g.faults.events()}
    assert set(alerts) == {"XanetClockSkew", "XanetCardinalityExceeded"}
    for a in alerts.values():
        assert a.kind == KIND
        assert {k: a.labels[k] for k in ("province", "commune", "site", "agent")} == {
            "province": "ha-giang", "commune": "00688", "site": "site-a", "agent": "agent-a"}
        assert a.annotations["summary_vi"] and a.annotations["description"]
        assert a.annotations["summary_vi"] != a.annotations["summary_en"]
    assert "đồng hồ nhanh hơn" in alerts["XanetClockSkew"].annotations["summary_vi"]
    assert alerts["XanetCardinalityExceeded"].labels["device"] == "rtr1"
    assert "thiết bị rtr1" in alerts["XanetCardinalityExceeded"].annotations["summary_vi"]


def test_owner_knocked_off_by_a_duplicate_does_not_flap_offline() -> None:
    g = Guard(GuardsConfig())
    one = wire.Status(agent="agent-a", site="site-a", state="online", ts=T0, instance="one")
    two = one.model_copy(update={"instance": "two"})
    will_one = wire.Status(agent="agent-a", site="site-a", state="offline", instance="one",
                           reason="last will")
    assert g.check(WHERE, one, T0).message is one
    assert g.check(WHERE, two, T0 + timedelta(seconds=1)).message is None
    out = g.check(WHERE, will_one, T0 + timedelta(seconds=2))
    assert out.message is None and out.refused[0].reason == "duplicate_agent"
    assert g.check(WHERE, two, T0 + timedelta(seconds=3)).message is None  # still the duplicate
    assert g.check(WHERE, one, T0 + timedelta(seconds=4)).message is one


class _Port:
    """An AlertmanagerPort that records posts; ``down`` makes it unreachable."""

    def __init__(self) -> None:
        self.posts: list[list[dict[str, object]]] = []
        self.down = False

    async def post(self, alerts: Sequence[dict[str, object]]) -> None:
        if self.down:
            raise AlertmanagerUnavailable("test: down")
        self.posts.append(list(alerts))

    async def close(self) -> None:
        pass


def _notifier(port: _Port, clock: list[float]) -> Notifier:
    return Notifier(port, resend_interval_s=60, expire_after_s=900, retry_min_s=1,
                    retry_max_s=2, clock=lambda: clock[0])


def test_fault_alerts_through_the_notifier_keep_resolved_until_delivered() -> None:
    book = FaultBook()
    port = _Port()
    clock = [100.0]
    n = _notifier(port, clock)
    book.raise_("XanetDuplicateAgent", {"agent": "a"}, Texts("twice", "hai lần"), 100,
                quiet_s=10)
    n.submit(book.events())
    assert asyncio.run(n.flush()) and len(port.posts[-1]) == 1
    clock[0] = 120.0  # quiet for 20 s: resolved, but Alertmanager is away
    book.sweep(clock[0])
    n.submit(book.events())
    port.down = True
    assert not asyncio.run(n.flush()) and n.pending_resolved == 1
    port.down = False
    assert asyncio.run(n.flush())
    (resolved,) = port.posts[-1]
    assert resolved["endsAt"] == "1970-01-01T00:02:00.000Z" and n.pending_resolved == 0


def test_duplicate_raised_again_then_quiet_is_one_firing_then_one_resolved() -> None:
    """Through the guard and a notifier, as collector/app.py wires them: one firing event
    (re-raising changes nothing), one resolved event once the duplicate has been quiet for
    ``takeover_after_s``; Alertmanager is told firing, then resolved, then nothing."""
    g = Guard(GuardsConfig(takeover_after_s=90))
    port = _Port()
    clock = [T0.timestamp()]
    n = _notifier(port, clock)
    a = telemetry(seq=1).model_copy(update={"instance": "alpha-0a0b0c0d", "sent": T0})
    b = telemetry(seq=2).model_copy(update={"instance": "beta-0a0b0c0d", "sent": T0})
    handed: list[str] = []
    told: list[str] = []  # what each post says of the alert

    def step(at: float, *msgs: wire.Telemetry) -> None:
        now = T0 + timedelta(seconds=at)
        clock[0] = now.timestamp()
        for m in msgs:
            g.check(WHERE, m, now)
        g.faults.sweep(clock[0])
        events = g.faults.events()
        handed.extend(e.action for e in events)
        n.submit(events)
        posted = len(port.posts)
        assert asyncio.run(n.flush())
        for p in port.posts[posted:]:
            (alert,) = p
            assert alert["labels"]["alertname"] == "XanetDuplicateAgent"  # type: ignore[index]
            told.append("resolved" if str(alert["endsAt"]) <= iso(clock[0]) else "firing")

    step(0, a)
    step(1, b)  # the duplicate: fires
    step(30, a, b)  # raised again, twice
    step(60, a, b)
    step(60 + 89, a)  # the duplicate quiet, not long enough yet
    step(60 + 90, a)  # quiet for takeover_after_s: resolved
    step(300, a)  # nothing left to say
    assert handed == ["firing", "resolved"]
    # each flush re-posts what fires (how it stays alive in Alertmanager), then resolved once
    assert told == ["firing"] * 4 + ["resolved"]
    assert {p[0]["startsAt"] for p in port.posts} == {iso(T0.timestamp() + 1)}
    assert port.posts[-1][0]["endsAt"] == iso(T0.timestamp() + 150)
    assert g.faults.raised == 1 and not n.firing and n.pending_resolved == 0


# -- the collector's wiring: one notifier, stats as docs/data.md says -------------------

def _documented_stats() -> list[str]:
    """The ``collector_stats`` field names docs/data.md lists (``{x}``: any suffix)."""
    doc = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    (row,) = [ln for ln in doc.splitlines() if ln.startswith("| `collector_stats` |")]
    return re.findall(r"`([a-z_{}]+)`", row.split("|")[3])


def test_collector_without_inventory_delivers_faults_through_its_one_notifier(
    tmp_path: Path,
) -> None:
    cfg = CollectorConfig.model_validate({
        "collector": {"id": "faults"},
        "ingest": {"dead_letter_dir": str(tmp_path / "dead")},
        "guards": {"takeover_after_s": 90},
        "alerts": {"url": "http://127.0.0.1:9"},  # never reached: the port below serves
    })
    collector = Collector(cfg, writer=RecordingWriter())
    assert collector.alerting is None and collector.notifier is not None
    port = _Port()
    collector.notifier.port = port
    polled = [poll("rtr1", ts=T0)]
    a = telemetry(seq=1, polls=polled).model_copy(update={"instance": "alpha-0a0b0c0d",
                                                          "sent": T0})
    b = telemetry(seq=2, polls=polled).model_copy(update={"instance": "beta-0a0b0c0d",
                                                          "sent": T0})

    async def scenario() -> None:
        assert collector.notifier is not None
        await collector.handle(TOPIC, wire.encode(a), now=T0)
        await collector.handle(TOPIC, wire.encode(b), now=T0 + timedelta(seconds=1))
        (firing,) = collector.notifier.firing
        assert firing.kind == KIND and firing.labels["alertname"] == "XanetDuplicateAgent"
        collector.sweep_faults(T0.timestamp() + 90)  # quiet for 89 s: still firing
        assert collector.notifier.firing == [firing]
        collector.sweep_faults(T0.timestamp() + 91)
        assert collector.notifier.firing == [] and collector.notifier.pending_resolved == 1
        assert await collector.notifier.flush()

    asyncio.run(scenario())
    collector.dead_letter.close()
    (resolved,) = port.posts[-1]
    assert resolved["endsAt"] == iso(T0.timestamp() + 91)
    stats = collector.stats()
    assert stats["alerts_faults_raised"] == 1 and stats["alerts_faults_firing"] == 0
    assert stats["alertmanager_posts"] == 1 and stats["alertmanager_failures"] == 0
    documented = _documented_stats()
    for key in stats:
        assert any(re.fullmatch(re.sub(r"\{[a-z_]+\}", "[a-z_]+", d), key)
                   for d in documented), f"collector_stats.{key} is not in docs/data.md"


def _profile_msg(agent: str, device: str, metrics: list[str], n_if: int = 0) -> wire.Telemetry:
    return wire.Telemetry(agent=agent, site="s", seq=1, polls=[wire.DevicePoll(
        device=device, ts=datetime.now(UTC), reachable=True,
        interfaces=[interface(i + 1) for i in range(n_if)],
        profiles=[wire.ProfileReading(profile="entity-sensor", values=[
            wire.ProfileValue(metric="sensor_value", tags={"entity_index": m}, value=1.0)
            for m in metrics])])])


def test_new_profile_series_are_counted_per_device_and_agent() -> None:
    g = CardinalityGuard(window_s=3600, max_new_interfaces_per_device=100,
                         max_new_series_per_agent=1000, max_new_profile_series_per_device=10)
    first = g.check(_profile_msg("a", "fw", [str(i) for i in range(8)], n_if=2), 0)
    assert not first.refused
    flood = g.check(_profile_msg("a", "fw", [str(i) for i in range(20)], n_if=2), 1)
    assert flood.series_refused == 20 - 10 and flood.refused[0].scope == "profile"
    assert flood.message is not None
    (kept,) = flood.message.polls
    assert kept.interfaces and len((kept.profiles or [])[0].values) == 10  # 8 known + 2 new
    (part,) = flood.refused[0].polls
    assert part.interfaces == [] and len((part.profiles or [])[0].values) == 10
    again = g.check(_profile_msg("a", "fw", [str(i) for i in range(10)]), 2)
    assert not again.refused  # known: fine
    assert not g.check(_profile_msg("a", "fw", ["x", "y"]), 3600).refused  # next window


def test_profile_series_count_against_the_agent_limit() -> None:
    g = CardinalityGuard(window_s=3600, max_new_interfaces_per_device=100,
                         max_new_series_per_agent=15)
    checked = g.check(_profile_msg("a", "ups", [str(i) for i in range(20)]), 0)
    assert checked.series_refused == 20 + 1 - 15 and checked.refused[0].scope == "agent"
    refused_new = g.check(_profile_msg("a", "other", ["1"]), 1)
    assert refused_new.series_refused == 2  # a new device refused whole: 1 value + itself
