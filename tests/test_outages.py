"""The pure outage/alert core (collector/outages.py): state table, hold-down and clear-down,
root cause from the uplink tree, agent silence, restart recovery; plus the pure encoders
of the edges (Alertmanager payload, outage line protocol) and the notifier's retries."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.alerting import OutageStore, outage_lines
from collector.alertmanager import (
    AlertmanagerRejected,
    AlertmanagerUnavailable,
    Notifier,
    Payload,
    payload,
)
from collector.availability import ElementPoint, State
from collector.outages import (
    MACHINE,
    PHASES,
    SIGNALS,
    AlertCore,
    AlertEvent,
    OutageRecord,
    Policy,
    alert_topology,
    step,
)
from tests.disks import fill, small_tmpfs
from xanet.inventory import Inventory, parse_inventory

HOLD = 30.0
CLEAR = 60.0
SILENT = 90.0
POLICY = Policy(hold_down_s=HOLD, clear_down_s=CLEAR, agent_silent_after_s=SILENT)
T0 = 1_750_000_000.0


def inventory(n_bts: int = 3, bts_agents: bool = False) -> Inventory:
    sites: list[dict[str, Any]] = [
        {"id": "hub-a", "commune": "02266", "role": "hub", "name": "Trung tâm Lâm Bình",
         "agent": "agt-hub-a",
         "devices": [
             {"id": "rtr-1", "elements": [{"service": "fibre", "interface": "xe-0/0/0"},
                                          {"service": "broadband", "interface": "ge-0/0/1"}]},
             {"id": "olt-1", "elements": [{"service": "broadband"}]},
         ]},
        {"id": "hub-b", "commune": "02269", "role": "hub", "agent": "agt-hub-b",
         "devices": [{"id": "rtr-1", "elements": [{"service": "fibre"}]}]},
    ]
    for i in range(1, n_bts + 1):
        sites.append({
            "id": f"bts-{i}", "commune": "02266", "role": "bts", "parent": "hub-a",
            "technologies": ["4g"],
            "agent": f"agt-bts-{i}" if bts_agents else "agt-hub-a",
            "devices": [{"id": "enb-1", "elements": [{"service": "mobile_4g"}]}]})
    return parse_inventory({
        "province": {"code": "08", "name": "Tuyên Quang"},
        "communes": [{"code": "02266", "name": "Xã Lâm Bình"},
                     {"code": "02269", "name": "Xã Thượng Lâm"}],
        "sites": sites,
    })


HUB_ELEMENTS = ["hub-a/rtr-1/xe-0/0/0", "hub-a/rtr-1/ge-0/0/1", "hub-a/olt-1"]


def bts(i: int) -> str:
    return f"bts-{i}/enb-1"


class Sim:
    """Drives a core the way the collector does: points, then evaluate."""

    def __init__(self, inv: Inventory | None = None, policy: Policy = POLICY,
                 restored: Sequence[OutageRecord] = (), now: float = T0) -> None:
        self.inv = inv or inventory()
        self.core = AlertCore(alert_topology(self.inv), policy, now=now, restored=restored)
        self.events: list[AlertEvent] = []
        self.now = now
        self.silent: dict[str, bool] = {}  # agents that send nothing (no agent_seen)

    def set(self, ts: float, state: State, *elements: str) -> None:
        self.core.add_points(ElementPoint(e, ts, state) for e in elements)

    def play(self, timelines: dict[str, list[tuple[float, str]]]) -> float:
        """Set each element's (duration, state) steps from T0 on; return when the last ends."""
        end = T0
        for element, changes in timelines.items():
            t = T0
            for dur, state in changes:
                self.set(t, state, element)  # type: ignore[arg-type]  # sampled from State
                t += dur
            end = max(end, t)
        return end

    def run_to(self, t: float, step_s: float = 1.0) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        while self.now < t:
            self.now = min(t, self.now + step_s)
            for agent in self.core.topology.agent_units:
                if not self.silent.get(agent):
                    self.core.agent_seen(agent, self.now)
            out += self.core.evaluate(self.now)
        self.events += out
        return out

    def firing(self) -> dict[tuple[tuple[str, str], ...], AlertEvent]:
        """Currently firing alerts (the last event per fingerprint is a firing)."""
        last: dict[tuple[tuple[str, str], ...], AlertEvent] = {}
        for ev in self.events:
            last[ev.alert.fingerprint] = ev
        return {k: v for k, v in last.items() if v.action == "firing"}

    def names(self) -> list[tuple[str, str]]:
        return sorted((e.alert.labels["alertname"], e.alert.labels["site"])
                      for e in self.firing().values())


