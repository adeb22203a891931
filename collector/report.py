"""Availability report per commune and service, and province KPIs (pure).

Input: service timelines (``ServiceKey -> sorted changes``), or the state
points as read back from storage (:func:`timelines_from_points`), plus a
window. Output: an :class:`AvailabilityReport` and its renderings as a text
table, CSV or JSON, in Vietnamese or English.

KPI, as the provincial reports state it: per service, the share of communes
whose availability met the target (default 99%). Communes without data for
a service (no known time, or less coverage than ``min_coverage_pct``) are
counted apart as "no data": neither met nor failed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from collector.availability import Change, ServiceKey, ServicePoint, State, Summary, normalize
from collector.availability import summarize as summarize_timeline

Lang = Literal["vi", "en"]
CsvPart = Literal["rows", "kpis"]

#: Report order of the product's services; others follow alphabetically.
SERVICE_ORDER: Final[tuple[str, ...]] = (
    "fibre",
    "broadband",
    "mobile_2g",
    "mobile_3g",
    "mobile_4g",
)

SERVICE_LABELS: Final[Mapping[Lang, Mapping[str, str]]] = {
    "vi": {
        "fibre": "cáp quang",
        "broadband": "băng rộng",
        "mobile_2g": "di động 2G",
        "mobile_3g": "di động 3G",
        "mobile_4g": "di động 4G",
    },
    "en": {
        "fibre": "fibre",
        "broadband": "broadband",
        "mobile_2g": "mobile 2G",
        "mobile_3g": "mobile 3G",
        "mobile_4g": "mobile 4G",
    },
}

TEXTS: Final[Mapping[Lang, Mapping[str, str]]] = {
    "vi": {
        "title": "Khả dụng dịch vụ theo xã",
        "window": "Kỳ báo cáo: {start} – {end} (UTC)",
        "code": "Mã xã",
        "commune": "Xã",
        "service": "Dịch vụ",
        "availability": "Khả dụng (%)",
        "downtime": "Thời gian gián đoạn",
        "downtime_s": "Thời gian gián đoạn (giây)",
        "outages": "Số lần gián đoạn",
        "coverage": "Độ phủ dữ liệu (%)",
        "met": "Đạt mục tiêu",
        "yes": "có",
        "no": "không",
        "no_data": "không có dữ liệu",
        "kpi_title": "Chỉ tiêu cấp tỉnh (mục tiêu khả dụng {target}%)",
        "kpi": "Tỷ lệ xã có {service} đạt mục tiêu: {share}% ({met}/{measured} xã có dữ liệu)",
        "kpi_none": "Tỷ lệ xã có {service} đạt mục tiêu: không có dữ liệu",
        "kpi_no_data": (
            "{count} xã không có dữ liệu {service}: không tính vào tỷ lệ, không coi là không đạt."
        ),
        "share": "Tỷ lệ đạt (%)",
        "communes_met": "Số xã đạt",
        "communes_failed": "Số xã không đạt",
        "communes_no_data": "Số xã không có dữ liệu",
        "target": "Mục tiêu (%)",
        "note": (
            "Khả dụng = thời gian hoạt động / thời gian đã biết trạng thái; "
            "thời gian không có dữ liệu không tính là gián đoạn mà giảm độ phủ dữ liệu."
        ),
    },
    "en": {
        "title": "Service availability by commune",
        "window": "Window: {start} – {end} (UTC)",
        "code": "Commune code",
        "commune": "Commune",
        "service": "Service",
        "availability": "Availability (%)",
        "downtime": "Downtime",
        "downtime_s": "Downtime (s)",
        "outages": "Outages",
        "coverage": "Data coverage (%)",
        "met": "Target met",
        "yes": "yes",
        "no": "no",
        "no_data": "no data",
        "kpi_title": "Province KPIs (availability target {target}%)",
        "kpi": (
            "Share of communes whose {service} met the target: {share}% "
            "({met} of {measured} communes with data)"
        ),
        "kpi_none": "Share of communes whose {service} met the target: no data",
        "kpi_no_data": (
            "{count} communes have no {service} data: left out of the share, "
            "not counted as failing."
        ),
        "share": "Share met (%)",
        "communes_met": "Communes met",
        "communes_failed": "Communes failed",
        "communes_no_data": "Communes without data",
        "target": "Target (%)",
        "note": (
            "Availability = up time / time with known state; time without data is "
            "never counted as downtime, it lowers the data coverage instead."
        ),
    },
}

_EPS: Final = 1e-9  # float slack when comparing a percentage with the target


@dataclass(frozen=True, slots=True)
class CommuneRow:
    commune: str
    name: str
    service: str
    summary: Summary
    met_target: bool | None  # None: no data

    @property
    def availability_pct(self) -> float | None:
        return self.summary.availability_pct


@dataclass(frozen=True, slots=True)
class ServiceKpi:
    service: str
    met: int
    failed: int
    no_data: int

    @property
    def measured(self) -> int:
        return self.met + self.failed

    @property
    def share_met_pct(self) -> float | None:
        """100 * met / (met + failed); None when no commune has data."""
        return None if self.measured == 0 else 100.0 * self.met / self.measured


@dataclass(frozen=True, slots=True)
class AvailabilityReport:
    window_start: float
    window_end: float
    target_pct: float
    min_coverage_pct: float
    rows: tuple[CommuneRow, ...]
    kpis: tuple[ServiceKpi, ...]


def _service_rank(service: str) -> tuple[int, str]:
    try:
        return SERVICE_ORDER.index(service), ""
    except ValueError:
        return len(SERVICE_ORDER), service


def timelines_from_points(
    points: Iterable[ServicePoint | tuple[str, str, float, State]],
) -> dict[ServiceKey, list[Change]]:
    """Group state points read back from storage into normalized service timelines.

    Tuples are ``(commune, service, ts, state)``. Include, per key, the last
    point before the window (InfluxQL ``last()`` with ``time < start``), or the
    report treats the window's beginning as unknown.
    """
    grouped: dict[ServiceKey, list[tuple[float, State]]] = {}
    for p in points:
        if isinstance(p, ServicePoint):
            key, ts, state = p.key, p.ts, p.state
        else:
            key, ts, state = ServiceKey(p[0], p[1]), p[2], p[3]
        grouped.setdefault(key, []).append((ts, state))
    return {key: normalize(pts) for key, pts in grouped.items()}


def build_report(
    timelines: Mapping[ServiceKey, Sequence[Change]],
    *,
    window_start: float,
    window_end: float,
    names: Mapping[str, str] | None = None,
    expected: Iterable[ServiceKey] = (),
    target_pct: float = 99.0,
    min_coverage_pct: float = 0.0,
    known_until: float | None = None,
) -> AvailabilityReport:
    """Rows per (commune, service) and KPIs per service over ``[window_start, window_end)``.

    ``names``: commune code -> name (from the inventory). ``expected``:
    commune-services that exist in the inventory; those without any points
    get a "no data" row rather than vanishing. ``known_until``: the time up
    to which storage is complete (e.g. the collector's last write); later time
    is unknown, whatever the last stored state says.
    """
    if not window_end > window_start:
        raise ValueError(f"empty window [{window_start}, {window_end})")
    names = names or {}
    keys = set(timelines) | set(expected)
    rows: list[CommuneRow] = []
    counts: dict[str, list[int]] = {}
    for key in sorted(keys, key=lambda k: (k.commune, _service_rank(k.service))):
        changes = list(timelines.get(key, ()))
        if known_until is not None:
            changes = [c for c in changes if c.ts < known_until]
            changes.append(Change(known_until, "unknown"))
        summary = summarize_timeline(changes, window_start, window_end)
        availability = summary.availability_pct
        met: bool | None
        if availability is None or summary.coverage_pct < min_coverage_pct - _EPS:
            met = None
        else:
            met = availability >= target_pct - _EPS
        rows.append(CommuneRow(key.commune, names.get(key.commune, ""), key.service, summary, met))
        tally = counts.setdefault(key.service, [0, 0, 0])
        tally[0 if met else 1 if met is False else 2] += 1
    kpis = tuple(
        ServiceKpi(service, *counts[service]) for service in sorted(counts, key=_service_rank)
    )
    return AvailabilityReport(
        window_start, window_end, target_pct, min_coverage_pct, tuple(rows), kpis
    )


# ------------------------------------------------------------------ formatting


def service_label(service: str, lang: Lang) -> str:
    return SERVICE_LABELS[lang].get(service, service)


def format_duration(seconds: float, lang: Lang) -> str:
    """Human downtime: ``45s``, ``12m 05s``, ``1h 02m``, ``2d 03h 04m`` (vi: giây/phút/giờ/ngày)."""
    total = round(seconds)
    d, rem = divmod(total, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if lang == "vi":
        if total < 60:
            return f"{s} giây"
        if total < 3600:
            return f"{m} phút {s:02d} giây"
        if total < 86400:
            return f"{h} giờ {m:02d} phút"
        return f"{d} ngày {h:02d} giờ {m:02d} phút"
    if total < 60:
        return f"{s}s"
    if total < 3600:
        return f"{m}m {s:02d}s"
    if total < 86400:
        return f"{h}h {m:02d}m"
    return f"{d}d {h:02d}h {m:02d}m"


def format_pct(value: float, lang: Lang, decimals: int = 3) -> str:
    """A percentage for people: truncated (never rounded up past a target), vi decimal comma."""
    scale = 10**decimals
    truncated = math.floor(value * scale + 1e-6) / scale
    text = f"{truncated:.{decimals}f}"
    return text.replace(".", ",") if lang == "vi" else text


def _format_target(value: float, lang: Lang) -> str:
    text = f"{value:g}"
    return text.replace(".", ",") if lang == "vi" else text


def _format_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


def kpi_sentences(report: AvailabilityReport, lang: Lang) -> list[str]:
    """One sentence per service, plus one per service with communes lacking data."""
    t = TEXTS[lang]
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
        if kpi.no_data:
            out.append(t["kpi_no_data"].format(count=kpi.no_data, service=label))
    return out


def _row_cells(row: CommuneRow, lang: Lang) -> list[str]:
    t = TEXTS[lang]
    s = row.summary
    availability = s.availability_pct
    return [
        row.commune,
        row.name,
        service_label(row.service, lang),
        t["no_data"] if availability is None else format_pct(availability, lang),
        format_duration(s.downtime_s, lang),
        str(s.outages),
        format_pct(s.coverage_pct, lang, 1),
        t["no_data"] if row.met_target is None else t["yes" if row.met_target else "no"],
    ]


def render_table(report: AvailabilityReport, lang: Lang = "vi") -> str:
    """A plain-text report: header, one line per commune-service, then the KPIs."""
    t = TEXTS[lang]
    header = [
        t["code"],
        t["commune"],
        t["service"],
        t["availability"],
        t["downtime"],
        t["outages"],
        t["coverage"],
        t["met"],
    ]
    # NFC so that a name with combining diacritics counts one column per letter
    body = [[unicodedata.normalize("NFC", c) for c in _row_cells(row, lang)] for row in report.rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    numeric = {3, 4, 5, 6}

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [
        t["title"],
        t["window"].format(
            start=_format_time(report.window_start), end=_format_time(report.window_end)
        ),
        "",
        line(header),
        line(["-" * w for w in widths]),
        *(line(cells) for cells in body),
        "",
        t["kpi_title"].format(target=_format_target(report.target_pct, lang)),
        *(f"- {s}" for s in kpi_sentences(report, lang)),
        "",
        t["note"],
    ]
    return "\n".join(out) + "\n"


def _num(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def render_csv(report: AvailabilityReport, lang: Lang = "vi", part: CsvPart = "rows") -> str:
    """CSV with headers in ``lang``; numbers with a dot, full precision; empty = no data."""
    t = TEXTS[lang]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if part == "rows":
        writer.writerow(
            [
                t["code"],
                t["commune"],
                t["service"],
                t["availability"],
                t["downtime_s"],
                t["downtime"],
                t["outages"],
                t["coverage"],
                t["met"],
            ]
        )
        for row in report.rows:
            s = row.summary
            availability = _num(s.availability_pct)
            writer.writerow(
                [
                    row.commune,
                    row.name,
                    service_label(row.service, lang),
                    "" if availability is None else availability,
                    _num(s.downtime_s, 3),
                    format_duration(s.downtime_s, lang),
                    s.outages,
                    _num(s.coverage_pct),
                    "" if row.met_target is None else t["yes" if row.met_target else "no"],
                ]
            )
    else:
        writer.writerow(
            [
                t["service"],
                t["target"],
                t["share"],
                t["communes_met"],
                t["communes_failed"],
                t["communes_no_data"],
            ]
        )
        for kpi in report.kpis:
            share = _num(kpi.share_met_pct)
            writer.writerow(
                [
                    service_label(kpi.service, lang),
                    report.target_pct,
                    "" if share is None else share,
                    kpi.met,
                    kpi.failed,
                    kpi.no_data,
                ]
            )
    return buf.getvalue()


def render_json(report: AvailabilityReport, lang: Lang = "vi") -> str:
    """JSON with English keys (stable for machines) and texts in ``lang``."""
    t = TEXTS[lang]
    kpi_texts = kpi_sentences(report, lang)
    doc = {
        "lang": lang,
        "title": t["title"],
        "window": {"start": report.window_start, "end": report.window_end},
        "target_pct": report.target_pct,
        "min_coverage_pct": report.min_coverage_pct,
        "note": t["note"],
        "rows": [
            {
                "commune": row.commune,
                "name": row.name,
                "service": row.service,
                "service_label": service_label(row.service, lang),
                "availability_pct": _num(row.summary.availability_pct),
                "downtime_s": _num(row.summary.downtime_s, 3),
                "downtime": format_duration(row.summary.downtime_s, lang),
                "outages": row.summary.outages,
                "coverage_pct": _num(row.summary.coverage_pct),
                "up_s": _num(row.summary.up_s, 3),
                "down_s": _num(row.summary.down_s, 3),
                "unknown_s": _num(row.summary.unknown_s, 3),
                "met_target": row.met_target,
            }
            for row in report.rows
        ],
        "kpis": [
            {
                "service": kpi.service,
                "service_label": service_label(kpi.service, lang),
                "share_met_pct": _num(kpi.share_met_pct),
                "communes_met": kpi.met,
                "communes_failed": kpi.failed,
                "communes_no_data": kpi.no_data,
            }
            for kpi in report.kpis
        ],
        "kpi_texts": kpi_texts,
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
