"""Outages and alerts: when an outage of a unit opens and closes, and which outage is
alerted (the root cause), from element states and agent liveness. Pure.

No asyncio, sockets, files or clocks: :class:`AlertCore` is fed element state-change
points (what :meth:`collector.availability.AvailabilityEngine.emit` returns), agent
liveness marks and the current time, and answers with :class:`AlertEvent` s (an
alert fires, its annotations change, it resolves). Rules (docs/alerts.md); the layers:

* **Units** (:mod:`collector.alerttopology`): site, device, interface element, agent.
  For sites, devices and elements the *condition* is the any-of of their element states
  (down when all are down, up when any is up, else unknown), so it is **never active on
  unknown**: a silent agent makes its elements unknown and can never raise device-down
  alerts. An agent's condition is its silence (:mod:`collector.liveness`).
* **Hold-down / clear-down** (:mod:`collector.outagemachine`): the machine every unit
  runs.
* **Root cause.** An outage that opens while its unit is covered (a unit above it is
  pending or open) is not alerted; the root's alert lists the affected sites behind it
  (``children``). A covered outage whose root closes first is alerted then. An alert
  already sent is never withdrawn because a root appeared later.
* **Maintenance.** A unit whose elements are in declared maintenance (the engine's
  ``maintenance`` state, combined any-of: no element up, one in maintenance) has the
  condition ``maintenance``: it never opens an outage, and it closes an open one (its
  end is the start of the maintenance). An alert whose outage overlaps a window (set
  with :meth:`AlertCore.set_maintenance`) carries ``maintenance=True``.
* **Cause** (label ``cause`` of a site, device or element outage, and its summary):
  ``transmission`` if a site above its site (the ``parent`` chain) was pending or open
  while the outage was not yet alerted - it went down behind a down parent; else
  ``power`` if its site's last known power state at the outage's start was on battery or
  battery low (:class:`PowerHistory`, :mod:`collector.power`); else ``site``. Decided
  again at every evaluation until the alert is sent, then fixed (labels are identity).
* **Texts** (:mod:`collector.alertsummary`): the annotations.

Times are float epoch seconds. The names of those layers are re-exported here.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal, Protocol

from collector.alertsummary import summaries
from collector.alerttopology import (
    ALERTNAMES,
    CAUSES,
    OUTAGE_KINDS,
    AlertTopology,
    Cause,
    OutageKind,
    Severity,
    Unit,
    UnitKind,
    agent_unit,
    alert_topology,
    device_unit,
    element_unit,
    site_unit,
)
from collector.availability import Change, ElementPoint, State, combine, normalize
from collector.liveness import AgentLiveness, sign_of_life
from collector.outagemachine import (
    COVERING,
    MACHINE,
    PHASES,
    SIGNALS,
    Action,
    Condition,
    Phase,
    Policy,
    Signal,
    step,
)

__all__ = [
    "ALERTNAMES", "CAUSES", "COVERING", "MACHINE", "OUTAGE_KINDS", "PHASES", "SIGNALS",
    "Action", "Alert", "AlertCore", "AlertEvent", "AlertTopology", "Cause", "Condition",
    "OutageKind", "OutageRecord", "Phase", "Policy", "PowerHistory", "Severity", "Signal",
    "Unit", "UnitKind",
    "agent_unit", "alert_topology", "device_unit", "element_unit", "sign_of_life",
    "site_unit", "step", "summaries",
]

class PowerHistory(Protocol):
    """What the outage core asks of the sites' power (:class:`collector.power.PowerCore`)."""

    def state_at(self, site: str, ts: float) -> str:
        """The site's last known power state at ``ts``: mains, on_battery, battery_low or
        unknown."""
        ...


class _NoPower:
    def state_at(self, site: str, ts: float) -> str:
        return "unknown"


