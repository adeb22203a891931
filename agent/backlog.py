"""When the uplink's backlog lane may publish, on the event loop: the edge of :mod:`agent.budget`.

The replay asks :meth:`BacklogPacing.turn` before each backlog publish (whatever the
publish carries: one spool entry or a batch of many, priced by its packet bytes) and
tells :meth:`BacklogPacing.done` when it ended; the live lane tells
:meth:`BacklogPacing.live_handed` what it handed on. The decisions are
:mod:`agent.budget`'s; this module only waits, reads the clock and counts windows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from agent.budget import AutoBudget, BacklogGate, Pacer, Window, cap_bytes, window_over

log = logging.getLogger("xanet.agent.uplink")

#: How often a backlog waiting for room looks again (a lost wake-up costs no more).
ROOM_POLL_S = 0.1


@dataclass
class _WindowMeter:
    """What the backlog sent and got acknowledged in the current auto-budget window."""

    started: float
    sent_bytes: int = 0
    acked_bytes: int = 0
    acks: int = 0


class BacklogPacing:
    """The backlog's budget, its in-flight cap and the live-first rule, for one uplink."""

    def __init__(self, budget_bytes_per_s: float | Literal["auto", "off"],
                 rate_per_s: float | None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.auto = AutoBudget() if budget_bytes_per_s == "auto" else None
        fixed = None if budget_bytes_per_s in ("auto", "off") else float(budget_bytes_per_s)
        self.pacer = Pacer(self.auto.bytes_per_s if self.auto else fixed, rate_per_s)
        self.gate = BacklogGate(cap_bytes(self.pacer.bytes_per_s))
        self.clock = clock
        self._room = asyncio.Event()  # a backlog publish ended, or live went out
        self._window = _WindowMeter(started=clock())

    @property
    def bytes_per_s(self) -> float | None:
        """The bytes/s budget now (None: only messages/s bound the backlog)."""
        return self.pacer.bytes_per_s

    def start(self) -> None:
        """A replay begins: auto windows count from now (an idle backlog measures nothing)."""
        self._window = _WindowMeter(started=self.clock())
        self.gate.reset_capped()

    async def turn(self, nbytes: int, live_waiting: Callable[[], bool]) -> None:
        """Wait until a backlog publish of ``nbytes`` may go, and count it as gone."""
        while True:
            self._tick_auto()
            delay = self.pacer.delay_s(self.clock())
            if delay > 0:
                await asyncio.sleep(min(delay, ROOM_POLL_S))
                continue
            self._room.clear()
            if self.gate.may_send(nbytes, live_waiting=live_waiting()):
                break
            try:
                await asyncio.wait_for(self._room.wait(), ROOM_POLL_S)
            except TimeoutError:
                pass
        self.pacer.take(self.clock(), nbytes)
        self.gate.sent(nbytes)
        self._window.sent_bytes += nbytes

    def done(self, nbytes: int, *, acked: bool) -> None:
        """A backlog publish of ``nbytes`` ended (``acked``: the broker took it)."""
        self.gate.done(nbytes)
        if acked:
            self._window.acked_bytes += nbytes
            self._window.acks += 1
        self._room.set()

    def live_handed(self) -> None:
        """The live lane handed a message on: the backlog may look again."""
        self._room.set()

    def _tick_auto(self) -> None:
        """Auto: at the end of a measuring window, the budget from its PUBACK throughput."""
        if self.auto is None:
            return
        w, now = self._window, self.clock()
        if not window_over(now - w.started, w.acks):
            return
        before = self.pacer.bytes_per_s
        budget = self.auto.observe(Window(
            duration_s=now - w.started, sent_bytes=w.sent_bytes, acked_bytes=w.acked_bytes,
            acks=w.acks, busy=True, capped=self.gate.reset_capped()))
        if budget != before:
            log.debug("replay budget %.0f bytes/s (measured %.0f bytes/s)", budget,
                      self.auto.measured_bytes_per_s or 0.0)
        self.pacer.set_bytes_per_s(budget)
        self.gate.cap_bytes = cap_bytes(budget)
        self._window = _WindowMeter(started=now)
