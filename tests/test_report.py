"""Tests of the availability report (collector/report.py), on hand-computed cases."""

from __future__ import annotations

import csv
import io
import json
import unicodedata

import pytest

from collector.availability import (
    AvailabilityEngine,
    Change,
    ElementSpec,
    Observation,
    ServiceKey,
    ServicePoint,
    Topology,
)
from collector.report import AvailabilityReport, build_report, timelines_from_points
from collector.reportformat import format_duration, format_pct
from collector.reportrender import kpi_sentences, render_csv, render_json, render_table

DAY = 86400.0
START = 1_751_328_000.0  # 2025-07-01T00:00:00Z
END = START + DAY
NAMES = {"01001": "Xã Tân Lập", "01002": "Xã Hòa Bình", "01003": "Xã Sơn Thủy"}

A_FIBRE = ServiceKey("01001", "fibre")
B_FIBRE = ServiceKey("01002", "fibre")
C_FIBRE = ServiceKey("01003", "fibre")
A_4G = ServiceKey("01001", "mobile_4g")
B_4G = ServiceKey("01002", "mobile_4g")


def hand_case() -> AvailabilityReport:
    """Hand-computed day:

    A fibre: up all day except two down periods of 2 and 3 minutes -> 99.652..%
    B fibre: up, 6 h unknown (agent silent), 1 minute down -> 99.907..% over 18 h known
    C fibre: never heard of (inventory only) -> no data
    A 4G:   down 0.5% of the day exactly -> 99.5%
    B 4G:   up all day -> 100%
    """
    timelines = {
        A_FIBRE: [
            Change(START - 600, "up"),  # state carried in from before the window
            Change(START + 3600, "down"),
            Change(START + 3600 + 120, "up"),
            Change(START + 7200, "down"),
            Change(START + 7200 + 180, "up"),
        ],
        B_FIBRE: [
            Change(START, "up"),
            Change(START + 6 * 3600, "unknown"),
            Change(START + 12 * 3600, "up"),
            Change(START + 20 * 3600, "down"),
            Change(START + 20 * 3600 + 60, "up"),
        ],
        A_4G: [Change(START, "up"), Change(END - 432, "down")],
        B_4G: [Change(START - 1, "up")],
    }
    return build_report(
        timelines,
        window_start=START,
        window_end=END,
        names=NAMES,
        expected=[C_FIBRE, A_FIBRE],
        target_pct=99.5,
    )


def test_rows_are_hand_computed_numbers() -> None:
    report = hand_case()
    rows = {(r.commune, r.service): r for r in report.rows}
    a = rows[("01001", "fibre")].summary
    assert (a.up_s, a.down_s, a.unknown_s, a.outages) == (DAY - 300, 300, 0, 2)
    assert a.availability_pct == pytest.approx(100 * (DAY - 300) / DAY)
    assert a.coverage_pct == 100.0
    b = rows[("01002", "fibre")].summary
    assert (b.down_s, b.unknown_s, b.outages) == (60, 6 * 3600, 1)
    assert b.availability_pct == pytest.approx(100 * (18 * 3600 - 60) / (18 * 3600))
    assert b.coverage_pct == pytest.approx(75.0)
    c = rows[("01003", "fibre")]
    assert c.summary.availability_pct is None and c.met_target is None
    assert c.summary.down_s == 0  # no data is not downtime
    assert rows[("01001", "mobile_4g")].summary.availability_pct == pytest.approx(99.5)
    assert rows[("01001", "mobile_4g")].met_target is True  # exactly on target meets it
    assert rows[("01002", "mobile_4g")].summary.availability_pct == 100.0


def test_rows_in_commune_then_service_order_with_names() -> None:
    report = hand_case()
    assert [(r.commune, r.service, r.name) for r in report.rows] == [
        ("01001", "fibre", "Xã Tân Lập"),
        ("01001", "mobile_4g", "Xã Tân Lập"),
        ("01002", "fibre", "Xã Hòa Bình"),
        ("01002", "mobile_4g", "Xã Hòa Bình"),
        ("01003", "fibre", "Xã Sơn Thủy"),
    ]


def test_kpis_share_of_communes_meeting_target_with_no_data_apart() -> None:
    report = hand_case()
    kpis = {k.service: k for k in report.kpis}
    fibre = kpis["fibre"]
    # A 99.65 >= 99.5 met, B 99.90 met, C no data: 2 of 2 measured
    assert (fibre.met, fibre.failed, fibre.no_data) == (2, 0, 1)
    assert fibre.share_met_pct == 100.0
    mobile = kpis["mobile_4g"]
    assert (mobile.met, mobile.failed, mobile.no_data) == (2, 0, 0)
    strict = build_report(
        {A_FIBRE: hand_timeline_a(), B_FIBRE: [Change(START, "up")]},
        window_start=START,
        window_end=END,
        target_pct=99.9,
    )
    assert [(k.service, k.met, k.failed, k.share_met_pct) for k in strict.kpis] == [
        ("fibre", 1, 1, 50.0)
    ]


