"""Declared maintenance, pure parts: the state rule with maintenance (table-driven), the
overlay in the availability engine (Hypothesis: a window never adds downtime, the result
does not depend on the order facts and windows arrive in), the alert core (no outage
opens in maintenance, an open one closes), and collector/maintenance.py (times, scope,
storage form, silence matchers). The CLI's refusals of bad input are checked here too:
they happen before any service is contacted."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.alerting import outage_lines
from collector.availability import (
    MAINTENANCE_RULES,
    AgentOffline,
    AvailabilityEngine,
    Change,
    ElementPoint,
    Fact,
    Maintenance,
    Observation,
    ServiceKey,
    State,
    Topology,
    merge_windows,
    normalize,
    rule_state,
    state_at,
    summarize,
    timelines,
)
from collector.facts import STATE_CODE, emission_lines
from collector.maintenance import (
    MaintenanceError,
    Window,
    check_target,
    check_times,
    elements_in_scope,
    engine_windows,
    from_row,
    matchers,
    parse_duration,
    parse_when,
    scope_labels,
    status,
    to_line,
    window_id,
)
from collector.outages import AlertCore, alert_topology
from tests.factories import inv_device, inv_site, inventory_toml
from tests.test_availability import (
    AGENT_OF,
    SMALL_STALE,
    SMALL_TOPOLOGY,
    STALE_OF,
    SVC_A,
    SVC_B,
    Store,
    clip,
    fact_lists,
    probe_times,
    reference_state,
)
from tests.test_outages import POLICY, T0, inventory
from xanet import cli

FIBRE = ServiceKey("00001", "fibre")

# ----------------------------------------------------------------- the state rule


@pytest.mark.parametrize(
    ("rule", "states", "expected"),
    [
        # any_of: up > maintenance > down (all) > unknown
        ("any_of", ["maintenance"], "maintenance"),
        ("any_of", ["maintenance", "maintenance"], "maintenance"),
        ("any_of", ["maintenance", "up"], "up"),  # the redundant uplink carries the service
        ("any_of", ["maintenance", "down"], "maintenance"),  # never down while declared
        ("any_of", ["maintenance", "unknown"], "maintenance"),
        ("any_of", ["maintenance", "down", "unknown"], "maintenance"),
        ("any_of", ["up", "down"], "up"),
        ("any_of", ["down", "down"], "down"),
        ("any_of", ["down", "unknown"], "unknown"),
        # all_of: down (any) > maintenance > up (all) > unknown
        ("all_of", ["maintenance"], "maintenance"),
        ("all_of", ["maintenance", "up"], "maintenance"),
        ("all_of", ["maintenance", "down"], "down"),  # a real outage outside the window
        ("all_of", ["maintenance", "unknown"], "maintenance"),
        ("all_of", ["up", "up"], "up"),
        ("all_of", ["up", "unknown"], "unknown"),
        ("any_of", [], "unknown"),
        ("all_of", [], "unknown"),
    ],
)
def test_service_state_with_maintenance(rule: str, states: list[State], expected: State) -> None:
    assert rule_state(rule, states) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("rule", ["any_of", "all_of"])
@pytest.mark.parametrize("states", [
    ["up"], ["down"], ["unknown"], ["up", "down"], ["down", "down"], ["down", "unknown"],
    ["up", "unknown"], ["up", "up", "down"], ["unknown", "unknown"],
])
def test_maintenance_table_without_maintenance_is_the_old_rule(
        rule: str, states: list[State]) -> None:
    """The table's rows, read without maintenance, are exactly the any-of / all-of rules."""
    from collector.availability import maintenance_rule_state

    assert maintenance_rule_state(rule, states) == rule_state(rule, states)  # type: ignore[arg-type]
    assert set(MAINTENANCE_RULES) == {"any_of", "all_of"}


def test_merge_windows() -> None:
    assert merge_windows([(5, 10), (0, 3), (3, 4), (9, 12), (20, 20)]) == [(0, 4), (5, 12)]


