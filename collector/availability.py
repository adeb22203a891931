"""Availability: element and commune-service states computed from facts (pure).

No asyncio, sockets, files or clocks: the caller feeds facts and the current
time, and gets back the state-change points and roll-up rows to store.

Semantics (see docs/availability.md):

* Facts are poll results (:class:`Observation`, timestamped by the agent's
  clock), agent Last-Will marks (:class:`AgentOffline`) and polls that could not
  observe the element (:class:`Unobserved`: a monitoring fault, with its reason).
* An element's state at time ``x`` is decided by its *latest fact at or
  before* ``x`` (its own observations and its agent's offline marks): an
  observation holds for ``stale_after_s``, then the element is ``unknown``;
  an offline mark makes it ``unknown``; an :class:`Unobserved` poll makes it
  ``unknown`` until the next fact (coverage lost, never downtime). At equal
  timestamps an observation beats an offline mark (a replayed spool
  re-establishes the state), ``down`` beats ``up`` and an unobserved poll beats
  both. Before any fact the element is ``unknown``.
* The result is therefore a pure function of the *set* of facts: delivering
  them late or in another order gives the same timeline, and late data
  rewrites exactly the affected window.
* A commune-service combines its elements by a rule (``any_of`` by default).
* Availability = up / (up + down); coverage = (up + down) / window. Unknown
  time is never down.
* Declared maintenance (:class:`Maintenance`, set as a whole with
  :meth:`AvailabilityEngine.set_maintenance`) overlays an element's timeline:
  inside a window the element is ``maintenance`` whatever its polls say, and a
  commune-service combines it by :data:`MAINTENANCE_RULES`. Maintenance time is
  neither up nor down: it is reported apart and never lowers availability.

Times are float epoch seconds throughout. Intervals are half-open
``[start, end)``.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

if TYPE_CHECKING:
    from xanet.inventory import Inventory

#: ``maintenance`` is not a state of the element machine below: it is the declared
#: maintenance overlay (see "maintenance" further down).
State = Literal["up", "down", "unknown", "maintenance"]
Observed = Literal["up", "down"]
Event = Literal["observed_up", "observed_down", "agent_offline", "stale", "observed_unknown"]
Rule = Literal["any_of", "all_of"]
AddResult = Literal["accepted", "duplicate", "too_old", "unknown_element", "unknown_agent"]

STATES: Final[tuple[State, ...]] = ("up", "down", "unknown")
EVENTS: Final[tuple[Event, ...]] = (
    "observed_up", "observed_down", "agent_offline", "stale", "observed_unknown",
)

#: The element state machine, as data. A missing pair is an impossible
#: transition (a stale timer only runs after an observation).
TRANSITIONS: Final[Mapping[tuple[State, Event], State]] = {
    ("unknown", "observed_up"): "up",
    ("up", "observed_up"): "up",
    ("down", "observed_up"): "up",
    ("unknown", "observed_down"): "down",
    ("up", "observed_down"): "down",
    ("down", "observed_down"): "down",
    ("unknown", "agent_offline"): "unknown",
    ("up", "agent_offline"): "unknown",
    ("down", "agent_offline"): "unknown",
    ("up", "stale"): "unknown",
    ("down", "stale"): "unknown",
    # a poll that could not observe the element (monitoring fault): unknown, never down
    ("unknown", "observed_unknown"): "unknown",
    ("up", "observed_unknown"): "unknown",
    ("down", "observed_unknown"): "unknown",
}


class AvailabilityError(Exception):
    """Base of the availability engine's errors."""


class TransitionError(AvailabilityError):
    """An event that the state machine does not accept in this state."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"no transition from {state!r} on {event!r}")
        self.state = state
        self.event = event


def transition(state: State, event: Event) -> State:
    """Next element state, following :data:`TRANSITIONS`."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise TransitionError(state, event) from None


# --------------------------------------------------------------------------- facts


class ServiceKey(NamedTuple):
    """One service of one commune, e.g. ``ServiceKey("08821", "fibre")``."""

    commune: str
    service: str


@dataclass(frozen=True, slots=True)
class Observation:
    """One poll result for an element, at the agent's poll timestamp."""

    element: str
    ts: float
    state: Observed


@dataclass(frozen=True, slots=True)
class AgentOffline:
    """An agent went offline (its Last Will) at ``ts``: its elements become unknown."""

    agent: str
    ts: float


