"""Which power state each site is in, and when its early-warning alert opens, escalates and
resolves (pure).

No asyncio, sockets, files or clocks: :class:`PowerCore` is fed the power readings of
the devices of a site (``DevicePoll.power``: derived by the agent from a power profile
such as ``ups-mib``, docs/profiles.md) and the outage events of
:class:`collector.outages.AlertCore`, and answers with alert events. Rules
(docs/alerts.md, "Power"):

* **A site's state** combines its devices' latest readings that say something known:
  ``battery_low`` if any device says so, else ``on_battery`` if any, else ``mains`` if
  any, else ``unknown``. *Now* (:meth:`PowerCore.state`) only readings younger than
  ``stale_after_s`` count. *At a past time* (:meth:`PowerCore.state_at`, the state an
  outage's cause needs) the readings up to then count, those within ``stale_after_s`` of
  the newest: a device that stopped answering keeps the state it last reported.
* **The alert** (one per site, ``XanetSiteOnBattery``) follows :data:`MACHINE`: on
  battery opens it as a ``warning``; battery low makes it ``critical`` (a new label set:
  the warning resolves, the critical fires); critical stays critical until the mains
  return; the mains resolve it. ``unknown`` (no fresh reading) neither opens nor
  resolves it - no return of the mains was seen, the rule outages follow for unknown.
  The minutes remaining change only its annotations (Alertmanager does not page again).
* **One incident, one page.** An outage of the site whose cause is ``power``
  (:mod:`collector.outages`) is not paged on its own while the site's power alert is
  open: the power alert carries it (it turns critical and says the site is down), the
  outage is still recorded. If the mains return while that outage is still down, the
  outage alert is sent then: the site is down on mains, a new fact (one already
  recovering, clearing, is not paged).

Times are float epoch seconds.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from collector.alerttopology import AlertTopology, site_unit
from collector.outages import Alert, AlertEvent
from collector.powertext import Quote, power_summaries
from xanet.wire import PowerReading, PowerState

AlertPhase = Literal["none", "warning", "critical"]
ALERTNAME: Final = "XanetSiteOnBattery"
ALERT_PHASES: Final[tuple[AlertPhase, ...]] = ("none", "warning", "critical")

#: The power alert as data: (phase, the site's state now) -> next phase.
MACHINE: Final[Mapping[tuple[AlertPhase, PowerState], AlertPhase]] = {
    ("none", "mains"): "none",
    ("none", "on_battery"): "warning",
    ("none", "battery_low"): "critical",
    ("none", "unknown"): "none",
    ("warning", "mains"): "none",
    ("warning", "on_battery"): "warning",
    ("warning", "battery_low"): "critical",
    ("warning", "unknown"): "warning",
    ("critical", "mains"): "none",
    ("critical", "on_battery"): "critical",
    ("critical", "battery_low"): "critical",
    ("critical", "unknown"): "critical",
}
#: Which state wins when a site's devices disagree (the first known one of this order).
PRIORITY: Final[tuple[PowerState, ...]] = ("battery_low", "on_battery", "mains")
ON_BATTERY: Final[frozenset[PowerState]] = frozenset({"on_battery", "battery_low"})


def step(phase: AlertPhase, state: PowerState) -> AlertPhase:
    """The alert's next phase (every pair is defined)."""
    return MACHINE[(phase, state)]


@dataclass(frozen=True, slots=True)
class Reading:
    """One device's power reading at ``ts``."""

    ts: float
    state: PowerState
    minutes_remaining: float | None = None
    charge_pct: float | None = None
    seconds_on_battery: int | None = None

    @classmethod
    def of(cls, ts: float, r: PowerReading) -> Reading:
        return cls(ts, r.state, r.minutes_remaining, r.charge_pct, r.seconds_on_battery)


def combine(readings: Iterable[Reading]) -> tuple[PowerState, Reading | None]:
    """The site's state over its devices' readings, and the reading to quote (of the
    winning state, the fewest minutes remaining)."""
    known = [r for r in readings if r.state != "unknown"]
    for state in PRIORITY:
        of_state = [r for r in known if r.state == state]
        if of_state:
            return state, min(of_state, key=lambda r: (
                r.minutes_remaining if r.minutes_remaining is not None else float("inf"),
                -r.ts))
    return "unknown", None


