"""When to reconnect to the broker, and when a lost connection looks taken over. Pure.

The backoff (capped exponential with full jitter, :func:`xanet.mqtt.backoff_s`) starts
again from the shortest delay only after a connection has held for ``stable_s``: a
connection that keeps being lost soon after it came up — two boxes with one identity
taking the session from each other — waits longer and longer instead of reconnecting
in a tight loop.

A connection counts as **taken over** when the broker said so (MQTT v5 DISCONNECT
reason 0x8E), or when the broker closed it without a DISCONNECT (what Mosquitto 2.0
does on a takeover) shortly after it came up, twice or more in a row: one such close is
also what a broker restart looks like, a run of them is the duplicate's signature.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from xanet.mqtt import backoff_s

#: How a connection ended: the broker's DISCONNECT 0x8E; the peer closed the socket
#: without a DISCONNECT; anything else (timeouts, refused connects, errors).
Loss = Literal["taken_over", "closed", "other"]


@dataclass
class ReconnectPolicy:
    min_s: float
    max_s: float
    stable_s: float
    attempt: int = 0
    closed_in_a_row: int = 0
    taken_over: int = 0  # connections counted as taken over

    def lost(self, loss: Loss, lasted_s: float | None) -> bool:
        """Record how a connection ended (``lasted_s`` None: it never came up); True when
        it counts as taken over."""
        if lasted_s is not None and lasted_s >= self.stable_s:
            self.attempt = 0
            self.closed_in_a_row = 0
        short = lasted_s is not None and lasted_s < self.stable_s
        if loss == "closed" and short:
            self.closed_in_a_row += 1
        elif lasted_s is not None:
            self.closed_in_a_row = 0
        taken = loss == "taken_over" or (loss == "closed" and self.closed_in_a_row >= 2)
        if taken:
            self.taken_over += 1
        return taken

    def delay_s(self, rng: random.Random) -> float:
        """The wait before the next attempt (each call is one more attempt)."""
        delay = backoff_s(self.attempt, self.min_s, self.max_s, rng)
        self.attempt += 1
        return delay