@dataclass(frozen=True, slots=True)
class Unobserved:
    """A poll at ``ts`` that could not observe the element: a monitoring fault.

    ``reason`` says which (``monitoring_error:auth``, ``monitoring_error:snmp_silent``...,
    see :mod:`collector.witness`). The element is ``unknown`` from ``ts`` until its next
    fact: the previous state ends there, the time is lost coverage, never downtime.
    """

    element: str
    ts: float
    reason: str


Fact = Observation | AgentOffline | Unobserved


@dataclass(frozen=True, slots=True)
class ElementSpec:
    """A monitored element: the agent that polls it and the services it carries."""

    element: str
    agent: str | None  # None: polled by no known agent (no Last Will applies)
    services: tuple[ServiceKey, ...]
    stale_after_s: float | None = None  # None: the engine's default


@dataclass(frozen=True)
class Topology:
    """Which elements exist, who polls them and which commune-services they make up."""

    elements: tuple[ElementSpec, ...]
    rules: Mapping[ServiceKey, Rule] = field(default_factory=dict)  # default any_of

    @classmethod
    def from_inventory(cls, inventory: Inventory) -> Topology:
        """One element per inventory element key (``site/device[/ifname]``), polled by its
        site's agent, counting for every (commune, service) the inventory lists it for;
        every service any-of."""
        services: dict[str, list[ServiceKey]] = {}
        agents: dict[str, str | None] = {}
        for site in inventory.sites:
            for device in site.devices:
                for element in device.elements:
                    key = ServiceKey(site.commune, str(element.service.value))
                    services.setdefault(element.key, []).append(key)
                    agents[element.key] = site.agent
        return cls(
            tuple(
                ElementSpec(element, agents[element], tuple(keys))
                for element, keys in services.items()
            )
        )

    def service_keys(self) -> list[ServiceKey]:
        keys: dict[ServiceKey, None] = {}
        for spec in self.elements:
            for key in spec.services:
                keys[key] = None
        return sorted(keys)


# ----------------------------------------------------------------------- timelines


class Change(NamedTuple):
    """From ``ts`` on, the state is ``state`` (until the next change)."""

    ts: float
    state: State


class Interval(NamedTuple):
    start: float
    end: float
    state: State


@dataclass(frozen=True, slots=True)
class ElementPoint:
    """A state-change point for an element, to be written (upserted) to storage.

    ``reason`` (unknown points only): why it is unknown - the :class:`Unobserved` reason,
    ``agent_offline`` or ``stale``."""

    element: str
    ts: float
    state: State
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ServicePoint:
    """A state-change point for a commune-service, to be written (upserted) to storage."""

    key: ServiceKey
    ts: float
    state: State


@dataclass(frozen=True, slots=True)
class Rollup:
    """Seconds spent in each state by a commune-service during one bucket."""

    key: ServiceKey
    bucket_start: float
    bucket_s: float
    up_s: float
    down_s: float
    unknown_s: float
    maintenance_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    """What a timeline amounts to over a window (or several, added up with ``+``): the
    engine's summaries and the report's totals (collector/timeline.py) are this one."""

    window_s: float
    up_s: float = 0.0
    down_s: float = 0.0
    unknown_s: float = 0.0
    maintenance_s: float = 0.0  # declared maintenance: neither up nor down
    outages: int = 0  # maximal down periods (not interrupted by up) meeting the window

    @property
    def known_s(self) -> float:
        return self.up_s + self.down_s

    @property
    def downtime_s(self) -> float:
        return self.down_s

    @property
    def availability_pct(self) -> float | None:
        """100 * up / (up + down); None when nothing is known."""
        known = self.known_s
        return None if known <= 0 else 100.0 * self.up_s / known

    @property
    def coverage_pct(self) -> float:
        """100 * known time / window outside declared maintenance (100 when the whole
        window was maintenance: nothing was missing)."""
        counted = self.window_s - self.maintenance_s
        return 100.0 if counted <= 0 else min(100.0, 100.0 * self.known_s / counted)

    def __add__(self, other: Summary) -> Summary:
        return Summary(
            self.window_s + other.window_s,
            self.up_s + other.up_s,
            self.down_s + other.down_s,
            self.unknown_s + other.unknown_s,
            self.maintenance_s + other.maintenance_s,
            self.outages + other.outages,
        )