def test_state_code_and_rollup_line_carry_maintenance() -> None:
    assert STATE_CODE["maintenance"] == -2
    eng = AvailabilityEngine(Topology((_spec("s1/d1"),)), stale_after_s=1000, bucket_s=100)
    eng.add(Observation("s1/d1", 0, "down"))
    eng.set_maintenance([Maintenance("m", frozenset({"s1/d1"}), 50, 150)])
    em = eng.emit(200)
    assert [(r.bucket_start, r.up_s, r.down_s, r.maintenance_s) for r in em.rollups] == [
        (0, 0, 50, 50), (100, 0, 50, 50)]
    from xanet.inventory import parse_inventory

    inv = parse_inventory({"province": {"code": "08", "name": "P"},
                           "communes": [{"code": "00001", "name": "C"}]})
    lines = emission_lines(em, inv)
    rollup = next(ln for ln in lines if ln.startswith("availability,"))
    assert "maintenance_s=50.0" in rollup and "down_s=50.0" in rollup
    assert "coverage_pct=100.0" in rollup  # of the time outside maintenance
    assert any('state="maintenance",code=-2i' in ln for ln in lines)


def _spec(element: str, agent: str | None = "a1"):  # type: ignore[no-untyped-def]
    from collector.availability import ElementSpec

    return ElementSpec(element, agent, (FIBRE,))


# ----------------------------------------------------------------- the engine


def test_window_makes_a_down_maintenance_and_after_it_down_again() -> None:
    eng = AvailabilityEngine(Topology((_spec("e1"),)), stale_after_s=30, bucket_s=60)
    for ts in range(0, 300, 10):
        eng.add(Observation("e1", ts, "down"))
    eng.set_maintenance([Maintenance("m1", frozenset({"e1"}), 60, 180)])
    assert eng.element_timeline("e1") == [
        Change(0, "down"), Change(60, "maintenance"), Change(180, "down"), Change(320, "unknown")]
    s = summarize(eng.service_timeline(FIBRE), 0, 300)
    assert (s.down_s, s.maintenance_s, s.up_s) == (180, 120, 0)
    assert s.outages == 1  # maintenance bridges like unknown: no outage is added
    assert s.availability_pct == 0.0 and s.coverage_pct == 100.0


def test_window_declared_after_the_fact_rewrites_points_and_rollups() -> None:
    eng = AvailabilityEngine(Topology((_spec("e1"),)), stale_after_s=30, bucket_s=60)
    store = Store()
    for ts in range(0, 300, 10):
        eng.add(Observation("e1", ts, "down" if 60 <= ts < 180 else "up"))
    store.write(eng.emit(400))
    assert sum(r.down_s for r in store.rollups.values()) == 120
    assert eng.set_maintenance([Maintenance("m1", frozenset({"e1"}), 60, 180)]) == 1
    store.write(eng.emit(401))
    assert store.service_timeline(FIBRE) == [
        Change(0, "up"), Change(60, "maintenance"), Change(180, "up"), Change(320, "unknown")]
    assert sum(r.down_s for r in store.rollups.values()) == 0
    assert sum(r.maintenance_s for r in store.rollups.values()) == 120
    # the window withdrawn (e.g. a wrong declaration): the downtime is back
    assert eng.set_maintenance([]) == 1
    store.write(eng.emit(402))
    assert sum(r.down_s for r in store.rollups.values()) == 120
    assert sum(r.maintenance_s for r in store.rollups.values()) == 0
    assert eng.set_maintenance([]) == 0  # nothing changed, nothing to rewrite


def test_future_window_is_written_when_it_begins_and_ends() -> None:
    eng = AvailabilityEngine(Topology((_spec("e1"),)), stale_after_s=1000, bucket_s=60)
    store = Store()
    eng.add(Observation("e1", 0, "up"))
    eng.set_maintenance([Maintenance("m1", frozenset({"e1"}), 100, 200)])
    store.write(eng.emit(50))
    assert store.service_timeline(FIBRE) == [Change(0, "up")]
    store.write(eng.emit(150))
    assert store.service_timeline(FIBRE) == [Change(0, "up"), Change(100, "maintenance")]
    store.write(eng.emit(250))
    assert store.service_timeline(FIBRE) == [
        Change(0, "up"), Change(100, "maintenance"), Change(200, "up")]