ALL_UP = [*HUB_ELEMENTS, "hub-b/rtr-1", bts(1), bts(2), bts(3)]


def up_all(sim: Sim, ts: float) -> None:
    sim.set(ts, "up", *ALL_UP)


# ---------------------------------------------------------------------- the table


def test_state_table_is_complete_and_closed() -> None:
    assert set(MACHINE) == {(p, s) for p in PHASES for s in SIGNALS}
    for (phase, signal), (new, action) in MACHINE.items():
        assert step(phase, signal) == (new, action)
        assert new in PHASES
        # an outage opens only on a held active condition, resolves only on a held clear
        # or when declared maintenance begins
        if action == "open":
            assert signal == "active_held" and phase in ("idle", "pending") and new == "open"
        if action == "resolve":
            assert signal in ("clear_held", "maintenance")
            assert phase in ("open", "clearing") and new == "idle"
        # maintenance never opens, never keeps anything pending or open
        if signal == "maintenance":
            assert new == "idle" and action == ("resolve" if phase in ("open", "clearing")
                                                else "none")
        # unknown never opens and never resolves
        if signal == "unknown":
            assert action == "none"
            assert new == ("open" if phase in ("open", "clearing") else "idle")


@pytest.mark.parametrize(("cond", "lasted", "signal"), [
    ("active", 0.0, "active_short"), ("active", HOLD - 0.001, "active_short"),
    ("active", HOLD, "active_held"), ("clear", CLEAR - 1, "clear_short"),
    ("clear", CLEAR, "clear_held"), ("unknown", 1e9, "unknown"),
])
def test_signal(cond: Any, lasted: float, signal: str) -> None:
    assert POLICY.signal(cond, T0, T0 + lasted) == signal


# ------------------------------------------------------------------- device outage


def test_device_outage_opens_after_hold_down_and_resolves_after_clear_down() -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.run_to(T0 + 100)
    assert sim.events == []
    sim.set(T0 + 100, "down", "hub-a/olt-1")
    assert sim.run_to(T0 + 100 + HOLD - 1) == []
    [ev] = sim.run_to(T0 + 100 + HOLD)
    assert ev.action == "firing" and ev.alert.starts_at == T0 + 100
    labels = ev.alert.labels
    assert labels == {"alertname": "XanetDeviceDown", "severity": "major", "province": "08",
                      "commune": "02266", "site": "hub-a", "device": "olt-1",
                      "service": "broadband", "cause": "site"}
    ann = ev.alert.annotations
    assert "olt-1" in ann["summary_vi"] and "băng rộng" in ann["summary_vi"]
    assert "Xã Lâm Bình" in ann["summary_vi"] and "(giờ" not in ann["summary_vi"]
    assert "down since" in ann["summary_en"]
    sim.set(T0 + 200, "up", "hub-a/olt-1")
    assert sim.run_to(T0 + 200 + CLEAR - 1) == []
    [res] = sim.run_to(T0 + 200 + CLEAR)
    assert res.action == "resolved" and res.alert.ends_at == T0 + 200
    assert res.alert.labels == labels and res.alert.starts_at == T0 + 100
    assert sim.core.open_outages() == {}


