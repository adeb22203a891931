"""How many polls may run at once, steered by the event loop's lag. Pure: no clock, no asyncio.

The agent runs its pollers and its MQTT uplink on one event loop. When polls need more
CPU than the box has, every loop iteration runs dozens of poll callbacks and the uplink,
which needs several iterations per message (write, PUBACK, ack), is starved. The agent
measures the loop's lag (how late a timer fires) every ``LAG_PROBE_INTERVAL_S`` and feeds
it here; the answer is the number of polls admitted at a time:

* lag above ``max_lag_s``: halve the limit (not below ``floor``) — multiplicative decrease;
* lag at most half of ``max_lag_s``: one more (not above ``ceiling``) — additive increase;
* in between: keep it.

Polls that are not admitted wait (first come, first served); a poll admitted after its
device's next slot makes that slot an overrun, counted like any other (``poll_overruns``).
So under overload the agent polls less often, on time or not at all, and keeps delivering.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AdmissionLimit:
    """AIMD on loop lag. ``max_lag_s == 0`` turns it off (the limit stays at ``ceiling``)."""

    ceiling: int  # polling.max_concurrent
    max_lag_s: float  # polling.max_loop_lag_s
    floor: int = 1  # polling.min_concurrent
    limit: int = field(init=False)
    decreases: int = field(default=0, init=False)  # times the limit was halved
    lowest: int = field(init=False)  # the lowest limit so far
    worst_lag_s: float = field(default=0.0, init=False)  # the highest lag observed so far

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= self.ceiling:
            raise ValueError(f"need 1 <= floor ({self.floor}) <= ceiling ({self.ceiling})")
        if self.max_lag_s < 0:
            raise ValueError("max_lag_s must be >= 0")
        self.limit = self.ceiling
        self.lowest = self.ceiling

    @property
    def enabled(self) -> bool:
        return self.max_lag_s > 0

    @property
    def throttled(self) -> bool:
        return self.limit < self.ceiling

    def observe(self, lag_s: float) -> int:
        """One lag measurement → the new limit."""
        self.worst_lag_s = max(self.worst_lag_s, lag_s)
        if not self.enabled:
            return self.limit
        if lag_s > self.max_lag_s:
            if self.limit > self.floor:
                self.limit = max(self.floor, self.limit // 2)
                self.decreases += 1
                self.lowest = min(self.lowest, self.limit)
        elif lag_s <= self.max_lag_s / 2 and self.limit < self.ceiling:
            self.limit += 1
        return self.limit
