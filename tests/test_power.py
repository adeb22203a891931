"""The sites' power state and the early warning (collector/power.py), its texts
(collector/powertext.py) and the outage cause (collector/outages.py): the machine as
data, property tests over any sequence of readings, one incident one page."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.availability import ElementPoint
from collector.outages import AlertCore, AlertEvent, Policy, alert_topology
from collector.power import ALERT_PHASES, ALERTNAME, MACHINE, PowerCore, Reading, combine
from xanet.inventory import Inventory, parse_inventory
from xanet.wire import POWER_STATES, PowerState

T0 = 1_750_000_000.0
STALE = 180.0
HOLD = 30.0
POLICY = Policy(hold_down_s=HOLD, clear_down_s=60.0, agent_silent_after_s=600.0)


def inventory() -> Inventory:
    """A hub and, behind it, BTS 01 (2G/4G) and BTS 02 in Xã Lũng Cú."""
    sites: list[dict[str, Any]] = [
        {"id": "hub", "commune": "01", "role": "hub", "name": "Trạm Đồng Văn", "agent": "a",
         "devices": [{"id": "rtr", "elements": [{"service": "fibre"}]}]},
        {"id": "bts-01", "commune": "02", "role": "bts", "name": "BTS 01", "parent": "hub",
         "agent": "a", "technologies": ["2g", "4g"],
         "devices": [{"id": "bts", "elements": [{"service": "mobile_2g"},
                                                {"service": "mobile_4g", "interface": "x"}]},
                     {"id": "ups"}]},
        {"id": "bts-02", "commune": "02", "role": "bts", "name": "BTS 02", "parent": "bts-01",
         "agent": "a", "technologies": ["3g"],
         "devices": [{"id": "nb", "elements": [{"service": "mobile_3g"}]}]},
    ]
    return parse_inventory({
        "province": {"code": "11", "name": "Hà Giang"},
        "communes": [{"code": "01", "name": "Xã Đồng Văn"}, {"code": "02", "name": "Xã Lũng Cú"}],
        "sites": sites,
    })


TOPOLOGY = alert_topology(inventory())


def reading(ts: float, state: PowerState, minutes: float | None = None,
            on_battery_s: int | None = None) -> Reading:
    return Reading(ts, state, minutes, None, on_battery_s)


def test_the_machine_defines_every_pair_and_unknown_changes_nothing() -> None:
    assert set(MACHINE) == set(itertools.product(ALERT_PHASES, POWER_STATES))
    for phase in ALERT_PHASES:
        assert MACHINE[(phase, "unknown")] == phase
        assert MACHINE[(phase, "mains")] == "none"
        assert MACHINE[(phase, "battery_low")] == "critical"
    assert MACHINE[("critical", "on_battery")] == "critical"  # critical until the mains


@given(st.lists(st.sampled_from(POWER_STATES), max_size=6), st.randoms())
def test_a_site_takes_the_worst_known_state_of_its_devices(
        states: list[PowerState], rnd: Any) -> None:
    readings = [reading(T0 + i, s, float(i)) for i, s in enumerate(states)]
    state, quoted = combine(readings)
    rnd.shuffle(readings)
    assert combine(readings) == (state, quoted)
    expected = next((s for s in ("battery_low", "on_battery", "mains") if s in states),
                    "unknown")
    assert state == expected
    assert (quoted is None) == (state == "unknown")
    assert quoted is None or quoted.state == state


def fold(events: list[AlertEvent], firing: dict[Any, AlertEvent]) -> None:
    for ev in events:
        if ev.action == "firing":
            firing[ev.alert.fingerprint] = ev
        else:
            firing.pop(ev.alert.fingerprint, None)


STEP = st.tuples(st.floats(10, 400), st.sampled_from(POWER_STATES),
                 st.none() | st.floats(0, 600))


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, max_size=30))
def test_any_sequence_of_readings(steps: list[tuple[float, PowerState, float | None]]) -> None:
    """At most one power alert per site; it is open iff the last state known in time was
    on battery; critical iff battery low was seen since the mains last were; unknown
    alone (or stale readings) never opens or resolves one."""
    core = PowerCore(TOPOLOGY, stale_after_s=STALE)
    firing: dict[Any, AlertEvent] = {}
    now, effective = T0, []
    last_known: tuple[float, PowerState] | None = None
    for dt, state, minutes in steps:
        now += dt
        core.add("bts-01", "ups", reading(now, state, minutes))
        if state != "unknown":
            last_known = (now, state)
        # a poll with nothing known leaves the last known reading; it ages out
        eff: PowerState = "unknown" if last_known is None or last_known[0] < now - STALE \
            else last_known[1]
        effective.append(eff)
        assert core.state("bts-01", now) == eff
        fold(core.evaluate(now), firing)
        assert len(firing) <= 1
        known = [e for e in effective if e != "unknown"]
        on_battery = bool(known) and known[-1] in ("on_battery", "battery_low")
        assert bool(firing) == on_battery == (core.phase("bts-01") != "none")
        if on_battery:
            since_mains = list(itertools.takewhile(lambda e: e != "mains", reversed(known)))
            [ev] = firing.values()
            assert ev.alert.labels["alertname"] == ALERTNAME
            assert ev.alert.labels["severity"] == (
                "critical" if "battery_low" in since_mains else "warning")
    if not {"on_battery", "battery_low"} & set(effective):
        assert core.firing() == []


def test_the_warning_names_commune_site_services_and_minutes_and_updates_in_place() -> None:
    core = PowerCore(TOPOLOGY, stale_after_s=STALE)
    core.add("bts-01", "ups", reading(T0, "mains"))
    assert core.evaluate(T0) == []
    core.add("bts-01", "ups", reading(T0 + 60, "on_battery", 40.2, on_battery_s=30))
    [ev] = core.evaluate(T0 + 60)
    a = ev.alert
    assert ev.action == "firing" and a.kind == "site_power" and a.starts_at == T0 + 30
    assert a.labels == {"alertname": "XanetSiteOnBattery", "severity": "warning",
                        "province": "11", "commune": "02", "site": "bts-01",
                        "service": "mobile_2g,mobile_3g,mobile_4g"}  # BTS 02 hangs on it
    assert a.annotations["summary_en"] == \
        "Xã Lũng Cú: BTS 01 on battery, 2G/3G/4G at risk in ~40 min"
    assert a.annotations["summary_vi"] == ("Xã Lũng Cú: BTS 01 mất điện lưới, chạy ắc quy; "
                                           "2G/3G/4G có nguy cơ mất sau ~40 phút")
    assert a.annotations["minutes_remaining"] == "40"
    core.add("bts-01", "ups", reading(T0 + 120, "on_battery", 38))
    [upd] = core.evaluate(T0 + 120)  # same labels: Alertmanager updates, pages nobody
    assert upd.action == "firing" and upd.alert.fingerprint == a.fingerprint
    assert "~38 min" in upd.alert.annotations["summary_en"]
    assert core.evaluate(T0 + 121) == []  # nothing new: nothing sent
    core.add("bts-01", "ups", reading(T0 + 180, "battery_low", 4))
    res, crit = core.evaluate(T0 + 180)  # escalation: a new identity
    assert (res.action, res.alert.labels["severity"], res.alert.ends_at) == (
        "resolved", "warning", T0 + 180)
    assert (crit.action, crit.alert.labels["severity"]) == ("firing", "critical")
    assert crit.alert.annotations["summary_en"] == \
        "Xã Lũng Cú: BTS 01 battery low, 2G/3G/4G at risk in ~4 min"
    core.add("bts-01", "ups", reading(T0 + 240, "on_battery", None))
    [held] = core.evaluate(T0 + 240)
    assert held.alert.labels["severity"] == "critical"
    assert held.alert.annotations["summary_en"].endswith("at risk (time left unknown)")
    assert core.evaluate(T0 + 240 + 10 * STALE) == []  # stale: unknown holds it
    core.add("bts-01", "ups", reading(T0 + 5000, "mains"))
    [end] = core.evaluate(T0 + 5000)
    assert end.action == "resolved" and end.alert.labels["severity"] == "critical"


def sim(points: list[tuple[float, str, str]], power: list[tuple[str, Reading]],
        until: float) -> tuple[AlertCore, PowerCore, list[AlertEvent], list[AlertEvent]]:
    """Run both cores to ``until`` second by second: (outage events, events paged)."""
    pw = PowerCore(TOPOLOGY, stale_after_s=STALE)
    core = AlertCore(TOPOLOGY, POLICY, now=T0, power=pw)
    core.add_points(ElementPoint(e, ts, s) for ts, e, s in points)  # type: ignore[arg-type]
    outages: list[AlertEvent] = []
    paged: list[AlertEvent] = []
    t = T0
    pending = sorted(power, key=lambda p: p[1].ts)
    while t < until:
        t += 1
        while pending and pending[0][1].ts <= t:
            pw.add("bts-01", *pending.pop(0))
        core.agent_seen("a", t)
        evs = core.evaluate(t)
        outages += evs
        paged += pw.evaluate(t, evs)
    return core, pw, outages, paged


UP = [(T0, e, "up") for e in ("hub/rtr", "bts-01/bts", "bts-01/bts/x", "bts-02/nb")]


def test_down_on_battery_is_one_incident_cause_power() -> None:
    down = [(T0 + 200, "bts-01/bts", "down"), (T0 + 200, "bts-01/bts/x", "down")]
    power = [("ups", reading(T0 + 50, "on_battery", 40)),
             ("ups", reading(T0 + 150, "battery_low", 4))]
    core, pw, outages, paged = sim(UP + down, power, T0 + 400)
    site = [e for e in outages if e.alert.labels["alertname"] == "XanetSiteDown"]
    assert [(e.action, e.alert.labels["cause"]) for e in site] == [("firing", "power")]
    assert "cause: power" in site[0].alert.annotations["summary_en"]
    assert "nguyên nhân: mất điện" in site[0].alert.annotations["summary_vi"]
    # paged: the warning, the critical (which then says the site is down); no site down
    assert [(e.action, e.alert.labels["alertname"], e.alert.labels["severity"])
            for e in paged if e.action == "resolved" or e.alert.labels["alertname"] != ALERTNAME
            or "down since" not in e.alert.annotations["summary_en"]][:3] == [
        ("firing", ALERTNAME, "warning"), ("resolved", ALERTNAME, "warning"),
        ("firing", ALERTNAME, "critical")]
    assert {e.alert.labels["alertname"] for e in paged} == {ALERTNAME}
    last = paged[-1].alert
    assert last.annotations["summary_en"].startswith("Xã Lũng Cú: BTS 01 down since ")
    assert "power (on battery since" in last.annotations["summary_en"]
    # the mains return while the site is still down: the outage is paged on its own now
    pw.add("bts-01", "ups", reading(T0 + 401, "mains"))
    out = pw.evaluate(T0 + 402, core.evaluate(T0 + 402), down=list(core.open_outages()))
    assert [(e.action, e.alert.labels["alertname"]) for e in out] == [
        ("firing", "XanetSiteDown"), ("resolved", ALERTNAME)]
    # ... unless the site is recovering already (clearing): then nobody is paged
    core, pw, _, paged = sim(UP + down, power, T0 + 400)
    pw.add("bts-01", "ups", reading(T0 + 401, "mains"))
    out = pw.evaluate(T0 + 402, core.evaluate(T0 + 402), down=())
    assert [(e.action, e.alert.labels["alertname"]) for e in out] == [("resolved", ALERTNAME)]
    core.add_points(ElementPoint(e, T0 + 403, "up") for e in ("bts-01/bts", "bts-01/bts/x"))
    evs = core.evaluate(T0 + 500)
    assert {e.action for e in evs} == {"resolved"} and pw.evaluate(T0 + 500, evs) == []


def test_down_on_mains_is_cause_site_and_behind_a_down_parent_transmission() -> None:
    down = [(T0 + 100, "hub/rtr", "down"), (T0 + 100, "bts-02/nb", "down"),
            (T0 + 300, "hub/rtr", "up")]  # the hub is back, BTS 02 is still down
    _, _, outages, paged = sim(UP + down, [("ups", reading(T0 + 10, "mains"))], T0 + 500)
    fired = {e.alert.labels["site"]: e.alert for e in outages if e.action == "firing"}
    assert fired["hub"].labels["cause"] == "site"
    assert "cause: site" in fired["hub"].annotations["summary_en"]
    assert fired["bts-02"].labels["cause"] == "transmission"  # went down behind the hub
    assert fired["bts-02"].labels["alertname"] == "XanetSiteDown"
    assert paged == outages  # no power alert, nothing held back


def test_the_last_known_state_outlives_a_silent_device_and_restored_labels_stay() -> None:
    pw = PowerCore(TOPOLOGY, stale_after_s=STALE)
    pw.add("bts-01", "ups", reading(T0, "on_battery", 10))
    pw.add("bts-01", "ups", reading(T0 + 60, "unknown"))  # polled, the profile failed
    assert pw.state("bts-01", T0 + 60) == "on_battery"
    assert pw.state("bts-01", T0 + 1000) == "unknown"  # nothing fresh
    assert pw.state_at("bts-01", T0 + 1000) == "on_battery"  # what the cause needs
    assert pw.state_at("bts-01", T0 - 1) == "unknown"
    pw.add("bts-01", "other-ups", reading(T0 + 900, "mains"))  # the old reading is stale
    assert pw.state_at("bts-01", T0 + 1000) == "mains"
    assert not pw.add("nowhere", "ups", reading(T0, "on_battery"))


def test_the_outage_list_says_power_when_the_roots_alert_does() -> None:
    from collector.outagelist import AlertedPeriod, build_outages, outage_cells, outage_json
    inv = inventory()
    elements = {k: [(T0, "up"), (T0 + 600, "down"), (T0 + 1800, "up")]
                for k in ("bts-01/bts", "bts-01/bts/x", "bts-02/nb")}
    window = {"window_start": T0, "window_end": T0 + 3600}
    (plain,) = build_outages(inv, elements, **window)  # type: ignore[arg-type]
    assert (plain.root, plain.cause) == ("bts-01", "transmission")  # BTS 02 went with it
    (o,) = build_outages(inv, elements, alerted=[  # type: ignore[arg-type]
        AlertedPeriod("bts-01", T0 + 630, T0 + 1800, cause="power")], **window)
    assert (o.root, o.cause, o.alerted) == ("bts-01", "power", True)
    assert outage_cells(o, "vi", "Asia/Ho_Chi_Minh")[5] == "mất điện"
    assert outage_cells(o, "en", "UTC")[5] == "power" and outage_json(o, "UTC")["cause"] == "power"


def test_a_restored_outage_keeps_its_cause_and_an_older_one_stays_without() -> None:
    down = [(T0 + 200, "bts-01/bts", "down"), (T0 + 200, "bts-01/bts/x", "down")]
    core, _, _, _ = sim(UP + down, [("ups", reading(T0 + 50, "on_battery", 40))], T0 + 300)
    [rec] = [r for r in core.records() if r.alerted]
    assert rec.labels["cause"] == "power"
    older = replace(rec, labels={k: v for k, v in rec.labels.items() if k != "cause"})
    for restored, cause in ((rec, "power"), (older, None)):
        again = AlertCore(TOPOLOGY, POLICY, now=T0 + 300, restored=[restored])  # no power
        again.agent_seen("a", T0 + 301)
        again.add_points(ElementPoint(e, ts, s)  # type: ignore[arg-type]
                         for ts, e, s in UP + down)
        [ev] = [e for e in again.evaluate(T0 + 301) if e.alert.unit == rec.unit]
        assert ev.action == "firing" and ev.alert.labels.get("cause") == cause


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(1, 400), st.sampled_from(POWER_STATES)), max_size=40),
       st.lists(st.floats(0, 8000), max_size=20))
def test_a_devices_history_keeps_runs_short_and_answers_as_if_it_kept_all(
        steps: list[tuple[float, PowerState]], probes: list[float]) -> None:
    from collector.power import _History
    short, full = _History(), _History()
    t = T0
    for dt, state in steps:
        t += dt
        short.add(reading(t, state), STALE, 10**9)
        full.add(reading(t, state), -1.0, 10**9)  # a negative gap merges nothing
    runs = sum(1 for i, r in enumerate(full.kept)
               if i == 0 or r.state != full.kept[i - 1].state
               or r.ts - full.kept[i - 1].ts > STALE)
    assert len(short.kept) <= 2 * runs
    for p in probes:
        a, b = short.at(T0 + p), full.at(T0 + p)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a[0].state == b[0].state
            assert b[1] <= a[1] <= b[1] + STALE  # as of the probe inside a run