def test_window_of_an_unknown_element_or_empty_is_ignored() -> None:
    eng = AvailabilityEngine(Topology((_spec("e1"),)), stale_after_s=10)
    assert eng.set_maintenance([Maintenance("m", frozenset({"nope"}), 0, 10),
                                Maintenance("m2", frozenset({"e1"}), 5, 5)]) == 0
    with pytest.raises(ValueError):
        eng.set_maintenance([Maintenance("m", frozenset({"e1"}), 0, math.inf)])


# --------------------------------------------------------- properties (Hypothesis)

ELEMENTS = ("e1", "e2", "e3")
window_lists = st.lists(
    st.builds(lambda els, s, d: Maintenance(f"m{s}-{d}", frozenset(els), float(s), float(s + d)),
              st.sets(st.sampled_from(ELEMENTS), min_size=1),
              st.integers(0, 250), st.integers(0, 80)),
    max_size=4)


def _windows_of(windows: Sequence[Maintenance], element: str) -> list[tuple[float, float]]:
    return merge_windows((w.start, w.end) for w in windows if element in w.elements)


@settings(max_examples=200, deadline=None)
@given(fact_lists, window_lists)
def test_maintenance_is_an_overlay_and_never_adds_downtime(
        facts: list[Fact], windows: list[Maintenance]) -> None:
    plain_e, plain_s = timelines(facts, SMALL_TOPOLOGY, stale_after_s=SMALL_STALE)
    els, svcs = timelines(facts, SMALL_TOPOLOGY, stale_after_s=SMALL_STALE,
                          maintenance=windows)
    probes = sorted(set(probe_times(facts)) | {
        w.start + d for w in windows for d in (-0.5, 0.0, 0.5)} | {
        w.end + d for w in windows for d in (-0.5, 0.0, 0.5)})
    for x in probes:
        truth: dict[str, State] = {}
        for e in ELEMENTS:
            inside = any(s <= x < end for s, end in _windows_of(windows, e))
            base = reference_state(facts, e, AGENT_OF[e], STALE_OF[e], x)
            assert state_at(plain_e[e], x) == base
            truth[e] = "maintenance" if inside else base
            assert state_at(els[e], x) == truth[e], (e, x)
        assert state_at(svcs[SVC_A], x) == rule_state("any_of", [truth["e1"], truth["e2"]])
        assert state_at(svcs[SVC_B], x) == rule_state("all_of", [truth["e2"], truth["e3"]])
        for key in (SVC_A, SVC_B):  # down with windows => down without: nothing added
            if state_at(svcs[key], x) == "down":
                assert state_at(plain_s[key], x) == "down"
    for key in (SVC_A, SVC_B):
        with_w = summarize(svcs[key], 0, 400)
        without = summarize(plain_s[key], 0, 400)
        assert with_w.down_s <= without.down_s
        assert with_w.outages <= without.outages
        assert with_w.up_s <= without.up_s
        assert with_w.window_s == pytest.approx(
            with_w.up_s + with_w.down_s + with_w.unknown_s + with_w.maintenance_s)
    for tl in (*els.values(), *svcs.values()):
        assert tl == normalize(tl)


