"""When the uplink's backlog lane may publish, on the event loop: the edge of :mod:`agent.budget`.

The replay asks :meth:`BacklogPacing.turn` before each backlog publish (whatever the
publish carries: one spool entry or a batch of many, priced by its packet bytes) and
tells :meth:`BacklogPacing.done` when it ended; the live lane tells
:meth:`BacklogPacing.live_handed` what it handed on. The decisions are
:class:`agent.budget.BacklogBudget`'s; this module only waits and reads the clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Literal

from agent.budget import BacklogBudget

log = logging.getLogger("xanet.agent.uplink")

#: How often a backlog waiting for room looks again (a lost wake-up costs no more).
ROOM_POLL_S = 0.1


class BacklogPacing:
    """The backlog's budget, its in-flight cap and the live-first rule, for one uplink."""

    def __init__(self, budget_bytes_per_s: float | Literal["auto", "off"],
                 rate_per_s: float | None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.budget = BacklogBudget(budget_bytes_per_s, rate_per_s, clock())
        self._room = asyncio.Event()  # a backlog publish ended, or live went out

    @property
    def bytes_per_s(self) -> float | None:
        """The bytes/s budget now (None: only messages/s bound the backlog)."""
        return self.budget.bytes_per_s

    @property
    def cap_bytes(self) -> float:
        """The backlog bytes that may be unacknowledged at once (a second of the budget): a
        backlog message larger than this makes a live poll wait longer than a second, so
        batches should stay below it (inf: no bytes budget)."""
        return self.budget.gate.cap_bytes

    def start(self) -> None:
        """A replay begins."""
        self.budget.start(self.clock())

    async def turn(self, nbytes: int, live_waiting: Callable[[], bool],
                   messages: int = 1) -> None:
        """Wait until a backlog publish of ``nbytes`` (carrying ``messages`` spool messages)
        may go, and count it as gone."""
        b = self.budget
        while True:
            before = b.bytes_per_s
            delay = b.delay_s(self.clock(), messages)
            if b.bytes_per_s != before and b.auto is not None:
                log.debug("replay budget %.0f bytes/s (measured %.0f bytes/s)",
                          b.bytes_per_s or 0.0, b.auto.measured_bytes_per_s or 0.0)
            if delay > 0:
                await asyncio.sleep(min(delay, ROOM_POLL_S))
                continue
            self._room.clear()
            if b.may_send(nbytes, live_waiting=live_waiting()):
                break
            try:
                await asyncio.wait_for(self._room.wait(), ROOM_POLL_S)
            except TimeoutError:
                pass
        b.sent(self.clock(), nbytes, messages)

    def done(self, nbytes: int, *, acked: bool) -> None:
        """A backlog publish of ``nbytes`` ended (``acked``: the broker took it)."""
        self.budget.done(nbytes, acked=acked)
        self._room.set()

    def live_handed(self) -> None:
        """The live lane handed a message on: the backlog may look again."""
        self._room.set()