def normalize(changes: Iterable[Change | tuple[float, State]]) -> list[Change]:
    """Sort change points, keep the last of equal timestamps, drop non-changes.

    This is how points read back from storage become a timeline: the engine
    neutralises a point that late data made obsolete by overwriting it with
    the state that really holds there, which this function then drops.
    """
    by_ts: dict[float, State] = {}
    for ts, state in changes:
        by_ts[ts] = state
    out: list[Change] = []
    current: State = "unknown"
    for ts in sorted(by_ts):
        state = by_ts[ts]
        if state != current:
            out.append(Change(ts, state))
            current = state
    return out


def state_at(changes: Sequence[Change], ts: float) -> State:
    """The state at ``ts`` of a sorted change list (unknown before the first change)."""
    i = bisect.bisect_right(changes, ts, key=_ts)
    return "unknown" if i == 0 else changes[i - 1].state


def intervals(changes: Sequence[Change], start: float, end: float) -> list[Interval]:
    """The sorted change list clipped to ``[start, end)``, as merged intervals."""
    if not end > start:
        raise ValueError(f"empty window [{start}, {end})")
    out: list[Interval] = []
    i = bisect.bisect_right(changes, start, key=_ts)
    current: State = "unknown" if i == 0 else changes[i - 1].state
    cursor = start
    for ts, state in changes[i:]:
        if ts >= end:
            break
        if state == current:
            continue
        out.append(Interval(cursor, ts, current))
        cursor, current = ts, state
    out.append(Interval(cursor, end, current))
    return out


def summarize(changes: Sequence[Change], start: float, end: float) -> Summary:
    """Up/down/unknown seconds and outage count of a timeline over ``[start, end)``."""
    totals = {"up": 0.0, "down": 0.0, "unknown": 0.0, "maintenance": 0.0}
    outages = 0
    in_outage = False
    for iv in intervals(changes, start, end):
        totals[iv.state] += iv.end - iv.start
        if iv.state == "down":
            if not in_outage:
                outages += 1
            in_outage = True
        elif iv.state == "up":
            in_outage = False
        # unknown bridges: down, unknown, down is one outage (no recovery seen);
        # maintenance too (a window never adds an outage)
    return Summary(
        window_s=end - start,
        up_s=totals["up"],
        down_s=totals["down"],
        unknown_s=totals["unknown"],
        outages=outages,
        maintenance_s=totals["maintenance"],
    )


def rule_state(rule: Rule, states: Iterable[State]) -> State:
    """Combine element states into a service state.

    ``any_of``: up if any element is up, down if all are down, else unknown.
    ``all_of``: down if any element is down, up if all are up, else unknown.
    No elements: unknown. With an element in maintenance: :func:`maintenance_rule_state`.
    """
    seen = list(states)
    if "maintenance" in seen:
        return maintenance_rule_state(rule, seen)
    n = up = down = 0
    for s in seen:
        n += 1
        up += s == "up"
        down += s == "down"
    if n == 0:
        return "unknown"
    if rule == "any_of":
        return "up" if up else "down" if down == n else "unknown"
    return "down" if down else "up" if up == n else "unknown"


def combine(rule: Rule, timelines: Sequence[Sequence[Change]]) -> list[Change]:
    """The service timeline of element timelines (each a sorted change list)."""
    return _combine(rule, ["unknown"] * len(timelines), timelines)[1]


# ------------------------------------------------------------------------ internals

_OFFLINE: Final = 0
_UP: Final = 1
_DOWN: Final = 2
_RANK: Final[Mapping[Observed, int]] = {"up": _UP, "down": _DOWN}
_UNOBSERVED: Final = 3  # beats both observations at equal ts (see Unobserved)
_RANK_EVENT: Final[tuple[Event, ...]] = (
    "agent_offline", "observed_up", "observed_down", "observed_unknown",
)
_Ev = tuple[float, int]  # (ts, rank): sorts offline < up < down < unobserved at equal ts
_NO_EVENTS: Final[list[_Ev]] = []  # offline marks of an element without agent: never any


def _ts(c: Change) -> float:
    return c.ts


def _from(items: Sequence[_Ev], start: int) -> Iterator[_Ev]:
    for k in range(start, len(items)):
        yield items[k]