@settings(max_examples=150, deadline=None)
@given(st.data(), fact_lists, window_lists)
def test_any_order_of_facts_and_late_windows_gives_the_same_result(
        data: st.DataObject, facts: list[Fact], windows: list[Maintenance]) -> None:
    """Facts in any order, windows declared (and withdrawn) at any point, emits at any
    time: storage ends up equal to the batch result of (all facts, final windows)."""
    reference = timelines(facts, SMALL_TOPOLOGY, stale_after_s=SMALL_STALE,
                          maintenance=windows)
    eng = AvailabilityEngine(SMALL_TOPOLOGY, stale_after_s=SMALL_STALE, bucket_s=30.0,
                             rollups_from=0.0)
    store = Store()
    now = 0.0
    declared: list[Maintenance] = []
    pending = list(windows)
    for fact in data.draw(st.permutations(facts)):
        eng.add(fact)
        if pending and data.draw(st.booleans()):
            declared.append(pending.pop(0))
            extra = data.draw(st.sampled_from([None, *windows])) if windows else None
            eng.set_maintenance([*declared, *([extra] if extra else [])])  # maybe a mistake
        if data.draw(st.booleans()):
            now += data.draw(st.integers(0, 60))
            store.write(eng.emit(now))
    eng.set_maintenance(windows)
    final = max(now, 400.0)
    store.write(eng.emit(final))
    elements, services = reference
    for e, tl in elements.items():
        assert eng.element_timeline(e) == tl
        assert store.element_timeline(e) == clip(tl, final)
    for key, tl in services.items():
        assert store.service_timeline(key) == clip(tl, final)
        for k in range(int(final // 30)):
            row = store.rollups[(key, k * 30.0)]
            s = summarize(tl, k * 30.0, (k + 1) * 30.0)
            assert (row.up_s, row.down_s, row.unknown_s, row.maintenance_s) == (
                s.up_s, s.down_s, s.unknown_s, s.maintenance_s)


# ----------------------------------------------------------------- alerts


def _core() -> AlertCore:
    return AlertCore(alert_topology(inventory()), POLICY, now=T0)


def _run(core: AlertCore, until: float, step: float = 1.0) -> list:  # type: ignore[type-arg]
    out = []
    t = core._now  # the test drives the core's own clock forward
    while t < until:
        t = min(until, t + step)
        for agent in core.topology.agent_units:
            core.agent_seen(agent, t)
        out += core.evaluate(t)
    return out


def test_no_outage_opens_for_an_element_in_maintenance() -> None:
    core = _core()
    core.add_points([ElementPoint("hub-b/rtr-1", T0, "up")])
    _run(core, T0 + 10)
    core.add_points([ElementPoint("hub-b/rtr-1", T0 + 10, "maintenance")])
    core.set_maintenance({"hub-b/rtr-1": [(T0 + 10, T0 + 500)]})
    assert _run(core, T0 + 500) == []  # held far beyond the hold-down: nothing
    core.add_points([ElementPoint("hub-b/rtr-1", T0 + 500, "down")])  # window over, still down
    events = _run(core, T0 + 500 + POLICY.hold_down_s)
    [ev] = events
    assert ev.action == "firing" and ev.alert.starts_at == T0 + 500
    assert ev.alert.labels["site"] == "hub-b" and ev.alert.maintenance is False


def test_an_open_outage_closes_when_maintenance_begins_and_is_flagged() -> None:
    core = _core()
    core.add_points([ElementPoint("hub-b/rtr-1", T0, "down")])
    [fired] = _run(core, T0 + POLICY.hold_down_s)
    assert fired.action == "firing" and not fired.alert.maintenance
    start = T0 + 100
    core.add_points([ElementPoint("hub-b/rtr-1", start, "maintenance")])
    core.set_maintenance({"hub-b/rtr-1": [(start, start + 600)]})
    [resolved] = _run(core, start + 1)
    assert resolved.action == "resolved" and resolved.alert.ends_at == start
    assert resolved.alert.maintenance is True
    lines = outage_lines([resolved], "08")
    assert len(lines) == 2  # the start point is rewritten with the flag, then the end
    assert all("maintenance=true" in ln for ln in lines)
    assert "open=1i" in lines[0] and "open=0i" in lines[1]
    assert "maintenance=false" in outage_lines([fired], "08")[0]


# ----------------------------------------------------------- collector/maintenance.py

NOW = 1_790_000_000.0  # 2026-09-21T...


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW), ("+2h", NOW + 7200), ("now+90m", NOW + 5400), ("now-30m", NOW - 1800),
    ("-1d", NOW - 86400), ("+1.5h", NOW + 5400),
    ("2026-12-01T22:00+07:00", 1_796_137_200.0), ("2026-12-01T15:00:00Z", 1_796_137_200.0),
])
def test_parse_when(text: str, expected: float) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize(("text", "says"), [
    ("2026-12-01T22:00", "no time zone"), ("tomorrow", "not a time"), ("+2x", "not a time"),
])
def test_parse_when_refuses(text: str, says: str) -> None:
    with pytest.raises(MaintenanceError, match=says):
        parse_when(text, NOW)


def test_durations_and_window_order() -> None:
    assert parse_duration("90m") == 5400 and parse_duration("1d") == 86400
    for bad in ("0h", "2", "h", "-1h"):
        with pytest.raises(MaintenanceError, match="not a duration"):
            parse_duration(bad)
    with pytest.raises(MaintenanceError, match=r"ends .* before it starts"):
        check_times(NOW, NOW - 60)
    with pytest.raises(MaintenanceError):
        check_times(NOW, NOW)


