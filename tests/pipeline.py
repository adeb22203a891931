"""Building and running real agents and collectors for integration tests and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from agent.app import Agent
from agent.config import AgentConfig
from collector.app import Collector
from collector.config import CollectorConfig
from tests.factories import toml_value

ROOT = Path(__file__).resolve().parent.parent


def agent_config(
    *,
    agent_id: str,
    site: str,
    commune: str,
    province: str,
    mqtt_port: int,
    devices: list[dict[str, Any]],
    spool_path: Path,
    interval_s: float = 2.0,
    snmp: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "agent": {"id": agent_id, "province": province, "commune": commune, "site": site,
                  "status_interval_s": 5},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive_s": 5,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 2},
        "polling": {"interval_s": interval_s, "timeout_s": 1.0, "retries": 0, "jitter": 0.2},
        "spool": {"path": str(spool_path), "fsync": "batch", "replay_rate_per_s": 200},
        # The simulated fleets here live on 127.0.0.1 and are "cut off" by stopping their
        # SNMP simulator; the host itself keeps answering ICMP, which would (rightly) make
        # such a cut a monitoring fault (snmp_silent), not downtime. Without the ICMP
        # witness an SNMP timeout is `down`, as the tests of the cut expect. The witness
        # itself is tested with real cuts in network namespaces (tests/test_ping_netns.py,
        # tests/test_field_truth.py); pass icmp={"enabled": True} to use it.
        "icmp": {"enabled": False},
        "devices": devices,
    }
    if snmp:
        cfg["snmp"] = snmp
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    return cfg


def collector_config(
    *,
    mqtt_port: int,
    influx_url: str,
    dead_letter_dir: Path,
    collector_id: str = "test",
    database: str = "xanet",
    **sections: dict[str, Any],
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "collector": {"id": collector_id, "stats_interval_s": 1},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "reconnect_min_s": 0.2,
                 "reconnect_max_s": 2},
        "influx": {"api": "v1", "url": influx_url, "database": database,
                   "flush_interval_s": 0.2, "retry_min_s": 0.1, "retry_max_s": 1},
        "ingest": {"dead_letter_dir": str(dead_letter_dir)},
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    return cfg


def to_toml(data: dict[str, Any]) -> str:
    """A tiny TOML writer for the shapes above (tables, arrays of tables, inline tables)."""
    out: list[str] = []
    for section, body in data.items():
        if isinstance(body, list):
            for item in body:
                out.append(f"[[{section}]]")
                out.extend(f"{k} = {toml_value(v)}" for k, v in item.items())
        else:
            out.append(f"[{section}]")
            out.extend(f"{k} = {toml_value(v)}" for k, v in body.items())
        out.append("")
    text = "\n".join(out)
    tomllib.loads(text)  # fail here, not in the program, if the writer is wrong
    return text


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


class Subprogram:
    """``xanet agent|collector --config FILE`` as a real child process (for SIGKILL tests)."""

    def __init__(self, kind: str, config_path: Path, env: dict[str, str] | None = None,
                 log_path: Path | None = None, log_level: str = "info") -> None:
        self.kind = kind
        self.log_level = log_level  # debug makes paho log every packet: slow under load
        self.config_path = config_path
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path or config_path.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Subprogram:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xanet.cli", "--log-level", self.log_level, self.kind,
             "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
        )
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode if self.proc else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def rows(influx: Any, q: str, db: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = influx.query(q, db=db)
    return result


def by(rows_: Iterable[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r.get(k) for k in keys): r for r in rows_}
