"""Open outages between runs, the ``outage`` measurement, and the alerting service.

* :class:`OutageStore` keeps the open outages in a small JSON file (written atomically:
  temporary file, fsync, rename) so a restarted collector re-announces them with the
  same identity and start - Alertmanager deduplicates by labels, nobody is paged twice -
  and still resolves them later. The same file keeps each agent's last sign of life
  (``agents``), so that after a restart "silent since" is the truth, not the restart.
* :func:`outage_lines`: line protocol for alert events (schema in docs/alerts.md).
* :class:`Alerting` wires the pure :class:`collector.outages.AlertCore` and
  :class:`collector.power.PowerCore` (the sites' power, the early warning, the cause
  ``power``) to the store,
  the :class:`collector.alertmanager.Notifier` (the collector's one, shared with the
  agent-fault alerts of collector/faults.py) and the collector.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from collector.alertmanager import AlertmanagerPort, Notifier, notifier_for
from collector.availability import ElementPoint
from collector.config import AlertsConfig
from collector.facts import DeviceVerdict
from collector.faults import KIND as FAULT_KIND
from collector.monitoring import MonitoringCore
from collector.outages import (
    Alert,
    AlertCore,
    AlertEvent,
    OutageRecord,
    Policy,
    alert_topology,
    sign_of_life,
)
from collector.power import PowerCore, Reading
from collector.schema import outage_line
from xanet.inventory import Inventory
from xanet.wire import PowerReading

log = logging.getLogger("xanet.collector.alerting")

#: How far back a maintenance window declared after the fact still flags closed outages.
MAINTENANCE_LOOKBACK_S = 7 * 86400.0
#: Agents' last signs of life are written at most this often (and with every change of
#: the open outages, and at stop): a SIGKILLed collector loses at most this much.
LIVENESS_SAVE_S = 5.0
#: The agents' clock error that :func:`collector.outages.sign_of_life` absorbs, at most.
CLOCK_TOLERANCE_S = 30.0


class OutageStore:
    """The open outages as a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.save_failures = 0  # saves the disk refused (full, read-only); never fatal
        self._failing = False

    def _read(self) -> object:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("outage state %s unreadable (%s): starting with no open outage and "
                      "no agent last seen", self.path, exc)
            return {}

    def saved_at(self) -> float | None:
        """When the file was last saved (its modification time); None without one."""
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def load_seen(self) -> dict[str, float]:
        """Each agent's last sign of life as saved (bad entries are skipped, logged)."""
        data = self._read()
        agents = data.get("agents", {}) if isinstance(data, dict) else {}
        out: dict[str, float] = {}
        for agent, ts in agents.items() if isinstance(agents, dict) else ():
            if isinstance(ts, int | float) and math.isfinite(ts):
                out[str(agent)] = float(ts)
            else:
                log.error("outage state %s: agent %s: bad last-seen %r skipped", self.path,
                          agent, ts)
        return out

    def load(self) -> list[OutageRecord]:
        data = self._read()
        records: list[OutageRecord] = []
        for item in data.get("open", []) if isinstance(data, dict) else []:
            try:
                records.append(OutageRecord.from_json(item))
            except (KeyError, TypeError, ValueError) as exc:
                log.error("outage state %s: skipping a bad record: %s", self.path, exc)
        return records

    def save(self, records: Iterable[OutageRecord],
             seen: Mapping[str, float] | None = None) -> bool:
        """Write the open outages and last-seen times atomically. A disk that refuses
        (full, read-only) is logged once when it starts and once when it ends, counted in
        :attr:`save_failures`, and never stops the collector: the previous file stays
        whole, and what a restart would then miss is the outages opened since."""
        doc: dict[str, object] = {"v": 1, "open": [r.to_json() for r in records]}
        if seen:
            doc["agents"] = dict(sorted(seen.items()))
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w", encoding="utf-8") as fh:
                json.dump(doc, fh, ensure_ascii=False, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            self.save_failures += 1
            if not self._failing:
                log.error("outage state %s: cannot save (%s); going on, the previous file "
                          "stays as it was", self.path, exc)
                self._failing = True
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return False
        if self._failing:
            log.info("outage state %s: saved again (%d saves failed meanwhile)", self.path,
                     self.save_failures)
            self._failing = False
        return True


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
            ln = outage_line(tags, is_open, ",".join(a.children),
                             a.annotations.get("summary_en", ""), a.maintenance,
                             round(ts * 1000), a.labels.get("cause", ""))
            if ln:
                out.append(ln)
    return out


class Alerting:
    """Outage decisions for the collector: facts in, alerts out, state kept on disk."""

    def __init__(self, cfg: AlertsConfig, inventory: Inventory, *, now: float,
                 notifier: Notifier | None = None, port: AlertmanagerPort | None = None,
                 stale_after_s: float = 180.0) -> None:
        """``notifier``: the collector's (shared); without one, one of its own posting to
        ``port`` or ``cfg.url``. ``stale_after_s``: a device without polls for this long
        neither opens nor closes a monitoring alert (the availability's ``stale_after_s``)."""
        self.notifier = notifier or notifier_for(cfg, port)
        self.cfg = cfg
        self.province = inventory.province.code
        self.store = OutageStore(cfg.state_path)
        restored = self.store.load()
        seen = self.store.load_seen()
        self.policy = Policy(hold_down_s=cfg.hold_down(), clear_down_s=cfg.clear_down(),
                             agent_silent_after_s=cfg.agent_silent_after_s,
                             root_wait_s=cfg.root_wait())
        topology = alert_topology(inventory)
        self.power = PowerCore(topology, stale_after_s=stale_after_s)
        self.core = AlertCore(topology, self.policy, now=now, restored=restored, seen=seen,
                              power=self.power)
        self.monitoring = MonitoringCore(inventory, self.policy, now=now,
                                         stale_after_s=stale_after_s)
        self.clock_tolerance_s = min(CLOCK_TOLERANCE_S, cfg.agent_silent_after_s / 2)
        if restored:
            log.info("%d open outage(s) recovered from %s", len(restored), self.store.path)
        if seen:
            log.info("last sign of life of %d agent(s) recovered from %s", len(seen),
                     self.store.path)
        self._saved_seen = dict(seen)
        self._saved_at = now
        self.opened = 0
        self.resolved = 0
        self.monitoring_opened = 0
        self._announced: set[str] = set()
        # closed outages a window declared late may still flag, and their rewritten lines
        self._closed: dict[tuple[str, float], Alert] = {}
        self._pending_lines: list[str] = []
        self._power_firing: set[tuple[tuple[str, str], ...]] = set()
        #: an outage opened, closed or changed since the collector last looked (it writes
        #: a checkpoint then: collector/checkpoint.py)
        self.outages_changed = False

    def restore(self, records: Sequence[OutageRecord], seen: Mapping[str, float],
                now: float) -> None:
        """Start again from another collector's open outages and agents' last signs of
        life (a checkpoint newer than ``state_path``), before any message; the file
        follows."""
        self.core = AlertCore(self.core.topology, self.policy, now=now, restored=records,
                              seen=seen, power=self.power)
        self._saved_seen, self._saved_at = dict(seen), now
        self.save()

    def agent_status(self, agent: str, online: bool, received: float,
                     sent: float | None = None) -> None:
        """A status message, received at ``received``, sent (its ``ts``) at ``sent``."""
        if online:
            self.core.agent_seen(agent, sign_of_life(received, sent, self.clock_tolerance_s))
        else:
            self.core.agent_offline(agent, received if sent is None else min(sent, received))

    def agent_seen(self, agent: str, received: float, sent: float | None = None) -> None:
        """Telemetry received at ``received``, handed to MQTT (its ``sent``) at ``sent``."""
        self.core.agent_seen(agent, sign_of_life(received, sent, self.clock_tolerance_s))

    def power_reading(self, site: str, device: str, ts: float, reading: PowerReading) -> None:
        """A device's power state as its poll at ``ts`` says (``DevicePoll.power``)."""
        self.power.add(site, device, Reading.of(ts, reading))

    def device_verdicts(self, verdicts: Iterable[DeviceVerdict]) -> None:
        for v in verdicts:
            self.monitoring.add(v.site, v.device, v.ts, v.decision)

    def save(self) -> None:
        self.store.save(self.core.records(), self.core.liveness())

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
        seen = self.core.liveness()
        if events or before != set(self.core.open_outages()) or (
                seen != self._saved_seen and now - self._saved_at >= LIVENESS_SAVE_S):
            self.save()  # before notifying: no page is lost
            self._saved_seen, self._saved_at = seen, now
            self.outages_changed = self.outages_changed or bool(events) or (
                before != set(self.core.open_outages()))
        monitoring = self.monitoring.evaluate(now)
        for ev in monitoring:
            a = ev.alert
            if ev.action == "firing":
                self.monitoring_opened += 1
                log.warning("monitoring broken: device %s (site %s): %s", a.labels["device"],
                            a.labels["site"], a.annotations["summary_en"])
            else:
                log.info("monitoring repaired: device %s (site %s): %s no more",
                         a.labels["device"], a.labels["site"], a.labels["cause"])
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
        down = [u for u in self.core.open_outages() if self.core.phase(u) == "open"]
        paged = self.power.evaluate(now, events, down)  # down on battery: the power alert
        for ev in paged:  # state changes only: not the minutes left, poll after poll
            a = ev.alert
            if a.kind == "site_power" and (ev.action == "resolved") == (
                    a.fingerprint in self._power_firing):
                self._power_firing ^= {a.fingerprint}
                log.log(logging.WARNING if ev.action == "firing" else logging.INFO,
                        "power alert %s %s: site %s: %s", a.labels["severity"], ev.action,
                        a.labels["site"], a.annotations["summary_en"])
        self.notifier.submit([*paged, *monitoring])
        lines, self._pending_lines = self._pending_lines, []
        return lines + outage_lines(events, self.province)  # a monitoring fault is no outage

    def _remember_closed(self, alert: Alert, now: float) -> None:
        self._closed[(alert.unit, alert.starts_at)] = alert
        horizon = now - MAINTENANCE_LOOKBACK_S
        for key in [k for k, a in self._closed.items()
                    if a.ends_at is not None and a.ends_at < horizon]:
            del self._closed[key]

    def stats(self) -> dict[str, int]:
        firing = self.notifier.firing_by_kind()
        return {
            # outage and monitoring alerts (the notifier also holds the agent faults)
            "alerts_firing": firing.total() - firing[FAULT_KIND],
            "alerts_opened": self.opened,
            "alerts_resolved": self.resolved,
            "monitoring_alerts_open": len(self.monitoring.open_alerts()),
            "monitoring_alerts_opened": self.monitoring_opened,
            "outage_state_save_failures": self.store.save_failures,
        }
