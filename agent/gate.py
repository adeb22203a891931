"""The asyncio side of poll admission: a semaphore whose size can change, and the lag probe.

The decisions are in :mod:`agent.concurrency`; this module only waits and measures.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

#: How often the event loop's lag is measured (one timer per interval: negligible CPU).
LAG_PROBE_INTERVAL_S = 0.1


class Gate:
    """A FIFO semaphore whose limit may be changed while it is held.

    Shrinking never interrupts holders: it only delays the next admissions until
    fewer than ``limit`` hold the gate.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self._limit = limit
        self.active = 0
        self.waited = 0  # acquisitions that had to wait
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    def resize(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self._limit = limit
        self._wake()

    async def acquire(self) -> bool:
        """Hold the gate; True when this call had to wait for room."""
        if self.active < self._limit and not self._waiters:
            self.active += 1
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._wake()  # the queue may hold only cancelled waiters
        if fut.done():
            return False
        self.waited += 1
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # admitted, then cancelled before it could run: pass it on
            raise
        return True

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.active < self._limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.active += 1
                fut.set_result(None)


async def probe_lag(on_lag: Callable[[float], None], stop: asyncio.Event,
                    interval_s: float = LAG_PROBE_INTERVAL_S) -> None:
    """Until ``stop``: sleep ``interval_s``, report how much later than due the loop woke us."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        on_lag(max(0.0, loop.time() - due))


class Naps:
    """Sleeps that all end at once when the agent stops: one future and one timer each.

    (``asyncio.wait_for(stop.wait(), t)`` costs a task, a timer and a cancellation round
    trip per sleep: ~9 % of the agent's non-SNMP CPU when every poll sleeps once.)
    """

    def __init__(self) -> None:
        self.stopped = False
        self._sleeping: set[asyncio.Future[None]] = set()

    async def sleep(self, delay_s: float) -> bool:
        """Sleep ``delay_s``; True when cut short (or skipped) because of :meth:`stop`."""
        if self.stopped:
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(delay_s, _resolve, fut)
        self._sleeping.add(fut)
        try:
            await fut
        finally:
            handle.cancel()
            self._sleeping.discard(fut)
        return self.stopped

    def stop(self) -> None:
        self.stopped = True
        for fut in self._sleeping:
            _resolve(fut)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
