"""When the collector may acknowledge a QoS 1 message: only once it is durable. Pure.

A message is *settled* when its points were written to InfluxDB (or it was
rejected and kept in the dead-letter store). MQTT requires PUBACKs in the
order the PUBLISH packets arrived, so a settled message is acknowledged only
when every message received before it is settled too. Until then the broker
keeps it in the persistent session and redelivers it if the collector dies:
nothing is lost, and a redelivered message rewrites the same points
(InfluxDB keys points by series and time), so nothing is counted twice.

Tickets belong to one connection (``generation``): after a reconnect the
broker redelivers what was unacknowledged, and a stale ticket must never ack
a packet id that now names another message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Ticket:
    mid: int
    qos: int
    generation: int
    settled: bool = False


class AckQueue:
    def __init__(self) -> None:
        self._queue: deque[Ticket] = deque()
        self.generation = 0

    def receive(self, mid: int, qos: int) -> Ticket:
        ticket = Ticket(mid, qos, self.generation)
        if qos > 0:
            self._queue.append(ticket)
        else:
            ticket.settled = True
        return ticket

    def settle(self, ticket: Ticket) -> list[Ticket]:
        """Mark ``ticket`` durable; return the tickets that may now be acknowledged, in order."""
        ticket.settled = True
        if ticket.generation != self.generation:
            return []
        ready: list[Ticket] = []
        while self._queue and self._queue[0].settled:
            ready.append(self._queue.popleft())
        return ready

    def new_connection(self) -> int:
        """Forget every unacknowledged ticket: the broker will redeliver those messages."""
        self._queue.clear()
        self.generation += 1
        return self.generation

    @property
    def unacked(self) -> int:
        return len(self._queue)


def countdown(parts: int, done: Callable[[], None] | None) -> Callable[[], None] | None:
    """A callback to call once per part; ``done`` runs at the last one (at once when there
    is none). A compact batch is acknowledged when every message in it is settled."""
    if done is None:
        return None
    if parts <= 0:
        done()
        return lambda: None
    left = [parts]

    def one() -> None:
        left[0] -= 1
        if left[0] == 0:
            done()

    return one
