"""Reports read back from InfluxDB: state changes, alerts and the collector's last write.

The numbers come from pure modules (:mod:`collector.report`, :mod:`collector.breakdown`,
:mod:`collector.outagelist`); this module queries InfluxDB (``/query``, which InfluxDB
1.x, 2.x with a DBRP mapping and 3.x all answer) and turns the command line's times and
months into windows in a time zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from collector.availability import ServiceKey
from collector.breakdown import Scope, element_filter, site_services, stations, units
from collector.config import CollectorConfig
from collector.errors import CollectorError
from collector.outagelist import AlertedPeriod, Outage, build_outages
from collector.report import (
    AvailabilityReport,
    Group,
    SortKey,
    build_report,
    timelines_from_points,
)
from collector.schema import COLLECTOR_STATS, ELEMENT_STATE, OUTAGE, SERVICE_STATE
from collector.timeline import Step, cut, normalize, state_of
from xanet.inventory import Inventory

_RELATIVE = re.compile(r"^(now)?-(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class QueryError(CollectorError):
    """InfluxDB could not answer a report query."""


def parse_time(text: str, now: datetime, tz: str = "UTC") -> datetime:
    """``now``, ``-24h`` / ``now-7d``, ``2026-11-01`` or ISO 8601; a time without an offset
    is wall time in ``tz`` (``2026-11-01`` is local midnight)."""
    text = text.strip()
    if text == "now":
        return now
    m = _RELATIVE.match(text)
    if m:
        return now - timedelta(seconds=int(m.group(2)) * _UNITS[m.group(3)])
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is not a time: use now, -24h, -7d, 2026-11-01, 2026-11-01T08:00 or "
            "2026-11-01T08:00:00+07:00"
        ) from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=ZoneInfo(tz))


def month_window(text: str, tz: str) -> tuple[datetime, datetime]:
    """``2026-11`` -> [local midnight of the 1st, local midnight of the next 1st)."""
    m = _MONTH.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month: use YYYY-MM, e.g. 2026-11")
    year, month = int(m.group(1)), int(m.group(2))
    zone = ZoneInfo(tz)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return start, end


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Filters:
    province: str | None = None
    commune: str | None = None
    service: str | None = None
    site: str | None = None
    operator: str | None = None

    def where(self, *, site: bool = False, service: bool = True) -> str:
        pairs = [("province", self.province), ("commune", self.commune)]
        if service:
            pairs.append(("service", self.service))
        if site:
            pairs.append(("site", self.site))
        return "".join(f' AND "{k}" = {_quote(v)}' for k, v in pairs if v)

    def keep(self, key: ServiceKey) -> bool:
        return (self.commune is None or key.commune == self.commune) and (
            self.service is None or key.service == self.service
        )

    @property
    def scope(self) -> Scope:
        return Scope(self.commune, self.service, self.site, self.operator)


class InfluxQL:
    """A minimal InfluxQL client over ``/query`` (v1 auth or a v2 token)."""

    def __init__(self, cfg: CollectorConfig) -> None:
        i = cfg.influx
        headers = {}
        auth = None
        if i.api == "v2":
            assert i.token is not None
            headers["Authorization"] = f"Token {i.token.reveal()}"
            self.db = i.bucket or ""
        else:
            self.db = i.database or ""
            if i.username and i.password:
                auth = (i.username, i.password.reveal())
        self.url = i.url
        self._client = httpx.Client(base_url=i.url, headers=headers, auth=auth, timeout=i.timeout_s)

    def rows(self, q: str) -> list[dict[str, Any]]:
        try:
            r = self._client.post("/query", data={"db": self.db, "q": q, "epoch": "ms"})
        except httpx.HTTPError as exc:
            raise QueryError(f"{self.url}/query: {exc!r}") from exc
        if r.status_code != 200:
            raise QueryError(f"{self.url}/query: HTTP {r.status_code}: {r.text[:300]}")
        out: list[dict[str, Any]] = []
        for result in r.json().get("results", []):
            if "error" in result:
                raise QueryError(f"{self.url}/query: {result['error']}")
            for series in result.get("series", []):
                tags = series.get("tags") or {}
                cols = series["columns"]
                for values in series["values"]:
                    out.append({**tags, **dict(zip(cols, values, strict=True))})
        return out

    def tag_values(self, measurement: str, key: str) -> list[str]:
        rows = self.rows(f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{key}"')
        return sorted({str(r["value"]) for r in rows})

    def close(self) -> None:
        self._client.close()


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def service_points(
    db: InfluxQL, start: datetime, end: datetime, filters: Filters
) -> list[tuple[str, str, float, str]]:
    """Every service_state point in the window, plus the last one before it per key."""
    t0, t1 = _ms(start), _ms(end)
    where = filters.where()
    before = db.rows(
        f'SELECT last("state") AS "state" FROM "{SERVICE_STATE.name}" '
        f'WHERE time < {t0}ms{where} GROUP BY "commune", "service"'
    )
    inside = db.rows(
        f'SELECT "state", "code" FROM "{SERVICE_STATE.name}" WHERE time >= {t0}ms '
        f'AND time < {t1}ms{where} GROUP BY "commune", "service"'
    )
    return [
        (r["commune"], r["service"], r["time"] / 1000.0, state_of(r.get("state"), r.get("code")))
        for r in (*before, *inside)
    ]


def element_timelines(
    db: InfluxQL, start: datetime, end: datetime, filters: Filters
) -> dict[str, list[Step]]:
    """Per element key, its state timeline over the window (with the state carried in)."""
    t0, t1 = _ms(start), _ms(end)
    where = filters.where(site=True, service=False)
    before = db.rows(
        f'SELECT last("state") AS "state" FROM "{ELEMENT_STATE.name}" '
        f'WHERE time < {t0}ms{where} GROUP BY "element"'
    )
    inside = db.rows(
        f'SELECT "state", "code" FROM "{ELEMENT_STATE.name}" WHERE time >= {t0}ms '
        f'AND time < {t1}ms{where} GROUP BY "element"'
    )
    grouped: dict[str, list[Step]] = {}
    for r in (*before, *inside):
        grouped.setdefault(r["element"], []).append(
            (r["time"] / 1000.0, state_of(r.get("state"), r.get("code"))))
    return {k: normalize(v) for k, v in grouped.items()}


def alerted_periods(
    db: InfluxQL, start: datetime, end: datetime, filters: Filters
) -> list[AlertedPeriod]:
    """The alerts the collector raised (``outage`` points: open 1 at start, 0 at end), as
    periods; ``maintenance`` when a point says so (absent in old data: false); ``cause`` as
    the points say (absent in old data: empty)."""
    t0, t1 = _ms(start), _ms(end)
    where = filters.where(service=False)
    # an alert may have opened long before the window: take each series' last point before
    before = db.rows(f'SELECT last("open") AS "open" FROM "{OUTAGE.name}" WHERE time < {t0}ms'
                     f'{where} GROUP BY *')
    inside = db.rows(f'SELECT * FROM "{OUTAGE.name}" WHERE time >= {t0}ms AND time < {t1}ms'
                     f'{where}')
    series: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in (*before, *inside):
        key = tuple(str(r.get(k) or "") for k in ("site", "kind", "device", "interface",
                                                   "service"))
        series.setdefault(key, []).append(r)
    out: list[AlertedPeriod] = []
    for key, rows in series.items():
        opened: float | None = None
        maintenance, cause = False, ""
        for r in sorted(rows, key=lambda r: r["time"]):
            ts = r["time"] / 1000.0
            maintenance = maintenance or r.get("maintenance") is True
            cause = str(r.get("cause") or cause)
            if r.get("open") == 1 and opened is None:
                opened = ts
            elif r.get("open") == 0 and opened is not None:
                out.append(AlertedPeriod(key[0], opened, ts, maintenance, cause))
                opened, maintenance, cause = None, False, ""
        if opened is not None:
            out.append(AlertedPeriod(key[0], opened, None, maintenance, cause))
    return out


def last_write(db: InfluxQL) -> float | None:
    """When the collector last wrote (its stats point): later time is not known yet."""
    rows = db.rows(f'SELECT last("received") FROM "{COLLECTOR_STATS.name}"')
    return rows[0]["time"] / 1000.0 if rows else None


@dataclass
class ReportData:
    """Everything a report reads, for one window (times as epoch seconds)."""

    start: float
    end: float
    services: dict[ServiceKey, list[Step]]
    elements: dict[str, list[Step]] = field(default_factory=dict)
    alerted: list[AlertedPeriod] = field(default_factory=list)
    known_until: float | None = None  # None: storage complete for the whole window


def load(
    cfg: CollectorConfig,
    inventory: Inventory | None,
    start: datetime,
    end: datetime,
    filters: Filters,
    *,
    elements: bool = True,
    alerts: bool = False,
) -> ReportData:
    """Read what the window needs; element timelines only when an inventory maps them."""
    db = InfluxQL(cfg)
    try:
        points = service_points(db, start, end, filters)
        el = element_timelines(db, start, end, filters) if elements and inventory else {}
        alerted = alerted_periods(db, start, end, filters) if alerts else []
        written = last_write(db)
    finally:
        db.close()
    services = {k: v for k, v in timelines_from_points(points).items() if filters.keep(k)}
    t0, t1 = start.timestamp(), end.timestamp()
    until = min(written, t1) if written is not None else t0
    known_until = until if until < t1 else None
    if known_until is not None:
        services = {k: cut(v, known_until) for k, v in services.items()}
        el = {k: cut(v, known_until) for k, v in el.items()}
    if inventory is not None and el:
        keep = element_filter(inventory, filters.scope)
        el = {k: v for k, v in el.items() if keep(k)}
    return ReportData(t0, t1, services, el, alerted, known_until)


def expected_keys(inventory: Inventory | None, filters: Filters) -> list[ServiceKey]:
    if inventory is None:
        return []
    return [
        ServiceKey(c.code, str(s.value))
        for c in inventory.communes
        for s in inventory.services_of(c.code)
        if filters.keep(ServiceKey(c.code, str(s.value)))
    ]


def report_from(
    data: ReportData,
    cfg: CollectorConfig,
    inventory: Inventory | None,
    filters: Filters,
    *,
    group: Group = "commune",
    sort: SortKey = "availability",
    target_pct: float | None = None,
    min_coverage_pct: float | None = None,
    tz: str | None = None,
) -> AvailabilityReport:
    """Build the report of ``group`` from data already read."""
    names: dict[str, str] = {}
    station_map: dict[ServiceKey, list[Sequence[Step]]] = {}
    report_units = None
    if inventory is not None:
        names = {c.code: c.name for c in inventory.communes}
        if data.elements:
            station_map = stations(inventory, site_services(inventory, data.elements),
                                   filters.scope)
        if group != "commune":
            report_units = units(group, inventory, filters.scope, data.services, data.elements)
    elif group != "commune":
        raise ValueError(f"--by {group} needs the inventory ([inventory] path in the config)")
    return build_report(
        data.services,
        window_start=data.start,
        window_end=data.end,
        names=names,
        expected=expected_keys(inventory, filters),
        target_pct=cfg.report.target_pct if target_pct is None else target_pct,
        min_coverage_pct=(cfg.report.min_coverage_pct if min_coverage_pct is None
                          else min_coverage_pct),
        known_until=data.known_until,
        stations=station_map,
        units=report_units,
        group=group,
        sort=sort,
        tz=cfg.report.tz if tz is None else tz,
    )


def availability_report(
    cfg: CollectorConfig,
    inventory: Inventory | None,
    start: datetime,
    end: datetime,
    filters: Filters,
    *,
    target_pct: float | None = None,
    min_coverage_pct: float | None = None,
    group: Group = "commune",
    sort: SortKey = "code",
    tz: str | None = None,
) -> AvailabilityReport:
    data = load(cfg, inventory, start, end, filters)
    return report_from(data, cfg, inventory, filters, group=group, sort=sort,
                       target_pct=target_pct, min_coverage_pct=min_coverage_pct, tz=tz)


def outage_list(
    data: ReportData, inventory: Inventory, filters: Filters, *, min_duration_s: float = 0.0
) -> list[Outage]:
    """The outages of the window, restricted to the filters' sites and services."""
    outages = build_outages(inventory, data.elements, window_start=data.start,
                            window_end=data.end, alerted=data.alerted,
                            min_duration_s=min_duration_s)
    scope = filters.scope
    kept = {s.id for s in inventory.sites if scope.keeps_site(s)}
    return [o for o in outages
            if o.sites & kept and (filters.service is None or filters.service in o.services)]


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def known_tag_values(cfg: CollectorConfig, key: str) -> Iterable[str]:
    """Values a tag has in ``service_state`` (to check a filter without an inventory)."""
    db = InfluxQL(cfg)
    try:
        return db.tag_values(SERVICE_STATE.name, key)
    finally:
        db.close()