def test_interface_down_on_answering_device_is_a_service_alert() -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.set(T0 + 10, "down", "hub-a/rtr-1/ge-0/0/1")
    sim.run_to(T0 + 10 + HOLD)
    [ev] = sim.firing().values()
    assert ev.alert.labels["alertname"] == "XanetServiceDown"
    assert ev.alert.labels["interface"] == "ge-0/0/1"
    assert ev.alert.labels["service"] == "broadband"


def test_unreachable_device_is_one_alert_not_one_per_interface() -> None:
    sim = Sim()
    up_all(sim, T0)
    # the router stops answering: both interface elements down; the site's uplink (fibre
    # on rtr-1) is down too, so this is a site outage - with the hub's BTS behind it up
    sim.set(T0 + 10, "down", "hub-a/rtr-1/xe-0/0/0", "hub-a/rtr-1/ge-0/0/1")
    sim.run_to(T0 + 10 + HOLD)
    assert sim.names() == [("XanetSiteDown", "hub-a")]
    [ev] = sim.firing().values()
    assert ev.alert.labels["severity"] == "critical"
    assert ev.alert.children == ()


def test_a_flap_during_clear_down_keeps_the_one_outage() -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.set(T0 + 10, "down", "hub-b/rtr-1")
    sim.run_to(T0 + 100)
    for k in range(5):  # up for less than the clear-down, then down again
        sim.set(T0 + 100 + 40 * k, "up", "hub-b/rtr-1")
        sim.set(T0 + 120 + 40 * k, "down", "hub-b/rtr-1")
    sim.run_to(T0 + 400)
    assert [e.action for e in sim.events] == ["firing"]
    sim.set(T0 + 400, "up", "hub-b/rtr-1")
    sim.run_to(T0 + 400 + CLEAR)
    assert [e.action for e in sim.events] == ["firing", "resolved"]


# -------------------------------------------------------------------- properties

runs = st.lists(st.tuples(st.floats(0.5, HOLD - 0.5), st.floats(0.5, 200.0)),
                min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(runs, st.floats(0.2, 5.0))
def test_flapping_faster_than_hold_down_never_opens(
        pattern: list[tuple[float, float]], tick_s: float) -> None:
    sim = Sim()
    up_all(sim, T0)
    t = T0 + 1
    for down_s, up_s in pattern:
        sim.set(t, "down", "hub-b/rtr-1", bts(2))
        sim.set(t + down_s, "up", "hub-b/rtr-1", bts(2))
        t += down_s + up_s
    sim.run_to(t + CLEAR, step_s=tick_s)
    assert sim.events == []


states = st.sampled_from(["up", "down", "unknown"])
timeline = st.lists(st.tuples(st.floats(0.1, 120.0), states), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(ALL_UP), timeline, min_size=1), st.floats(0.5, 7.0))
def test_every_open_outage_resolves_once_up_for_clear_down(
        timelines: dict[str, list[tuple[float, str]]], tick_s: float) -> None:
    sim = Sim()
    end = sim.play(timelines)
    sim.run_to(end, step_s=tick_s)
    sim.set(end, "up", *ALL_UP)
    sim.run_to(end + CLEAR + tick_s, step_s=tick_s)
    assert sim.core.open_outages() == {}
    assert sim.firing() == {}
    # one page per outage: per fingerprint, events alternate firing(s) then one resolved
    for fp in {e.alert.fingerprint for e in sim.events}:
        seq = [e for e in sim.events if e.alert.fingerprint == fp]
        assert seq[-1].action == "resolved"
        for a, b in itertools.pairwise(seq):
            if a.action == "resolved":
                assert b.action == "firing"
        for e in seq:
            if e.action == "resolved":
                assert e.alert.ends_at is not None and e.alert.ends_at >= e.alert.starts_at


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(ALL_UP),
                       st.lists(st.tuples(st.floats(0.1, 300.0),
                                          st.sampled_from(["up", "unknown"])),
                                min_size=1, max_size=20), min_size=1))
