"""Outages and alerts: when an outage opens, where it is rooted, when it closes. Pure.

No asyncio, sockets, files or clocks: :class:`AlertCore` is fed element state-change
points (what :meth:`collector.availability.AvailabilityEngine.emit` returns), agent
liveness marks and the current time, and answers with :class:`AlertEvent` s (an
alert fires, its annotations change, it resolves). Rules (docs/alerts.md):

* **Units.** Four kinds of thing can be in outage, all derived from the inventory:

  - ``site``: the site is *cut off* when all of its **uplink** elements are down. The
    uplink is the site's ``fibre`` elements if it has any, else all of its elements.
  - ``device``: every element of the device is down (it does not answer, or every
    monitored interface is down).
  - ``element``: one monitored interface is down (the device answers).
  - ``agent``: the agent is silent - its Last Will (or clean-stop status) arrived, or
    nothing came from it for ``agent_silent_after_s``.

  A unit's *condition* is ``active`` (down/silent), ``clear`` or ``unknown``; for
  sites, devices and elements it is the any-of of their element states (down when all
  are down, up when any is up, else unknown), so it is **never active on unknown**:
  a silent agent makes its elements unknown and can never raise device-down alerts.

* **Hold-down / clear-down** (:data:`MACHINE`): an outage opens once the condition has
  been active *continuously* for ``hold_down_s`` (its start is the first down), and
  closes once it has been clear continuously for ``clear_down_s`` (its end is the first
  up). Unknown never opens an outage and never closes one (no recovery was seen); it
  resets a pending hold-down and a running clear-down.

* **Root cause.** A unit is *covered* while a unit above it is pending or open: its
  device, its site, any ancestor site (the inventory's ``parent`` chain). An agent is
  covered when each of its sites has an ancestor site (or the agent of one) pending or
  open. An outage that opens while covered is not alerted; the root's alert lists the
  affected sites behind it (``children``). A covered outage whose root closes first is
  alerted then. An alert already sent is never withdrawn because a root appeared later.

* **Maintenance.** A unit whose elements are in declared maintenance (the engine's
  ``maintenance`` state, combined any-of: no element up, one in maintenance) has the
  condition ``maintenance``: it never opens an outage, and it closes an open one (its
  end is the start of the maintenance). An alert whose outage overlaps a window (set
  with :meth:`AlertCore.set_maintenance`) carries ``maintenance=True``.

Times are float epoch seconds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Literal

from collector.availability import Change, ElementPoint, State, combine, normalize
from xanet.inventory import SERVICE_LABELS_VI, Inventory, Service, Site

Condition = Literal["active", "clear", "unknown", "maintenance"]
Phase = Literal["idle", "pending", "open", "clearing"]
Signal = Literal["active_short", "active_held", "clear_short", "clear_held", "unknown",
                 "maintenance"]
Action = Literal["none", "open", "resolve"]
UnitKind = Literal["site", "device", "element", "agent"]
#: ``agent_fault``: an agent misbehaving (collector/faults.py), no outage either.
OutageKind = Literal["root", "device_down", "agent_silent", "monitoring_broken",
                     "agent_fault"]
Severity = Literal["critical", "major", "warning"]

PHASES: Final[tuple[Phase, ...]] = ("idle", "pending", "open", "clearing")
SIGNALS: Final[tuple[Signal, ...]] = (
    "active_short", "active_held", "clear_short", "clear_held", "unknown", "maintenance",
)

#: The outage state machine, as data: (phase, signal) -> (next phase, action).
#: ``*_held`` means the condition has lasted the hold-down (active) or clear-down (clear).
MACHINE: Final[Mapping[tuple[Phase, Signal], tuple[Phase, Action]]] = {
    ("idle", "active_short"): ("pending", "none"),
    ("idle", "active_held"): ("open", "open"),
    ("idle", "clear_short"): ("idle", "none"),
    ("idle", "clear_held"): ("idle", "none"),
    ("idle", "unknown"): ("idle", "none"),
    ("pending", "active_short"): ("pending", "none"),
    ("pending", "active_held"): ("open", "open"),
    ("pending", "clear_short"): ("idle", "none"),
    ("pending", "clear_held"): ("idle", "none"),
    ("pending", "unknown"): ("idle", "none"),
    ("open", "active_short"): ("open", "none"),
    ("open", "active_held"): ("open", "none"),
    ("open", "clear_short"): ("clearing", "none"),
    ("open", "clear_held"): ("idle", "resolve"),
    ("open", "unknown"): ("open", "none"),
    ("clearing", "active_short"): ("open", "none"),
    ("clearing", "active_held"): ("open", "none"),
    ("clearing", "clear_short"): ("clearing", "none"),
    ("clearing", "clear_held"): ("idle", "resolve"),
    ("clearing", "unknown"): ("open", "none"),
    # declared maintenance: no outage opens, an open one closes
    ("idle", "maintenance"): ("idle", "none"),
    ("pending", "maintenance"): ("idle", "none"),
    ("open", "maintenance"): ("idle", "resolve"),
    ("clearing", "maintenance"): ("idle", "resolve"),
}

#: Phases in which a unit covers the units below it.
COVERING: Final[frozenset[Phase]] = frozenset({"pending", "open", "clearing"})

ALERTNAMES: Final[Mapping[UnitKind, str]] = {
    "site": "XanetSiteDown",
    "device": "XanetDeviceDown",
    "element": "XanetServiceDown",
    "agent": "XanetAgentSilent",
}
OUTAGE_KINDS: Final[Mapping[UnitKind, OutageKind]] = {
    "site": "root",
    "device": "device_down",
    "element": "device_down",
    "agent": "agent_silent",
}

_STATE_CONDITION: Final[Mapping[State, Condition]] = {
    "down": "active", "up": "clear", "unknown": "unknown", "maintenance": "maintenance",
}


def step(phase: Phase, signal: Signal) -> tuple[Phase, Action]:
    """Next phase and action, following :data:`MACHINE` (every pair is defined)."""
    return MACHINE[(phase, signal)]


@dataclass(frozen=True, slots=True)
class Policy:
    hold_down_s: float
    clear_down_s: float
    agent_silent_after_s: float
    #: A unit with something above it (a device of a site, a site behind a parent) waits
    #: this much longer before it is alerted on its own, so that a parent cut off at the
    #: same moment - whose own down poll may land up to a poll interval + the SNMP timeout
    #: later - is known first and takes the alert as the root cause.
    root_wait_s: float = 0.0

    def __post_init__(self) -> None:
        if not (self.hold_down_s >= 0 and self.clear_down_s >= 0
                and self.agent_silent_after_s > 0 and self.root_wait_s >= 0):
            raise ValueError(f"invalid alert policy {self!r}")

    def signal(self, condition: Condition, since: float, now: float) -> Signal:
        """The machine's input: the condition and whether it has lasted long enough."""
        if condition == "unknown":
            return "unknown"
        if condition == "maintenance":
            return "maintenance"
        lasted = now - since
        if condition == "active":
            return "active_held" if lasted >= self.hold_down_s else "active_short"
        return "clear_held" if lasted >= self.clear_down_s else "clear_short"


