"""How far non-critical profiles' intervals stretch while the uplink is saturated. Pure.

The uplink is **saturated** when the backlog (the spool's bytes still to send) grew at
each of the last :data:`SATURATED_AFTER` status intervals while connected: polls are
stored faster than the link drains them. A cut is not saturation (nothing drains at all;
stretching would not bring anything back sooner).

Then the profiles that say ``stretch_when_saturated = true`` (sensors, host resources)
are polled at ``factor ×`` their interval: the factor doubles at each such run of
growth, up to :data:`MAX_FACTOR`; it halves at each interval the backlog shrank, and is
back to 1 as soon as the backlog is empty. Availability polls — sysUpTime, interfaces,
ICMP, and every profile without the key — never stretch.
"""

from __future__ import annotations

from typing import Final

#: Status intervals of growth, while connected, that make the uplink saturated.
SATURATED_AFTER: Final = 3
#: The largest stretch of a profile's interval.
MAX_FACTOR: Final = 8


class Stretch:
    """The saturation signal and the stretch factor, fed once per status interval."""

    def __init__(self) -> None:
        self.factor = 1
        self.saturated = False
        self._growth = 0  # intervals in a row the backlog grew while connected
        self._last: int | None = None

    def observe(self, backlog_bytes: int, connected: bool) -> bool:
        """One status interval's reading; True when the factor changed (to be logged)."""
        before, last = self.factor, self._last
        self._last = backlog_bytes if connected else None
        if not connected or last is None:
            self._growth = 0
            self.saturated = False
            return False
        if backlog_bytes <= 0:
            self._growth, self.saturated, self.factor = 0, False, 1
        elif backlog_bytes > last:
            self._growth += 1
            if self._growth >= SATURATED_AFTER:
                self.saturated = True
                self.factor = min(MAX_FACTOR, self.factor * 2)
                self._growth = 0  # another full run of growth for the next step
        else:
            self._growth = 0
            if backlog_bytes < last:
                self.saturated = False
                self.factor = max(1, self.factor // 2)
        return self.factor != before


def stretched_interval_s(interval_s: float, factor: int, stretches: bool) -> float:
    """A profile's interval under ``factor`` (``stretches``: its stretch_when_saturated)."""
    return interval_s * factor if stretches else interval_s