def test_targets_are_checked_against_the_inventory_with_the_closest_name() -> None:
    inv = inventory()
    check_target(inv, "site", "hub-a")
    check_target(inv, "device", "hub-a/olt-1")
    check_target(inv, "commune", "02266")
    with pytest.raises(MaintenanceError, match="unknown site 'hub_a': did you mean 'hub-a'"):
        check_target(inv, "site", "hub_a")
    with pytest.raises(MaintenanceError, match=r"unknown device of site hub-a 'olt-2'.*'olt-1'"):
        check_target(inv, "device", "hub-a/olt-2")
    with pytest.raises(MaintenanceError, match="SITE/DEVICE"):
        check_target(inv, "device", "olt-1")
    with pytest.raises(MaintenanceError, match="give its code, '02266'"):
        check_target(inv, "commune", "Xã Lâm Bình")
    with pytest.raises(MaintenanceError, match="unknown commune '02267'"):
        check_target(inv, "commune", "02267")


def test_scope_elements_and_silence_labels() -> None:
    inv = inventory()
    assert elements_in_scope(inv, "device", "hub-a/rtr-1") == {
        "hub-a/rtr-1/xe-0/0/0", "hub-a/rtr-1/ge-0/0/1"}
    assert elements_in_scope(inv, "site", "bts-1") == {"bts-1/enb-1"}
    assert elements_in_scope(inv, "commune", "02269") == {"hub-b/rtr-1"}
    assert len(elements_in_scope(inv, "commune", "02266")) == 6
    assert elements_in_scope(inv, "site", "gone") == frozenset()
    assert scope_labels(inv, "device", "hub-a/rtr-1") == {
        "province": "08", "site": "hub-a", "device": "rtr-1"}
    assert scope_labels(inv, "commune", "02266") == {"province": "08", "commune": "02266"}
    assert matchers({"site": "hub-a", "province": "08"}) == [
        {"name": "province", "value": "08", "isRegex": False, "isEqual": True},
        {"name": "site", "value": "hub-a", "isRegex": False, "isEqual": True}]
    # every label a silence matches on is a label the site's alerts really carry
    topo = alert_topology(inv)
    for unit in topo.units.values():
        if unit.site == "hub-a" and unit.kind != "agent":
            labels = scope_labels(inv, "site", "hub-a")
            assert all(unit.labels.get(k) == v for k, v in labels.items()), unit.id


def test_window_storage_round_trip_and_id() -> None:
    w = Window("08", "device", "hub-a/rtr-1", NOW, NOW + 3600, 'thay "module" quang',
               "Nguyễn Văn A", "abc-123")
    ln = to_line(w)
    assert ln.startswith("maintenance,province=08,scope=device,target=hub-a/rtr-1 ")
    assert ln.endswith(f" {round(NOW * 1000)}")
    row = {"province": "08", "scope": "device", "target": "hub-a/rtr-1",
           "start_ms": round(NOW * 1000), "end_ms": round((NOW + 3600) * 1000),
           "reason": 'thay "module" quang', "who": "Nguyễn Văn A", "silence_id": "abc-123",
           "ended": False}
    assert from_row(row) == w
    ended = w.ended_at(NOW + 60)
    assert ended.id == w.id == window_id("device", "hub-a/rtr-1", NOW)  # same point
    assert (ended.end, ended.ended) == (NOW + 60, True)
    assert w.ended_at(NOW - 10).end == NOW  # not begun yet: cancelled
    assert status(w.ended_at(NOW - 10), NOW) == "cancelled"
    assert [status(w, t) for t in (NOW - 1, NOW, NOW + 3600)] == ["scheduled", "active", "over"]
    assert window_id("site", "hub-a", NOW) != window_id("site", "hub-a", NOW + 1)
    with pytest.raises(MaintenanceError):
        from_row({**row, "scope": "planet"})
    [m] = engine_windows([w, Window("09", "site", "x", NOW, NOW + 1, "r", "w")], inventory())
    assert m.elements == {"hub-a/rtr-1/xe-0/0/0", "hub-a/rtr-1/ge-0/0/1"}


# ------------------------------------------------------------------ CLI refusals


INVENTORY_TOML = inventory_toml(inv_site("hub-a", devices=[inv_device("olt-1", "broadband")]),
                                inv_site("hub-b", devices=[inv_device("rtr-1", "fibre")]))


