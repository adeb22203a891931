"""Batched, retried delivery of line protocol to InfluxDB.

Lines are buffered and flushed when ``batch_lines`` are waiting or the oldest
has waited ``flush_interval_s``. A batch leaves the buffer only after the
write succeeded (like Telegraf's output buffer). While InfluxDB is unavailable
the batch is retried with capped, jittered backoff; the buffer is bounded by
``max_buffer_lines`` and :meth:`Sink.put` waits for room (back-pressure on
ingest) instead of dropping. A batch InfluxDB rejects as malformed (4xx) is
logged and counted, never retried forever.

Whoever puts lines may pass ``on_durable``: it is called once every one of those
lines has left the buffer (written, or refused as malformed) — the collector
acknowledges the MQTT message then, not before.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable

from collector.config import InfluxConfig
from collector.errors import WriteRejected, WriteUnavailable
from collector.writer import LineWriter
from xanet.mqtt import backoff_s

log = logging.getLogger("xanet.collector.sink")


class Sink:
    def __init__(self, cfg: InfluxConfig, writer: LineWriter,
                 rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.writer = writer
        self.rng = rng or random.Random()
        self._buf: deque[str] = deque()
        self._marks: deque[tuple[int, Callable[[], None]]] = deque()  # (line number, callback)
        self._lines_in = 0  # lines ever put
        self._lines_out = 0  # lines ever taken out (written or refused)
        self._oldest: float | None = None
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.written = 0
        self.rejected_lines = 0
        self.retries = 0
        self.unavailable = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    async def put(self, lines: list[str], on_durable: Callable[[], None] | None = None) -> None:
        while len(self._buf) >= self.cfg.max_buffer_lines:
            self._room.clear()
            await self._room.wait()
        if not self._buf:
            self._oldest = time.monotonic()
        self._buf.extend(lines)
        self._lines_in += len(lines)
        if on_durable is not None:
            if self._lines_in == self._lines_out:
                on_durable()
            else:
                self._marks.append((self._lines_in, on_durable))
        if len(self._buf) >= self.cfg.batch_lines:
            self._ready.set()

    def flush_soon(self) -> None:
        """Write what is buffered now, without waiting for the batch size or age.

        A request made while a write is in progress is answered by that write: lines
        that arrived meanwhile wait for the next trigger (batch size, age, a new request).
        Otherwise a caller asking after every message while its acknowledgements wait
        (the collector does, once half the MQTT receive window is unacknowledged) turns
        every write into a train of tiny ones (bench/ingest.py, BENCHMARKS.md).
        """
        self._ready.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Flush until ``stop`` is set, then flush what is left (best effort, bounded)."""
        while not stop.is_set():
            if len(self._buf) < self.cfg.batch_lines:
                wait = self.cfg.flush_interval_s
                if self._oldest is not None:
                    wait = max(0.0, self._oldest + self.cfg.flush_interval_s - time.monotonic())
                try:
                    await asyncio.wait_for(self._ready.wait(), timeout=wait)
                except TimeoutError:
                    pass
            self._ready.clear()
            await self._flush_all(stop)
            self._ready.clear()  # requests made during the write: see flush_soon
        await self._flush_all(None, final=True)

    async def _flush_all(self, stop: asyncio.Event | None, final: bool = False) -> None:
        """Write the lines buffered when called, and full batches of any that arrive meanwhile
        (all of them when ``final``)."""
        attempt = 0
        due = self._lines_in  # lines put up to now are due in this flush
        while self._buf and (final or self._lines_out < due
                             or len(self._buf) >= self.cfg.batch_lines):
            n = min(len(self._buf), self.cfg.batch_lines)
            batch = [self._buf[i] for i in range(n)]
            try:
                await self.writer.write(batch)
            except WriteUnavailable as exc:
                self.retries += 1
                if not self.unavailable:
                    log.error("influxdb unavailable, %d line(s) buffered, retrying: %s",
                              len(self._buf), exc)
                    self.unavailable = True
                if final and attempt >= 3:
                    log.error("stopping with %d line(s) not written", len(self._buf))
                    return
                delay = backoff_s(attempt, self.cfg.retry_min_s, self.cfg.retry_max_s, self.rng)
                attempt += 1
                if stop is not None:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                        return  # stopping: run() makes the final attempt
                    except TimeoutError:
                        continue
                await asyncio.sleep(delay)
                continue
            except WriteRejected as exc:
                self.rejected_lines += n
                log.error("influxdb rejected a batch of %d line(s) (not retried): %s", n, exc)
            else:
                self.written += n
            if self.unavailable:
                log.info("influxdb available again")
                self.unavailable = False
            attempt = 0
            for _ in range(n):
                self._buf.popleft()
            self._lines_out += n
            while self._marks and self._marks[0][0] <= self._lines_out:
                self._marks.popleft()[1]()
            self._oldest = time.monotonic() if self._buf else None
            self._room.set()
