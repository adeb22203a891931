"""collector.sink with several writes in flight: lines leave the buffer (and whoever waits
for them is called) strictly in the order they were put, whatever order the writes finish
or fail in. The writer is a fake honouring ``LineWriter`` whose writes the test finishes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import InfluxConfig
from collector.errors import WriteRejected, WriteUnavailable
from collector.sink import Sink


class GatedWriter:
    """Each write waits until the test ends it with ok() or fail(); records what is stored."""

    def __init__(self) -> None:
        self.pending: list[tuple[list[str], asyncio.Future[bool]]] = []
        self.stored: list[str] = []
        self.attempts = 0
        self.most_in_flight = 0

    async def write(self, lines: list[str]) -> None:
        self.attempts += 1
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        entry = (list(lines), fut)
        self.pending.append(entry)
        self.most_in_flight = max(self.most_in_flight, len(self.pending))
        try:
            ok = await fut
        finally:
            self.pending.remove(entry)
        if not ok:
            raise WriteUnavailable("test: unavailable")
        self.stored.extend(lines)

    def finish(self, i: int, ok: bool = True) -> list[str]:
        lines, fut = self.pending[i]
        fut.set_result(ok)
        return lines

    async def close(self) -> None:
        pass


def _cfg(in_flight: int, batch_lines: int = 2) -> InfluxConfig:
    return InfluxConfig(batch_lines=batch_lines, flush_interval_s=0.01, max_buffer_lines=1000,
                        retry_min_s=0.01, retry_max_s=0.02, max_writes_in_flight=in_flight)


async def _until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not cond():  # noqa: ASYNC110  # polling test state the fake writer changes
            await asyncio.sleep(0.001)


async def _with_sink(cfg: InfluxConfig, writer: GatedWriter,
                     body: Callable[[Sink], Awaitable[None]]) -> None:
    sink = Sink(cfg, writer, random.Random(1))
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    try:
        await body(sink)
    finally:
        stop.set()
        async with asyncio.timeout(10):  # from now on every write succeeds
            while not task.done():
                for _, fut in list(writer.pending):
                    if not fut.done():
                        fut.set_result(True)
                await asyncio.sleep(0.001)
        await task


def test_second_write_finishing_first_acks_nothing_until_the_first_is_durable() -> None:
    writer = GatedWriter()
    durable: list[str] = []

    async def body(sink: Sink) -> None:
        await sink.put(["a1", "a2"], lambda: durable.append("a"))
        await sink.put(["b1", "b2"], lambda: durable.append("b"))
        await _until(lambda: len(writer.pending) == 2)  # both batches in flight at once
        assert writer.finish(1) == ["b1", "b2"]
        await asyncio.sleep(0.05)
        assert durable == []  # b is stored, but a is not: no ack yet
        assert sink.buffered == 4
        assert writer.finish(0) == ["a1", "a2"]
        await _until(lambda: durable == ["a", "b"])
        assert sink.buffered == 0

    asyncio.run(_with_sink(_cfg(2), writer, body))


def test_failed_first_write_is_retried_and_later_ones_wait_behind_it() -> None:
    writer = GatedWriter()
    durable: list[str] = []

    async def body(sink: Sink) -> None:
        await sink.put(["a1", "a2"], lambda: durable.append("a"))
        await sink.put(["b1", "b2"], lambda: durable.append("b"))
        await _until(lambda: len(writer.pending) == 2)
        writer.finish(1)  # b stored
        writer.finish(0, ok=False)  # a fails: retried
        await _until(lambda: len(writer.pending) == 1)
        assert writer.pending[0][0] == ["a1", "a2"]
        assert durable == []
        assert sink.retries == 1
        writer.finish(0)
        await _until(lambda: durable == ["a", "b"])
        assert writer.stored == ["b1", "b2", "a1", "a2"]

    asyncio.run(_with_sink(_cfg(2), writer, body))


def test_one_write_in_flight_when_configured() -> None:
    writer = GatedWriter()
    durable: list[int] = []

    async def body(sink: Sink) -> None:
        for k in range(4):
            await sink.put([f"l{k}a", f"l{k}b"], lambda k=k: durable.append(k))
        while len(durable) < 4:
            await _until(lambda: len(writer.pending) >= 1 or len(durable) == 4)
            if writer.pending:
                writer.finish(0)
            await asyncio.sleep(0.005)
        assert durable == [0, 1, 2, 3]

    asyncio.run(_with_sink(_cfg(1), writer, body))
    assert writer.most_in_flight == 1


def test_stop_with_a_write_still_failing_writes_everything_in_the_final_flush() -> None:
    writer = GatedWriter()
    durable: list[str] = []

    async def body(sink: Sink) -> None:
        await sink.put(["a1", "a2"], lambda: durable.append("a"))
        await sink.put(["b1", "b2"], lambda: durable.append("b"))
        await _until(lambda: len(writer.pending) == 2)
        writer.finish(1)
        writer.finish(0, ok=False)  # a waits to be retried when stop comes

    # _with_sink sets stop, then lets every later write succeed: the final flush writes
    # a (and b again: InfluxDB keeps one point per series and time) and calls both, in order.
    asyncio.run(_with_sink(_cfg(2), writer, body))
    assert durable == ["a", "b"]
    assert writer.stored[-4:] == ["a1", "a2", "b1", "b2"]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.lists(st.integers(1, 5), min_size=1, max_size=12),
       st.integers(0, 2**32))
def test_callbacks_in_put_order_only_after_every_earlier_line_is_stored(
    in_flight: int, sizes: list[int], seed: int,
) -> None:
    """Writes finish in random order, some fail and are retried: each message is called
    once, in put order, and only when its lines and all earlier ones are stored."""
    rnd = random.Random(seed)
    writer = GatedWriter()
    durable: list[int] = []
    expected_lines: list[list[str]] = []
    violations: list[str] = []

    def on_durable(k: int) -> None:
        needed = [ln for lines in expected_lines[:k + 1] for ln in lines]
        if not set(needed) <= set(writer.stored):
            violations.append(f"message {k} called before its lines or earlier ones stored")
        durable.append(k)

    async def body(sink: Sink) -> None:
        for k, n in enumerate(sizes):
            lines = [f"m{k}-{j}" for j in range(n)]
            expected_lines.append(lines)
            await sink.put(lines, lambda k=k: on_durable(k))
        sink.flush_soon()
        async with asyncio.timeout(20):
            while len(durable) < len(sizes):
                await asyncio.sleep(0.002)
                if writer.pending:
                    i = rnd.randrange(len(writer.pending))
                    if not writer.pending[i][1].done():
                        writer.finish(i, ok=rnd.random() > 0.3)

    asyncio.run(_with_sink(_cfg(in_flight, batch_lines=3), writer, body))
    assert violations == []
    assert durable == list(range(len(sizes)))
    assert writer.most_in_flight <= in_flight


class PartialWriter:
    """Like InfluxDB 1.x: stores every line without "bad", answers a batch holding bad lines
    with WriteRejected("partial write: ... dropped=N"); ``down`` makes writes unavailable."""

    def __init__(self) -> None:
        self.stored: set[str] = set()
        self.writes = 0
        self.down = False

    async def write(self, lines: list[str]) -> None:
        self.writes += 1
        if self.down:
            raise WriteUnavailable("test: down")
        bad = [ln for ln in lines if "bad" in ln]
        self.stored.update(ln for ln in lines if "bad" not in ln)
        if bad:
            raise WriteRejected(f"HTTP 400: partial write: field type conflict dropped={len(bad)}")

    async def close(self) -> None:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=300))
def test_refused_lines_are_singled_out_and_the_rest_written(bad: list[bool]) -> None:
    lines = [f"{'bad' if b else 'ok'}-{i}" for i, b in enumerate(bad)]
    writer = PartialWriter()
    refused: list[tuple[list[str], str]] = []
    sink = Sink(_cfg(1, batch_lines=500), writer, random.Random(1),
                on_rejected=lambda group, why: refused.append((group, why)))
    assert asyncio.run(sink._attempt(lines))
    expect_bad = [ln for ln in lines if ln.startswith("bad")]
    handed = sorted(ln for g, _ in refused for ln in g)
    assert writer.stored == {ln for ln in lines if ln.startswith("ok")}
    assert all("dropped=" in why for _, why in refused)
    assert sink.rejected_lines == len(handed) and sink.written + len(handed) == len(lines)
    if len(expect_bad) <= 8:  # within MAX_ISOLATION_WRITES: exactly the refused lines
        assert handed == sorted(expect_bad)
    else:  # beyond it the undecided rest is handed over too (dead-lettered, replayable)
        assert set(expect_bad) <= set(handed)


def test_influxdb_going_away_while_isolating_retries_the_whole_batch() -> None:
    writer = PartialWriter()
    lines = ["ok-1", "bad-2", "ok-3", "ok-4"]
    sink = Sink(_cfg(1), writer, random.Random(1), on_rejected=lambda g, w: None)
    real = writer.write

    async def fail_second(ls: list[str]) -> None:
        if writer.writes == 1:
            writer.down = True
        await real(ls)

    writer.write = fail_second  # type: ignore[method-assign]  # a fault between two writes
    assert not asyncio.run(sink._attempt(lines))
    assert sink.written == 0 and sink.rejected_lines == 0 and sink.retries == 1
    writer.down = False
    writer.write = real  # type: ignore[method-assign]
    assert asyncio.run(sink._attempt(lines))
    assert sink.written == 3 and sink.rejected_lines == 1
