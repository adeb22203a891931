"""The monthly document as one self-contained HTML file: tables, charts and texts laid
into ``templates/monthly.html``, styles and charts inline, nothing fetched (pure but for
reading the template).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Final

from collector import charts
from collector.monthly import UNIT_S, Monthly
from collector.report import SERVICE_ORDER, service_rank
from collector.reportformat import (
    format_duration,
    format_pct,
    format_target,
    format_time,
    service_label,
    stations_text,
    status_text,
    zone_label,
)
from xanet.texts import MONTHS_EN, Lang, table

TEMPLATE = Path(__file__).with_name("templates") / "monthly.html"
OUTAGES_SHOWN: Final = 40  # the document lists the longest; the CLI lists them all


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
    t = table("monthly", doc.lang)
    if doc.month:
        y, m = (int(x) for x in doc.month.split("-"))
        return t["month"].format(m=m, y=y, month_name=MONTHS_EN[m - 1])
    return t["period"].format(start=format_time(doc.start, doc.tz),
                              end=format_time(doc.end, doc.tz))


def _kpi_table(doc: Monthly) -> str:
    t, lang = table("monthly", doc.lang), doc.lang
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
    t, lang = table("monthly", doc.lang), doc.lang
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
    t, lang = table("monthly", doc.lang), doc.lang
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
    ot, lang = table("outages", doc.lang), doc.lang
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
        out += "<p class='note'>" + _e(table("monthly", lang)["outages_more"].format(
            shown=len(shown), count=len(doc.outages), args=args)) + "</p>"
    return out


def render_html(doc: Monthly) -> str:
    """The document as one HTML file: styles and charts inline, nothing fetched."""
    t, lang = table("monthly", doc.lang), doc.lang
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
        t["kpi_intro"].format(cov=format_target(doc.min_coverage_pct, lang)),
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
        "page_label": t["page_label"],
        "page_of": t["page_of"],
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)


def _note(doc: Monthly) -> str:
    return table("report", doc.lang)["note"]