_STATE_CONDITION: Final[Mapping[State, Condition]] = {
    "down": "active", "up": "clear", "unknown": "unknown", "maintenance": "maintenance",
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as Alertmanager should hold it (labels = identity)."""

    unit: str
    kind: OutageKind
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None = None
    children: tuple[str, ...] = ()
    maintenance: bool = False  # the outage overlaps declared maintenance (or ended by it)

    @property
    def fingerprint(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.labels.items()))


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """``firing``: a new alert, or new annotations of one already sent; ``resolved``."""

    action: Literal["firing", "resolved"]
    alert: Alert


@dataclass(frozen=True, slots=True)
class OutageRecord:
    """An open outage as persisted between collector runs (see :meth:`AlertCore.records`)."""

    unit: str
    kind: OutageKind
    started_at: float
    alerted: bool
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    children: Mapping[str, Condition] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"unit": self.unit, "kind": self.kind, "started_at": self.started_at,
                "alerted": self.alerted, "labels": dict(self.labels),
                "annotations": dict(self.annotations), "children": dict(self.children)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> OutageRecord:
        kind = data["kind"]
        started = data["started_at"]
        labels = data["labels"]
        annotations = data["annotations"]
        children = data.get("children", {})
        if (not isinstance(children, dict)
                or not all(c in ("active", "unknown", "clear") for c in children.values())
                or kind not in ("root", "device_down", "agent_silent")
                or not isinstance(started, int | float) or not math.isfinite(started)
                or not isinstance(labels, dict) or not isinstance(annotations, dict)):
            raise ValueError(f"not an outage record: {data!r}")
        return cls(str(data["unit"]), kind, float(started), bool(data["alerted"]),
                   {str(k): str(v) for k, v in labels.items()},
                   {str(k): str(v) for k, v in annotations.items()},
                   {str(k): v for k, v in children.items()})


@dataclass(slots=True)
class _Outage:
    unit: str
    started_at: float
    alerted: bool = False
    sent: Alert | None = None  # what was last announced (None: not yet in this run)
    #: sites behind a root that were affected while it was open, with their condition
    #: when first seen (the list only grows, so the alert's text settles)
    children: dict[str, Condition] = field(default_factory=dict)
    cause: Cause | None = None
    fixed: bool = False  # the cause is fixed: alerted (a restored older record: none)
    behind: bool = False  # a site above was pending or open before the alert was sent



# ----------------------------------------------------------------------------- core


class AlertCore:
    """Outage decisions for the whole inventory.

    Feed :meth:`add_points`, :meth:`agent_seen` and :meth:`agent_offline` in any
    order between evaluations; call :meth:`evaluate` with the current time (never going
    backwards). ``restored`` are the open outages of a previous run: they stay open
    (their alerts are re-announced with the same identity and start) until clear-down.
    ``seen`` is each agent's last sign of life in a previous run: an agent is judged
    silent ``agent_silent_after_s`` after it (but never before that long after the
    start), and its "silent since" is that sign of life, not the restart. Until a first
    sign of life in this run an agent is unknown, not clear: a restored silence stays.
    """

    def __init__(self, topology: AlertTopology, policy: Policy, *, now: float,
                 restored: Iterable[OutageRecord] = (), retain_s: float = 3600.0,
                 seen: Mapping[str, float] | None = None,
                 power: PowerHistory | None = None) -> None:
        self.topology = topology
        self.power: PowerHistory = power or _NoPower()
        self._above: dict[str, list[str]] = {}  # site -> the site units above it
        for site, behind in topology.descendants.items():
            for b in behind:
                self._above.setdefault(b, []).append(site_unit(site))
        self.policy = policy
        self.retain_s = max(retain_s, policy.hold_down_s, policy.clear_down_s)
        self._by_element = topology.units_of_element()
        self._points: dict[str, dict[float, State]] = {e: {} for e in self._by_element}
        self._timelines: dict[str, list[Change]] = {e: [] for e in self._by_element}
        self._dirty_elements: set[str] = set()
        # since -inf: never known (a fresh start), as opposed to became unknown
        self._condition: dict[str, tuple[Condition, float]] = {
            u: ("unknown", -math.inf) for u in topology.units}
        self._phase: dict[str, Phase] = dict.fromkeys(topology.units, "idle")
        self._open: dict[str, _Outage] = {}
        self._orphans: list[OutageRecord] = []  # restored outages of units no longer known
        self._agents = AgentLiveness(topology.agent_units, policy.agent_silent_after_s,
                                     started=now, seen=seen)
        self._maintenance: dict[str, list[tuple[float, float]]] = {}  # element -> windows
        self._now = now
        for rec in restored:
            if rec.unit in topology.units:
                self._phase[rec.unit] = "open"
                # a cause label absent from an older record stays absent (identity)
                self._open[rec.unit] = _Outage(
                    rec.unit, rec.started_at, rec.alerted, children=dict(rec.children),
                    cause=_as_cause(rec.labels.get("cause")), fixed=rec.alerted)
            else:
                self._orphans.append(rec)

    # ----------------------------------------------------------------------- input

    def add_points(self, points: Iterable[ElementPoint]) -> int:
        """Element state-change points (upserts by (element, ts)); returns how many were
        about elements this core knows."""
        n = 0
        for p in points:
            pts = self._points.get(p.element)
            if pts is None or not math.isfinite(p.ts):
                continue
            pts[p.ts] = p.state
            self._dirty_elements.add(p.element)
            n += 1
        return n

    def agent_seen(self, agent: str, ts: float) -> None:
        """A sign of life of ``agent`` at ``ts`` (:meth:`AgentLiveness.seen`)."""
        self._agents.seen(agent, ts)

    def liveness(self) -> dict[str, float]:
        """Each agent's last sign of life (what to keep across a restart: ``seen``)."""
        return self._agents.last_seen()

    def silent_since(self, agent: str) -> float | None:
        """The last sign of life of a silent agent (None while it is not silent)."""
        return self._agents.silent_since(agent, self._now)

    def agent_offline(self, agent: str, ts: float) -> None:
        """The agent's Last Will (or clean-stop status) arrived at ``ts``."""
        self._agents.offline(agent, ts)

    def set_maintenance(self, windows: Mapping[str, Sequence[tuple[float, float]]]) -> None:
        """The declared maintenance windows ``[start, end)`` per element (the whole set);
        they only flag alerts: the ``maintenance`` condition itself comes from the
        element states."""
        self._maintenance = {e: sorted(w) for e, w in windows.items() if w}

    def overlaps_maintenance(self, unit_id: str, start: float, end: float) -> bool:
        """Whether an outage of ``unit_id`` over ``[start, end]`` meets a declared window."""
        unit = self.topology.units.get(unit_id)
        return unit is not None and self._in_maintenance(unit, start, end)

    def _in_maintenance(self, unit: Unit, start: float, end: float) -> bool:
        """Whether ``[start, end]`` meets a maintenance window of one of the unit's
        elements."""
        return any(s <= end and start < e
                   for element in unit.elements
                   for s, e in self._maintenance.get(element, ()))

    # --------------------------------------------------------------------- output

    def phase(self, unit: str) -> Phase:
        return self._phase[unit]

    def condition(self, unit: str) -> tuple[Condition, float]:
        return self._condition[unit]

    def open_outages(self) -> dict[str, float]:
        """Open outages (alerted or covered): unit -> start."""
        return {u: o.started_at for u, o in self._open.items()}

    def records(self) -> list[OutageRecord]:
        """What to persist so that a restarted collector neither loses nor repeats an alert."""
        out: list[OutageRecord] = []
        for o in self._open.values():
            unit = self.topology.units[o.unit]
            alert = o.sent or self._alert(unit, o)
            out.append(OutageRecord(o.unit, alert.kind, o.started_at, o.alerted,
                                    alert.labels, alert.annotations, dict(o.children)))
        return out

    def evaluate(self, now: float) -> list[AlertEvent]:
        """Advance every unit to ``now``; return what to tell Alertmanager."""
        if now < self._now:
            raise ValueError(f"time went backwards: {now} < {self._now}")
        self._now = now
        self._refresh_conditions(now)
        events: list[AlertEvent] = []
        for rec in self._orphans:  # unit gone from the inventory: close what was sent
            if rec.alerted:
                events.append(AlertEvent("resolved", Alert(
                    rec.unit, rec.kind, rec.labels, rec.annotations, rec.started_at, now)))
        self._orphans = []
        opened: list[str] = []
        for uid, phase in self._phase.items():
            cond, since = self._condition[uid]
            new, action = step(phase, self.policy.signal(cond, since, now))
            self._phase[uid] = new
            if action == "open":
                self._open[uid] = _Outage(uid, self._start_of(uid, since))
                opened.append(uid)
            elif action == "resolve":
                outage = self._open.pop(uid)
                if outage.alerted:
                    unit = self.topology.units[uid]
                    alert = replace(outage.sent or self._alert(unit, outage), ends_at=since,
                                    maintenance=cond == "maintenance" or self._in_maintenance(
                                        unit, outage.started_at, since))
                    events.append(AlertEvent("resolved", alert))
        for uid, outage in self._open.items():
            unit = self.topology.units[uid]
            if not outage.alerted and any(self._phase.get(u, "idle") in COVERING
                                          for u in self._above.get(unit.site, ())):
                outage.behind = True
            # A covered outage is alerted on its own only while it is still down: one
            # already recovering (clearing) when its root closes recovered with the root.
            if (not outage.alerted and not self._covered(unit)
                    and self._phase[uid] == "open"
                    and (not unit.cover_groups
                         or now >= outage.started_at + self.policy.hold_down_s
                         + self.policy.root_wait_s)):
                outage.alerted = True
            if not outage.alerted:
                continue
            alert = self._alert(unit, outage)
            if not outage.fixed:
                outage.cause, outage.fixed = _as_cause(alert.labels.get("cause")), True
            if outage.sent != alert:
                outage.sent = alert
                events.append(AlertEvent("firing", alert))
        return events

    # ------------------------------------------------------------------- internals

    def _refresh_conditions(self, now: float) -> None:
        dirty_units: set[str] = set()
        horizon = now - self.retain_s
        for element in self._dirty_elements:
            pts = self._points[element]
            tl = normalize(pts.items())
            i = bisect.bisect_left(tl, horizon, key=_ts)
            if i > 1:
                del tl[: i - 1]
            self._points[element] = {c.ts: c.state for c in tl}
            self._timelines[element] = tl
            dirty_units.update(self._by_element[element])
        self._dirty_elements.clear()
        for uid in dirty_units:
            unit = self.topology.units[uid]
            tls = [self._timelines[e] for e in unit.elements]
            combined = tls[0] if len(tls) == 1 else combine("any_of", tls)
            self._condition[uid] = _current(combined, now)
        # a point after now changes the condition later: look again next time
        self._dirty_elements.update(
            e for e in {e for u in dirty_units for e in self.topology.units[u].elements}
            if self._timelines[e] and self._timelines[e][-1].ts > now)
        for agent, uid in self.topology.agent_units.items():
            self._condition[uid] = self._agents.condition(agent, now)

    def _start_of(self, uid: str, since: float) -> float:
        """When an outage began: ``since``; for a silent agent its last sign of life."""
        unit = self.topology.units[uid]
        if unit.kind != "agent":
            return since
        last = self._agents.last_seen_of(unit.labels["agent"])
        return last if math.isfinite(last) else since

    def _covered(self, unit: Unit) -> bool:
        if not unit.cover_groups:
            return False
        return all(
            any(self._phase.get(c, "idle") in COVERING for c in group)
            for group in unit.cover_groups
        )

    def _children(self, unit: Unit, outage: _Outage) -> list[tuple[str, Condition]]:
        """Sites behind a root affected during its outage (down, or became unknown),
        nearest first."""
        behind = self.topology.descendants.get(unit.site, ())
        for site in behind:
            cond, since = self._condition.get(site_unit(site), ("unknown", -math.inf))
            if site not in outage.children and (
                    cond == "active" or (cond == "unknown" and since > -math.inf)):
                outage.children[site] = cond
        return [(s, outage.children[s]) for s in behind if s in outage.children]

    def cause(self, unit: Unit, outage: _Outage) -> Cause | None:
        """The outage's cause (see the module doc); None for an agent."""
        if outage.fixed or unit.kind == "agent":
            return outage.cause
        if outage.behind:
            return "transmission"
        at_start = self.power.state_at(unit.site, outage.started_at)
        return "power" if at_start in ("on_battery", "battery_low") else "site"

    def _alert(self, unit: Unit, outage: _Outage) -> Alert:
        kind = OUTAGE_KINDS[unit.kind]
        children = self._children(unit, outage) if unit.kind == "site" else []
        cause = self.cause(unit, outage)
        annotations = summaries(self.topology, unit, outage.started_at, children, cause)
        labels = {**unit.labels, "cause": cause} if cause else dict(unit.labels)
        return Alert(unit.id, kind, labels, annotations, outage.started_at,
                     children=tuple(s for s, _ in children),
                     maintenance=self._in_maintenance(unit, outage.started_at, self._now))


def _as_cause(value: str | None) -> Cause | None:
    """A cause label as read back (an unknown word: none)."""
    return next((c for c in CAUSES if c == value), None)


def _ts(c: Change) -> float:
    return c.ts


def _current(timeline: Sequence[Change], now: float) -> tuple[Condition, float]:
    """The condition at ``now`` and since when it holds (continuously)."""
    i = bisect.bisect_right(timeline, now, key=_ts)
    if i == 0:
        return "unknown", -math.inf
    change = timeline[i - 1]
    return _STATE_CONDITION[change.state], change.ts

