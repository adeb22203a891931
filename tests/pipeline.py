"""Running real agents and collectors in a test's event loop, and waiting on what they do.

Their configs come from :mod:`lab.fleet`, ``xanet`` as a child process from
:mod:`lab.programs`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiomqtt

from agent.app import Agent
from agent.config import AgentConfig
from collector.app import Collector
from collector.config import CollectorConfig

ROOT = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def running(*programs: Agent | Collector) -> AsyncIterator[None]:
    """Run agents/collectors in this loop; on exit stop them (by their stop events) one by
    one in reverse order, so ``running(collector, agent)`` lets the agent say goodbye to a
    collector that is still listening."""
    stops = [asyncio.Event() for _ in programs]
    tasks = [asyncio.create_task(p.run(s)) for p, s in zip(programs, stops, strict=True)]
    try:
        yield
    finally:
        errors: list[BaseException] = []
        for stop, task in reversed(list(zip(stops, tasks, strict=True))):
            stop.set()
            try:
                await asyncio.wait_for(task, 30)
            except Exception as exc:  # every program must be stopped before raising
                errors.append(exc)
        if errors:
            raise errors[0]


class Live(Protocol):
    """Publishes what its sites say, forever (the test changes what they say)."""

    async def live(self) -> None: ...


L = TypeVar("L", bound=Live)


@contextlib.asynccontextmanager
async def publishing(port: int, make: Callable[[aiomqtt.Client], L]) -> AsyncIterator[L]:
    """``make(client)``'s ``live()`` publishing to the broker on ``port`` while inside."""
    async with aiomqtt.Client("127.0.0.1", port) as client:
        sites = make(client)
        task = asyncio.create_task(sites.live())
        try:
            yield sites
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def start_agent(cfg: dict[str, Any]) -> Agent:
    return Agent(AgentConfig.model_validate(cfg))


def start_collector(cfg: dict[str, Any]) -> Collector:
    return Collector(CollectorConfig.model_validate(cfg))


async def wait_for(check: Callable[[], Any], timeout_s: float, what: str,
                   interval_s: float = 0.25) -> Any:
    """Poll ``check`` (sync; may be blocking I/O, run in a thread) until it is truthy."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def rows(influx: Any, q: str, db: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = influx.query(q, db=db)
    return result


def by(rows_: Iterable[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r.get(k) for k in keys): r for r in rows_}
