"""A state timeline as sorted change points: the state at an instant, its intervals and
what it amounts to over a window; which points make stored points agree with it (pure).

A timeline is a sorted list of :class:`Change` s: from ``ts`` on the state is ``state``,
until the next change; before the first change it is ``unknown``. Intervals are
half-open ``[start, end)``; times are float epoch seconds. This is the engine's form
(:mod:`collector.availability`); the report reads stored points back as plain
``(ts, state)`` steps (:mod:`collector.timeline`) and sums them into the same
:class:`Summary`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

#: ``maintenance`` is not a state of the element machine (:mod:`collector.elementstate`):
#: it is the declared maintenance overlay (:mod:`collector.maintenance_overlay`).
State = Literal["up", "down", "unknown", "maintenance"]


class Change(NamedTuple):
    """From ``ts`` on, the state is ``state`` (until the next change)."""

    ts: float
    state: State


class Interval(NamedTuple):
    start: float
    end: float
    state: State




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



def reconcile(
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


def _ts(c: Change) -> float:
    return c.ts
