"""What the monthly document a province signs says: its figures, from the data of one
window already read back (pure).

Contents, from the data of one window (usually a calendar month in local time):
the province's KPIs against the targets it declares (``[report.targets]``), the share
of communes meeting the target per service with data coverage, the ten worst communes,
a per-operator table, the daily availability per service and the outage timeline as
charts (:mod:`collector.charts`), the outage list, a footer with the coverage and the
definitions, and a signature block. Every figure comes from the same functions as
``xanet report availability`` (:func:`collector.readback.report_from`), so the
document and ``--format json`` agree. This module gathers the figures; the HTML is
:mod:`collector.monthlyhtml` (template ``templates/monthly.html``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from collector import charts
from collector.config import CollectorConfig
from collector.outagelist import Outage
from collector.readback import Filters, ReportData, outage_list, report_from
from collector.report import AvailabilityReport, Row, ServiceKpi, service_rank
from collector.timeline import Totals, totals
from xanet.inventory import Inventory
from xanet.texts import Lang

TIMELINE_ROWS: Final = 25
UNIT_S: Final = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0}


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

