"""Open outages between runs, the ``outage`` measurement, and the alerting service.

* :class:`OutageStore` keeps the open outages in a small JSON file (written atomically:
  temporary file, fsync, rename) so a restarted collector re-announces them with the
  same identity and start - Alertmanager deduplicates by labels, nobody is paged twice -
  and still resolves them later.
* :func:`outage_lines`: line protocol for alert events (schema in docs/alerts.md).
* :class:`Alerting` wires the pure :class:`collector.alerts.AlertCore` to the store,
  the :class:`collector.alertmanager.Notifier` and the collector.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from collector.alertmanager import AlertmanagerClient, AlertmanagerPort, Notifier
from collector.alerts import (
    Alert,
    AlertCore,
    AlertEvent,
    OutageRecord,
    Policy,
    alert_topology,
)
from collector.availability import ElementPoint
from collector.config import AlertsConfig
from collector.lineproto import line
from xanet.inventory import Inventory

log = logging.getLogger("xanet.collector.outages")

#: How far back a maintenance window declared after the fact still flags closed outages.
MAINTENANCE_LOOKBACK_S = 7 * 86400.0


class OutageStore:
    """The open outages as a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[OutageRecord]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.error("outage state %s unreadable (%s): starting with no open outage",
                      self.path, exc)
            return []
        records: list[OutageRecord] = []
        for item in data.get("open", []) if isinstance(data, dict) else []:
            try:
                records.append(OutageRecord.from_json(item))
            except (KeyError, TypeError, ValueError) as exc:
                log.error("outage state %s: skipping a bad record: %s", self.path, exc)
        return records

    def save(self, records: Iterable[OutageRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        doc = {"v": 1, "open": [r.to_json() for r in records]}
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(doc, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def outage_lines(events: Iterable[AlertEvent], province: str) -> list[str]:
    """``outage`` points: ``open`` 1 at the start (rewritten when the children or the
    ``maintenance`` flag change), 0 at the end. An outage found to overlap declared
    maintenance when it ends gets its start point rewritten with the flag too."""
    out: list[str] = []
    for ev in events:
        a = ev.alert
        tags = {"province": province, "commune": a.labels.get("commune", ""),
                "site": a.labels.get("site", ""), "service": a.labels.get("service", ""),
                "kind": a.kind, "device": a.labels.get("device", ""),
                "interface": a.labels.get("interface", "")}
        firing = ev.action == "firing"
        stamps = [(1, a.starts_at)] if firing or a.ends_at is None else [(0, a.ends_at)]
        if not firing and a.maintenance and a.ends_at is not None:
            stamps.insert(0, (1, a.starts_at))
        for is_open, ts in stamps:
            ln = line("outage", {k: v for k, v in tags.items() if v},
                      {"open": is_open, "children": ",".join(a.children),
                       "summary": a.annotations.get("summary_en", ""),
                       "maintenance": a.maintenance},
                      round(ts * 1000))
            if ln:
                out.append(ln)
    return out


class Alerting:
    """Outage decisions for the collector: facts in, alerts out, state kept on disk."""

    def __init__(self, cfg: AlertsConfig, inventory: Inventory, *, now: float,
                 port: AlertmanagerPort | None = None) -> None:
        if cfg.url is None and port is None:
            raise ValueError("alerting needs alerts.url")
        self.cfg = cfg
        self.province = inventory.province.code
        self.store = OutageStore(cfg.state_path)
        restored = self.store.load()
        self.core = AlertCore(
            alert_topology(inventory),
            Policy(hold_down_s=cfg.hold_down(), clear_down_s=cfg.clear_down(),
                   agent_silent_after_s=cfg.agent_silent_after_s,
                   root_wait_s=cfg.root_wait()),
            now=now, restored=restored)
        if restored:
            log.info("%d open outage(s) recovered from %s", len(restored), self.store.path)
        url = cfg.url or ""
        self.notifier = Notifier(
            port or AlertmanagerClient(url, timeout_s=cfg.timeout_s),
            resend_interval_s=cfg.resend_interval_s, expire_after_s=cfg.expire_after_s,
            retry_min_s=cfg.retry_min_s, retry_max_s=cfg.retry_max_s)
        self.opened = 0
        self.resolved = 0
        self._announced: set[str] = set()
        # closed outages a window declared late may still flag, and their rewritten lines
        self._closed: dict[tuple[str, float], Alert] = {}
        self._pending_lines: list[str] = []

    def agent_status(self, agent: str, online: bool, ts: float) -> None:
        if online:
            self.core.agent_seen(agent, ts)
        else:
            self.core.agent_offline(agent, ts)

    def agent_seen(self, agent: str, ts: float) -> None:
        self.core.agent_seen(agent, ts)

    def set_maintenance(self, windows: Mapping[str, Sequence[tuple[float, float]]]) -> None:
        """Declared maintenance windows per element (flags the outages they overlap).

        Outages already closed that a window declared after the fact overlaps get their
        ``outage`` points rewritten with ``maintenance=true`` at the next :meth:`update`
        (for outages closed during the last ``MAINTENANCE_LOOKBACK`` of this run)."""
        self.core.set_maintenance(windows)
        flagged: list[AlertEvent] = []
        for key, alert in list(self._closed.items()):
            if not alert.maintenance and alert.ends_at is not None and \
                    self.core.overlaps_maintenance(alert.unit, alert.starts_at, alert.ends_at):
                alert = replace(alert, maintenance=True)
                self._closed[key] = alert
                flagged.append(AlertEvent("resolved", alert))
                log.info("outage %s (site %s) %s..%s overlaps declared maintenance",
                         alert.labels.get("alertname"), alert.labels.get("site"),
                         alert.starts_at, alert.ends_at)
        self._pending_lines += outage_lines(flagged, self.province)

    def update(self, points: Iterable[ElementPoint], now: float) -> list[str]:
        """Take the engine's new points, decide, persist, notify; return outage lines."""
        self.core.add_points(points)
        before = set(self.core.open_outages())
        events = self.core.evaluate(now)
        if events or before != set(self.core.open_outages()):
            self.store.save(self.core.records())  # before notifying: no page is lost
        for ev in events:
            a = ev.alert
            if ev.action == "resolved":
                self.resolved += 1
                log.info("outage resolved%s: %s (site %s): %s",
                         " (maintenance)" if a.maintenance else "", a.labels.get("alertname"),
                         a.labels.get("site"), a.annotations.get("summary_en"))
            elif a.unit not in self._announced:
                self.opened += 1
                self._announced.add(a.unit)
                log.warning("outage: %s (site %s): %s", a.labels.get("alertname"),
                            a.labels.get("site"), a.annotations.get("summary_en"))
            if ev.action == "resolved":
                self._announced.discard(a.unit)
            if ev.action == "resolved" and ev.alert.ends_at is not None:
                self._remember_closed(ev.alert, now)
        self.notifier.submit(events)
        lines, self._pending_lines = self._pending_lines, []
        return lines + outage_lines(events, self.province)

    def _remember_closed(self, alert: Alert, now: float) -> None:
        self._closed[(alert.unit, alert.starts_at)] = alert
        horizon = now - MAINTENANCE_LOOKBACK_S
        for key in [k for k, a in self._closed.items()
                    if a.ends_at is not None and a.ends_at < horizon]:
            del self._closed[key]

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.notifier.run(stop)
        finally:
            await self.notifier.port.close()

    def stats(self) -> dict[str, int]:
        return {
            "alerts_firing": len(self.notifier.firing),
            "alerts_opened": self.opened,
            "alerts_resolved": self.resolved,
            "alertmanager_posts": self.notifier.posts,
            "alertmanager_failures": self.notifier.failures,
        }
