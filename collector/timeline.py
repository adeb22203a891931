"""Timelines as the report reads them back: four states, totals, combination (pure).

A timeline is a sorted list of ``(ts, state)`` changes (state holds from ``ts`` to the
next change; ``unknown`` before the first). The states are those stored in
``element_state`` and ``service_state``: ``up``, ``down``, ``unknown`` and
``maintenance`` (declared maintenance: neither up nor down, reported apart). States are
plain strings here, as stored; the engine's own timelines (typed change points, written
rather than read) are :mod:`collector.changepoints`.

Definitions (docs/availability.md, Report):

* availability = up / (up + down);
* coverage = (up + down) / (window - maintenance): declared maintenance is not missing
  data, so it does not lower coverage; unknown time does;
* outages = maximal down periods meeting the window; unknown or maintenance between two
  down periods bridges them (no recovery was seen).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Final

from collector.changepoints import Summary

STATES: Final = ("up", "down", "unknown", "maintenance")
#: What a stored ``code`` means when a point carries no ``state`` string.
CODES: Final = {1: "up", 0: "down", -1: "unknown", -2: "maintenance"}

Step = tuple[float, str]


#: Seconds in each state over a window (or summed over several timelines): the engine's
#: :class:`~collector.changepoints.Summary`, one dataclass for both.
Totals = Summary


def state_of(value: object, code: object = None) -> str:
    """A stored state: the ``state`` string, else the ``code``; anything else is unknown."""
    if isinstance(value, str) and value in STATES:
        return value
    if isinstance(code, int | float) and int(code) in CODES:
        return CODES[int(code)]
    return "unknown"


def normalize(changes: Iterable[Step]) -> list[Step]:
    """Sort, keep the last of equal timestamps, drop non-changes (upserted points)."""
    by_ts: dict[float, str] = {}
    for ts, state in changes:
        by_ts[ts] = state
    out: list[Step] = []
    current = "unknown"
    for ts in sorted(by_ts):
        if by_ts[ts] != current:
            current = by_ts[ts]
            out.append((ts, current))
    return out


def cut(changes: Sequence[Step], until: float) -> list[Step]:
    """The timeline with everything from ``until`` on unknown (storage not complete yet)."""
    out = [c for c in changes if c[0] < until]
    if not out or out[-1][1] != "unknown":
        out.append((until, "unknown"))
    return out


def spans(changes: Sequence[Step], start: float, end: float) -> list[tuple[float, float, str]]:
    """``(from, to, state)`` pieces of the timeline clipped to ``[start, end)``."""
    if not end > start:
        raise ValueError(f"empty window [{start}, {end})")
    i = bisect.bisect_right([c[0] for c in changes], start)
    state = "unknown" if i == 0 else changes[i - 1][1]
    out: list[tuple[float, float, str]] = []
    t = start
    for ts, nxt in changes[i:]:
        if ts >= end:
            break
        if ts > t:
            out.append((t, ts, state))
        t, state = max(t, ts), nxt
    out.append((t, end, state))
    merged: list[tuple[float, float, str]] = []
    for piece in out:
        if piece[1] <= piece[0]:
            continue
        if merged and merged[-1][2] == piece[2]:
            merged[-1] = (merged[-1][0], piece[1], piece[2])
        else:
            merged.append(piece)
    return merged


def totals(changes: Sequence[Step], start: float, end: float) -> Totals:
    """Seconds per state and outage count of one timeline over ``[start, end)``."""
    seconds = dict.fromkeys(STATES, 0.0)
    outages = 0
    in_outage = False
    for a, b, state in spans(changes, start, end):
        seconds[state] = seconds.get(state, 0.0) + (b - a)
        if state == "down":
            outages += 0 if in_outage else 1
            in_outage = True
        elif state == "up":
            in_outage = False
    return Totals(end - start, seconds["up"], seconds["down"], seconds["unknown"],
                  seconds["maintenance"], outages)


def combine_any(timelines: Sequence[Sequence[Step]]) -> list[Step]:
    """Any-of combination: up if any is up, down if all are down, maintenance if any is in
    maintenance (and none up), else unknown. The rule of a site's service elements."""
    if len(timelines) == 1:
        return list(timelines[0])
    events = sorted({c[0] for t in timelines for c in t})
    index = [0] * len(timelines)
    current = ["unknown"] * len(timelines)
    out: list[Step] = []
    for ts in events:
        for k, t in enumerate(timelines):
            while index[k] < len(t) and t[index[k]][0] <= ts:
                current[k] = t[index[k]][1]
                index[k] += 1
        if "up" in current:
            state = "up"
        elif all(s == "down" for s in current):
            state = "down"
        elif "maintenance" in current:
            state = "maintenance"
        else:
            state = "unknown"
        if not out or out[-1][1] != state:
            out.append((ts, state))
    return out


def most_down_at_once(timelines: Sequence[Sequence[Step]], start: float, end: float) -> int:
    """The largest number of timelines that were down at the same instant in the window."""
    deltas: dict[float, int] = {}
    for t in timelines:
        for a, b, state in spans(t, start, end):
            if state == "down":
                deltas[a] = deltas.get(a, 0) + 1
                deltas[b] = deltas.get(b, 0) - 1
    best = level = 0
    for ts in sorted(deltas):
        level += deltas[ts]
        best = max(best, level)
    return best
