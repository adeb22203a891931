"""Agent clock vs collector clock. Pure.

Checked on what the agent stamps when it *sends*: ``Status.ts`` (birth and periodic
status, published live) and ``Telemetry.sent`` (when the message was handed to
MQTT). A poll's own ``ts`` is not used: a replayed spool is legitimately hours old.

Transit only ever makes the agent look *behind* (a message re-sent after a lost PUBACK
keeps its first ``sent``), never ahead. So an agent is:

* **ahead** as soon as one stamp is more than ``threshold_s`` ahead of the receive time;
* **behind** when even the most advanced of its last ``window`` (12) stamps is more than
  ``threshold_s`` behind: the messages in flight when a connection dropped (at most 10,
  ``mqtt.max_inflight``) are re-sent with their first ``sent``, and are no wrong clock.

The offset reported is the most advanced stamp's (the smallest transit delay).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Skew = Literal["ok", "ahead", "behind"]


@dataclass(frozen=True, slots=True)
class Reading:
    state: Skew
    offset_s: float  # agent clock - collector clock, best estimate


class ClockWatch:
    def __init__(self, threshold_s: float, window: int = 12) -> None:
        self.threshold_s = threshold_s
        self.window = window
        self._recent: dict[str, deque[float]] = {}

    def observe(self, agent: str, stamped: datetime, received: datetime) -> Reading:
        offset = (stamped - received).total_seconds()
        recent = self._recent.setdefault(agent, deque(maxlen=self.window))
        recent.append(offset)
        best = max(recent)
        if offset > self.threshold_s:
            return Reading("ahead", offset)
        if len(recent) == self.window and best < -self.threshold_s:
            return Reading("behind", best)
        return Reading("ok", best)