# ------------------------------------------------------------------------- topology


@dataclass(frozen=True, slots=True)
class Unit:
    """Something that can be in outage, with its static alert identity."""

    id: str
    kind: UnitKind
    elements: tuple[str, ...]  # any-of decides the condition (empty for an agent)
    #: covered when, in every group, some unit is pending or open
    cover_groups: tuple[tuple[str, ...], ...]
    labels: Mapping[str, str]
    site: str  # the site the alert is about (an agent: its first site)
    sites: tuple[str, ...] = ()  # an agent: every site it polls
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertTopology:
    """Units and the uplink tree, built once from the inventory (:func:`alert_topology`)."""

    units: Mapping[str, Unit]
    province: str
    site_names: Mapping[str, str]
    commune_names: Mapping[str, str]  # by site
    descendants: Mapping[str, tuple[str, ...]]  # site -> sites behind it, nearest first
    agent_units: Mapping[str, str] = field(default_factory=dict)  # agent id -> unit id

    def units_of_element(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for unit in self.units.values():
            for element in unit.elements:
                out.setdefault(element, []).append(unit.id)
        return out


def site_unit(site: str) -> str:
    return f"site:{site}"


def device_unit(site: str, device: str) -> str:
    return f"device:{site}/{device}"


def element_unit(key: str) -> str:
    return f"element:{key}"


def agent_unit(agent: str) -> str:
    return f"agent:{agent}"


def _severity(kind: UnitKind, site: Site, has_children: bool) -> Severity:
    if kind == "agent":
        return "warning"
    if kind == "site" and (site.role == "hub" or has_children):
        return "critical"
    return "major"


def alert_topology(inventory: Inventory) -> AlertTopology:
    """Units of every site, device, interface element and agent of the inventory."""
    province = inventory.province.code
    units: dict[str, Unit] = {}
    agent_units: dict[str, str] = {}
    descendants = {s.id: tuple(inventory.descendants(s.id)) for s in inventory.sites}
    ancestors = {s.id: inventory.ancestors(s.id) for s in inventory.sites}

    def labels(kind: UnitKind, site: Site, services: Iterable[str], **extra: str) -> dict[str, str]:
        out = {
            "alertname": ALERTNAMES[kind],
            "severity": _severity(kind, site, bool(descendants[site.id])),
            "province": province,
            "commune": site.commune,
            "site": site.id,
            **extra,
        }
        joined = ",".join(sorted(set(services)))
        if joined:
            out["service"] = joined
        return {k: v for k, v in out.items() if v}

    for site in inventory.sites:
        above = tuple(site_unit(a) for a in ancestors[site.id])
        elements: dict[str, list[str]] = {}  # key -> services
        for device in site.devices:
            dev_keys: dict[str, list[str]] = {}
            for el in device.elements:
                dev_keys.setdefault(el.key, []).append(str(el.service.value))
                elements.setdefault(el.key, []).append(str(el.service.value))
            if not dev_keys:
                continue
            dev_services = [s for v in dev_keys.values() for s in v]
            did = device_unit(site.id, device.id)
            units[did] = Unit(did, "device", tuple(dev_keys), ((site_unit(site.id), *above),),
                              labels("device", site, dev_services, device=device.id),
                              site.id, services=tuple(sorted(set(dev_services))))
            for el in device.elements:
                if el.interface is None:
                    continue
                eid = element_unit(el.key)
                if eid in units:
                    continue
                services = dev_keys[el.key]
                units[eid] = Unit(
                    eid, "element", (el.key,), ((did, site_unit(site.id), *above),),
                    labels("element", site, services, device=device.id,
                           interface=el.interface),
                    site.id, services=tuple(sorted(set(services))))
        if elements:
            fibre = [k for k, svcs in elements.items() if Service.FIBRE.value in svcs]
            uplink = tuple(fibre or elements)
            all_services = [s for v in elements.values() for s in v]
            sid = site_unit(site.id)
            units[sid] = Unit(sid, "site", uplink, (above,) if above else (),
                              labels("site", site, all_services), site.id,
                              services=tuple(sorted(set(all_services))))
    for site in inventory.sites:
        agent = site.agent
        if agent is None or agent in agent_units:
            continue
        sites = inventory.sites_of_agent(agent)
        groups: list[tuple[str, ...]] = []
        for s in sites:
            group: list[str] = []
            for a in ancestors[s.id]:
                group.append(site_unit(a))
                parent_agent = inventory.site(a).agent
                if parent_agent is not None and parent_agent != agent:
                    group.append(agent_unit(parent_agent))
            groups.append(tuple(group))
        services = sorted({str(e.service.value) for s in sites for d in s.devices
                           for e in d.elements})
        aid = agent_unit(agent)
        units[aid] = Unit(
            aid, "agent", (),
            # an agent with a root site is never covered (an empty group covers nothing)
            tuple(groups),
            labels("agent", sites[0], services, agent=agent),
            sites[0].id, sites=tuple(s.id for s in sites), services=tuple(services))
        agent_units[agent] = aid
    # a cover group naming a unit that does not exist (a site without elements) is harmless
    return AlertTopology(
        units=units,
        province=province,
        site_names={s.id: s.name or s.id for s in inventory.sites},
        commune_names={s.id: inventory.commune(s.commune).name for s in inventory.sites},
        descendants=descendants,
        agent_units=agent_units,
    )


# --------------------------------------------------------------------------- output


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


@dataclass(slots=True)
class _Liveness:
    last_seen: float  # the last real sign of life (-inf: none known)
    offline_at: float | None = None
    back_since: float = -math.inf
    heard: bool = False  # a sign of life came in this run


def sign_of_life(received: float, sent: float | None, tolerance_s: float) -> float:
    """When a message shows its agent alive: when it was received - unless it says it was
    sent more than ``tolerance_s`` before (a retained status, or messages the broker kept
    while the collector was down: old news), then when it was sent. ``tolerance_s``
    absorbs the agents' clock error."""
    if sent is None or sent >= received - tolerance_s:
        return received
    return sent


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
                 seen: Mapping[str, float] | None = None) -> None:
        self.topology = topology
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
        seen = seen or {}
        self._agents: dict[str, _Liveness] = {
            a: _Liveness(seen.get(a, -math.inf)) for a in topology.agent_units}
        self._started = now
        self._maintenance: dict[str, list[tuple[float, float]]] = {}  # element -> windows
        self._now = now
        for rec in restored:
            if rec.unit in topology.units:
                self._phase[rec.unit] = "open"
                self._open[rec.unit] = _Outage(rec.unit, rec.started_at, rec.alerted,
                                               children=dict(rec.children))
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
        """A sign of life of ``agent`` at ``ts`` (telemetry, an online status; see
        :func:`sign_of_life`). One older than what is known already (a stale retained
        status, or older than the Last Will) is no sign of life."""
        live = self._agents.get(agent)
        if live is None or not math.isfinite(ts) or ts < live.last_seen or (
                live.offline_at is not None and ts < live.offline_at):
            return
        if not live.heard or self._silent_at(live, ts):
            live.back_since = ts
        live.heard = True
        live.offline_at = None
        live.last_seen = ts

    def liveness(self) -> dict[str, float]:
        """Each agent's last sign of life (what to keep across a restart: ``seen``)."""
        return {a: live.last_seen for a, live in self._agents.items()
                if math.isfinite(live.last_seen)}

    def silent_since(self, agent: str) -> float | None:
        """The last sign of life of a silent agent (None while it is not silent)."""
        cond, _ = self._agent_condition(agent, self._now)
        if cond != "active":
            return None
        live = self._agents[agent]
        return live.last_seen if math.isfinite(live.last_seen) else self._started

    def agent_offline(self, agent: str, ts: float) -> None:
        """The agent's Last Will (or clean-stop status) arrived at ``ts``."""
        live = self._agents.get(agent)
        if live is None or ts < live.last_seen:
            return
        if live.offline_at is None:
            live.offline_at = ts

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

    def _silent_at(self, live: _Liveness, ts: float) -> bool:
        return (live.offline_at is not None and live.offline_at <= ts) or (
            ts - max(live.last_seen, self._started) >= self.policy.agent_silent_after_s)

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
            self._condition[uid] = self._agent_condition(agent, now)

    def _agent_condition(self, agent: str, now: float) -> tuple[Condition, float]:
        live = self._agents[agent]
        if live.offline_at is not None and live.offline_at <= now:
            return "active", live.offline_at
        deadline = max(live.last_seen, self._started) + self.policy.agent_silent_after_s
        if now >= deadline:
            return "active", deadline
        if not live.heard:  # a restart: no news yet is not good news
            return "unknown", -math.inf
        return "clear", live.back_since

    def _start_of(self, uid: str, since: float) -> float:
        """When an outage began: ``since``; for a silent agent its last sign of life."""
        unit = self.topology.units[uid]
        if unit.kind != "agent":
            return since
        last = self._agents[unit.labels["agent"]].last_seen
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

    def _alert(self, unit: Unit, outage: _Outage) -> Alert:
        kind = OUTAGE_KINDS[unit.kind]
        children = self._children(unit, outage) if unit.kind == "site" else []
        annotations = summaries(self.topology, unit, outage.started_at, children)
        return Alert(unit.id, kind, dict(unit.labels), annotations, outage.started_at,
                     children=tuple(s for s, _ in children),
                     maintenance=self._in_maintenance(unit, outage.started_at, self._now))


