"""`xanet report availability`: read state changes back with InfluxQL, build the report.

The numbers come from :mod:`collector.report` (pure); this module only queries
InfluxDB (``/query``, which InfluxDB 1.x, 2.x with a DBRP mapping and 3.x all
answer) and parses the command line's times.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from collector.availability import ServiceKey
from collector.config import CollectorConfig
from collector.errors import CollectorError
from collector.report import AvailabilityReport, build_report, timelines_from_points
from xanet.inventory import Inventory

_RELATIVE = re.compile(r"^(now)?-(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class QueryError(CollectorError):
    """InfluxDB could not answer a report query."""


def parse_time(text: str, now: datetime) -> datetime:
    """``now``, ``-24h`` / ``now-7d``, ``2026-11-01`` or ISO 8601 (UTC when no offset)."""
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
            f"{text!r} is not a time: use now, -24h, 2026-11-01 or 2026-11-01T08:00:00+07:00"
        ) from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Filters:
    province: str | None = None
    commune: str | None = None
    service: str | None = None

    def where(self) -> str:
        parts = [
            f'"{k}" = {_quote(v)}'
            for k, v in (
                ("province", self.province),
                ("commune", self.commune),
                ("service", self.service),
            )
            if v
        ]
        return "".join(f" AND {p}" for p in parts)

    def keep(self, key: ServiceKey) -> bool:
        return (self.commune is None or key.commune == self.commune) and (
            self.service is None or key.service == self.service
        )


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

    def close(self) -> None:
        self._client.close()


def service_points(
    db: InfluxQL, start: datetime, end: datetime, filters: Filters
) -> list[tuple[str, str, float, Any]]:
    """Every service_state point in the window, plus the last one before it per key."""
    t0, t1 = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    where = filters.where()
    before = db.rows(
        f'SELECT last("state") AS "state" FROM "service_state" '
        f'WHERE time < {t0}ms{where} GROUP BY "commune", "service"'
    )
    inside = db.rows(
        f'SELECT "state" FROM "service_state" WHERE time >= {t0}ms '
        f'AND time < {t1}ms{where} GROUP BY "commune", "service"'
    )
    return [
        (r["commune"], r["service"], r["time"] / 1000.0, r["state"]) for r in (*before, *inside)
    ]


def last_write(db: InfluxQL) -> float | None:
    """When the collector last wrote (its stats point): later time is not known yet."""
    rows = db.rows('SELECT last("received") FROM "collector_stats"')
    return rows[0]["time"] / 1000.0 if rows else None


def availability_report(
    cfg: CollectorConfig,
    inventory: Inventory | None,
    start: datetime,
    end: datetime,
    filters: Filters,
    *,
    target_pct: float | None = None,
) -> AvailabilityReport:
    db = InfluxQL(cfg)
    try:
        points = service_points(db, start, end, filters)
        known_until = last_write(db)
    finally:
        db.close()
    timelines = {k: v for k, v in timelines_from_points(points).items() if filters.keep(k)}
    names: dict[str, str] = {}
    expected: Iterable[ServiceKey] = ()
    if inventory is not None:
        names = {c.code: c.name for c in inventory.communes}
        expected = [
            ServiceKey(c.code, str(s.value))
            for c in inventory.communes
            for s in inventory.services_of(c.code)
            if filters.keep(ServiceKey(c.code, str(s.value)))
        ]
    until = min(known_until, end.timestamp()) if known_until is not None else start.timestamp()
    return build_report(
        timelines,
        window_start=start.timestamp(),
        window_end=end.timestamp(),
        names=names,
        expected=expected,
        target_pct=cfg.report.target_pct if target_pct is None else target_pct,
        known_until=until if until < end.timestamp() else None,
    )
