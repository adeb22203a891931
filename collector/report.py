"""The availability report's figures: rows per commune, site, device, service or operator,
whether each met the target, and the province KPIs (pure).

Input: service timelines (``ServiceKey -> sorted changes``), or the state
points as read back from storage (:func:`timelines_from_points`), plus a
window; for the other breakdowns, :class:`Unit` s built from element timelines
(:mod:`collector.breakdown`). Output: an :class:`AvailabilityReport`, rendered as a
text table, CSV or JSON by :mod:`collector.reportrender`.

KPI, as the provincial reports state it: per service, the share of communes
whose availability met the target (default 99%). A commune meets or fails it
only with at least ``min_coverage_pct`` data coverage; below that it is
"insufficient data" (no known time at all: "no data"), counted apart: neither
met nor failed. Timelines may carry ``maintenance`` (declared): neither up nor
down, and not missing data either (:mod:`collector.timeline`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from collector.availability import ServiceKey, ServicePoint
from collector.timeline import Step, Totals, cut, most_down_at_once, normalize, totals

Group = Literal["commune", "site", "device", "service", "operator"]
SortKey = Literal["availability", "downtime", "coverage", "code", "name"]
Status = Literal["met", "failed", "insufficient", "no_data"]


#: Report order of the product's services; others follow alphabetically.
SERVICE_ORDER: Final[tuple[str, ...]] = (
    "fibre",
    "broadband",
    "mobile_2g",
    "mobile_3g",
    "mobile_4g",
)

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