def _ts(c: Change) -> float:
    return c.ts


def _current(timeline: Sequence[Change], now: float) -> tuple[Condition, float]:
    """The condition at ``now`` and since when it holds (continuously)."""
    i = bisect.bisect_right(timeline, now, key=_ts)
    if i == 0:
        return "unknown", -math.inf
    change = timeline[i - 1]
    return _STATE_CONDITION[change.state], change.ts


# ------------------------------------------------------------------------ summaries

_ICT = timezone(timedelta(hours=7))  # Vietnam: UTC+7, no daylight saving


def _when_vi(ts: float) -> str:
    return datetime.fromtimestamp(ts, _ICT).strftime("%H:%M:%S %d/%m/%Y")


def _when_en(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _services_vi(services: Iterable[str]) -> str:
    out = []
    for s in services:
        try:
            out.append(SERVICE_LABELS_VI[Service(s)])
        except ValueError:
            out.append(s)
    return ", ".join(out)


_STATE_VI: Final[Mapping[Condition, str]] = {
    "active": "mất", "unknown": "không xác định", "clear": "hoạt động"}
_STATE_EN: Final[Mapping[Condition, str]] = {
    "active": "down", "unknown": "unknown", "clear": "up"}


def summaries(topology: AlertTopology, unit: Unit, started_at: float,
              children: Sequence[tuple[str, Condition]] = ()) -> dict[str, str]:
    """Annotations: ``summary_vi``, ``summary_en``, ``description``, ``children``."""
    site = unit.site
    where_vi = f"trạm {site} ({topology.site_names[site]}, {topology.commune_names[site]})"
    where_en = f"site {site} ({topology.site_names[site]}, {topology.commune_names[site]})"
    since_vi, since_en = _when_vi(started_at), _when_en(started_at)
    svc_vi, svc_en = _services_vi(unit.services), ", ".join(unit.services)
    labels = unit.labels
    if unit.kind == "site":
        vi = f"Mất kết nối {where_vi}: đường truyền lên bị mất từ {since_vi}"
        en = f"Site {where_en.removeprefix('site ')} cut off: uplink down since {since_en}"
        if children:
            vi += f"; {len(children)} trạm phía sau bị ảnh hưởng: " + ", ".join(
                f"{s} ({_STATE_VI[c]})" for s, c in children)
            en += f"; {len(children)} site(s) behind it affected: " + ", ".join(
                f"{s} ({_STATE_EN[c]})" for s, c in children)
        desc = (f"Root outage. Services of the site: {svc_en}. Sites behind it are not "
                "alerted separately.")
    elif unit.kind == "device":
        dev = labels["device"]
        vi = f"Thiết bị {dev} tại {where_vi} không hoạt động từ {since_vi} ({svc_vi})"
        en = f"Device {dev} at {where_en} down since {since_en} ({svc_en})"
        desc = "The device does not answer, or every monitored interface of it is down."
    elif unit.kind == "element":
        dev, iface = labels["device"], labels["interface"]
        vi = (f"Cổng {iface} của thiết bị {dev} tại {where_vi} bị mất từ {since_vi} "
              f"({svc_vi})")
        en = f"Interface {iface} of {dev} at {where_en} down since {since_en} ({svc_en})"
        desc = "The device answers; this interface's operational status is down."
    else:
        agent = labels["agent"]
        sites = ", ".join(unit.sites)
        vi = (f"Agent giám sát {agent} ({where_vi}) im lặng từ {since_vi}: trạng thái của "
              f"trạm {sites} KHÔNG XÁC ĐỊNH (không tính là mất dịch vụ)")
        en = (f"Monitoring agent {agent} ({where_en}) silent since {since_en}: the state of "
              f"site(s) {sites} is UNKNOWN (not counted as down)")
        desc = ("A monitoring blind spot, not an outage: the Last Will arrived or no data "
                "came in time. No device alert is raised for these sites meanwhile.")
    return {
        "summary_vi": vi,
        "summary_en": en,
        "summary": en,
        "description": desc,
        **({"children": ",".join(s for s, _ in children)} if children else {}),
    }