def _ts(r: Reading) -> float:
    return r.ts


@dataclass(slots=True)
class _History:
    """One device's known readings, by time. Of a run of one state (readings no further
    apart than the gap given to :meth:`add`) only the first and the last are kept: a
    UPS on mains for months costs two readings."""

    kept: list[Reading] = field(default_factory=list)
    run_of: list[float] = field(default_factory=list)  # each kept reading's run start

    def add(self, r: Reading, gap_s: float, retain_s: float) -> None:
        if r.state == "unknown":
            return
        k, runs = self.kept, self.run_of
        if k and r.ts < k[-1].ts:  # out of order (a replay): a run of its own
            i = bisect.bisect_right(k, r.ts, key=_ts)
            k.insert(i, r)
            runs.insert(i, r.ts)
            return
        same = bool(k) and k[-1].state == r.state and r.ts - k[-1].ts <= gap_s
        start = runs[-1] if same else r.ts
        if same and len(k) >= 2 and runs[-2] == start:  # the run's last: replaced
            k[-1] = r
        else:
            k.append(r)
            runs.append(start)
        cut = bisect.bisect_left(k, r.ts - retain_s, key=_ts) - 1  # keep one before
        if cut > 0:
            del k[:cut], runs[:cut]

    def at(self, t: float) -> tuple[Reading, float] | None:
        """The last known reading at ``t``, and as of when it held (``t`` itself when
        ``t`` lies inside its run)."""
        i = bisect.bisect_right(self.kept, t, key=_ts) - 1
        if i < 0:
            return None
        r = self.kept[i]
        inside = i + 1 < len(self.kept) and self.run_of[i + 1] == self.run_of[i]
        return r, (t if inside else r.ts)


@dataclass(slots=True)
class _Site:
    devices: dict[str, _History] = field(default_factory=dict)
    phase: AlertPhase = "none"
    since: float = 0.0  # on battery since (the alert's start)
    quoted: Reading | None = None  # the reading the alert's text quotes
    state: PowerState = "unknown"
    absorbed: dict[str, Alert] = field(default_factory=dict)  # outage unit -> its alert
    sent: Alert | None = None


