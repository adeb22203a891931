"""Which state one element is in, from its facts: the element state machine as data and
the facts it reads (pure).

* Facts are poll results (:class:`Observation`, timestamped by the agent's clock), agent
  Last-Will marks (:class:`AgentOffline`) and polls that could not observe the element
  (:class:`Unobserved`: a monitoring fault, with its reason).
* An element's state at time ``x`` is decided by its *latest fact at or before* ``x``
  (its own observations and its agent's offline marks): an observation holds for
  ``stale_after_s``, then the element is ``unknown``; an offline mark makes it
  ``unknown``; an :class:`Unobserved` poll makes it ``unknown`` until the next fact
  (coverage lost, never downtime). At equal timestamps an observation beats an offline
  mark (a replayed spool re-establishes the state), ``down`` beats ``up`` and an
  unobserved poll beats both. Before any fact the element is ``unknown``.
* The result is therefore a pure function of the *set* of facts: delivering them late or
  in another order gives the same timeline (:func:`sweep` over the facts in (ts, rank)
  order).

Times are float epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from collector.changepoints import Change, State

Observed = Literal["up", "down"]
Event = Literal["observed_up", "observed_down", "agent_offline", "stale", "observed_unknown"]
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


# ------------------------------------------------------------------ events in rank order
#
# A fact becomes an event ``(ts, rank)``; events sort offline < up < down < unobserved at
# equal ts, and of equal timestamps the last (highest rank) decides.

OFFLINE: Final = 0
UP: Final = 1
DOWN: Final = 2
RANK: Final[Mapping[Observed, int]] = {"up": UP, "down": DOWN}
UNOBSERVED: Final = 3  # beats both observations at equal ts (see Unobserved)
_RANK_EVENT: Final[tuple[Event, ...]] = (
    "agent_offline", "observed_up", "observed_down", "observed_unknown",
)
Ev = tuple[float, int]  # (ts, rank)


def events_from(items: Sequence[Ev], start: int) -> Iterator[Ev]:
    """``items[start:]`` without a copy."""
    for k in range(start, len(items)):
        yield items[k]


def sweep(events: Iterable[Ev], stale_after_s: float, until: float) -> Iterator[Change]:
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
        deadline = None if rank in (OFFLINE, UNOBSERVED) else ts + stale_after_s
        pending = nxt
    if deadline is not None and deadline <= until:
        yield Change(deadline, transition(state, "stale"))
