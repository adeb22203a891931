"""The monthly document a province signs: one self-contained HTML file (and its PDF).

Contents, from the data of one window (usually a calendar month in local time):
the province's KPIs against the targets it declares (``[report.targets]``), the share
of communes meeting the target per service with data coverage, the ten worst communes,
a per-operator table, the daily availability per service and the outage timeline as
charts (:mod:`collector.charts`), the outage list, a footer with the coverage and the
definitions, and a signature block. Every figure comes from the same functions as
``xanet report availability`` (:func:`collector.readback.report_from`), so the
document and ``--format json`` agree. The template is ``templates/monthly.html``.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from string import Template
from typing import Final
from zoneinfo import ZoneInfo

from collector import charts
from collector.config import CollectorConfig
from collector.outagelist import TEXTS as OUTAGE_TEXTS
from collector.outagelist import Outage
from collector.readback import Filters, ReportData, outage_list, report_from
from collector.report import (
    SERVICE_ORDER,
    AvailabilityReport,
    Lang,
    Row,
    ServiceKpi,
    format_duration,
    format_pct,
    format_target,
    format_time,
    service_label,
    service_rank,
    stations_text,
    status_text,
    zone_label,
)
from collector.timeline import Totals, totals
from xanet.inventory import Inventory

TEMPLATE = Path(__file__).with_name("templates") / "monthly.html"
OUTAGES_SHOWN: Final = 40  # the document lists the longest; the CLI lists them all
TIMELINE_ROWS: Final = 25
UNIT_S: Final = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0}

TEXTS: Final[Mapping[Lang, Mapping[str, str]]] = {
    "vi": {
        "doc_title": "Báo cáo khả dụng hạ tầng viễn thông",
        "subtitle": "Tỉnh {province} – {period}",
        "month": "tháng {m:02d}/{y}",
        "period": "{start} – {end}",
        "generated": "Lập lúc {time}.",
        "kpi_head": "1. Chỉ tiêu của tỉnh so với mục tiêu đã công bố",
        "kpi_intro": (
            "Một xã đạt khi khả dụng của dịch vụ đạt mục tiêu khả dụng và độ phủ dữ liệu "
            "từ {cov}% trở lên; xã không đủ dữ liệu được tính riêng, không coi là đạt hay "
            "không đạt."
        ),
        "service": "Dịch vụ",
        "declared": "Mục tiêu công bố",
        "declared_cell": "{pct}% số xã đạt khả dụng ≥ {avail}%",
        "measured": "Kết quả đo",
        "communes": "Số xã đạt / đủ dữ liệu",
        "insufficient": "Không đủ dữ liệu",
        "coverage": "Độ phủ dữ liệu",
        "verdict": "Đánh giá",
        "v_met": "Đạt",
        "v_failed": "Không đạt",
        "v_insufficient": "Không đủ dữ liệu",
        "v_none": "Không có mục tiêu",
        "trend_head": "2. Khả dụng theo ngày",
        "trend_title": "Khả dụng trung bình các xã theo ngày (%)",
        "trend_y": "Khả dụng (%)",
        "target_line": "mục tiêu {pct}%",
        "worst_head": "3. Mười xã có khả dụng thấp nhất",
        "worst_intro": "Mỗi xã một dòng: dịch vụ kém nhất của xã trong kỳ.",
        "code": "Mã xã",
        "commune": "Xã",
        "availability": "Khả dụng (%)",
        "downtime": "Gián đoạn",
        "outages": "Số lần",
        "stations": "Trạm hoạt động",
        "status": "Đạt mục tiêu",
        "operator_head": "4. Theo nhà mạng",
        "operator_intro": (
            "Tổng thời gian của các trạm của từng nhà mạng; trạm dùng chung được tính cho "
            "mỗi nhà mạng."
        ),
        "operator": "Nhà mạng",
        "timeline_head": "5. Diễn biến sự cố",
        "timeline_title": "Sự cố theo xã (các xã bị gián đoạn lâu nhất)",
        "timeline_x_days": "Ngày trong kỳ",
        "timeline_x_hours": "Giờ trong kỳ",
        "timeline_x_minutes": "Phút trong kỳ",
        "timeline_empty": "Không có sự cố",
        "outages_head": "6. Danh sách sự cố",
        "outages_more": (
            "{shown} sự cố dài nhất trong tổng số {count}; danh sách đầy đủ: "
            "xanet report outages {args}"
        ),
        "footer_head": "Dữ liệu và định nghĩa",
        "footer_coverage": (
            "Độ phủ dữ liệu của kỳ: {cov}% thời gian đã biết trạng thái (trên tổng thời gian "
            "của {n} cặp xã–dịch vụ, trừ bảo trì đã khai báo {maint})."
        ),
        "footer_known": "Dữ liệu đầy đủ đến {time}.",
        "sign_prepared": "Người lập",
        "sign_approved": "Thủ trưởng đơn vị",
        "sign_hint": "(ký, ghi rõ họ tên)",
        "none": "không có",
    },
    "en": {
        "doc_title": "Telecommunications infrastructure availability report",
        "subtitle": "{province} province – {period}",
        "month": "{month_name} {y}",
        "period": "{start} – {end}",
        "generated": "Generated {time}.",
        "kpi_head": "1. Province KPIs against the declared targets",
        "kpi_intro": (
            "A commune meets the target when the service's availability reaches the "
            "availability target with at least {cov}% data coverage; communes with "
            "insufficient data are counted apart, neither met nor failed."
        ),
        "service": "Service",
        "declared": "Declared target",
        "declared_cell": "{pct}% of communes at ≥ {avail}% availability",
        "measured": "Measured",
        "communes": "Communes met / with data",
        "insufficient": "Insufficient data",
        "coverage": "Data coverage",
        "verdict": "Verdict",
        "v_met": "Met",
        "v_failed": "Not met",
        "v_insufficient": "Insufficient data",
        "v_none": "No target declared",
        "trend_head": "2. Availability per day",
        "trend_title": "Mean availability of the communes per day (%)",
        "trend_y": "Availability (%)",
        "target_line": "target {pct}%",
        "worst_head": "3. The ten communes with the lowest availability",
        "worst_intro": "One line per commune: its worst service in the period.",
        "code": "Code",
        "commune": "Commune",
        "availability": "Availability (%)",
        "downtime": "Downtime",
        "outages": "Outages",
        "stations": "Stations up",
        "status": "Target met",
        "operator_head": "4. Per operator",
        "operator_intro": (
            "Station time of each operator's sites; a shared site counts for each operator."
        ),
        "operator": "Operator",
        "timeline_head": "5. Outage timeline",
        "timeline_title": "Outages per commune (the communes down longest)",
        "timeline_x_days": "Day of the period",
        "timeline_x_hours": "Hour of the period",
        "timeline_x_minutes": "Minute of the period",
        "timeline_empty": "No outage",
        "outages_head": "6. Outages",
        "outages_more": (
            "The {shown} longest of {count} outages; the full list: xanet report outages {args}"
        ),
        "footer_head": "Data and definitions",
        "footer_coverage": (
            "Data coverage of the period: {cov}% of the time with a known state (over {n} "
            "commune-services, declared maintenance of {maint} left out)."
        ),
        "footer_known": "Data complete up to {time}.",
        "sign_prepared": "Prepared by",
        "sign_approved": "Approved by",
        "sign_hint": "(signature, full name)",
        "none": "none",
    },
}
MONTHS_EN: Final = ("January", "February", "March", "April", "May", "June", "July",
                    "August", "September", "October", "November", "December")


@dataclass(frozen=True)
class KpiLine:
    kpi: ServiceKpi
    communes_pct: float | None  # declared share of communes; None: no target declared
    availability_pct: float  # availability a commune must reach
    label: str | None
    verdict: str  # met, failed, insufficient, none


@dataclass
class Monthly:
    lang: Lang
    tz: str
    province: str
    province_name: str
    start: float
    end: float
    month: str | None
    generated: float
    min_coverage_pct: float
    target_pct: float
    report: AvailabilityReport
    kpis: list[KpiLine]
    worst: list[Row]
    operators: list[Row]
    days: list[str]
    trend: dict[str, list[float | None]]
    outages: list[Outage]
    coverage: Totals
    known_until: float | None
    timeline_rows: list[str] = field(default_factory=list)
    timeline_bars: list[charts.Bar] = field(default_factory=list)
    timeline_unit: str = "days"  # of the timeline's x axis: days, hours or minutes


def _day_edges(start: float, end: float, tz: str) -> list[float]:
    zone = ZoneInfo(tz)
    day = datetime.fromtimestamp(start, zone).replace(hour=0, minute=0, second=0,
                                                      microsecond=0)
    edges = [start]
    while True:
        day = (day + timedelta(days=1, hours=2)).replace(hour=0)  # DST-safe next midnight
        if day.timestamp() >= end:
            break
        edges.append(day.timestamp())
    return [*edges, end]


def build_monthly(
    data: ReportData,
    cfg: CollectorConfig,
    inventory: Inventory,
    filters: Filters,
    *,
    lang: Lang,
    tz: str,
    target_pct: float | None = None,
    min_coverage_pct: float | None = None,
    month: str | None = None,
    generated: float | None = None,
) -> Monthly:
    target = cfg.report.target_pct if target_pct is None else target_pct
    min_cov = cfg.report.min_coverage_pct if min_coverage_pct is None else min_coverage_pct

    def report(group: str = "commune", avail: float = target) -> AvailabilityReport:
        return report_from(data, cfg, inventory, filters, group=group,  # type: ignore[arg-type]
                           sort="availability", target_pct=avail, min_coverage_pct=min_cov,
                           tz=tz)

    main = report()
    kpis: list[KpiLine] = []
    for kpi in main.kpis:
        declared = cfg.report.targets.get(kpi.service)
        avail = target if declared is None or declared.availability_pct is None \
            else declared.availability_pct
        if avail != target:
            kpi = next(k for k in report(avail=avail).kpis if k.service == kpi.service)
        share = kpi.share_met_pct
        if declared is None:
            verdict = "none"
        elif share is None:
            verdict = "insufficient"
        else:
            verdict = "met" if share >= declared.communes_pct - 1e-9 else "failed"
        kpis.append(KpiLine(kpi, None if declared is None else declared.communes_pct, avail,
                            None if declared is None else declared.label, verdict))

    worst_of: dict[str, Row] = {}
    for row in main.rows:  # worst first: the first row of a commune is its worst
        if row.availability_pct is not None:
            worst_of.setdefault(row.commune, row)
    worst = list(worst_of.values())[:10]
    operators = list(report("operator").rows) if inventory.operators() else []
    operators.sort(key=lambda r: (r.key, service_rank(r.service)))

    edges = _day_edges(data.start, data.end, tz)
    days = [datetime.fromtimestamp(a, ZoneInfo(tz)).strftime("%d/%m") for a in edges[:-1]]
    trend: dict[str, list[float | None]] = {}
    services = sorted({k.service for k in data.services}, key=service_rank)
    for service in services:
        timelines = [t for k, t in data.services.items() if k.service == service]
        values: list[float | None] = []
        for a, b in itertools.pairwise(edges):
            day = Totals(0.0)
            for t in timelines:
                day = day + totals(t, a, b)
            values.append(day.availability_pct)
        trend[service] = values

    outages = outage_list(data, inventory, filters)
    coverage = Totals(0.0)
    for row in main.communes:
        coverage = coverage + row.summary
    doc = Monthly(lang, tz, inventory.province.code, inventory.province.name, data.start,
                  data.end, month, data.start if generated is None else generated, min_cov,
                  target, main, kpis, worst, operators, days, trend, outages, coverage,
                  data.known_until)
    down_by_commune: dict[str, float] = {}
    for o in outages:
        down_by_commune[o.commune] = down_by_commune.get(o.commune, 0.0) + o.duration_s
    names = {c.code: c.name for c in inventory.communes}
    top = sorted(down_by_commune, key=lambda c: (-down_by_commune[c], c))[:TIMELINE_ROWS]
    doc.timeline_rows = [f"{names.get(c, c)} ({c})" for c in top]
    row_of = dict(zip(top, doc.timeline_rows, strict=True))
    window_s = data.end - data.start
    doc.timeline_unit = ("days" if window_s >= 2 * 86400 else
                         "hours" if window_s >= 2 * 3600 else "minutes")
    unit = UNIT_S[doc.timeline_unit]
    for o in outages:
        if o.commune in row_of and o.services:
            doc.timeline_bars.append(charts.Bar(
                row_of[o.commune], (o.start - data.start) / unit, (o.end - data.start) / unit,
                min(o.services, key=service_rank)))
    return doc


# ------------------------------------------------------------------ HTML


def _e(text: object) -> str:
    return html.escape(str(text))


def _td(text: str, cls: str = "", key: str | None = None) -> str:
    attrs = f' class="{cls}"' if cls else ""
    if key:
        attrs += f' data-key="{_e(key)}"'
    return f"<td{attrs}>{_e(text)}</td>"


def _table(head: Sequence[str], rows: Sequence[str], cls: str = "") -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    return (f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _pct_or_dash(value: float | None, lang: Lang, decimals: int = 3) -> str:
    return "–" if value is None else format_pct(value, lang, decimals)


def _period(doc: Monthly) -> str:
    t = TEXTS[doc.lang]
    if doc.month:
        y, m = (int(x) for x in doc.month.split("-"))
        return t["month"].format(m=m, y=y, month_name=MONTHS_EN[m - 1])
    return t["period"].format(start=format_time(doc.start, doc.tz),
                              end=format_time(doc.end, doc.tz))


def _kpi_table(doc: Monthly) -> str:
    t, lang = TEXTS[doc.lang], doc.lang
    rows = []
    for line in doc.kpis:
        k = line.kpi
        declared = "–" if line.communes_pct is None else t["declared_cell"].format(
            pct=format_target(line.communes_pct, lang),
            avail=format_target(line.availability_pct, lang))
        if line.label:
            declared += f" ({line.label})"
        verdict = t[f"v_{line.verdict}"]
        rows.append(
            f'<tr class="verdict-{line.verdict}">'
            + _td(service_label(k.service, lang), "name")
            + _td(declared)
            + _td(_pct_or_dash(k.share_met_pct, lang, 1) + ("" if k.share_met_pct is None
                                                             else "%"),
                  "num big", f"kpi.{k.service}.share_met_pct")
            + _td(f"{k.met}/{k.measured}", "num", f"kpi.{k.service}.met")
            + _td(str(k.apart), "num", f"kpi.{k.service}.apart")
            + _td(_pct_or_dash(k.coverage_pct, lang, 1) + ("" if k.coverage_pct is None
                                                           else "%"),
                  "num", f"kpi.{k.service}.coverage_pct")
            + _td(verdict, "verdict")
            + "</tr>")
    head = [t["service"], t["declared"], t["measured"], t["communes"], t["insufficient"],
            t["coverage"], t["verdict"]]
    return _table(head, rows, "kpis")


def _worst_table(doc: Monthly) -> str:
    t, lang = TEXTS[doc.lang], doc.lang
    rows = []
    for i, r in enumerate(doc.worst):
        s = r.summary
        rows.append(
            "<tr>" + _td(r.commune, "code", f"worst.{i}.commune") + _td(r.name, "name")
            + _td(service_label(r.service, lang), "service", f"worst.{i}.service")
            + _td(_pct_or_dash(s.availability_pct, lang), "num",
                  f"worst.{i}.availability_pct")
            + _td(format_duration(s.downtime_s, lang), "num")
            + _td(str(s.outages), "num")
            + _td(format_pct(s.coverage_pct, lang, 1), "num")
            + _td(stations_text(r.stations, lang), "small")
            + _td(status_text(r.status, lang)) + "</tr>")
    head = [t["code"], t["commune"], t["service"], t["availability"], t["downtime"],
            t["outages"], t["coverage"] + " (%)", t["stations"], t["status"]]
    return _table(head, rows, "worst")


def _operator_table(doc: Monthly) -> str:
    t, lang = TEXTS[doc.lang], doc.lang
    if not doc.operators:
        return f"<p>{_e(t['none'])}</p>"
    rows = []
    for r in doc.operators:
        s = r.summary
        rows.append(
            "<tr>" + _td(r.key, "name") + _td(service_label(r.service, lang), "service")
            + _td(_pct_or_dash(s.availability_pct, lang), "num",
                  f"operator.{r.key}.{r.service}.availability_pct")
            + _td(format_duration(s.downtime_s, lang), "num")
            + _td(str(s.outages), "num")
            + _td(format_pct(s.coverage_pct, lang, 1), "num")
            + _td(stations_text(r.stations, lang), "small") + "</tr>")
    head = [t["operator"], t["service"], t["availability"], t["downtime"], t["outages"],
            t["coverage"] + " (%)", t["stations"]]
    return _table(head, rows, "operators")


def _outage_table(doc: Monthly) -> str:
    ot, lang = OUTAGE_TEXTS[doc.lang], doc.lang
    if not doc.outages:
        return f"<p>{_e(ot['none'])}</p>"
    shown = sorted(doc.outages, key=lambda o: (-o.duration_s, o.start))[:OUTAGES_SHOWN]
    shown.sort(key=lambda o: (o.start, o.root))
    rows = []
    for o in shown:
        services = ", ".join(service_label(s, lang) for s in sorted(o.services, key=service_rank))
        rows.append(
            "<tr>" + _td(format_time(o.start, doc.tz), "time")
            + _td(ot["ongoing"] if o.ongoing else format_time(o.end, doc.tz), "time")
            + _td(format_duration(o.duration_s, lang), "num")
            + _td(o.commune, "code") + _td(o.root, "nowrap") + _td(ot[o.cause], "nowrap")
            + _td(str(len(o.sites)), "num") + _td(services, "small")
            + _td(ot["yes" if o.alerted else "no"]) + _td(ot["yes" if o.maintenance else "no"])
            + "</tr>")
    offset = format_time(doc.start, doc.tz, zone=True).rsplit(" ", 1)[-1]
    head = [f"{ot['start']} ({offset})", f"{ot['end']} ({offset})", ot["duration"],
            ot["commune"], ot["root"], ot["cause"], ot["sites"], ot["services"],
            ot["alerted"], ot["maintenance"]]
    out = _table(head, rows, "outages")
    if len(doc.outages) > len(shown):
        args = f"--month {doc.month}" if doc.month else (
            f"--from {format_time(doc.start, doc.tz).replace(' ', 'T')} "
            f"--to {format_time(doc.end, doc.tz).replace(' ', 'T')}")
        out += "<p class='note'>" + _e(TEXTS[lang]["outages_more"].format(
            shown=len(shown), count=len(doc.outages), args=args)) + "</p>"
    return out


def render_html(doc: Monthly) -> str:
    """The document as one HTML file: styles and charts inline, nothing fetched."""
    t, lang = TEXTS[doc.lang], doc.lang
    zone = zone_label(doc.tz, doc.start)
    labels = {s: service_label(s, lang) for s in SERVICE_ORDER}
    trend = charts.daily_trend(
        doc.days, doc.trend, labels, target_pct=doc.target_pct, title=t["trend_title"],
        ylabel=t["trend_y"], target_label=t["target_line"].format(
            pct=format_target(doc.target_pct, lang)))
    timeline = charts.outage_timeline(
        doc.timeline_bars, doc.timeline_rows, labels,
        span=(doc.end - doc.start) / UNIT_S[doc.timeline_unit], title=t["timeline_title"],
        xlabel=t[f"timeline_x_{doc.timeline_unit}"], empty_text=t["timeline_empty"])
    cov = doc.coverage
    footer = [
        t["footer_coverage"].format(cov=format_pct(cov.coverage_pct, lang, 1),
                                    n=len(doc.report.communes),
                                    maint=format_duration(cov.maintenance_s, lang)),
        TEXTS[lang]["kpi_intro"].format(cov=format_target(doc.min_coverage_pct, lang)),
        _note(doc),
    ]
    if doc.known_until is not None:
        footer.append(t["footer_known"].format(time=format_time(doc.known_until, doc.tz)))
    values = {
        "lang": lang,
        "title": _e(f"{t['doc_title']} – {doc.province_name} – {_period(doc)}"),
        "doc_title": _e(t["doc_title"]),
        "subtitle": _e(t["subtitle"].format(province=doc.province_name, period=_period(doc))),
        "window": _e(f"{format_time(doc.start, doc.tz)} – {format_time(doc.end, doc.tz)} "
                     f"({zone})"),
        "generated": _e(t["generated"].format(time=format_time(doc.generated, doc.tz,
                                                               zone=True))),
        "kpi_head": _e(t["kpi_head"]),
        "kpi_intro": _e(t["kpi_intro"].format(cov=format_target(doc.min_coverage_pct, lang))),
        "kpi_table": _kpi_table(doc),
        "trend_head": _e(t["trend_head"]),
        "trend_chart": trend,
        "worst_head": _e(t["worst_head"]),
        "worst_intro": _e(t["worst_intro"]),
        "worst_table": _worst_table(doc),
        "operator_head": _e(t["operator_head"]),
        "operator_intro": _e(t["operator_intro"]),
        "operator_table": _operator_table(doc),
        "timeline_head": _e(t["timeline_head"]),
        "timeline_chart": timeline,
        "outages_head": _e(t["outages_head"]),
        "outage_table": _outage_table(doc),
        "footer_head": _e(t["footer_head"]),
        "footer": "".join(f"<p>{_e(p)}</p>" for p in footer),
        "sign_prepared": _e(t["sign_prepared"]),
        "sign_approved": _e(t["sign_approved"]),
        "sign_hint": _e(t["sign_hint"]),
        "page_label": "Trang" if lang == "vi" else "Page",
        "page_of": "/" if lang == "vi" else "of",
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)


def _note(doc: Monthly) -> str:
    from collector.report import TEXTS as REPORT_TEXTS

    return REPORT_TEXTS[doc.lang]["note"]
