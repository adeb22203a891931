"""What every element's facts say over any window: its polls and its agent's offline marks
kept in order, the timeline they make and why it is unknown when it is (pure).

This is the state-holding layer of the engine (:mod:`collector.availability`): facts come
in any order and are kept as ``(ts, rank)`` events (:mod:`collector.elementstate`); a
window of an element's timeline is swept from them on demand, with its declared
maintenance overlaid (:mod:`collector.maintenance_overlay`). Adding a fact says which
range of which elements' timelines it may have changed, so the engine rewrites only that.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable
from typing import Final

from collector.changepoints import Change, State
from collector.elementstate import (
    OFFLINE,
    RANK,
    UNOBSERVED,
    UP,
    AddResult,
    AgentOffline,
    Ev,
    Fact,
    Observation,
    Unobserved,
    events_from,
    sweep,
)
from collector.maintenance_overlay import overlay_maintenance
from collector.servicerules import ElementSpec

_NO_EVENTS: Final[list[Ev]] = []  # offline marks of an element without agent: never any

#: What adding a fact touched: per element, the range ``[lo, hi]`` whose change points
#: may differ from before.
Touched = list[tuple[str, float, float]]


class ElementHistory:
    """Every element's facts, in order, and what they say over any window.

    :meth:`add` is idempotent and order-free. ``windows`` holds each element's merged
    declared maintenance windows (set by the engine), overlaid on its timeline.
    """

    def __init__(self, specs: Iterable[ElementSpec], stale_after_s: float) -> None:
        self.stale_after_s = stale_after_s
        self.specs: dict[str, ElementSpec] = {}
        self._agent_elements: dict[str, list[str]] = {}
        for spec in specs:
            if spec.element in self.specs:
                raise ValueError(f"element {spec.element!r} listed twice")
            self.specs[spec.element] = spec
            if spec.agent is not None:
                self._agent_elements.setdefault(spec.agent, []).append(spec.element)
        self._obs: dict[str, list[Ev]] = {e: [] for e in self.specs}
        self._reasons: dict[str, dict[float, str]] = {}  # Unobserved reasons by element, ts
        self._offline: dict[str, list[Ev]] = {a: [] for a in self._agent_elements}
        self.windows: dict[str, list[tuple[float, float]]] = {}  # element -> maintenance

    # ------------------------------------------------------------------ input

    def add(self, fact: Fact) -> tuple[AddResult, Touched]:
        """Take one fact; say what it did and which element ranges it may have changed."""
        if isinstance(fact, Observation):
            return self._add_observation(fact)
        if isinstance(fact, Unobserved):
            return self._add_unobserved(fact)
        return self._add_offline(fact)

    def _add_observation(self, obs: Observation) -> tuple[AddResult, Touched]:
        events = self._obs.get(obs.element)
        if events is None:
            return "unknown_element", []
        ev = (obs.ts, RANK[obs.state])
        i = bisect.bisect_left(events, ev)
        if i < len(events) and events[i] == ev:
            return "duplicate", []
        events.insert(i, ev)
        return "accepted", [self._touched(obs.element, ev)]

    def _add_unobserved(self, fact: Unobserved) -> tuple[AddResult, Touched]:
        """Like an observation; of two reasons at one ts the smaller wins (order-free)."""
        events = self._obs.get(fact.element)
        if events is None:
            return "unknown_element", []
        ev = (fact.ts, UNOBSERVED)
        reasons = self._reasons.setdefault(fact.element, {})
        i = bisect.bisect_left(events, ev)
        if i < len(events) and events[i] == ev:
            if fact.reason >= reasons[fact.ts]:
                return "duplicate", []
            reasons[fact.ts] = fact.reason
            return "accepted", [self._touched(fact.element, ev)]
        events.insert(i, ev)
        reasons[fact.ts] = fact.reason
        return "accepted", [self._touched(fact.element, ev)]

    def _add_offline(self, off: AgentOffline) -> tuple[AddResult, Touched]:
        events = self._offline.get(off.agent)
        if events is None:
            return "unknown_agent", []
        ev = (off.ts, OFFLINE)
        i = bisect.bisect_left(events, ev)
        if i < len(events) and events[i] == ev:
            return "duplicate", []
        events.insert(i, ev)
        return "accepted", [self._touched(e, ev) for e in self._agent_elements[off.agent]]

    def _touched(self, element: str, ev: Ev) -> tuple[str, float, float]:
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
        hi = min(nexts) if nexts else ev[0] + self.stale_after(element)
        return element, ev[0], hi

    def _offline_of(self, element: str) -> list[Ev]:
        agent = self.specs[element].agent
        return _NO_EVENTS if agent is None else self._offline[agent]

    def stale_after(self, element: str) -> float:
        """How long an observation of the element holds."""
        own = self.specs[element].stale_after_s
        return self.stale_after_s if own is None else own

    # ----------------------------------------------------------------- output

    def window(self, element: str, lo: float, hi: float) -> tuple[State, list[Change]]:
        """True state just before ``lo`` and true changes in ``[lo, hi]``."""
        obs = self._obs[element]
        off = self._offline_of(element)
        i = max(bisect.bisect_left(obs, (lo, -1)) - 1, 0)
        j = max(bisect.bisect_left(off, (lo, -1)) - 1, 0)
        before: State = "unknown"
        inside: list[Change] = []
        for change in sweep(
            heapq.merge(events_from(obs, i), events_from(off, j)), self.stale_after(element), hi
        ):
            if change.ts < lo:
                before = change.state
            else:
                inside.append(change)
        windows = self.windows.get(element)
        if windows:
            return overlay_maintenance(before, inside, windows, lo, hi)
        return before, inside

    def timeline(self, element: str) -> list[Change]:
        """The element's whole known timeline (since the horizon), not clipped to now."""
        return self.window(element, -math.inf, math.inf)[1]

    def reason(self, element: str, ts: float, *, before: bool = False) -> str | None:
        """Why the element is unknown at ``ts``, or just before it (``before``); None when
        it is not: the reason of an :class:`Unobserved` poll, ``agent_offline``, ``stale``
        or ``no_data``."""
        obs = self._obs[element]
        off = self._offline_of(element)
        bound = (ts, -1) if before else (ts, UNOBSERVED)
        i = bisect.bisect_right(obs, bound)
        j = bisect.bisect_right(off, bound)
        last_obs = obs[i - 1] if i else None
        last_off = off[j - 1] if j else None
        if last_obs is None and last_off is None:
            return "no_data"
        if last_obs is None or (last_off is not None and last_off[0] > last_obs[0]):
            return "agent_offline"
        if last_obs[1] == UNOBSERVED:
            return self._reasons[element][last_obs[0]]
        deadline = last_obs[0] + self.stale_after(element)
        if ts > deadline or (ts == deadline and not before):
            return "stale"
        return None

    def reason_starts(self, element: str, lo: float, hi: float) -> list[float]:
        """Facts in ``[lo, hi]`` (unobserved polls, offline marks) after which the element
        is unknown for another reason than just before: storage then shows why an element
        is unknown even when it was unknown before (a wrong key from the first poll on)."""
        obs = self._obs[element]
        off = self._offline_of(element)
        if not off and not self._reasons.get(element):
            return []  # no unobserved poll, no offline mark: no reason to start
        stamps = {ts for ts, rank in obs[bisect.bisect_left(obs, (lo, -1)):
                                         bisect.bisect_right(obs, (hi, 99))]
                  if rank == UNOBSERVED}
        stamps.update(ts for ts, _ in off[bisect.bisect_left(off, (lo, -1)):
                                          bisect.bisect_right(off, (hi, 99))])
        windows = self.windows.get(element, [])
        out: list[float] = []
        for ts in sorted(stamps):
            if any(start <= ts < end for start, end in windows):
                continue  # declared maintenance there: the element is not unknown
            reason = self.reason(element, ts)
            if reason is not None and reason != self.reason(element, ts, before=True):
                out.append(ts)
        return out

    def deciding(self, as_of: float) -> list[Fact]:
        """The facts that decide every element's timeline from ``as_of`` on: of each
        element and of each agent's offline marks, the last one at or before ``as_of``
        (an observation only while it has not gone stale by then) and every later one.
        Another engine fed these has the same timelines from ``as_of`` on."""
        out: list[Fact] = []
        for element, events in self._obs.items():
            for ts, rank in _from_last(events, as_of):
                if rank == UNOBSERVED:
                    out.append(Unobserved(element, ts, self._reasons[element][ts]))
                elif ts > as_of or ts + self.stale_after(element) > as_of:
                    out.append(Observation(element, ts, "up" if rank == UP else "down"))
        for agent, marks in self._offline.items():
            out += [AgentOffline(agent, ts) for ts, _ in _from_last(marks, as_of)]
        return out

    # ----------------------------------------------------------------- memory

    def compact(self, horizon: float) -> None:
        """Forget facts older than ``horizon`` except the latest of each list (it decides
        the state there)."""
        for events in (*self._obs.values(), *self._offline.values()):
            _drop_before(events, (horizon, -1))
        for element, reasons in self._reasons.items():
            kept = {ts for ts, rank in self._obs[element] if rank == UNOBSERVED}
            for ts in [t for t in reasons if t not in kept]:
                del reasons[ts]


def _from_last(events: list[Ev], as_of: float) -> list[Ev]:
    """The events from the last timestamp at or before ``as_of`` on."""
    i = bisect.bisect_right(events, (as_of, 99)) - 1
    if i < 0:
        return events[:]
    return events[bisect.bisect_left(events, (events[i][0], -1)):]


def _drop_before(events: list[Ev], bound: Ev) -> None:
    """Drop events before ``bound`` except the latest of them (it decides the state there)."""
    i = bisect.bisect_left(events, bound)
    if i > 1:
        del events[: i - 1]