class PowerCore:
    """Power state and power alerts of every site; see the module doc."""

    def __init__(self, topology: AlertTopology, *, stale_after_s: float,
                 retain_s: float = 6 * 3600.0) -> None:
        if stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be > 0, not {stale_after_s}")
        self.topology = topology
        self.stale_after_s = stale_after_s
        self.retain_s = max(retain_s, stale_after_s)
        self._sites: dict[str, _Site] = {}
        self._quiet: set[str] = set()  # outages carried until the mains came back, recovering

    # ----------------------------------------------------------------------- input

    def add(self, site: str, device: str, reading: Reading) -> bool:
        """One device's reading; False for a site the inventory does not know."""
        if site not in self.topology.site_names:
            return False
        history = self._sites.setdefault(site, _Site()).devices.setdefault(device, _History())
        history.add(reading, self.stale_after_s, self.retain_s)
        return True

    # --------------------------------------------------------------------- output

    def state(self, site: str, now: float) -> PowerState:
        """The site's state now (fresh readings only)."""
        return self._now_view(site, now)[0]

    def state_at(self, site: str, ts: float) -> PowerState:
        """The site's last known state at ``ts`` (stale readings kept)."""
        s = self._sites.get(site)
        if s is None:
            return "unknown"
        latest = [x for x in (h.at(ts) for h in s.devices.values()) if x is not None]
        if not latest:
            return "unknown"
        newest = max(as_of for _, as_of in latest)
        return combine(r for r, as_of in latest if as_of >= newest - self.stale_after_s)[0]

    def phase(self, site: str) -> AlertPhase:
        s = self._sites.get(site)
        return "none" if s is None else s.phase

    def firing(self) -> list[Alert]:
        """The power alerts open now (one per site at most)."""
        return [s.sent for s in self._sites.values() if s.sent is not None]

    def evaluate(self, now: float, outages: Iterable[AlertEvent] = (),
                 down: Collection[str] = ()) -> list[AlertEvent]:
        """Advance every site's alert to ``now`` and take the outage events of this
        evaluation; return what to tell Alertmanager: the power alerts' events and the
        outage events not carried by a power alert. ``down``: the outage units down now
        (open, not clearing): the ones a return of the mains leaves to be paged."""
        out: list[AlertEvent] = []
        for site, s in self._sites.items():
            state, quoted = self._now_view(site, now)
            if state != "unknown":  # unknown changes nothing, not even the text
                s.state = state
            new = step(s.phase, state)
            if s.phase == "none" and new != "none":
                s.since = _battery_since(quoted, now) if quoted is not None else now
            if new != "none" and quoted is not None:
                s.quoted = quoted
            if new == "none" and s.absorbed:  # the mains are back: still down, paged now
                out += [AlertEvent("firing", a) for u, a in s.absorbed.items() if u in down]
                self._quiet.update(u for u in s.absorbed if u not in down)  # recovering
                s.absorbed.clear()
            s.phase = new
        for ev in outages:
            out += self._outage(ev)
        for site, s in self._sites.items():
            if s.absorbed and s.phase == "warning":
                s.phase = "critical"  # the site went down on battery: now it is critical
            out += self._announce(site, s, now)
        return out

    # ------------------------------------------------------------------- internals

    def _now_view(self, site: str, now: float) -> tuple[PowerState, Reading | None]:
        s = self._sites.get(site)
        if s is None:
            return "unknown", None
        latest = [x for x in (h.at(now) for h in s.devices.values()) if x is not None]
        return combine(r for r, as_of in latest if as_of >= now - self.stale_after_s)

    def _outage(self, ev: AlertEvent) -> list[AlertEvent]:
        a = ev.alert
        s = self._sites.get(a.labels.get("site", ""))
        if s is None or a.labels.get("cause") != "power":
            return [ev]
        if a.unit in self._quiet:  # recovered with the mains: never paged, never will be
            if ev.action == "resolved":
                self._quiet.discard(a.unit)
            return []
        if ev.action == "resolved":
            return [] if s.absorbed.pop(a.unit, None) is not None else [ev]
        if s.phase == "none" and a.unit not in s.absorbed:
            return [ev]
        s.absorbed[a.unit] = a
        return []

    def _announce(self, site: str, s: _Site, now: float) -> list[AlertEvent]:
        if s.phase == "none":
            if s.sent is None:
                return []
            gone, s.sent = s.sent, None
            return [AlertEvent("resolved", replace(gone, ends_at=now))]
        alert = self._alert(site, s)
        if alert == s.sent:
            return []
        out: list[AlertEvent] = []
        if s.sent is not None and s.sent.fingerprint != alert.fingerprint:
            out.append(AlertEvent("resolved", replace(s.sent, ends_at=now)))  # escalated
        s.sent = alert
        out.append(AlertEvent("firing", alert))
        return out

    def _alert(self, site: str, s: _Site) -> Alert:
        topo = self.topology
        unit = topo.units.get(site_unit(site))
        severity = "critical" if s.phase == "critical" else "warning"
        at_risk = self.services_at_risk(site)
        labels = {"alertname": ALERTNAME, "severity": severity, "province": topo.province,
                  "commune": unit.labels.get("commune", "") if unit else "", "site": site,
                  "service": ",".join(at_risk)}
        down_since = min((a.starts_at for a in s.absorbed.values()), default=None)
        state: PowerState = s.state if s.state in ON_BATTERY else (
            "battery_low" if s.phase == "critical" else "on_battery")
        r = s.quoted
        quote = Quote(state, r.minutes_remaining if r else None, r.charge_pct if r else None,
                      s.since, down_since)
        annotations = power_summaries(topo, site, at_risk, quote)
        return Alert(site_unit(site), "site_power", {k: v for k, v in labels.items() if v},
                     annotations, s.since)

    def services_at_risk(self, site: str) -> tuple[str, ...]:
        """The services of the site and of the sites behind it (the uplink tree)."""
        topo = self.topology
        out: set[str] = set()
        for sid in (site, *topo.descendants.get(site, ())):
            unit = topo.units.get(site_unit(sid))
            if unit is not None:
                out.update(unit.services)
        return tuple(sorted(out))


def _battery_since(r: Reading, now: float) -> float:
    """When the site went on battery: the reading's ``seconds_on_battery`` back from it."""
    if r.state in ON_BATTERY and r.seconds_on_battery is not None:
        return min(now, r.ts - r.seconds_on_battery)
    return min(now, r.ts)
