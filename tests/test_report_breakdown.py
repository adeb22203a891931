"""Pure tests: four-state timelines, the coverage rule, stations, operators, the outage list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.availability import ServiceKey
from collector.breakdown import Scope, site_services, stations, units
from collector.outagelist import AlertedPeriod, build_outages
from collector.readback import month_window, parse_time
from collector.report import build_report, sort_rows, status_of
from collector.reportrender import render_table
from collector.timeline import Totals, combine_any, most_down_at_once, spans, totals
from xanet.inventory import Inventory, parse_inventory

H = 3600.0
DAY = 86400.0
T0 = 1_793_466_000.0  # 2026-11-01T00:00:00+07:00


def inventory() -> Inventory:
    """Commune 00001: a hub with fibre, six 4G BTS (1-2 behind the hub; 6 shared)."""
    bts: list[dict[str, Any]] = []
    operators = [["Viettel"], ["Viettel"], ["Viettel"], ["VNPT"], ["VNPT"],
                 ["Viettel", "MobiFone"]]
    for i in range(1, 7):
        site: dict[str, Any] = {
            "id": f"bts-{i}", "commune": "00001", "role": "bts", "technologies": ["4g"],
            "operator": operators[i - 1],
            "devices": [{"id": "enodeb", "elements": [{"service": "mobile_4g"}]}]}
        if i <= 2:
            site["parent"] = "hub"
        bts.append(site)
    return parse_inventory({
        "province": {"code": "08", "name": "Tuyên Quang"},
        "communes": [{"code": "00001", "name": "Xã Một"}, {"code": "00002", "name": "Xã Hai"}],
        "sites": [
            {"id": "hub", "commune": "00001", "role": "hub", "operator": "VNPT",
             "devices": [{"id": "rtr-1", "elements": [
                 {"service": "fibre", "interface": "xe-0/0/0"},
                 {"service": "fibre", "interface": "xe-0/0/1"}]}]},
            {"id": "hub-2", "commune": "00002", "role": "hub",
             "devices": [{"id": "rtr-1", "elements": [{"service": "fibre"}]}]},
            *bts,
        ],
    })


def up() -> list[tuple[float, str]]:
    return [(T0 - H, "up")]


# ------------------------------------------------------------------ timelines


def test_totals_keep_maintenance_apart_from_coverage_and_availability() -> None:
    timeline = [(T0, "up"), (T0 + 2 * H, "maintenance"), (T0 + 6 * H, "down"),
                (T0 + 7 * H, "unknown"), (T0 + 8 * H, "down"), (T0 + 9 * H, "up")]
    t = totals(timeline, T0, T0 + DAY)
    assert (t.up_s, t.down_s, t.unknown_s, t.maintenance_s) == (17 * H, 2 * H, H, 4 * H)
    assert t.outages == 1  # down, unknown, down: no recovery seen
    assert t.availability_pct == pytest.approx(100 * 17 / 19)
    assert t.coverage_pct == pytest.approx(100 * 19 / 20)  # known / (window - maintenance)
    whole = totals([(T0, "maintenance")], T0, T0 + H)
    assert whole.availability_pct is None and whole.coverage_pct == 100.0


@pytest.mark.parametrize(
    ("states", "combined"),
    [
        (["up", "down"], "up"),
        (["down", "down"], "down"),
        (["down", "unknown"], "unknown"),
        (["down", "maintenance"], "maintenance"),
        (["up", "maintenance"], "up"),
        (["unknown", "maintenance"], "maintenance"),
        (["unknown", "unknown"], "unknown"),
    ],
)
def test_any_of_combination(states: list[str], combined: str) -> None:
    timelines = [[(T0, s)] for s in states]
    assert combine_any(timelines) == [(T0, combined)]


STATE = st.sampled_from(["up", "down", "unknown", "maintenance"])
TIMELINE = st.lists(st.tuples(st.integers(0, 100), STATE), max_size=12).map(
    lambda pts: sorted({T0 + 60 * t: s for t, s in pts}.items()))


@given(TIMELINE)
def test_totals_add_up_to_the_window(timeline: list[tuple[float, str]]) -> None:
    t = totals(timeline, T0, T0 + 6000)
    assert t.up_s + t.down_s + t.unknown_s + t.maintenance_s == pytest.approx(6000)
    assert 0 <= t.coverage_pct <= 100
    assert sum(b - a for a, b, _ in spans(timeline, T0, T0 + 6000)) == pytest.approx(6000)


@given(st.lists(TIMELINE, min_size=1, max_size=5))
def test_most_down_at_once_is_bounded_by_the_count(timelines: list[list[Any]]) -> None:
    n = most_down_at_once(timelines, T0, T0 + 6000)
    ever_down = sum(any(s == "down" for _, _, s in spans(t, T0, T0 + 6000)) for t in timelines)
    assert (n == 0) == (ever_down == 0)
    assert n <= ever_down


def _rule(states: list[str]) -> str:
    if "up" in states:
        return "up"
    if all(x == "down" for x in states):
        return "down"
    return "maintenance" if "maintenance" in states else "unknown"


def _at(timeline: list[tuple[float, str]], t: float) -> str:
    state = "unknown"
    for ts, s in timeline:
        if ts <= t:
            state = s
    return state


@given(st.lists(TIMELINE, min_size=1, max_size=4))
def test_any_of_equals_the_rule_at_every_instant(timelines: list[list[Any]]) -> None:
    combined = combine_any(timelines)
    probes = sorted({T0 - 1, *(ts for t in timelines for ts, _ in t),
                     *(ts + 30 for t in timelines for ts, _ in t)})
    for t in probes:
        assert _at(combined, t) == _rule([_at(x, t) for x in timelines]), t


@given(st.lists(TIMELINE, min_size=1, max_size=4))
def test_most_down_at_once_equals_a_count_at_every_instant(timelines: list[list[Any]]) -> None:
    probes = {T0, *(ts for t in timelines for ts, _ in t if T0 <= ts < T0 + 6000)}
    brute = max(sum(_at(t, p) == "down" for t in timelines) for p in probes)
    assert most_down_at_once(timelines, T0, T0 + 6000) == brute


# ------------------------------------------------------------------ coverage rule


@pytest.mark.parametrize(
    ("up_h", "down_h", "unknown_h", "maintenance_h", "min_cov", "status"),
    [
        (99, 1, 0, 0, 90, "met"),  # exactly on target, full coverage
        (98, 2, 0, 0, 90, "failed"),
        (90, 0, 10, 0, 90, "met"),  # coverage exactly at the minimum
        (89, 0, 11, 0, 90, "insufficient"),  # 100 % up, but 89 % coverage
        (89, 0, 11, 0, 0, "met"),
        (8.3, 0, 91.7, 0, 90, "insufficient"),  # the 8.3 % that used to be "target met"
        (80, 0, 0, 20, 90, "met"),  # maintenance is not missing data
        (0, 0, 100, 0, 90, "no_data"),
        (0, 0, 0, 100, 90, "no_data"),
    ],
)
def test_status_follows_the_coverage_rule(up_h: float, down_h: float, unknown_h: float,
                                          maintenance_h: float, min_cov: float,
                                          status: str) -> None:
    summary = Totals(100 * H, up_h * H, down_h * H, unknown_h * H, maintenance_h * H)
    assert status_of(summary, 99.0, min_cov) == status


def test_kpis_count_insufficient_data_apart() -> None:
    timelines = {
        ServiceKey("00001", "fibre"): [(T0, "up")],  # met
        ServiceKey("00002", "fibre"): [(T0, "up"), (T0 + 0.5 * DAY, "unknown")],  # 50 %
        ServiceKey("00003", "fibre"): [(T0, "down"), (T0 + H, "up")],  # failed
    }
    report = build_report(timelines, window_start=T0, window_end=T0 + DAY,
                          expected=[ServiceKey("00004", "fibre")], min_coverage_pct=90)
    kpi = report.kpis[0]
    assert (kpi.met, kpi.failed, kpi.insufficient, kpi.no_data) == (1, 1, 1, 1)
    assert kpi.share_met_pct == 50.0 and kpi.apart == 2
    statuses = {r.commune: r.status for r in report.rows}
    assert statuses == {"00001": "met", "00002": "insufficient", "00003": "failed",
                        "00004": "no_data"}
    text = render_table(report, "en")
    assert "insufficient data" in text and "2 communes have insufficient fibre data" in text


def test_worst_first_puts_rows_without_data_last() -> None:
    timelines = {
        ServiceKey("00001", "fibre"): [(T0, "up")],
        ServiceKey("00002", "fibre"): [(T0, "down"), (T0 + H, "up")],
        ServiceKey("00003", "fibre"): [(T0, "down"), (T0 + 2 * H, "up")],
    }
    report = build_report(timelines, window_start=T0, window_end=T0 + DAY,
                          expected=[ServiceKey("00000", "fibre")], sort="availability")
    assert [r.commune for r in report.rows] == ["00003", "00002", "00001", "00000"]
    assert [r.commune for r in sort_rows(report.rows, "downtime")][:2] == ["00003", "00002"]


# ------------------------------------------------------------------ stations, operators


def four_of_six_dark() -> dict[str, list[tuple[float, str]]]:
    elements = {f"bts-{i}/enodeb": up() for i in range(1, 7)}
    for i in range(1, 5):  # 4 of 6 dark for an hour
        elements[f"bts-{i}/enodeb"] = [(T0 - H, "up"), (T0 + 10 * H, "down"),
                                       (T0 + 11 * H, "up")]
    elements["hub/rtr-1/xe-0/0/0"] = up()
    elements["hub/rtr-1/xe-0/0/1"] = up()
    return elements


def test_four_of_six_stations_dark_shows_behind_a_fully_available_commune() -> None:
    inv = inventory()
    elements = four_of_six_dark()
    per_site = site_services(inv, elements)
    key = ServiceKey("00001", "mobile_4g")
    commune = {key: combine_any([elements[f"bts-{i}/enodeb"] for i in range(1, 7)])}
    report = build_report(commune, window_start=T0, window_end=T0 + DAY,
                          stations=stations(inv, per_site, Scope()))
    row = report.rows[0]
    assert row.availability_pct == 100.0  # the commune's 4G never went dark
    assert row.stations is not None
    assert row.stations.total == 6 and row.stations.most_down == 4
    assert row.stations.up_pct == pytest.approx(100 * (6 * 24 - 4) / (6 * 24))
    assert "at worst 4 of 6 down at once" in render_table(report, "en")
    assert "cùng lúc mất tối đa 4/6" in render_table(report, "vi")


def test_per_site_and_per_operator_rows() -> None:
    inv = inventory()
    elements = four_of_six_dark()
    commune = {ServiceKey("00001", "mobile_4g"): up()}
    sites = units("site", inv, Scope(service="mobile_4g"), commune, elements)
    report = build_report(commune, window_start=T0, window_end=T0 + DAY, units=sites,
                          group="site", sort="availability")
    assert [r.key for r in report.rows][:4] == ["bts-1", "bts-2", "bts-3", "bts-4"]
    assert report.rows[0].availability_pct == pytest.approx(100 * 23 / 24)
    ops = units("operator", inv, Scope(), commune, elements)
    by = {(u.key, u.service): u for u in ops}
    # bts-6 is shared: it counts for Viettel and for MobiFone
    assert len(by[("Viettel", "mobile_4g")].members) == 4
    assert len(by[("MobiFone", "mobile_4g")].members) == 1
    assert len(by[("VNPT", "mobile_4g")].members) == 2
    assert len(by[("VNPT", "fibre")].members) == 1
    report = build_report(commune, window_start=T0, window_end=T0 + DAY, units=ops,
                          group="operator")
    viettel = next(r for r in report.rows if (r.key, r.service) == ("Viettel", "mobile_4g"))
    assert viettel.summary.down_s == 3 * H  # bts-1..3 one hour each
    assert viettel.stations is not None and viettel.stations.most_down == 3


# ------------------------------------------------------------------ outage list


def test_outage_list_groups_sites_behind_their_root() -> None:
    inv = inventory()
    elements = {k: up() for k in four_of_six_dark()}
    cut = [(T0 - H, "up"), (T0 + 5 * H, "down"), (T0 + 5.5 * H, "up")]
    elements["hub/rtr-1/xe-0/0/0"] = cut
    elements["hub/rtr-1/xe-0/0/1"] = cut
    late = [(T0 - H, "up"), (T0 + 5 * H + 60, "down"), (T0 + 5.5 * H + 60, "up")]
    elements["bts-1/enodeb"] = late  # behind the hub: seen down a poll later
    elements["bts-2/enodeb"] = late
    elements["bts-5/enodeb"] = [(T0 - H, "up"), (T0 + 12 * H, "maintenance"),
                                (T0 + 13 * H, "down"), (T0 + 13.5 * H, "up")]
    outages = build_outages(inv, elements, window_start=T0, window_end=T0 + DAY,
                            alerted=[AlertedPeriod("hub", T0 + 5 * H, T0 + 5.5 * H)])
    assert len(outages) == 2
    root, own = outages
    assert (root.root, root.sites, root.cause) == ("hub", {"hub", "bts-1", "bts-2"},
                                                    "transmission")
    assert root.services == {"fibre", "mobile_4g"}
    assert root.start == T0 + 5 * H and root.end == T0 + 5.5 * H + 60
    assert root.alerted and not root.maintenance
    assert (own.root, own.cause, own.alerted, own.maintenance) == ("bts-5", "site", False,
                                                                    True)
    assert build_outages(inv, elements, window_start=T0, window_end=T0 + DAY,
                         min_duration_s=2 * H) == []


def test_an_outage_running_past_the_window_is_ongoing() -> None:
    inv = inventory()
    elements = {"hub-2/rtr-1": [(T0, "up"), (T0 + 23 * H, "down")]}
    (outage,) = build_outages(inv, elements, window_start=T0, window_end=T0 + DAY)
    assert outage.ongoing and outage.duration_s == H


# ------------------------------------------------------------------ times


def test_times_are_local_wall_time_in_the_zone() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    tz = "Asia/Ho_Chi_Minh"
    assert parse_time("2026-11-01", now, tz).timestamp() == T0
    assert parse_time("2026-11-01T00:00:00Z", now, tz).timestamp() == T0 + 7 * H
    assert parse_time("-7d", now, tz) == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_time("now-24h", now, tz) == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    start, end = month_window("2026-11", tz)
    assert start.timestamp() == T0 and end.timestamp() == T0 + 30 * DAY
    start, end = month_window("2026-12", "UTC")
    assert (start.year, end.year, end.month) == (2026, 2027, 1)
    for bad in ("2026-13", "2026-1", "11-2026"):
        with pytest.raises(ValueError, match="not a month"):
            month_window(bad, tz)
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday", now, tz)
