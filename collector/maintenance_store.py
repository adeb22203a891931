"""Maintenance windows in InfluxDB: read with InfluxQL, written with the collector's writer.

One source for the CLI (``xanet maintenance``), the collector (which reloads the windows
periodically) and the report. The record is in :mod:`collector.maintenance`,
its measurement and line in :mod:`collector.schema`.
"""

from __future__ import annotations

import logging

from collector.config import CollectorConfig
from collector.maintenance import MaintenanceError, Window, from_row, to_line
from collector.readback import InfluxQL
from collector.schema import MAINTENANCE
from collector.writer import make_writer

log = logging.getLogger("xanet.collector.maintenance")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_windows(cfg: CollectorConfig, province: str, *,
                 ending_after: float | None = None) -> list[Window]:
    """The province's windows (only those ending after ``ending_after`` if given), by
    start. Raises :class:`collector.readback.QueryError` when InfluxDB cannot answer; a
    malformed point is logged and skipped."""
    where = f'"province" = {_quote(province)}'
    if ending_after is not None:
        where += f' AND "end_ms" > {round(ending_after * 1000)}'
    db = InfluxQL(cfg)
    try:
        rows = db.rows(
            'SELECT "start_ms", "end_ms", "reason", "who", "silence_id", "ended" '
            f'FROM "{MAINTENANCE.name}" WHERE {where} GROUP BY "province", "scope", "target"')
    finally:
        db.close()
    out: list[Window] = []
    for row in rows:
        try:
            out.append(from_row(row))
        except MaintenanceError as exc:
            log.warning("skipping a maintenance point: %s", exc)
    return sorted(out, key=lambda w: (w.start, w.scope, w.target))


async def write_window(cfg: CollectorConfig, window: Window) -> None:
    """Store (or rewrite: same scope, target and start) one window. Raises the writer's
    :class:`collector.errors.WriteUnavailable` / ``WriteRejected``."""
    writer = make_writer(cfg.influx)
    try:
        await writer.write([to_line(window)])
    finally:
        await writer.close()
