"""Availability report per commune, site, device, service or operator, and province KPIs
(pure).

Input: service timelines (``ServiceKey -> sorted changes``), or the state
points as read back from storage (:func:`timelines_from_points`), plus a
window; for the other breakdowns, :class:`Unit` s built from element timelines
(:mod:`collector.breakdown`). Output: an :class:`AvailabilityReport` and its
renderings as a text table, CSV or JSON, in Vietnamese or English, with times
in the report's time zone.

KPI, as the provincial reports state it: per service, the share of communes
whose availability met the target (default 99%). A commune meets or fails it
only with at least ``min_coverage_pct`` data coverage; below that it is
"insufficient data" (no known time at all: "no data"), counted apart: neither
met nor failed. Timelines may carry ``maintenance`` (declared): neither up nor
down, and not missing data either (:mod:`collector.timeline`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

from collector.availability import ServiceKey, ServicePoint
from collector.timeline import Step, Totals, cut, most_down_at_once, normalize, totals

Lang = Literal["vi", "en"]
CsvPart = Literal["rows", "kpis"]
Group = Literal["commune", "site", "device", "service", "operator"]
SortKey = Literal["availability", "downtime", "coverage", "code", "name"]
Status = Literal["met", "failed", "insufficient", "no_data"]

GROUPS: Final[tuple[Group, ...]] = ("commune", "site", "device", "service", "operator")
SORT_KEYS: Final[tuple[SortKey, ...]] = ("availability", "downtime", "coverage", "code", "name")

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
        "title": "Khả dụng dịch vụ theo {group}",
        "window": "Kỳ báo cáo: {start} – {end} ({tz})",
        "code": "Mã xã",
        "commune": "Xã",
        "site": "Trạm",
        "site_name": "Tên trạm",
        "device": "Thiết bị",
        "operator": "Nhà mạng",
        "group_commune": "xã",
        "group_site": "trạm",
        "group_device": "thiết bị",
        "group_service": "dịch vụ",
        "group_operator": "nhà mạng",
        "service": "Dịch vụ",
        "availability": "Khả dụng (%)",
        "downtime": "Thời gian gián đoạn",
        "downtime_s": "Thời gian gián đoạn (giây)",
        "maintenance": "Bảo trì",
        "maintenance_s": "Bảo trì (giây)",
        "outages": "Số lần gián đoạn",
        "coverage": "Độ phủ dữ liệu (%)",
        "stations": "Trạm hoạt động",
        "stations_cell": "{pct}% (cùng lúc mất tối đa {down}/{total})",
        "stations_none_down": "{pct}% ({total} trạm, không trạm nào mất)",
        "stations_total": "Số trạm",
        "stations_up": "Trạm hoạt động (%)",
        "stations_most_down": "Số trạm mất cùng lúc tối đa",
        "met": "Đạt mục tiêu",
        "yes": "có",
        "no": "không",
        "no_data": "không có dữ liệu",
        "insufficient": "không đủ dữ liệu",
        "kpi_title": (
            "Chỉ tiêu cấp tỉnh (mục tiêu khả dụng {target}%, độ phủ dữ liệu tối thiểu {cov}%)"
        ),
        "kpi": "Tỷ lệ xã có {service} đạt mục tiêu: {share}% ({met}/{measured} xã đủ dữ liệu)",
        "kpi_none": "Tỷ lệ xã có {service} đạt mục tiêu: không đủ dữ liệu",
        "kpi_no_data": (
            "{count} xã không đủ dữ liệu {service}: không tính vào tỷ lệ, không coi là không đạt."
        ),
        "share": "Tỷ lệ đạt (%)",
        "communes_met": "Số xã đạt",
        "communes_failed": "Số xã không đạt",
        "communes_insufficient": "Số xã không đủ dữ liệu",
        "communes_no_data": "Số xã không có dữ liệu",
        "target": "Mục tiêu (%)",
        "note": (
            "Khả dụng = thời gian hoạt động / thời gian đã biết trạng thái; "
            "thời gian không có dữ liệu không tính là gián đoạn mà giảm độ phủ dữ liệu; "
            "thời gian bảo trì đã khai báo không tính là hoạt động hay gián đoạn và không "
            "tính vào độ phủ."
        ),
    },
    "en": {
        "title": "Service availability by {group}",
        "window": "Window: {start} – {end} ({tz})",
        "code": "Commune code",
        "commune": "Commune",
        "site": "Site",
        "site_name": "Site name",
        "device": "Device",
        "operator": "Operator",
        "group_commune": "commune",
        "group_site": "site",
        "group_device": "device",
        "group_service": "service",
        "group_operator": "operator",
        "service": "Service",
        "availability": "Availability (%)",
        "downtime": "Downtime",
        "downtime_s": "Downtime (s)",
        "maintenance": "Maintenance",
        "maintenance_s": "Maintenance (s)",
        "outages": "Outages",
        "coverage": "Data coverage (%)",
        "stations": "Stations up",
        "stations_cell": "{pct}% (at worst {down} of {total} down at once)",
        "stations_none_down": "{pct}% ({total} stations, none down)",
        "stations_total": "Stations",
        "stations_up": "Stations up (%)",
        "stations_most_down": "Most stations down at once",
        "met": "Target met",
        "yes": "yes",
        "no": "no",
        "no_data": "no data",
        "insufficient": "insufficient data",
        "kpi_title": "Province KPIs (availability target {target}%, minimum data coverage {cov}%)",
        "kpi": (
            "Share of communes whose {service} met the target: {share}% "
            "({met} of {measured} communes with enough data)"
        ),
        "kpi_none": "Share of communes whose {service} met the target: insufficient data",
        "kpi_no_data": (
            "{count} communes have insufficient {service} data: left out of the share, "
            "not counted as failing."
        ),
        "share": "Share met (%)",
        "communes_met": "Communes met",
        "communes_failed": "Communes failed",
        "communes_insufficient": "Communes with insufficient data",
        "communes_no_data": "Communes without data",
        "target": "Target (%)",
        "note": (
            "Availability = up time / time with known state; time without data is "
            "never counted as downtime, it lowers the data coverage instead; declared "
            "maintenance is neither up nor down and does not lower the coverage."
        ),
    },
}

_EPS: Final = 1e-9  # float slack when comparing a percentage with the target


@dataclass(frozen=True, slots=True)
class Stations:
    """The stations (BTS sites of one technology) behind a mobile row."""

    total: int
    up_pct: float | None  # station time up / station time known
    most_down: int  # most stations down at the same instant


@dataclass(frozen=True, slots=True)
class Unit:
    """One row to compute: the timelines it sums (one for a commune or a site, several for
    an operator or a service) and, for mobile rows, its stations' timelines."""

    group: Group
    key: str
    service: str
    members: tuple[Sequence[Step], ...]
    name: str = ""
    commune: str = ""
    stations: tuple[Sequence[Step], ...] | None = None


