"""Availability: which element and commune-service state points and roll-ups bring storage
up to date with the facts (the incremental engine; pure).

No asyncio, sockets, files or clocks: the caller feeds facts and the current time, and
gets back the state-change points and roll-up rows to store. The layers below it, each
pure (see docs/availability.md):

* :mod:`collector.elementstate`: the facts and the element state machine (an element's
  state is decided by its latest fact; unknown time is never down);
* :mod:`collector.elementhistory`: every element's facts, the timeline they make and why
  it is unknown;
* :mod:`collector.servicerules`: which elements make up a commune-service and how their
  states combine (``any_of`` by default);
* :mod:`collector.maintenance_overlay`: declared maintenance overlaid on element
  timelines (:meth:`AvailabilityEngine.set_maintenance`): neither up nor down;
* :mod:`collector.changepoints`: a timeline as change points, and its :class:`Summary`
  (availability = up / (up + down); coverage = (up + down) / window).

The result is a pure function of the *set* of facts and windows: delivering them late or
in another order gives the same timelines, and late data rewrites exactly the affected
window. Times are float epoch seconds throughout. Intervals are half-open
``[start, end)``.

The names of those layers are re-exported here (``__all__``): ``collector.availability``
stays the one import for the engine and its vocabulary.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from collector.changepoints import (
    Change,
    Interval,
    State,
    Summary,
    intervals,
    normalize,
    reconcile,
    state_at,
    summarize,
)
from collector.elementhistory import ElementHistory
from collector.elementstate import (
    EVENTS,
    STATES,
    TRANSITIONS,
    AddResult,
    AgentOffline,
    AvailabilityError,
    Event,
    Fact,
    Observation,
    Observed,
    TransitionError,
    Unobserved,
    transition,
)
from collector.emission import ElementPoint, Emission, Rollup, ServicePoint
from collector.maintenance_overlay import (
    Maintenance,
    merge_windows,
    overlay_maintenance,
)
from collector.servicerules import (
    MAINTENANCE_RULES,
    ElementSpec,
    Rule,
    ServiceKey,
    Topology,
    combine,
    combine_window,
    maintenance_rule_state,
    rule_state,
)

__all__ = [
    "EVENTS", "MAINTENANCE_RULES", "STATES", "TRANSITIONS", "AddResult", "AgentOffline",
    "AvailabilityEngine", "AvailabilityError", "Change", "ElementPoint", "ElementSpec",
    "Emission", "Event", "Fact", "Interval", "Maintenance", "Observation", "Observed", "Rollup",
    "Rule", "Seed", "ServiceKey", "ServicePoint", "State", "Summary", "Topology", "TransitionError",
    "Unobserved", "combine", "intervals", "maintenance_rule_state", "merge_windows", "normalize",
    "overlay_maintenance", "rule_state", "state_at", "summarize", "timelines", "transition",
]


@dataclass(frozen=True, slots=True)
class Seed:
    """What another engine needs to go on from this one's last emit ``as_of`` (a
    failover, collector/checkpoint.py): the facts deciding each element's state from
    then on, and each service's stored points from the running bucket's start."""

    as_of: float
    facts: list[Fact]
    services: dict[ServiceKey, list[Change]]


# --------------------------------------------------------------------------- engine


class AvailabilityEngine:
    """Incremental availability for the collector.

    Feed facts with :meth:`add` in any order; call :meth:`emit` with the
    current time to get the state-change points (only up to ``now``) and the
    roll-up rows of buckets that closed or that late data changed. The state
    of the engine, and so everything it emits, depends only on the set of
    facts added, never on their order.

    Memory: poll facts are kept until :meth:`compact` drops those older than
    a horizon; facts older than the horizon are then refused (``too_old``).
    """

    def __init__(
        self,
        topology: Topology,
        *,
        stale_after_s: float,
        bucket_s: float = 300.0,
        rollups_from: float | None = None,
    ) -> None:
        """``rollups_from``: first bucket to roll up (default: the bucket of the first emit;
        earlier buckets are rolled up only where facts touched them)."""
        if not stale_after_s > 0 or not bucket_s > 0:
            raise ValueError("stale_after_s and bucket_s must be positive")
        self.stale_after_s = stale_after_s
        self.bucket_s = bucket_s
        self._history = ElementHistory(topology.elements, stale_after_s)
        self._service_elements: dict[ServiceKey, list[str]] = {}
        for spec in topology.elements:
            for key in spec.services:
                self._service_elements.setdefault(key, []).append(spec.element)
        self._rules: dict[ServiceKey, Rule] = {
            key: topology.rules.get(key, "any_of") for key in self._service_elements
        }
        self._dirty: dict[str, tuple[float, float]] = {}
        self._stored_elements: dict[str, list[Change]] = {e: [] for e in self._history.specs}
        self._stored_reasons: dict[str, dict[float, str]] = {}  # of stored unknown points
        self._stored_services: dict[ServiceKey, list[Change]] = {
            k: [] for k in self._service_elements
        }
        self._horizon = -math.inf
        self._floor = -math.inf  # nothing is written before it (see continue_from)
        self._now: float | None = None
        self._rolled_until: float | None = (
            None if rollups_from is None else math.floor(rollups_from / bucket_s) * bucket_s
        )

    # ------------------------------------------------------------------ input

    @property
    def horizon(self) -> float:
        """Facts older than this are refused (see :meth:`compact`)."""
        return self._horizon

    @property
    def service_keys(self) -> list[ServiceKey]:
        return sorted(self._service_elements)

    def add(self, fact: Fact) -> AddResult:
        """Take one fact. Idempotent; the order of calls does not matter."""
        if not math.isfinite(fact.ts):
            raise ValueError(f"non-finite timestamp in {fact!r}")
        if fact.ts < self._horizon:
            return "too_old"
        result, touched = self._history.add(fact)
        for element, lo, hi in touched:
            self._mark_dirty(element, lo, hi)
        return result

    def add_many(self, facts: Iterable[Fact]) -> dict[AddResult, int]:
        """Take facts; return how many got each result."""
        counts: dict[AddResult, int] = {}
        for fact in facts:
            result = self.add(fact)
            counts[result] = counts.get(result, 0) + 1
        return counts

    def reason_at(self, element: str, ts: float) -> str | None:
        """Why the element is unknown at ``ts`` (None when it is not): the reason of an
        :class:`Unobserved` poll, ``agent_offline``, ``stale`` or ``no_data``."""
        return self._history.reason(element, ts)

    def _reasoned(self, element: str, rewritten: list[Change], starts: list[float],
                  lo: float, hi: float) -> list[ElementPoint]:
        """The element points to write in ``[lo, hi]``: the stored points that
        :func:`_reconcile` rewrote, a point at each fact that starts a new reason
        (``starts``), and every stored unknown point whose reason changed."""
        stored = self._stored_elements[element]
        known = self._stored_reasons.setdefault(element, {})
        out: list[ElementPoint] = []
        if not starts and not known:  # the usual case: nothing unknown stored here yet
            for p in rewritten:
                reason = self._history.reason(element, p.ts) if p.state == "unknown" else None
                out.append(ElementPoint(element, p.ts, p.state, reason))
                if reason is not None:
                    known[p.ts] = reason
            return out
        written = {p.ts for p in rewritten}
        for ts in starts:
            i = bisect.bisect_left(stored, ts, key=_ts)
            if i == len(stored) or stored[i].ts != ts:
                stored.insert(i, Change(ts, "unknown"))  # always true: it decides its ts
                written.add(ts)
        for p in stored[bisect.bisect_left(stored, lo, key=_ts):
                        bisect.bisect_right(stored, hi, key=_ts)]:
            reason = self._history.reason(element, p.ts) if p.state == "unknown" else None
            if p.ts in written or known.get(p.ts) != reason:
                out.append(ElementPoint(element, p.ts, p.state, reason))
                if reason is None:
                    known.pop(p.ts, None)
                else:
                    known[p.ts] = reason
        return out

    # ------------------------------------------------------------ timelines

    def _service_window(self, key: ServiceKey, lo: float, hi: float) -> tuple[State, list[Change]]:
        befores: list[State] = []
        timelines: list[list[Change]] = []
        for element in self._service_elements[key]:
            before, changes = self._history.window(element, lo, hi)
            befores.append(before)
            timelines.append(changes)
        return combine_window(self._rules[key], befores, timelines)

    def element_timeline(self, element: str) -> list[Change]:
        """The element's whole known timeline (since the horizon), not clipped to now."""
        return self._history.timeline(element)

    def service_timeline(self, key: ServiceKey) -> list[Change]:
        """The commune-service's whole known timeline, not clipped to now."""
        return self._service_window(key, -math.inf, math.inf)[1]

    def stored_service_points(self, key: ServiceKey) -> list[Change]:
        """The points emitted so far for a service (what storage holds), in ts order."""
        return list(self._stored_services[key])

    # --------------------------------------------------------------- output

    def emit(self, now: float) -> Emission:
        """Points and roll-ups that bring storage up to date with the facts, up to ``now``.

        After writing the emission, the stored points of every key, read back
        and :func:`normalize`-d, equal its true timeline up to ``now``.
        """
        if self._now is not None and now < self._now:
            raise ValueError(f"time went backwards: {now} < {self._now}")
        self._now = now
        element_points: list[ElementPoint] = []
        service_ranges: dict[ServiceKey, tuple[float, float]] = {}
        for element, (lo, hi) in list(self._dirty.items()):
            lo = max(lo, self._floor)
            if lo > hi:
                del self._dirty[element]
                continue
            if lo > now:
                continue
            top = min(hi, now)
            before, changes = self._history.window(element, lo, hi)
            due = [c for c in changes if c.ts <= now]
            written = reconcile(self._stored_elements[element], before, due, lo, top)
            starts = self._history.reason_starts(element, lo, hi)
            element_points += self._reasoned(element, written, [t for t in starts if t <= top],
                                             lo, top)
            for key in self._history.specs[element].services:
                old = service_ranges.get(key)
                service_ranges[key] = (
                    (lo, top) if old is None else (min(old[0], lo), max(old[1], top))
                )
            # what is left to write: the changes after now (e.g. a stale transition);
            # until a new fact arrives nothing else can differ from storage
            pending = changes[len(due) :]
            # and the reason points of unobserved polls after now (an agent clock ahead)
            later = [ts for ts in starts if ts > top]
            if pending or later:
                marks = [c.ts for c in pending] + later
                self._dirty[element] = (min(marks), max(marks))
            else:
                del self._dirty[element]
        service_points: list[ServicePoint] = []
        for key, (lo, hi) in sorted(service_ranges.items()):
            before, changes = self._service_window(key, lo, hi)
            for p in reconcile(self._stored_services[key], before, changes, lo, hi):
                service_points.append(ServicePoint(key, p.ts, p.state))
        return Emission(element_points, service_points, self._rollups(now, service_ranges))

    def _rollups(
        self, now: float, changed: Mapping[ServiceKey, tuple[float, float]]
    ) -> list[Rollup]:
        b = self.bucket_s
        closed_k = math.floor(now / b)  # buckets k < closed_k have ended
        first_new_k = closed_k if self._rolled_until is None else round(self._rolled_until / b)
        wanted: dict[ServiceKey, set[int]] = {}
        for key, (lo, hi) in changed.items():
            ks = range(math.floor(lo / b), min(math.floor(hi / b), first_new_k - 1) + 1)
            if ks:
                wanted[key] = set(ks)
        if closed_k > first_new_k:
            for key in self._service_elements:
                wanted.setdefault(key, set()).update(range(first_new_k, closed_k))
        self._rolled_until = max(closed_k, first_new_k) * b
        rows: list[Rollup] = []
        for key in sorted(wanted):
            points = self._stored_services[key]
            for k in sorted(wanted[key]):
                rows.append(_rollup_row(key, points, k * b, (k + 1) * b))
        return rows

    def rollup(self, key: ServiceKey, start: float, end: float) -> Rollup:
        """Roll-up of one service over any ``[start, end)`` up to the last emit."""
        return _rollup_row(key, self._stored_services[key], start, end)

    def seed(self) -> Seed | None:
        """This engine as another one continues it (None before the first emit)."""
        if self._now is None:
            return None
        start = math.floor(self._now / self.bucket_s) * self.bucket_s
        services = {k: p[max(bisect.bisect_right(p, start, key=_ts) - 1, 0):]
                    for k, p in self._stored_services.items() if p}
        return Seed(self._now, self._history.deciding(self._now), services)

    def continue_from(self, seed: Seed) -> int:
        """Go on from another engine's :meth:`seed` (before any fact or emit of this one):
        nothing before ``seed.as_of`` is rewritten (it wrote that), the running bucket's
        roll-up counts its stored points. Returns how many facts were taken."""
        self._floor = seed.as_of
        if self._rolled_until is None:
            self._rolled_until = math.floor(seed.as_of / self.bucket_s) * self.bucket_s
        for key, points in seed.services.items():
            if key in self._stored_services:
                self._stored_services[key] = sorted(points, key=_ts)
        return sum(self.add(f) == "accepted" for f in seed.facts)

    # -------------------------------------------------------- maintenance

    def set_maintenance(self, windows: Iterable[Maintenance]) -> int:
        """Replace the declared maintenance windows with ``windows`` (the whole current set,
        e.g. as reloaded from storage). Whatever changed is rewritten at the next emit,
        like late data: a window declared after the fact rewrites history (back to the
        horizon). Returns how many elements' windows changed."""
        wanted: dict[str, list[tuple[float, float]]] = {}
        for w in windows:
            if not (math.isfinite(w.start) and math.isfinite(w.end)):
                raise ValueError(f"non-finite maintenance window {w!r}")
            if w.end <= w.start:
                continue  # empty (e.g. cancelled before it began)
            for element in w.elements:
                if element in self._history.specs:
                    wanted.setdefault(element, []).append((w.start, w.end))
        changed = 0
        maintenance = self._history.windows
        for element in maintenance.keys() | wanted.keys():
            old = maintenance.get(element, [])
            new = merge_windows(wanted.get(element, []))
            if old == new:
                continue
            changed += 1
            diff = set(old) ^ set(new)
            lo = max(min(s for s, _ in diff), self._horizon)
            hi = max(e for _, e in diff)
            if new:
                maintenance[element] = new
            else:
                del maintenance[element]
            if hi > lo:
                self._mark_dirty(element, lo, hi)
        return changed

    def _mark_dirty(self, element: str, lo: float, hi: float) -> None:
        """The change points of ``element`` in ``[lo, hi]`` are to be brought up to date."""
        if element in self._dirty:
            old_lo, old_hi = self._dirty[element]
            lo, hi = min(lo, old_lo), max(hi, old_hi)
        self._dirty[element] = (lo, hi)

    # ------------------------------------------------------------- memory

    def compact(self, before: float) -> float:
        """Forget facts and points older than ``before``, keeping each key's state there.

        The effective horizon is capped at the last emit time and at the
        earliest not yet emitted change, so nothing unwritten is lost; it is
        returned. Afterwards facts older than the horizon are refused.
        """
        if self._now is None:
            return self._horizon
        horizon = min(before, self._now, *(lo for lo, _ in self._dirty.values()))
        if horizon <= self._horizon:
            return self._horizon
        self._history.compact(horizon)
        for points in (*self._stored_elements.values(), *self._stored_services.values()):
            i = bisect.bisect_left(points, horizon, key=_ts)
            if i > 1:
                del points[: i - 1]
        for element, reasons in self._stored_reasons.items():
            kept = {c.ts for c in self._stored_elements[element]}
            for ts in [t for t in reasons if t not in kept]:
                del reasons[ts]
        self._horizon = horizon
        return horizon


def _rollup_row(key: ServiceKey, points: Sequence[Change], start: float, end: float) -> Rollup:
    s = summarize(points, start, end)
    return Rollup(key, start, end - start, s.up_s, s.down_s, s.unknown_s, s.maintenance_s)


def timelines(
    facts: Iterable[Fact], topology: Topology, *, stale_after_s: float,
    maintenance: Iterable[Maintenance] = (),
) -> tuple[dict[str, list[Change]], dict[ServiceKey, list[Change]]]:
    """Element and service timelines of a set of facts (the batch form of the engine)."""
    engine = AvailabilityEngine(topology, stale_after_s=stale_after_s)
    engine.add_many(facts)
    engine.set_maintenance(maintenance)
    elements = {spec.element: engine.element_timeline(spec.element) for spec in topology.elements}
    services = {key: engine.service_timeline(key) for key in engine.service_keys}
    return elements, services


def _ts(c: Change) -> float:
    return c.ts