def hand_timeline_a() -> list[Change]:
    return [Change(START, "up"), Change(START + 3600, "down"), Change(START + 5400, "up")]


def test_low_coverage_can_be_set_to_count_as_no_data() -> None:
    timelines = {A_FIBRE: [Change(START, "up"), Change(START + 3600, "unknown")]}
    loose = build_report(timelines, window_start=START, window_end=END)
    assert loose.kpis[0].met == 1
    strict = build_report(timelines, window_start=START, window_end=END, min_coverage_pct=50)
    assert (strict.kpis[0].met, strict.kpis[0].insufficient, strict.kpis[0].no_data) == (0, 1, 0)
    assert strict.kpis[0].share_met_pct is None
    assert strict.rows[0].status == "insufficient"


def test_known_until_makes_later_time_unknown() -> None:
    timelines = {A_FIBRE: [Change(START, "up")]}
    report = build_report(
        timelines, window_start=START, window_end=END, known_until=START + DAY / 2
    )
    s = report.rows[0].summary
    assert (s.up_s, s.unknown_s) == (DAY / 2, DAY / 2)


def test_report_from_engine_points_read_back() -> None:
    key = ServiceKey("01001", "broadband")
    eng = AvailabilityEngine(
        Topology((ElementSpec("olt-1", "ag-1", (key,)),)), stale_after_s=180, bucket_s=300
    )
    for k in range(60):
        eng.add(Observation("olt-1", START + 60 * k, "down" if 10 <= k < 15 else "up"))
    emission = eng.emit(START + 7200)
    # as InfluxDB returns them: (commune, service, ts, state), any order
    points = [(p.key.commune, p.key.service, p.ts, p.state) for p in reversed(emission.services)]
    timelines = timelines_from_points(points)
    assert timelines == timelines_from_points(emission.services)
    report = build_report(timelines, window_start=START, window_end=START + 3600)
    s = report.rows[0].summary
    assert (s.up_s, s.down_s, s.unknown_s, s.outages) == (3300, 300, 0, 1)
    assert timelines_from_points([ServicePoint(key, START, "up")]) == {key: [Change(START, "up")]}


def test_empty_window_is_refused() -> None:
    with pytest.raises(ValueError):
        build_report({}, window_start=START, window_end=START)


# ------------------------------------------------------------------ texts


@pytest.mark.parametrize(
    ("seconds", "en", "vi"),
    [
        (0, "0s", "0 giây"),
        (45.4, "45s", "45 giây"),
        (725, "12m 05s", "12 phút 05 giây"),
        (3720, "1h 02m", "1 giờ 02 phút"),
        (2 * 86400 + 3 * 3600 + 4 * 60, "2d 03h 04m", "2 ngày 03 giờ 04 phút"),
    ],
)
def test_format_duration(seconds: float, en: str, vi: str) -> None:
    assert format_duration(seconds, "en") == en
    assert format_duration(seconds, "vi") == vi


def test_format_pct_truncates_and_uses_decimal_comma_in_vi() -> None:
    assert format_pct(98.9996, "en") == "98.999"  # never shown as meeting 99
    assert format_pct(99.95, "en", 2) == "99.95"
    assert format_pct(99.5, "vi") == "99,500"
    assert format_pct(100.0, "vi", 1) == "100,0"


def test_kpi_sentences_vi_and_en() -> None:
    report = hand_case()
    assert kpi_sentences(report, "vi") == [
        "Tỷ lệ xã có cáp quang đạt mục tiêu: 100,0% (2/2 xã đủ dữ liệu)",
        "1 xã không đủ dữ liệu cáp quang: không tính vào tỷ lệ, không coi là không đạt.",
        "Tỷ lệ xã có di động 4G đạt mục tiêu: 100,0% (2/2 xã đủ dữ liệu)",
    ]
    assert kpi_sentences(report, "en")[0] == (
        "Share of communes whose fibre met the target: 100.0% "
        "(2 of 2 communes with enough data)"
    )
    assert "not counted as failing" in kpi_sentences(report, "en")[1]


def test_render_table_vi() -> None:
    text = render_table(hand_case(), "vi")
    lines = text.splitlines()
    assert lines[0] == "Khả dụng dịch vụ theo xã"
    assert lines[1] == "Kỳ báo cáo: 2025-07-01 00:00 – 2025-07-02 00:00 (UTC)"
    assert lines[1] == "Kỳ báo cáo: 2025-07-01 00:00 – 2025-07-02 00:00 (UTC)"
    for header in ("Mã xã", "Khả dụng (%)", "Thời gian gián đoạn", "Số lần gián đoạn"):
        assert header in lines[3]
    assert "Độ phủ dữ liệu (%)" in lines[3]
    row_a = next(line for line in lines if line.startswith("01001") and "cáp quang" in line)
    assert "99,652" in row_a and "5 phút 00 giây" in row_a and "100,0" in row_a
    row_c = next(line for line in lines if line.startswith("01003"))
    assert "không có dữ liệu" in row_c
    assert "Chỉ tiêu cấp tỉnh (mục tiêu khả dụng 99,5%, độ phủ dữ liệu tối thiểu 0%)" in lines
    assert "- Tỷ lệ xã có cáp quang đạt mục tiêu: 100,0% (2/2 xã đủ dữ liệu)" in lines