@dataclass(frozen=True, slots=True)
class Row:
    group: Group
    key: str  # commune code, site id, site/device, service or operator
    name: str
    commune: str
    service: str
    summary: Totals
    status: Status
    stations: Stations | None = None

    @property
    def met_target(self) -> bool | None:
        """True met, False failed, None insufficient data or no data."""
        return {"met": True, "failed": False}.get(self.status)

    @property
    def availability_pct(self) -> float | None:
        return self.summary.availability_pct


CommuneRow = Row  # the name of a row when reports were per commune only


@dataclass(frozen=True, slots=True)
class ServiceKpi:
    service: str
    met: int
    failed: int
    insufficient: int = 0  # some data, coverage below the minimum
    no_data: int = 0  # no known time at all
    coverage_pct: float | None = None  # known time / expected time over its communes

    @property
    def measured(self) -> int:
        return self.met + self.failed

    @property
    def apart(self) -> int:
        """Communes counted apart: insufficient data or none."""
        return self.insufficient + self.no_data

    @property
    def share_met_pct(self) -> float | None:
        """100 * met / (met + failed); None when no commune has enough data."""
        return None if self.measured == 0 else 100.0 * self.met / self.measured


@dataclass(frozen=True, slots=True)
class AvailabilityReport:
    window_start: float
    window_end: float
    target_pct: float
    min_coverage_pct: float
    rows: tuple[Row, ...]
    kpis: tuple[ServiceKpi, ...]
    group: Group = "commune"
    tz: str = "UTC"
    communes: tuple[Row, ...] = ()  # the commune rows behind the KPIs (== rows by commune)


