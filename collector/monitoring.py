"""Monitoring alerts: one warning per device whose monitoring is broken. Pure.

A poll that failed for a cause other than a real loss of reachability (a wrong SNMPv3
key, an SNMP ACL, an unresolvable name, malformed answers, SNMP silent while the host
answers ping: :mod:`collector.witness`) makes the device ``unknown``, never down, and is
told to the NOC - not to the operators - as **one** ``XanetMonitoringBroken`` alert per
device (severity ``warning``, labels province, commune, site, device, cause) saying what
to check. It opens once the fault has lasted the hold-down and resolves once polls have
told the truth again (the device answers, or it is really down: then the outage alerts
take over) for the clear-down; the same machine as outages
(:data:`collector.outagemachine.MACHINE`).

If the cause changes while the alert is open (the v3 key was fixed, now the view is
wrong) the alert for the old cause resolves and one for the new cause fires at once.
No data (an agent silent: :class:`collector.outages.AlertCore` says so) neither opens nor
closes an alert. No ``outage`` point is written for these alerts.

Open monitoring alerts are not kept across a collector restart: the faulty polls keep
coming, so the alert is raised again after the hold-down with the same labels, which
Alertmanager still holds (``expire_after_s``): no second notification.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from collector.outagemachine import Condition, Phase, Policy, step
from collector.outages import Alert, AlertEvent
from collector.witness import SNMP_SILENT, Decision
from xanet.inventory import Inventory
from xanet.texts import text

ALERTNAME: Final = "XanetMonitoringBroken"
KIND: Final = "monitoring_broken"
_OK: Final = ""  # a poll that told the truth (up or down)

#: The monitoring faults with advice of their own (else ``monitoring.check.other``).
_CHECKED: Final = (SNMP_SILENT, "auth", "access", "resolve", "protocol", "config", "limit")
#: What to check, per monitoring fault: (English, Vietnamese), from :mod:`xanet.texts`.
WHAT_TO_CHECK: Final[Mapping[str, tuple[str, str]]] = {
    cause: (text(f"monitoring.check.{cause}", "en"), text(f"monitoring.check.{cause}", "vi"))
    for cause in _CHECKED
}

_ICT = timezone(timedelta(hours=7))  # Vietnam: UTC+7, no daylight saving


def summaries(device: str, site: str, site_name: str, commune_name: str, cause: str,
              since: float) -> dict[str, str]:
    """``summary_en`` = "monitoring broken: <device>: <cause>, <what to check> (...)"."""
    en_check, vi_check = WHAT_TO_CHECK.get(cause, (text("monitoring.check.other", "en"),
                                                   text("monitoring.check.other", "vi")))
    fields = {"device": device, "cause": cause, "site": site, "site_name": site_name,
              "commune_name": commune_name}
    en = text("monitoring.summary", "en").format(
        **fields, check=en_check,
        since=datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    vi = text("monitoring.summary", "vi").format(
        **fields, check=vi_check,
        since=datetime.fromtimestamp(since, _ICT).strftime("%H:%M:%S %d/%m/%Y"))
    return {"summary_en": en, "summary_vi": vi, "summary": en,
            "description": "A monitoring fault, not an outage: the agent cannot observe "
                           "this device. Fix the monitoring; no outage is counted meanwhile."}


@dataclass(frozen=True, slots=True)
class _Device:
    labels: Mapping[str, str]
    site_name: str
    commune_name: str


@dataclass(slots=True)
class _Track:
    points: dict[float, str] = field(default_factory=dict)  # ts -> cause, or _OK
    timeline: list[tuple[float, str]] = field(default_factory=list)  # runs: (since, cause)
    stamps: list[float] = field(default_factory=list)  # sorted poll times
    dirty: bool = False
    phase: Phase = "idle"
    cause: str | None = None  # of the open alert
    started_at: float = 0.0
    sent: Alert | None = None


class MonitoringCore:
    """Feed :meth:`add` (verdicts of polls, any order) and :meth:`evaluate` (time never
    going backwards); get :class:`AlertEvent` s for Alertmanager."""

    def __init__(self, inventory: Inventory, policy: Policy, *, now: float,
                 stale_after_s: float, retain_s: float = 600.0) -> None:
        """Polls older than ``retain_s`` are forgotten, except where the fault (or the
        recovery) in force then began: memory stays a few polls per device."""
        self.policy = policy
        self.stale_after_s = stale_after_s
        self.retain_s = max(retain_s, 2 * max(policy.hold_down_s, policy.clear_down_s,
                                              stale_after_s))
        self._now = now
        province = inventory.province.code
        self._devices: dict[tuple[str, str], _Device] = {}
        for site in inventory.sites:
            commune = inventory.commune(site.commune).name
            for device in site.devices:
                self._devices[(site.id, device.id)] = _Device(
                    {"alertname": ALERTNAME, "severity": "warning", "province": province,
                     "commune": site.commune, "site": site.id, "device": device.id},
                    site.name or site.id, commune)
        self._tracks: dict[tuple[str, str], _Track] = {}

    def add(self, site: str, device: str, ts: float, decision: Decision) -> bool:
        """One poll's verdict; False for a device the inventory does not know."""
        if (site, device) not in self._devices or not math.isfinite(ts):
            return False
        track = self._tracks.setdefault((site, device), _Track())
        cause = _OK if decision.cause is None else decision.cause
        if track.points.get(ts) is None or cause > track.points[ts]:  # order-free
            track.points[ts] = cause
            track.dirty = True
        return True

    def open_alerts(self) -> dict[tuple[str, str], str]:
        """(site, device) -> cause of every open monitoring alert."""
        return {k: t.cause for k, t in self._tracks.items()
                if t.phase in ("open", "clearing") and t.cause is not None}

    def evaluate(self, now: float) -> list[AlertEvent]:
        if now < self._now:
            raise ValueError(f"time went backwards: {now} < {self._now}")
        self._now = now
        events: list[AlertEvent] = []
        for key, track in self._tracks.items():
            if track.dirty:
                self._rebuild(track, now)
            cond, cause, since = self._condition(track, now)
            if track.phase in ("open", "clearing") and cond == "active" and cause != track.cause:
                # another fault now: the old alert ends, the new one fires at once
                events.append(self._resolved(key, track, since))
                track.phase, track.cause, track.started_at, track.sent = "open", cause, since, None
                events.append(self._firing(key, track))
                continue
            phase, action = step(track.phase, self.policy.signal(cond, since, now))
            track.phase = phase
            if action == "open":
                track.cause, track.started_at = cause, since
                events.append(self._firing(key, track))
            elif action == "resolve":
                events.append(self._resolved(key, track, since))
                track.cause, track.sent = None, None
        return events

    def _rebuild(self, track: _Track, now: float) -> None:
        runs: list[tuple[float, str]] = []
        for ts in sorted(track.points):
            cause = track.points[ts]
            if not runs or runs[-1][1] != cause:
                runs.append((ts, cause))
        # forget what is older than the retention, keeping the start of the run in
        # force there (the polls in between only repeat it)
        horizon = now - self.retain_s
        i = bisect.bisect_left(runs, (horizon, ""))
        if i > 0:
            runs = runs[i - 1:]
            first = runs[0][0]
            track.points = {ts: c for ts, c in track.points.items()
                            if ts >= horizon or ts == first}
        track.timeline = runs
        track.stamps = sorted(track.points)
        track.dirty = any(ts > now for ts in track.points)  # look again later

    def _condition(self, track: _Track, now: float) -> tuple[Condition, str | None, float]:
        runs = track.timeline
        i = bisect.bisect_right(runs, (now, "\uffff"))
        if i == 0:
            return "unknown", None, -math.inf
        since, cause = runs[i - 1]
        last = track.stamps[bisect.bisect_right(track.stamps, now) - 1]
        if now - last > self.stale_after_s:
            return "unknown", None, -math.inf  # no polls any more: neither opens nor closes
        if cause == _OK:
            return "clear", None, since
        return "active", cause, since

    def _alert(self, key: tuple[str, str], track: _Track, ends_at: float | None = None) -> Alert:
        dev = self._devices[key]
        cause = track.cause or ""
        labels = {**dev.labels, "cause": cause}
        return Alert(f"monitor:{key[0]}/{key[1]}", KIND, labels,
                     summaries(key[1], key[0], dev.site_name, dev.commune_name, cause,
                               track.started_at),
                     track.started_at, ends_at)

    def _firing(self, key: tuple[str, str], track: _Track) -> AlertEvent:
        alert = self._alert(key, track)
        track.sent = alert
        return AlertEvent("firing", alert)

    def _resolved(self, key: tuple[str, str], track: _Track, ends_at: float) -> AlertEvent:
        return AlertEvent("resolved", self._alert(key, track, ends_at))