def _sweep(events: Iterable[_Ev], stale_after_s: float, until: float) -> Iterator[Change]:
    """Element state changes from its events in (ts, rank) order, up to ``until``.

    The state before the first event is unknown; among events with one
    timestamp the last (highest rank) decides.
    """
    state: State = "unknown"
    deadline: float | None = None  # when the last observation goes stale
    it = iter(events)
    pending = next(it, None)
    while pending is not None:
        ts, rank = pending
        nxt = next(it, None)
        while nxt is not None and nxt[0] == ts:
            rank = nxt[1]
            nxt = next(it, None)
        if deadline is not None and deadline < ts:
            if deadline > until:
                return
            state = transition(state, "stale")
            yield Change(deadline, state)
            deadline = None
        if ts > until:
            return
        new = transition(state, _RANK_EVENT[rank])
        if new != state:
            yield Change(ts, new)
            state = new
        deadline = None if rank in (_OFFLINE, _UNOBSERVED) else ts + stale_after_s
        pending = nxt
    if deadline is not None and deadline <= until:
        yield Change(deadline, transition(state, "stale"))


def _combine(
    rule: Rule, befores: Sequence[State], timelines: Sequence[Sequence[Change]]
) -> tuple[State, list[Change]]:
    """Combine element states before a window and their changes inside it."""
    states = list(befores)
    current = before = rule_state(rule, states)
    merged = heapq.merge(*[[(c.ts, idx, c.state) for c in tl] for idx, tl in enumerate(timelines)])
    out: list[Change] = []
    pending = next(merged, None)
    while pending is not None:
        ts = pending[0]
        while pending is not None and pending[0] == ts:
            states[pending[1]] = pending[2]
            pending = next(merged, None)
        new = rule_state(rule, states)
        if new != current:
            out.append(Change(ts, new))
            current = new
    return before, out


def _reconcile(
    stored: list[Change], before: State, changes: Sequence[Change], lo: float, hi: float
) -> list[Change]:
    """Make the stored points in ``[lo, hi]`` agree with the timeline.

    ``before`` is the true state just before ``lo`` and ``changes`` the true
    changes in ``[lo, hi]``. Every stored point in the range is rewritten to
    the true state at its timestamp (a point that is no longer a change thus
    becomes a no-op), and every true change gets a point. Returns the points
    to write; ``stored`` is updated in place.
    """
    a = bisect.bisect_left(stored, lo, key=_ts)
    b = bisect.bisect_right(stored, hi, key=_ts)
    old = {p.ts: p.state for p in stored[a:b]}
    stamps = sorted(old.keys() | {c.ts for c in changes})
    writes: list[Change] = []
    new_slice: list[Change] = []
    current = before
    ci = 0
    for ts in stamps:
        while ci < len(changes) and changes[ci].ts <= ts:
            current = changes[ci].state
            ci += 1
        point = Change(ts, current)
        new_slice.append(point)
        if old.get(ts) != current:
            writes.append(point)
    stored[a:b] = new_slice
    return writes