def service_rank(service: str) -> tuple[int, str]:
    try:
        return SERVICE_ORDER.index(service), ""
    except ValueError:
        return len(SERVICE_ORDER), service


def timelines_from_points(
    points: Iterable[ServicePoint | tuple[str, str, float, str]],
) -> dict[ServiceKey, list[Step]]:
    """Group state points read back from storage into normalized service timelines.

    Tuples are ``(commune, service, ts, state)``. Include, per key, the last
    point before the window (InfluxQL ``last()`` with ``time < start``), or the
    report treats the window's beginning as unknown.
    """
    grouped: dict[ServiceKey, list[Step]] = {}
    for p in points:
        if isinstance(p, ServicePoint):
            key, ts, state = p.key, p.ts, str(p.state)
        else:
            key, ts, state = ServiceKey(p[0], p[1]), p[2], p[3]
        grouped.setdefault(key, []).append((ts, state))
    return {key: normalize(pts) for key, pts in grouped.items()}


def status_of(summary: Totals, target_pct: float, min_coverage_pct: float) -> Status:
    """The coverage rule: met/failed only with enough data."""
    availability = summary.availability_pct
    if availability is None:
        return "no_data"
    if summary.coverage_pct < min_coverage_pct - _EPS:
        return "insufficient"
    return "met" if availability >= target_pct - _EPS else "failed"


def _sum(items: Iterable[Totals], window_s: float) -> Totals:
    out: Totals | None = None
    for t in items:
        out = t if out is None else out + t
    return out if out is not None else Totals(window_s, unknown_s=window_s)


def _stations(
    timelines: Sequence[Sequence[Step]] | None, start: float, end: float
) -> Stations | None:
    if timelines is None or not timelines:
        return None
    total = _sum((totals(t, start, end) for t in timelines), end - start)
    return Stations(len(timelines), total.availability_pct,
                    most_down_at_once(timelines, start, end))


def sort_rows(rows: Iterable[Row], by: SortKey) -> list[Row]:
    """``availability``, ``coverage``: worst first (rows without data last); ``downtime``:
    longest first; ``code`` / ``name``: alphabetical, services in report order."""

    def natural(r: Row) -> tuple[str, tuple[int, str]]:
        return (r.key, service_rank(r.service))

    if by == "code":
        return sorted(rows, key=natural)
    if by == "name":
        return sorted(rows, key=lambda r: (r.name.casefold(), *natural(r)))
    if by == "downtime":
        return sorted(rows, key=lambda r: (-r.summary.down_s, *natural(r)))
    if by == "coverage":
        return sorted(rows, key=lambda r: (r.summary.coverage_pct, *natural(r)))
    return sorted(rows, key=lambda r: (
        r.availability_pct is None, r.availability_pct or 0.0, -r.summary.down_s, *natural(r)))


