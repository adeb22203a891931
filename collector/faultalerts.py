"""Fault alerts (collector/faults.py) to Alertmanager, through the Alertmanager client.

Every second: resolve what has been quiet long enough; post the whole set when something
changed, and every ``resend_interval_s`` while anything fires (each post pushes endsAt
``expire_after_s`` ahead, as the outage alerts do). Unreachable: retried with capped,
jittered backoff; resolved faults are dropped only once delivered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from collector.alertmanager import (
    AlertmanagerPort,
    AlertmanagerRejected,
    AlertmanagerUnavailable,
)
from collector.faults import FaultBook, payloads
from xanet.mqtt import backoff_s

log = logging.getLogger("xanet.collector.faultalerts")


class FaultNotifier:
    def __init__(self, book: FaultBook, port: AlertmanagerPort, *, resend_interval_s: float,
                 expire_after_s: float, retry_min_s: float, retry_max_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.book = book
        self.port = port
        self.resend_interval_s = resend_interval_s
        self.expire_after_s = expire_after_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.clock = clock
        self.posts = 0
        self.failures = 0
        self.unavailable = False
        self._rng = random.Random()

    async def flush(self) -> bool:
        now = self.clock()
        self.book.sweep(now)
        batch = payloads(self.book, now, self.expire_after_s)
        if not batch:
            self.book.changed = False
            return True
        try:
            await self.port.post(batch)
        except AlertmanagerUnavailable as exc:
            self.failures += 1
            if not self.unavailable:  # once per outage, not at every retry
                log.warning("alertmanager unavailable (%d fault alert(s) waiting): %s",
                            len(batch), exc)
            self.unavailable = True
            return False
        except AlertmanagerRejected as exc:
            log.error("alertmanager refused %d fault alert(s), not retried: %s", len(batch), exc)
        else:
            self.posts += 1
            if self.unavailable:
                log.info("alertmanager reachable again: %d fault alert(s) delivered",
                         len(batch))
        self.unavailable = False
        self.book.resolved.clear()
        self.book.changed = False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        last_post = 0.0
        attempt = 0
        try:
            while not stop.is_set():
                due = self.book.firing and self.clock() - last_post >= self.resend_interval_s
                self.book.sweep(self.clock())
                if self.book.changed or due:
                    if await self.flush():
                        last_post, attempt = self.clock(), 0
                    else:
                        delay = backoff_s(attempt, self.retry_min_s, self.retry_max_s,
                                          self._rng)
                        attempt += 1
                        try:
                            await asyncio.wait_for(stop.wait(), timeout=delay)
                        except TimeoutError:
                            pass
                        continue
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass
        finally:
            await self.port.close()
