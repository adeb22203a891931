"""Declared maintenance as an overlay on element timelines: inside a window the element is
``maintenance``, whatever its facts say (pure).

Maintenance is not a fact of the element state machine: the engine overlays it on the
timelines its facts make. Windows are given as a whole set
(:meth:`collector.availability.AvailabilityEngine.set_maintenance`), so the result stays
a pure function of (facts, windows) and a window declared late rewrites history like late
data. How a commune-service combines an element in maintenance is
:data:`collector.servicerules.MAINTENANCE_RULES`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from collector.changepoints import Change, State


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A declared maintenance window ``[start, end)`` over some elements."""

    id: str
    elements: frozenset[str]
    start: float
    end: float


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