def _rollup_row(key: ServiceKey, points: Sequence[Change], start: float, end: float) -> Rollup:
    s = summarize(points, start, end)
    return Rollup(key, start, end - start, s.up_s, s.down_s, s.unknown_s, s.maintenance_s)


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True, slots=True)
class Emission:
    """What to write after :meth:`AvailabilityEngine.emit`.

    State points are upserts keyed by (key, ts): a point at an existing
    timestamp replaces the stored one. Roll-up rows likewise replace the
    stored row of their (key, bucket_start).
    """

    elements: list[ElementPoint]
    services: list[ServicePoint]
    rollups: list[Rollup]


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
        self._specs: dict[str, ElementSpec] = {}
        self._agent_elements: dict[str, list[str]] = {}
        self._service_elements: dict[ServiceKey, list[str]] = {}
        for spec in topology.elements:
            if spec.element in self._specs:
                raise ValueError(f"element {spec.element!r} listed twice")
            self._specs[spec.element] = spec
            if spec.agent is not None:
                self._agent_elements.setdefault(spec.agent, []).append(spec.element)
            for key in spec.services:
                self._service_elements.setdefault(key, []).append(spec.element)
        self._rules: dict[ServiceKey, Rule] = {
            key: topology.rules.get(key, "any_of") for key in self._service_elements
        }
        self._obs: dict[str, list[_Ev]] = {e: [] for e in self._specs}
        self._reasons: dict[str, dict[float, str]] = {}  # Unobserved reasons by element, ts
        self._offline: dict[str, list[_Ev]] = {a: [] for a in self._agent_elements}
        self._dirty: dict[str, tuple[float, float]] = {}
        self._stored_elements: dict[str, list[Change]] = {e: [] for e in self._specs}
        self._stored_reasons: dict[str, dict[float, str]] = {}  # of stored unknown points
        self._stored_services: dict[ServiceKey, list[Change]] = {
            k: [] for k in self._service_elements
        }
        self._maintenance: dict[str, list[tuple[float, float]]] = {}  # element -> windows
        self._horizon = -math.inf
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
        if isinstance(fact, Observation):
            return self._add_observation(fact)
        if isinstance(fact, Unobserved):
            return self._add_unobserved(fact)
        return self._add_offline(fact)

    def add_many(self, facts: Iterable[Fact]) -> dict[AddResult, int]:
        """Take facts; return how many got each result."""
        counts: dict[AddResult, int] = {}
        for fact in facts:
            result = self.add(fact)
            counts[result] = counts.get(result, 0) + 1
        return counts

    def _add_observation(self, obs: Observation) -> AddResult:
        events = self._obs.get(obs.element)
        if events is None:
            return "unknown_element"
        ev = (obs.ts, _RANK[obs.state])
        i = bisect.bisect_left(events, ev)
        if i < len(events) and events[i] == ev:
            return "duplicate"
        events.insert(i, ev)
        self._mark_dirty(obs.element, ev)
        return "accepted"

    def _add_unobserved(self, fact: Unobserved) -> AddResult:
        """Like an observation; of two reasons at one ts the smaller wins (order-free)."""
        events = self._obs.get(fact.element)
        if events is None:
            return "unknown_element"
        ev = (fact.ts, _UNOBSERVED)
        reasons = self._reasons.setdefault(fact.element, {})
        i = bisect.bisect_left(events, ev)
        if i < len(events) and events[i] == ev:
            if fact.reason >= reasons[fact.ts]:
                return "duplicate"
            reasons[fact.ts] = fact.reason
            self._mark_dirty(fact.element, ev)
            return "accepted"
        events.insert(i, ev)
        reasons[fact.ts] = fact.reason
        self._mark_dirty(fact.element, ev)
        return "accepted"

    def reason_at(self, element: str, ts: float) -> str | None:
        """Why the element is unknown at ``ts`` (None when it is not): the reason of an
        :class:`Unobserved` poll, ``agent_offline``, ``stale`` or ``no_data``."""
        return self._reason(element, ts, before=False)

    def _reason(self, element: str, ts: float, *, before: bool) -> str | None:
        """:meth:`reason_at` at ``ts``, or just before it (``before``)."""
        obs = self._obs[element]
        off = self._offline_of(element)
        bound = (ts, -1) if before else (ts, _UNOBSERVED)
        i = bisect.bisect_right(obs, bound)
        j = bisect.bisect_right(off, bound)
        last_obs = obs[i - 1] if i else None
        last_off = off[j - 1] if j else None
        if last_obs is None and last_off is None:
            return "no_data"
        if last_obs is None or (last_off is not None and last_off[0] > last_obs[0]):
            return "agent_offline"
        if last_obs[1] == _UNOBSERVED:
            return self._reasons[element][last_obs[0]]
        deadline = last_obs[0] + self._stale_after(element)
        if ts > deadline or (ts == deadline and not before):
            return "stale"
        return None

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
                reason = self.reason_at(element, p.ts) if p.state == "unknown" else None
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
            reason = self.reason_at(element, p.ts) if p.state == "unknown" else None
            if p.ts in written or known.get(p.ts) != reason:
                out.append(ElementPoint(element, p.ts, p.state, reason))
                if reason is None:
                    known.pop(p.ts, None)
                else:
                    known[p.ts] = reason
        return out

    def _reason_starts(self, element: str, lo: float, hi: float) -> list[float]:
        """Facts in ``[lo, hi]`` (unobserved polls, offline marks) after which the element
        is unknown for another reason than just before: storage then shows why an element
        is unknown even when it was unknown before (a wrong key from the first poll on)."""
        obs = self._obs[element]
        off = self._offline_of(element)
        if not off and not self._reasons.get(element):
            return []  # no unobserved poll, no offline mark: no reason to start
        stamps = {ts for ts, rank in obs[bisect.bisect_left(obs, (lo, -1)):
                                         bisect.bisect_right(obs, (hi, 99))]
                  if rank == _UNOBSERVED}
        stamps.update(ts for ts, _ in off[bisect.bisect_left(off, (lo, -1)):
                                          bisect.bisect_right(off, (hi, 99))])
        windows = self._maintenance.get(element, [])
        out: list[float] = []
        for ts in sorted(stamps):
            if any(start <= ts < end for start, end in windows):
                continue  # declared maintenance there: the element is not unknown
            reason = self._reason(element, ts, before=False)
            if reason is not None and reason != self._reason(element, ts, before=True):
                out.append(ts)
        return out

    def _add_offline(self, off: AgentOffline) -> AddResult:
        events = self._offline.get(off.agent)
        if events is None:
            return "unknown_agent"
        ev = (off.ts, _OFFLINE)
        i = bisect.bisect_left(events, ev)
        if i < len(events) and events[i] == ev:
            return "duplicate"
        events.insert(i, ev)
        for element in self._agent_elements[off.agent]:
            self._mark_dirty(element, ev)
        return "accepted"

    def _offline_of(self, element: str) -> list[_Ev]:
        agent = self._specs[element].agent
        return _NO_EVENTS if agent is None else self._offline[agent]

    def _stale_after(self, element: str) -> float:
        own = self._specs[element].stale_after_s
        return self.stale_after_s if own is None else own

    def _mark_dirty(self, element: str, ev: _Ev) -> None:
        """A new event changes states only on [ev.ts, next event), change points on [.., next]."""
        obs = self._obs[element]
        off = self._offline_of(element)
        nexts = []
        i = bisect.bisect_right(obs, ev)
        if i < len(obs):
            nexts.append(obs[i][0])
        j = bisect.bisect_right(off, ev)
        if j < len(off):
            nexts.append(off[j][0])
        # with no later event, the old and new timelines differ at most until
        # the stale time of the latest observation, which is <= ts + stale.
        hi = min(nexts) if nexts else ev[0] + self._stale_after(element)
        lo = ev[0]
        if element in self._dirty:
            old_lo, old_hi = self._dirty[element]
            lo, hi = min(lo, old_lo), max(hi, old_hi)
        self._dirty[element] = (lo, hi)

    # ------------------------------------------------------------ timelines

    def _element_window(self, element: str, lo: float, hi: float) -> tuple[State, list[Change]]:
        """True state just before ``lo`` and true changes in ``[lo, hi]``."""
        obs = self._obs[element]
        off = self._offline_of(element)
        i = max(bisect.bisect_left(obs, (lo, -1)) - 1, 0)
        j = max(bisect.bisect_left(off, (lo, -1)) - 1, 0)
        before: State = "unknown"
        inside: list[Change] = []
        for change in _sweep(
            heapq.merge(_from(obs, i), _from(off, j)), self._stale_after(element), hi
        ):
            if change.ts < lo:
                before = change.state
            else:
                inside.append(change)
        windows = self._maintenance.get(element)
        if windows:
            return overlay_maintenance(before, inside, windows, lo, hi)
        return before, inside

    def _service_window(self, key: ServiceKey, lo: float, hi: float) -> tuple[State, list[Change]]:
        befores: list[State] = []
        timelines: list[list[Change]] = []
        for element in self._service_elements[key]:
            before, changes = self._element_window(element, lo, hi)
            befores.append(before)
            timelines.append(changes)
        return _combine(self._rules[key], befores, timelines)

    def element_timeline(self, element: str) -> list[Change]:
        """The element's whole known timeline (since the horizon), not clipped to now."""
        return self._element_window(element, -math.inf, math.inf)[1]

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
            if lo > now:
                continue
            top = min(hi, now)
            before, changes = self._element_window(element, lo, hi)
            due = [c for c in changes if c.ts <= now]
            written = _reconcile(self._stored_elements[element], before, due, lo, top)
            starts = self._reason_starts(element, lo, hi)
            element_points += self._reasoned(element, written, [t for t in starts if t <= top],
                                             lo, top)
            for key in self._specs[element].services:
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
            for p in _reconcile(self._stored_services[key], before, changes, lo, hi):
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
                if element in self._specs:
                    wanted.setdefault(element, []).append((w.start, w.end))
        changed = 0
        for element in self._maintenance.keys() | wanted.keys():
            old = self._maintenance.get(element, [])
            new = merge_windows(wanted.get(element, []))
            if old == new:
                continue
            changed += 1
            diff = set(old) ^ set(new)
            lo = max(min(s for s, _ in diff), self._horizon)
            hi = max(e for _, e in diff)
            if new:
                self._maintenance[element] = new
            else:
                del self._maintenance[element]
            if hi > lo:
                self._mark_dirty_range(element, lo, hi)
        return changed

    def maintenance_of(self, element: str) -> list[tuple[float, float]]:
        """The element's merged maintenance windows ``[start, end)``."""
        return list(self._maintenance.get(element, []))

    def _mark_dirty_range(self, element: str, lo: float, hi: float) -> None:
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
        for events in (*self._obs.values(), *self._offline.values()):
            _drop_before(events, (horizon, -1))
        for element, reasons in self._reasons.items():
            kept = {ts for ts, rank in self._obs[element] if rank == _UNOBSERVED}
            for ts in [t for t in reasons if t not in kept]:
                del reasons[ts]
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