def test_unknown_never_alerts(timelines: dict[str, list[tuple[float, str]]]) -> None:
    sim = Sim()
    end = sim.play(timelines)
    sim.run_to(end + 2 * CLEAR, step_s=3.0)
    assert sim.events == []


# ------------------------------------------------------------------- root cause


@pytest.mark.parametrize("bts_first", [True, False])
def test_hub_cut_off_is_one_root_alert_listing_the_sites_behind_it(bts_first: bool) -> None:
    sim = Sim()
    up_all(sim, T0)
    # polls are not simultaneous: the BTS may be seen down a poll before the hub
    hub_t, bts_t = (T0 + 12, T0 + 10) if bts_first else (T0 + 10, T0 + 12)
    sim.set(hub_t, "down", *HUB_ELEMENTS)
    sim.set(bts_t, "down", bts(1), bts(2), bts(3))
    sim.run_to(T0 + 200)
    assert sim.names() == [("XanetSiteDown", "hub-a")]
    [ev] = sim.firing().values()
    assert ev.alert.children == ("bts-1", "bts-2", "bts-3")
    assert ev.alert.annotations["children"] == "bts-1,bts-2,bts-3"
    assert ev.alert.labels["severity"] == "critical"
    assert ev.alert.starts_at == hub_t
    assert "3 trạm phía sau" in ev.alert.annotations["summary_vi"]
    assert "3 site(s) behind it" in ev.alert.annotations["summary_en"]
    # the uplink comes back: one resolve, nothing for the children
    sim.set(T0 + 300, "up", *HUB_ELEMENTS, bts(1), bts(2), bts(3))
    sim.run_to(T0 + 300 + CLEAR)
    assert [(e.action, e.alert.labels["site"]) for e in sim.events
            if e.action == "resolved"] == [("resolved", "hub-a")]
    assert len({e.alert.fingerprint for e in sim.events}) == 1


def test_child_still_down_after_its_root_recovered_is_alerted_then() -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.set(T0 + 10, "down", *HUB_ELEMENTS, bts(1), bts(2))
    sim.run_to(T0 + 100)
    assert sim.names() == [("XanetSiteDown", "hub-a")]
    sim.set(T0 + 100, "up", *HUB_ELEMENTS, bts(1))  # bts-2 has its own problem
    sim.run_to(T0 + 100 + CLEAR)
    assert sim.names() == [("XanetSiteDown", "bts-2")]
    [ev] = sim.firing().values()
    assert ev.alert.starts_at == T0 + 10  # when it really began
    assert ev.alert.labels["severity"] == "major"


def test_alert_already_sent_is_not_withdrawn_when_a_root_appears() -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.set(T0 + 10, "down", bts(1))
    sim.run_to(T0 + 100)
    sim.set(T0 + 100, "down", *HUB_ELEMENTS, bts(2), bts(3))
    sim.run_to(T0 + 200)
    assert sim.names() == [("XanetSiteDown", "bts-1"), ("XanetSiteDown", "hub-a")]
    assert [e.action for e in sim.events].count("resolved") == 0


def test_hub_cut_off_with_bts_agents_silent_is_still_one_root_alert() -> None:
    """Realistic: the BTS agents publish through the hub's uplink, so they go silent."""
    sim = Sim(inventory(bts_agents=True))
    up_all(sim, T0)
    sim.run_to(T0 + 5)
    sim.set(T0 + 10, "down", *HUB_ELEMENTS)  # seen by a core-side poller
    for i in (1, 2, 3):
        sim.silent[f"agt-bts-{i}"] = True
        sim.core.agent_offline(f"agt-bts-{i}", T0 + 11)
        sim.set(T0 + 11, "unknown", bts(i))
    sim.run_to(T0 + 400)
    assert sim.names() == [("XanetSiteDown", "hub-a")]
    [ev] = sim.firing().values()
    assert "bts-1 (unknown)" in ev.alert.annotations["summary_en"]
    assert "bts-1 (không xác định)" in ev.alert.annotations["summary_vi"]