@pytest.fixture
def collector_toml(tmp_path: Path) -> Path:
    """A collector config whose InfluxDB and Alertmanager do not exist: the refusals below
    must come before either is contacted."""
    inv_path = tmp_path / "inventory.toml"
    inv_path.write_text(INVENTORY_TOML)
    cfg = tmp_path / "collector.toml"
    cfg.write_text(f'[influx]\nurl = "http://127.0.0.1:9"\n[inventory]\npath = "{inv_path}"\n'
                   '[alerts]\nurl = "http://127.0.0.1:9"\n')
    return cfg


@pytest.mark.parametrize(("argv", "says"), [
    (["--site", "hub_a", "--for", "2h"], "unknown site 'hub_a': did you mean 'hub-a'"),
    (["--device", "hub-a/olt-9", "--for", "2h"], "did you mean 'olt-1'"),
    (["--site", "hub-a", "--start", "+2h", "--end", "+1h"], "before it starts"),
    (["--site", "hub-a", "--end", "2026-12-01T22:00"], "no time zone"),
    (["--site", "hub-a", "--for", "soon"], "not a duration"),
])
def test_cli_add_refuses_bad_input(collector_toml: Path, capsys: pytest.CaptureFixture[str],
                                   argv: list[str], says: str) -> None:
    code = cli.main(["maintenance", "add", "--config", str(collector_toml), "--reason", "x",
                     *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err and err.startswith("xanet maintenance add: ")
    assert len(err.strip().splitlines()) == 1


def test_cli_needs_an_inventory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[influx]\nurl = "http://127.0.0.1:9"\n')
    assert cli.main(["maintenance", "list", "--config", str(cfg)]) == 2
    assert "needs [inventory]" in capsys.readouterr().err


def test_cli_influx_unreachable_is_a_clear_error(collector_toml: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Port 9 on 127.0.0.1 (discard) has no listener here: refused at once."""
    assert cli.main(["maintenance", "list", "--config", str(collector_toml)]) == 1
    err = capsys.readouterr().err
    assert "cannot read the maintenance windows from InfluxDB" in err


_ = AgentOffline  # the fact strategies above produce these too


class _NoAlertmanager:
    """Honours AlertmanagerPort; delivery is not what this test is about."""

    async def post(self, alerts: Sequence[dict[str, object]]) -> None:
        return None

    async def close(self) -> None:
        return None


def test_window_declared_late_flags_an_outage_already_closed(tmp_path: Path) -> None:
    from collector.alerting import Alerting
    from collector.config import AlertsConfig

    cfg = AlertsConfig(hold_down_s=POLICY.hold_down_s, clear_down_s=POLICY.clear_down_s,
                       root_wait_s=0, state_path=tmp_path / "outages.json")
    alerting = Alerting(cfg, inventory(), now=T0, port=_NoAlertmanager())
    el = "hub-b/rtr-1"
    lines: list[str] = []
    for t, state in ((T0, "down"), (T0 + 100, "up")):
        lines += alerting.update([ElementPoint(el, t, state)], t)  # type: ignore[arg-type]
        for k in range(1, 100):
            for agent in alerting.core.topology.agent_units:
                alerting.agent_seen(agent, t + k)
            lines += alerting.update([], t + k)
    assert [ln.split(" ")[1].split(",")[0] for ln in lines] == ["open=1i", "open=0i"]
    assert all("maintenance=false" in ln for ln in lines)
    alerting.set_maintenance({el: [(T0 + 50, T0 + 80)]})  # declared after the fact
    for agent in alerting.core.topology.agent_units:
        alerting.agent_seen(agent, T0 + 400)
    flagged = alerting.update([], T0 + 400)
    assert len(flagged) == 2 and all("maintenance=true" in ln for ln in flagged)
    assert [ln.rsplit(" ", 1)[1] for ln in flagged] == [
        str(round(T0 * 1000)), str(round((T0 + 100) * 1000))]  # the same points, rewritten
    alerting.set_maintenance({el: [(T0 + 50, T0 + 80)]})
    for agent in alerting.core.topology.agent_units:
        alerting.agent_seen(agent, T0 + 401)
    assert alerting.update([], T0 + 401) == []  # flagged once