def _drop_before(events: list[_Ev], bound: _Ev) -> None:
    """Drop events before ``bound`` except the latest of them (it decides the state there)."""
    i = bisect.bisect_left(events, bound)
    if i > 1:
        del events[: i - 1]


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


# ---------------------------------------------------------------------- maintenance
#
# Declared maintenance is an overlay on the element timelines, not a fact of the
# state machine: inside a window the element is ``maintenance`` (whatever it was),
# outside it is what its facts say. Windows are given as a whole set
# (:meth:`AvailabilityEngine.set_maintenance`), so the result stays a pure function of
# (facts, windows) and a window declared late rewrites history like late data.

Quantifier = Literal["any", "all"]


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A declared maintenance window ``[start, end)`` over some elements."""

    id: str
    elements: frozenset[str]
    start: float
    end: float


#: How a commune-service combines element states when some element is in maintenance,
#: as data: the first row whose condition holds decides; none holds: ``unknown``.
#: Maintenance ranks between up and down: it never hides an up (any-of) nor a down of
#: an element outside maintenance (all-of), and never makes anything down. Without
#: maintenance these rows are exactly :func:`rule_state`'s rules.
MAINTENANCE_RULES: Final[Mapping[Rule, tuple[tuple[Quantifier, State, State], ...]]] = {
    "any_of": (
        ("any", "up", "up"),
        ("any", "maintenance", "maintenance"),
        ("all", "down", "down"),
    ),
    "all_of": (
        ("any", "down", "down"),
        ("any", "maintenance", "maintenance"),
        ("all", "up", "up"),
    ),
}


def maintenance_rule_state(rule: Rule, states: Sequence[State]) -> State:
    """Combine element states (some possibly ``maintenance``) by :data:`MAINTENANCE_RULES`."""
    if not states:
        return "unknown"
    for quantifier, state, result in MAINTENANCE_RULES[rule]:
        hit = (any if quantifier == "any" else all)(s == state for s in states)
        if hit:
            return result
    return "unknown"


def merge_windows(windows: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, disjoint, non-touching ``[start, end)`` windows (empty ones dropped)."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(w for w in windows if w[1] > w[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def in_windows(windows: Sequence[tuple[float, float]], x: float) -> bool:
    """Whether ``x`` lies in one of the merged ``windows``."""
    i = bisect.bisect_right(windows, x, key=lambda w: w[0])
    return i > 0 and x < windows[i - 1][1]


def overlay_maintenance(
    before: State, changes: Sequence[Change], windows: Sequence[tuple[float, float]],
    lo: float, hi: float,
) -> tuple[State, list[Change]]:
    """The maintenance overlay of a timeline piece: ``before`` (the state just before
    ``lo``) and ``changes`` (sorted, in ``[lo, hi]``) become the overlaid state just
    before ``lo`` and the overlaid changes in ``[lo, hi]``; ``windows`` are merged."""
    inside_before = any(s < lo <= e for s, e in windows)
    new_before: State = "maintenance" if inside_before else before
    stamps = sorted(
        {c.ts for c in changes}
        | {t for s, e in windows for t in (s, e) if lo <= t <= hi}
    )
    out: list[Change] = []
    current = new_before
    base = before
    ci = 0
    for ts in stamps:
        while ci < len(changes) and changes[ci].ts <= ts:
            base = changes[ci].state
            ci += 1
        state: State = "maintenance" if in_windows(windows, ts) else base
        if state != current:
            out.append(Change(ts, state))
            current = state
    return new_before, out