# ------------------------------------------------------------------ agent silence


def test_silent_agent_is_one_warning_and_never_device_down() -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.run_to(T0 + 10)
    sim.silent["agt-hub-b"] = True
    sim.core.agent_offline("agt-hub-b", T0 + 10)  # Last Will
    sim.set(T0 + 10, "unknown", "hub-b/rtr-1")  # what the engine says about its elements
    sim.run_to(T0 + 500)
    assert sim.names() == [("XanetAgentSilent", "hub-b")]
    [ev] = sim.firing().values()
    assert ev.alert.labels["severity"] == "warning"
    assert ev.alert.labels["agent"] == "agt-hub-b"
    assert ev.alert.starts_at == T0 + 10
    assert "KHÔNG XÁC ĐỊNH" in ev.alert.annotations["summary_vi"]
    assert "UNKNOWN" in ev.alert.annotations["summary_en"]
    assert ev.alert.kind == "agent_silent"
    # back: data again, the silence clears after clear-down
    sim.silent["agt-hub-b"] = False
    sim.set(T0 + 500, "up", "hub-b/rtr-1")
    sim.run_to(T0 + 500 + CLEAR + 1)
    assert sim.firing() == {}


def test_agent_silent_by_deadline_without_last_will() -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.run_to(T0 + 10)
    sim.silent["agt-hub-b"] = True  # nothing more from it, no Last Will either
    sim.run_to(T0 + 10 + SILENT + HOLD - 2)
    assert sim.firing() == {}
    sim.run_to(T0 + 10 + SILENT + HOLD + 1)
    assert sim.names() == [("XanetAgentSilent", "hub-b")]
    [ev] = sim.firing().values()
    assert ev.alert.starts_at == T0 + 10  # "silent since": its last sign of life
    assert sim.core.silent_since("agt-hub-b") == T0 + 10


# ----------------------------------------------------------------------- restarts


def test_restart_reannounces_the_same_alert_and_still_resolves(tmp_path: Path) -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.set(T0 + 10, "down", "hub-a/olt-1")
    sim.run_to(T0 + 100)
    [first] = sim.firing().values()
    store = OutageStore(tmp_path / "state" / "outages.json")
    store.save(sim.core.records())
    # a new collector: no element state yet (unknown) - the outage stays open
    again = Sim(restored=store.load(), now=T0 + 130)
    again.run_to(T0 + 200)
    [re] = again.events
    assert re.action == "firing"
    assert re.alert.fingerprint == first.alert.fingerprint
    assert re.alert.starts_at == first.alert.starts_at
    again.set(T0 + 200, "up", "hub-a/olt-1")
    again.run_to(T0 + 200 + CLEAR)
    assert [e.action for e in again.events] == ["firing", "resolved"]


def test_restored_outage_of_a_unit_no_longer_in_the_inventory_is_resolved() -> None:
    rec = OutageRecord("device:gone/x", "device_down", T0, True,
                       {"alertname": "XanetDeviceDown", "site": "gone"}, {"summary_en": "x"})
    sim = Sim(restored=[rec])
    [ev] = sim.run_to(T0 + 1)
    assert ev.action == "resolved" and ev.alert.labels["site"] == "gone"


def test_store_on_a_full_disk_goes_on_and_keeps_the_previous_file(tmp_path: Path) -> None:
    """A full disk never stops the collector through its outage state (issue 14): the
    save fails, is counted and logged once, the previous file stays whole, and saving
    works again by itself once there is space."""
    with small_tmpfs(tmp_path, "64k") as mnt:
        rec = OutageRecord("site:a", "root", T0, True, {"site": "a"}, {"summary_en": "é"})
        store = OutageStore(mnt / "outages.json")
        assert store.save([rec], {"agt-a": T0})
        filler = fill(mnt)
        more = [OutageRecord(f"site:{i}", "root", T0, True, {"site": str(i)},
                             {"summary_en": "x" * 2000}) for i in range(20)]
        assert not store.save(more, {"agt-a": T0 + 60})
        assert not store.save(more, {"agt-a": T0 + 61})
        assert store.save_failures == 2
        assert [r.unit for r in OutageStore(store.path).load()] == ["site:a"]  # still whole
        assert OutageStore(store.path).load_seen() == {"agt-a": T0}
        assert not (mnt / "outages.json.tmp").exists()
        filler.unlink()
        assert store.save(more, {"agt-a": T0 + 62})
        assert len(OutageStore(store.path).load()) == 20


