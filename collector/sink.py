"""Batched, retried delivery of line protocol to InfluxDB.

Lines are buffered and flushed when ``batch_lines`` are waiting or the oldest
has waited ``flush_interval_s``. A batch leaves the buffer only after the
write succeeded (like Telegraf's output buffer). While InfluxDB is unavailable
the batch is retried with capped, jittered backoff; the buffer is bounded by
``max_buffer_lines`` and :meth:`Sink.put` waits for room (back-pressure on
ingest) instead of dropping. A batch InfluxDB refuses (4xx: a field-type conflict,
a line it cannot parse - InfluxDB 1.x stores the other lines and answers "partial
write") is never retried as it is: :meth:`Sink._isolate` writes its halves again
(rewriting a stored point changes nothing) until the refused lines are singled out;
those are counted (``rejected_lines``) and handed to ``on_rejected`` with InfluxDB's
reason (the collector dead-letters them, replayable), the others counted as written.

Up to ``max_writes_in_flight`` batches are written at once (InfluxDB ingests
more with a few writes in flight). Batches may complete in any order, but lines
leave the buffer strictly in the order they were put: a batch counts as done
only once every batch before it is done too, and a failed batch is retried while
later ones wait behind it.

Whoever puts lines may pass ``on_durable``: it is called once every one of those
lines, and every line put before them, has left the buffer (written, or refused
as malformed) — the collector acknowledges the MQTT message then, not before.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from collector.config import InfluxConfig
from collector.errors import WriteRejected, WriteUnavailable
from collector.writer import LineWriter
from xanet.mqtt import backoff_s

log = logging.getLogger("xanet.collector.sink")

#: Writes spent singling out the refused lines of one batch before the rest of what is
#: still undecided is handed over as refused too (dead-lettered, so still replayable).
MAX_ISOLATION_WRITES = 64
_DROPPED = re.compile(r"dropped=(\d+)")

Rejections = Callable[[list[str], str], None]


class _Unavailable(Exception):
    """InfluxDB became unavailable while a refused batch was being taken apart."""


@dataclass(slots=True)
class _Batch:
    lines: list[str]
    end: int  # the number of lines put up to and including this batch's last line
    done: bool = False


class Sink:
    def __init__(self, cfg: InfluxConfig, writer: LineWriter,
                 rng: random.Random | None = None, on_rejected: Rejections | None = None) -> None:
        self.cfg = cfg
        self.writer = writer
        self.on_rejected = on_rejected
        self.rng = rng or random.Random()
        self._buf: deque[str] = deque()  # lines not yet in a batch
        self._batches: deque[_Batch] = deque()  # taken, in order, until done and counted out
        self._marks: deque[tuple[int, Callable[[], None]]] = deque()  # (line number, callback)
        self._lines_in = 0  # lines ever put
        self._lines_taken = 0  # lines ever taken into a batch
        self._lines_out = 0  # lines ever taken out (written or refused), in order
        self._writing = 0  # write tasks running (writing or waiting to retry)
        self._oldest: float | None = None
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._slot = asyncio.Event()
        self.written = 0
        self.rejected_lines = 0
        self.rejected_batches = 0
        self.retries = 0
        self.unavailable = False

    @property
    def buffered(self) -> int:
        """Lines put and not yet out: waiting, or in a write not yet settled in order."""
        return self._lines_in - self._lines_out

    async def put(self, lines: list[str], on_durable: Callable[[], None] | None = None) -> None:
        while self.buffered >= self.cfg.max_buffer_lines:
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

        Answered by starting a write when one of the ``max_writes_in_flight`` is free;
        otherwise by the next write that starts. The collector asks once, when half its
        MQTT receive window is unacknowledged (asking after every message turned every
        write into a train of tiny ones: bench/ingest.py, BENCHMARKS.md).
        """
        self._ready.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Flush until ``stop`` is set, then flush what is left (best effort, bounded)."""
        async with asyncio.TaskGroup() as writes:
            while not stop.is_set():
                if len(self._buf) < self.cfg.batch_lines:
                    wait = self.cfg.flush_interval_s
                    if self._oldest is not None:
                        wait = max(0.0,
                                   self._oldest + self.cfg.flush_interval_s - time.monotonic())
                    try:
                        await asyncio.wait_for(self._ready.wait(), timeout=wait)
                    except TimeoutError:
                        pass
                self._ready.clear()
                await self._start_writes(stop, writes)
                self._ready.clear()  # requests made while waiting for a free write: answered
        # Every write task has ended: written, or given up retrying because of stop.
        await self._flush_final()

    async def _start_writes(self, stop: asyncio.Event, writes: asyncio.TaskGroup) -> None:
        """Start writes for the lines buffered when called, and for full batches of any
        that arrive meanwhile, each as soon as one of the writes in flight is free."""
        due = self._lines_in  # lines put up to now are due in this flush
        while self._buf and (self._lines_taken < due or len(self._buf) >= self.cfg.batch_lines):
            while self._writing >= self.cfg.max_writes_in_flight and not stop.is_set():
                self._slot.clear()
                await self._slot.wait()
            if stop.is_set():
                return
            n = min(len(self._buf), self.cfg.batch_lines)
            batch = _Batch([self._buf.popleft() for _ in range(n)], self._lines_taken + n)
            self._lines_taken += n
            self._batches.append(batch)
            self._oldest = time.monotonic() if self._buf else None
            self._writing += 1
            writes.create_task(self._write(batch, stop), name="influx-write")

    async def _write(self, batch: _Batch, stop: asyncio.Event) -> None:
        """Write one batch until it is written or refused; give up only when stopping
        (the final flush writes it again)."""
        attempt = 0
        try:
            while True:
                if await self._attempt(batch.lines):
                    break
                delay = backoff_s(attempt, self.cfg.retry_min_s, self.cfg.retry_max_s, self.rng)
                attempt += 1
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    return  # stopping: run() makes the final attempt
                except TimeoutError:
                    continue
            batch.done = True
            self._count_out()
        finally:
            self._writing -= 1
            self._slot.set()

    async def _attempt(self, lines: list[str]) -> bool:
        """One write; ``True`` when the lines are out (written, or refused and handed over)."""
        n = len(lines)
        try:
            try:
                await self.writer.write(lines)
            except WriteRejected as exc:
                good, refused = await self._isolate(lines, str(exc))
            else:
                good, refused = n, []
        except (WriteUnavailable, _Unavailable) as exc:
            self.retries += 1
            if not self.unavailable:
                log.error("influxdb unavailable, %d line(s) buffered, retrying: %s",
                          self.buffered, exc)
                self.unavailable = True
            return False
        self.written += good
        if refused:
            self.rejected_batches += 1
            bad = sum(len(group) for group, _ in refused)
            self.rejected_lines += bad
            log.error("influxdb refused %d of %d line(s) (%d written); refused lines "
                      "dead-lettered: %s", bad, n, good, refused[0][1][:300])
            if self.on_rejected is not None:
                for group, reason in refused:
                    self.on_rejected(group, reason)
        if self.unavailable:
            log.info("influxdb available again")
            self.unavailable = False
        return True

    async def _isolate(self, lines: list[str], reason: str
                       ) -> tuple[int, list[tuple[list[str], str]]]:
        """Single out the lines InfluxDB refuses in a batch it answered with a 4xx.

        Halves are written again until each refused line stands alone (InfluxDB 1.x says
        how many it dropped: a part it refuses whole is not split further). Returns the
        number of lines written and the refused groups with InfluxDB's reason. Raises
        :class:`_Unavailable` if InfluxDB goes away meanwhile: the whole batch is retried.
        """
        good = 0
        refused: list[tuple[list[str], str]] = []
        todo: list[tuple[list[str], str]] = [(lines, reason)]  # each refused, with why
        writes = 0
        while todo:
            part, why = todo.pop()
            m = _DROPPED.search(why)
            if len(part) == 1 or (m is not None and int(m.group(1)) >= len(part)) \
                    or writes >= MAX_ISOLATION_WRITES:
                refused.append((part, why))
                continue
            half = len(part) // 2
            for sub in (part[half:], part[:half]):
                writes += 1
                try:
                    await self.writer.write(sub)
                except WriteRejected as exc:
                    todo.append((sub, str(exc)))
                except WriteUnavailable as exc:
                    raise _Unavailable(str(exc)) from exc
                else:
                    good += len(sub)
        return good, refused

    def _count_out(self) -> None:
        """Take the done batches at the head out, in order, and call who waits for them."""
        batches = self._batches
        while batches and batches[0].done:
            self._lines_out = batches.popleft().end
        marks = self._marks
        while marks and marks[0][0] <= self._lines_out:
            marks.popleft()[1]()
        self._room.set()

    async def _flush_final(self) -> None:
        """On stop: write what is left, one batch at a time, a few attempts each.

        Batches still held (not done, or done behind one that is not) go first, in order,
        written again whole: rewriting a point InfluxDB already has changes nothing.
        """
        for batch in reversed(self._batches):
            self._buf.extendleft(reversed(batch.lines))
        self._batches.clear()
        self._lines_taken = self._lines_out
        attempt = 0
        while self._buf:
            n = min(len(self._buf), self.cfg.batch_lines)
            batch = _Batch([self._buf[i] for i in range(n)], self._lines_out + n)
            if not await self._attempt(batch.lines):
                if attempt >= 3:
                    log.error("stopping with %d line(s) not written", len(self._buf))
                    return
                await asyncio.sleep(backoff_s(attempt, self.cfg.retry_min_s,
                                              self.cfg.retry_max_s, self.rng))
                attempt += 1
                continue
            attempt = 0
            for _ in range(n):
                self._buf.popleft()
            self._lines_taken += n
            batch.done = True
            self._batches.append(batch)
            self._count_out()