def test_render_table_en_columns_align() -> None:
    lines = render_table(hand_case(), "en").splitlines()
    assert lines[0] == "Service availability by commune"
    header, rule = lines[3], lines[4]
    assert header.startswith("Commune code")
    assert set(rule.replace(" ", "")) == {"-"}
    rows = lines[5:10]
    assert all(len(r.rstrip()) <= len(rule) for r in rows)
    assert "mobile 4G" in rows[1]


def test_render_table_aligns_decomposed_vietnamese_names() -> None:
    decomposed = unicodedata.normalize("NFD", "Xã Hòa Bình")
    report = build_report(
        {A_FIBRE: [Change(START, "up")], B_FIBRE: [Change(START, "up")]},
        window_start=START,
        window_end=END,
        names={"01001": decomposed, "01002": "Xã Tân Lập"},
    )
    rows = render_table(report, "vi").splitlines()[5:7]
    assert rows[0].index("cáp quang") == rows[1].index("cáp quang")


def test_render_csv_rows_and_kpis() -> None:
    report = hand_case()
    rows = list(csv.reader(io.StringIO(render_csv(report, "en"))))
    assert rows[0] == [
        "Commune code",
        "Commune",
        "Service",
        "Availability (%)",
        "Downtime (s)",
        "Downtime",
        "Outages",
        "Data coverage (%)",
        "Target met",
    ]
    assert len(rows) == 1 + len(report.rows)
    a = rows[1]
    assert a[:3] == ["01001", "Xã Tân Lập", "fibre"]
    assert float(a[3]) == pytest.approx(100 * (DAY - 300) / DAY, abs=1e-6)
    assert (a[4], a[5], a[6], a[7], a[8]) == ("300.0", "5m 00s", "2", "100.0", "yes")
    c = rows[5]
    assert c[0] == "01003" and c[3] == "" and c[8] == ""  # no data: empty, not zero
    vi = list(csv.reader(io.StringIO(render_csv(report, "vi"))))
    assert vi[0][3] == "Khả dụng (%)" and vi[1][2] == "cáp quang"
    assert vi[1][3] == a[3]  # machine numbers keep the dot in every language
    kpis = list(csv.reader(io.StringIO(render_csv(report, "vi", part="kpis"))))
    assert kpis[0][0] == "Dịch vụ"
    assert kpis[1] == ["cáp quang", "99.5", "100.0", "2", "0", "0", "1", "58.333333"]


def test_render_json_shape() -> None:
    doc = json.loads(render_json(hand_case(), "vi"))
    assert doc["lang"] == "vi" and doc["target_pct"] == 99.5
    assert doc["window"] == {"start": START, "end": END,
                             "start_local": "2025-07-01T00:00:00+00:00",
                             "end_local": "2025-07-02T00:00:00+00:00"}
    first = doc["rows"][0]
    assert set(first) == {
        "group",
        "key",
        "maintenance_s",
        "status",
        "stations",
        "commune",
        "name",
        "service",
        "service_label",
        "availability_pct",
        "downtime_s",
        "downtime",
        "outages",
        "coverage_pct",
        "up_s",
        "down_s",
        "unknown_s",
        "met_target",
    }
    assert first["service_label"] == "cáp quang" and first["downtime"] == "5 phút 00 giây"
    no_data = doc["rows"][4]
    assert no_data["availability_pct"] is None and no_data["met_target"] is None
    assert doc["kpis"][0] == {
        "service": "fibre",
        "service_label": "cáp quang",
        "share_met_pct": 100.0,
        "communes_met": 2,
        "communes_failed": 0,
        "communes_insufficient": 0,
        "communes_no_data": 1,
        "coverage_pct": 58.333333,
    }
    assert doc["kpi_texts"][0].startswith("Tỷ lệ xã có cáp quang đạt mục tiêu")
    assert json.loads(render_json(hand_case(), "en"))["rows"][0]["service_label"] == "fibre"


def test_cli_choices_are_the_reports_vocabulary() -> None:
    """xanet/report_cli.py spells the groups, sort keys and services out (it must not load
    the collector to build its parser): they are the report's."""
    from typing import get_args

    from collector.report import SERVICE_ORDER, Group, SortKey
    from xanet import report_cli

    assert report_cli.GROUPS == get_args(Group)
    assert report_cli.SORTS == get_args(SortKey)
    assert report_cli.SERVICES == SERVICE_ORDER