def test_store_survives_garbage(tmp_path: Path) -> None:
    path = tmp_path / "outages.json"
    assert OutageStore(path).load() == []
    path.write_text("{not json")
    assert OutageStore(path).load() == []
    path.write_text(json.dumps({"open": [{"unit": "x"}, {
        "unit": "site:a", "kind": "root", "started_at": 1.0, "alerted": True,
        "labels": {"site": "a"}, "annotations": {}}]}))
    [rec] = OutageStore(path).load()
    assert rec.unit == "site:a" and rec.started_at == 1.0


# ------------------------------------------------------------------------ encoders


def test_alertmanager_payload_and_outage_lines() -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.set(T0 + 10, "down", *HUB_ELEMENTS, bts(1))
    [fire] = sim.run_to(T0 + 10 + HOLD)
    p = payload(fire.alert, now=T0 + 50, expire_after_s=600)
    assert p["startsAt"] == "2025-06-15T15:06:50.000Z"  # T0 + 10
    assert p["endsAt"] == "2025-06-15T15:17:30.000Z"  # now + 600
    assert p["labels"]["alertname"] == "XanetSiteDown"
    [line] = outage_lines([fire], "08")
    assert line.startswith("outage,commune=02266,kind=root,province=08,service=")
    assert 'children="bts-1"' in line and "open=1i" in line
    assert line.endswith(f" {round((T0 + 10) * 1000)}")
    sim.set(T0 + 100, "up", *HUB_ELEMENTS, bts(1))
    [res] = sim.run_to(T0 + 100 + CLEAR)
    assert payload(res.alert, now=T0 + 500, expire_after_s=600)["endsAt"] == (
        "2025-06-15T15:08:20.000Z")
    [line] = outage_lines([res], "08")
    assert "open=0i" in line and line.endswith(f" {round((T0 + 100) * 1000)}")