def build_report(
    timelines: Mapping[ServiceKey, Sequence[Step]],
    *,
    window_start: float,
    window_end: float,
    names: Mapping[str, str] | None = None,
    expected: Iterable[ServiceKey] = (),
    target_pct: float = 99.0,
    min_coverage_pct: float = 0.0,
    known_until: float | None = None,
    stations: Mapping[ServiceKey, Sequence[Sequence[Step]]] | None = None,
    units: Sequence[Unit] | None = None,
    group: Group = "commune",
    sort: SortKey = "code",
    tz: str = "UTC",
) -> AvailabilityReport:
    """Rows and KPIs per service over ``[window_start, window_end)``.

    ``names``: commune code -> name (from the inventory). ``expected``:
    commune-services that exist in the inventory; those without any points
    get a "no data" row rather than vanishing. ``known_until``: the time up
    to which storage is complete (e.g. the collector's last write); later time
    is unknown, whatever the last stored state says. ``stations``: per mobile
    commune-service, its BTS' timelines (the share of stations up). ``units``:
    the rows of another breakdown (``group``); the KPIs always come from the
    commune rows.
    """
    if not window_end > window_start:
        raise ValueError(f"empty window [{window_start}, {window_end})")
    start, end = window_start, window_end
    names = names or {}
    stations = stations or {}

    def clip(t: Sequence[Step]) -> Sequence[Step]:
        return t if known_until is None else cut(t, known_until)

    def row(unit: Unit) -> Row:
        summary = _sum((totals(clip(m), start, end) for m in unit.members), end - start)
        if not unit.members:
            summary = Totals(end - start, unknown_s=end - start)
        st = None if unit.stations is None else [clip(t) for t in unit.stations]
        return Row(unit.group, unit.key, unit.name, unit.commune, unit.service, summary,
                   status_of(summary, target_pct, min_coverage_pct),
                   _stations(st, start, end))

    keys = set(timelines) | set(expected)
    commune_rows = [
        row(Unit("commune", k.commune, k.service, (timelines.get(k, ()),),
                 names.get(k.commune, ""), k.commune,
                 tuple(stations[k]) if k in stations else None))
        for k in keys
    ]
    counts: dict[str, list[int]] = {}
    coverage: dict[str, list[Totals]] = {}
    for r in commune_rows:
        tally = counts.setdefault(r.service, [0, 0, 0, 0])
        tally[("met", "failed", "insufficient", "no_data").index(r.status)] += 1
        coverage.setdefault(r.service, []).append(r.summary)
    kpis = tuple(
        ServiceKpi(service, counts[service][0], counts[service][1], counts[service][2],
                   counts[service][3], _sum(coverage[service], end - start).coverage_pct)
        for service in sorted(counts, key=service_rank)
    )
    rows = commune_rows if units is None else [row(u) for u in units]
    return AvailabilityReport(
        start, end, target_pct, min_coverage_pct, tuple(sort_rows(rows, sort)), kpis,
        "commune" if units is None else group, tz,
        tuple(sort_rows(commune_rows, "code")),
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


def format_target(value: float, lang: Lang) -> str:
    text = f"{value:g}"
    return text.replace(".", ",") if lang == "vi" else text


def zone_label(tz: str, ts: float) -> str:
    """``UTC``, or ``Asia/Ho_Chi_Minh, UTC+07:00``: the zone every printed time is in."""
    if tz == "UTC":
        return "UTC"
    offset = datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%z")
    return f"{tz}, UTC{offset[:3]}:{offset[3:]}"


def format_time(ts: float, tz: str, *, zone: bool = False, seconds: bool | None = None) -> str:
    """Local wall time ``2026-11-01 07:00`` (seconds shown when ``seconds``, or by default
    when the time is not on a whole minute), with ``+07`` appended when ``zone``."""
    local = datetime.fromtimestamp(ts, ZoneInfo(tz))
    if seconds is None:
        seconds = round(ts) % 60 != 0
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    if zone:
        off = local.strftime("%z")
        text += " " + (off[:3] if off.endswith("00") else f"{off[:3]}:{off[3:]}")
    return text


def window_line(report: AvailabilityReport, lang: Lang) -> str:
    return TEXTS[lang]["window"].format(
        start=format_time(report.window_start, report.tz),
        end=format_time(report.window_end, report.tz),
        tz=zone_label(report.tz, report.window_start),
    )


def status_text(status: Status, lang: Lang) -> str:
    t = TEXTS[lang]
    return {"met": t["yes"], "failed": t["no"], "insufficient": t["insufficient"],
            "no_data": t["no_data"]}[status]


def stations_text(stations: Stations | None, lang: Lang) -> str:
    if stations is None:
        return ""
    pct = "-" if stations.up_pct is None else format_pct(stations.up_pct, lang, 1)
    text = "stations_none_down" if stations.most_down == 0 else "stations_cell"
    return TEXTS[lang][text].format(pct=pct, down=stations.most_down,
                                               total=stations.total)


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
        if kpi.apart:
            out.append(t["kpi_no_data"].format(count=kpi.apart, service=label))
    return out


def _key_headers(group: Group, lang: Lang) -> list[str]:
    t = TEXTS[lang]
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
    t = TEXTS[lang]
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
    t = TEXTS[lang]
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
    t = TEXTS[lang]
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
