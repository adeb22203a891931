"""The availability report as people and machines read it: a plain-text table, CSV or
JSON, in Vietnamese or English, with times in the report's time zone (pure).
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from collector.report import AvailabilityReport, Group, Row
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
from xanet.texts import Lang, table

CsvPart = Literal["rows", "kpis"]


def window_line(report: AvailabilityReport, lang: Lang) -> str:
    return table("report", lang)["window"].format(
        start=format_time(report.window_start, report.tz),
        end=format_time(report.window_end, report.tz),
        tz=zone_label(report.tz, report.window_start),
    )


def kpi_sentences(report: AvailabilityReport, lang: Lang) -> list[str]:
    """One sentence per service, plus one per service with communes lacking data."""
    t = table("report", lang)
    out: list[str] = []
    for kpi in report.kpis:
        label = service_label(kpi.service, lang)
        share = kpi.share_met_pct
        if share is None:
            out.append(t["kpi_none"].format(service=label))
        else:
            out.append(
                t["kpi"].format(
                    service=label,
                    share=format_pct(share, lang, 1),
                    met=kpi.met,
                    measured=kpi.measured,
                )
            )
        if kpi.apart:
            out.append(t["kpi_no_data"].format(count=kpi.apart, service=label))
    return out


def _key_headers(group: Group, lang: Lang) -> list[str]:
    t = table("report", lang)
    return {
        "commune": [t["code"], t["commune"]],
        "site": [t["site"], t["site_name"]],
        "device": [t["device"], t["site_name"]],
        "service": [],
        "operator": [t["operator"]],
    }[group]


def _key_cells(row: Row) -> list[str]:
    if row.group == "service":
        return []
    if row.group == "operator":
        return [row.key]
    return [row.key, row.name]


def _columns(report: AvailabilityReport) -> tuple[bool, bool]:
    """Whether the maintenance and the stations columns carry anything."""
    return (any(r.summary.maintenance_s > 0 for r in report.rows),
            any(r.stations is not None for r in report.rows))


def render_table(report: AvailabilityReport, lang: Lang = "vi") -> str:
    """A plain-text report: header, one line per row, then the KPIs."""
    t = table("report", lang)
    maint, stations = _columns(report)
    keys = _key_headers(report.group, lang)
    header = [*keys, t["service"], t["availability"], t["downtime"], t["outages"],
              t["coverage"]]
    numeric = set(range(len(keys) + 1, len(header)))
    if maint:
        numeric.add(len(header))
        header.append(t["maintenance"])
    if stations:
        header.append(t["stations"])
    header.append(t["met"])
    body = []
    for row in report.rows:
        s = row.summary
        availability = s.availability_pct
        cells = [*_key_cells(row), service_label(row.service, lang),
                 "-" if availability is None else format_pct(availability, lang),
                 format_duration(s.downtime_s, lang), str(s.outages),
                 format_pct(s.coverage_pct, lang, 1)]
        if maint:
            cells.append(format_duration(s.maintenance_s, lang))
        if stations:
            cells.append(stations_text(row.stations, lang))
        cells.append(status_text(row.status, lang))
        # NFC so that a name with combining diacritics counts one column per letter
        body.append([unicodedata.normalize("NFC", c) for c in cells])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [
        t["title"].format(group=t[f"group_{report.group}"]),
        window_line(report, lang),
        "",
        line(header),
        line(["-" * w for w in widths]),
        *(line(cells) for cells in body),
        "",
        t["kpi_title"].format(target=format_target(report.target_pct, lang),
                              cov=format_target(report.min_coverage_pct, lang)),
        *(f"- {s}" for s in kpi_sentences(report, lang)),
        "",
        t["note"],
    ]
    return "\n".join(out) + "\n"


def _num(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def render_csv(report: AvailabilityReport, lang: Lang = "vi", part: CsvPart = "rows") -> str:
    """CSV with headers in ``lang``; numbers with a dot, full precision; empty = no data."""
    t = table("report", lang)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if part == "rows":
        maint, stations = _columns(report)
        header = [*_key_headers(report.group, lang), t["service"], t["availability"],
                  t["downtime_s"], t["downtime"], t["outages"], t["coverage"]]
        if maint:
            header.append(t["maintenance_s"])
        if stations:
            header += [t["stations_total"], t["stations_up"], t["stations_most_down"]]
        writer.writerow([*header, t["met"]])
        for row in report.rows:
            s = row.summary
            availability = _num(s.availability_pct)
            cells: list[object] = [
                *_key_cells(row),
                service_label(row.service, lang),
                "" if availability is None else availability,
                _num(s.downtime_s, 3),
                format_duration(s.downtime_s, lang),
                s.outages,
                _num(s.coverage_pct),
            ]
            if maint:
                cells.append(_num(s.maintenance_s, 3))
            if stations:
                st = row.stations
                up = None if st is None else _num(st.up_pct)
                cells += ["" if st is None else st.total, "" if up is None else up,
                          "" if st is None else st.most_down]
            cells.append("" if row.met_target is None else t["yes" if row.met_target else "no"])
            writer.writerow(cells)
    else:
        writer.writerow(
            [
                t["service"],
                t["target"],
                t["share"],
                t["communes_met"],
                t["communes_failed"],
                t["communes_insufficient"],
                t["communes_no_data"],
                t["coverage"],
            ]
        )
        for kpi in report.kpis:
            share = _num(kpi.share_met_pct)
            cov = _num(kpi.coverage_pct)
            writer.writerow(
                [
                    service_label(kpi.service, lang),
                    report.target_pct,
                    "" if share is None else share,
                    kpi.met,
                    kpi.failed,
                    kpi.insufficient,
                    kpi.no_data,
                    "" if cov is None else cov,
                ]
            )
    return buf.getvalue()


def row_json(row: Row, lang: Lang) -> dict[str, object]:
    s = row.summary
    st = row.stations
    return {
        "group": row.group,
        "key": row.key,
        "commune": row.commune,
        "name": row.name,
        "service": row.service,
        "service_label": service_label(row.service, lang),
        "availability_pct": _num(s.availability_pct),
        "downtime_s": _num(s.downtime_s, 3),
        "downtime": format_duration(s.downtime_s, lang),
        "outages": s.outages,
        "coverage_pct": _num(s.coverage_pct),
        "up_s": _num(s.up_s, 3),
        "down_s": _num(s.down_s, 3),
        "unknown_s": _num(s.unknown_s, 3),
        "maintenance_s": _num(s.maintenance_s, 3),
        "status": row.status,
        "met_target": row.met_target,
        "stations": None if st is None else {
            "total": st.total, "up_pct": _num(st.up_pct), "most_down": st.most_down},
    }


def render_json(report: AvailabilityReport, lang: Lang = "vi") -> str:
    """JSON with English keys (stable for machines) and texts in ``lang``."""
    t = table("report", lang)
    doc = {
        "lang": lang,
        "title": t["title"].format(group=t[f"group_{report.group}"]),
        "group": report.group,
        "tz": report.tz,
        "window": {
            "start": report.window_start,
            "end": report.window_end,
            "start_local": datetime.fromtimestamp(report.window_start,
                                                  ZoneInfo(report.tz)).isoformat(),
            "end_local": datetime.fromtimestamp(report.window_end,
                                                ZoneInfo(report.tz)).isoformat(),
        },
        "target_pct": report.target_pct,
        "min_coverage_pct": report.min_coverage_pct,
        "note": t["note"],
        "rows": [row_json(row, lang) for row in report.rows],
        "kpis": [
            {
                "service": kpi.service,
                "service_label": service_label(kpi.service, lang),
                "share_met_pct": _num(kpi.share_met_pct),
                "communes_met": kpi.met,
                "communes_failed": kpi.failed,
                "communes_insufficient": kpi.insufficient,
                "communes_no_data": kpi.no_data,
                "coverage_pct": _num(kpi.coverage_pct),
            }
            for kpi in report.kpis
        ],
        "kpi_texts": kpi_sentences(report, lang),
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