class FlakyAlertmanager:
    """Unreachable for the first ``failures`` posts; records what got through."""

    def __init__(self, failures: int, reject: bool = False) -> None:
        self.failures = failures
        self.reject = reject
        self.attempts = 0
        self.delivered: list[list[Payload]] = []

    async def post(self, alerts: Sequence[Payload]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise AlertmanagerUnavailable("connection refused")
        if self.reject:
            raise AlertmanagerRejected("400")
        self.delivered.append(list(alerts))

    async def close(self) -> None:
        pass


async def test_notifier_retries_until_delivered_and_keeps_the_latest_state() -> None:
    sim = Sim()
    up_all(sim, T0)
    sim.set(T0 + 10, "down", "hub-a/olt-1")
    fire = sim.run_to(T0 + 10 + HOLD)
    port = FlakyAlertmanager(failures=3)
    notifier = Notifier(port, resend_interval_s=60, expire_after_s=600,
                        retry_min_s=0.01, retry_max_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    notifier.submit(fire)
    for _ in range(200):
        if port.delivered:
            break
        await asyncio.sleep(0.01)
    assert port.attempts >= 4 and len(port.delivered) == 1
    assert port.delivered[0][0]["labels"]["device"] == "olt-1"
    # resolved while nothing else is firing: posted once with its endsAt, then forgotten
    sim.set(T0 + 100, "up", "hub-a/olt-1")
    notifier.submit(sim.run_to(T0 + 100 + CLEAR))
    for _ in range(200):
        if len(port.delivered) == 2:
            break
        await asyncio.sleep(0.01)
    assert port.delivered[1][0]["endsAt"] == "2025-06-15T15:08:20.000Z"
    assert notifier.firing == [] and notifier.pending_resolved == 0
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(port.delivered) == 2  # nothing left to post at stop


async def test_notifier_does_not_retry_a_rejected_batch() -> None:
    port = FlakyAlertmanager(failures=0, reject=True)
    notifier = Notifier(port, resend_interval_s=60, expire_after_s=600,
                        retry_min_s=0.01, retry_max_s=0.05)
    sim = Sim()
    up_all(sim, T0)
    sim.set(T0 + 10, "down", "hub-a/olt-1")
    notifier.submit(sim.run_to(T0 + 10 + HOLD))
    assert await notifier.flush() is True
    assert notifier.rejected == 1


def test_parent_seen_down_late_is_still_the_root_cause() -> None:
    """The hub and its BTS are cut at the same moment, but the hub's down poll lands
    after the BTS has been down for the whole hold-down (a poll interval + timeout late,
    or a loaded collector): with a root wait, the hub is still the one alert."""
    late = HOLD + 5.0
    for wait, expected in ((0.0, 2), (10.0, 1)):
        policy = Policy(hold_down_s=HOLD, clear_down_s=CLEAR, agent_silent_after_s=SILENT,
                        root_wait_s=wait)
        sim = Sim(inventory(n_bts=1), policy=policy)
        up_all(sim, T0 - 100)
        sim.set(T0 + 1, "down", bts(1))
        sim.run_to(T0 + late)
        sim.set(T0 + 1, "down", *HUB_ELEMENTS)  # the hub's down poll arrives late
        sim.run_to(T0 + 2 * HOLD + 20)
        assert len(sim.firing()) == expected, (wait, sim.names())
        if expected == 1:
            assert sim.names() == [("XanetSiteDown", "hub-a")]


def test_children_recovering_with_their_root_are_never_paged() -> None:
    """The hub and its BTS come back together, but the BTS's recovery is seen a little
    after the hub's: when the hub's outage closes, the BTS outages are clearing, not
    down, and must not be paged as outages of their own."""
    sim = Sim(inventory(n_bts=3))
    up_all(sim, T0 - 100)
    sim.set(T0, "down", *HUB_ELEMENTS, bts(1), bts(2), bts(3))
    sim.run_to(T0 + HOLD + 20)
    assert sim.names() == [("XanetSiteDown", "hub-a")]
    back = T0 + HOLD + 30
    sim.set(back, "up", *HUB_ELEMENTS)
    sim.set(back + 5, "up", bts(1), bts(2), bts(3))  # seen a poll later
    sim.run_to(back + CLEAR + 30)
    assert not sim.firing()
    fired = {(e.alert.labels["alertname"], e.alert.labels["site"])
             for e in sim.events if e.action == "firing"}
    assert fired == {("XanetSiteDown", "hub-a")}


async def test_a_held_notifier_posts_nothing_until_released() -> None:
    """An outage change reaches the partition's checkpoint before Alertmanager
    (collector/continuity.py holds the notifier meanwhile)."""
    sim = Sim()
    up_all(sim, T0)
    sim.set(T0 + 10, "down", "hub-a/olt-1")
    port = FlakyAlertmanager(failures=0)
    notifier = Notifier(port, resend_interval_s=60, expire_after_s=600,
                        retry_min_s=0.01, retry_max_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    await asyncio.sleep(0.02)
    notifier.hold()
    notifier.hold()
    notifier.submit(sim.run_to(T0 + 10 + HOLD))
    await asyncio.sleep(0.1)
    notifier.release()
    await asyncio.sleep(0.1)
    assert port.delivered == []  # one hold still on
    notifier.release()
    for _ in range(200):
        if port.delivered:
            break
        await asyncio.sleep(0.01)
    assert [a["labels"]["device"] for a in port.delivered[0]] == ["olt-1"]
    stop.set()
    await asyncio.wait_for(task, 5)
