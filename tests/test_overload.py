"""An agent whose polls need more CPU than there is: polls are throttled and skipped (counted),
and the uplink keeps delivering to a real Mosquitto meanwhile.

The poller is a fake that burns CPU the way a pure-Python SNMP stack does (a few chunks per
poll, one per answer); nothing here asserts a duration or a rate.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lab
from agent.app import Agent
from agent.config import AgentConfig
from agent.snmp import RawInterface, RawPoll, SnmpTarget
from lab.fleet import agent_config
from tests.pipeline import running, wait_for
from xanet import wire

PROVINCE, COMMUNE, SITE = "tq", "02230", "central-poller"


def burn(cpu_s: float) -> None:
    end = time.thread_time() + cpu_s
    while time.thread_time() < end:
        pass


class CpuHeavyPoller:
    """Answers every poll after ``chunks`` loop iterations, each burning ``cpu_s / chunks``."""

    def __init__(self, cpu_s: float, chunks: int = 3) -> None:
        self.chunk_s = cpu_s / chunks
        self.chunks = chunks
        self.polls = 0

    async def poll(self, target: SnmpTarget) -> RawPoll:
        for _ in range(self.chunks):
            await asyncio.sleep(0)  # a request goes out, its answer comes back later
            burn(self.chunk_s)
        self.polls += 1
        octets = self.polls * 1000
        return RawPoll(
            device=target.device, sys_uptime_cs=100 * self.polls, rtt_s=0.001,
            interfaces=(RawInterface(index=1, name="ge-0/0/0", descr=None, oper_status=1,
                                     admin_status=1, speed_bps=10**9, in_octets=octets,
                                     out_octets=octets, hc=True, discontinuity_cs=None),))

    def close(self) -> None:
        pass


def messages(path: Path) -> tuple[list[wire.Telemetry], list[wire.Status]]:
    telemetry, statuses = [], []
    for line in path.read_bytes().splitlines():
        topic, _, payload = line.partition(b" ")
        kind = "telemetry" if topic.endswith(b"/telemetry") else "status"
        msg = wire.decode(payload, kind)
        if isinstance(msg, wire.Telemetry):
            telemetry.append(msg)
        else:
            statuses.append(msg)
    return telemetry, statuses


@pytest.fixture
def received(tmp_path: Path, mosquitto: lab.Mosquitto) -> Iterator[Path]:
    """What the broker delivers under the test's province, one ``topic payload`` a line. The
    subscriber runs in its own process: the test's event loop is the overloaded one."""
    path = tmp_path / "received.txt"
    with path.open("wb") as out:
        sub = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-q", "1", "-v",
             "-t", f"xanet/v1/{PROVINCE}/#"], stdout=out, stderr=subprocess.DEVNULL)
        try:
            yield path
        finally:
            sub.terminate()
            sub.wait(10)


async def test_overloaded_agent_sheds_polls_and_keeps_delivering(
        tmp_path: Path, mosquitto: lab.Mosquitto, received: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("T_COMMUNITY", "unused")
    caplog.set_level(logging.INFO, logger="xanet.agent")
    devices: list[dict[str, Any]] = [{"id": f"bts-{i:03d}", "host": "192.0.2.1"}
                                     for i in range(60)]
    cfg = agent_config(
        agent_id="agent-overload", site=SITE, commune=COMMUNE, province=PROVINCE,
        mqtt_port=mosquitto.port, spool_path=tmp_path / "spool.sqlite3", interval_s=1.0,
        devices=devices, snmp={"version": "2c", "community": {"env": "T_COMMUNITY"}},
        polling={"jitter": 1.0, "max_concurrent": 64, "max_loop_lag_s": 0.05},
        spool={"fsync": "off"},
        icmp={"enabled": False},  # 192.0.2.1 is never sent anything: the poller is a fake
    )
    # 60 devices x 30 ms of CPU every second: 1.8 cores' worth, on one event loop.
    agent = Agent(AgentConfig.model_validate(cfg), poller=CpuHeavyPoller(0.03))
    async with running(agent):
        await wait_for(lambda: agent.health.poll_overruns and agent.concurrency.decreases,
                       60, "polls skipped and the admission limit lowered")
        delivered, skipped = agent.uplink.published, agent.health.poll_overruns
        await wait_for(
            lambda: (agent.uplink.published >= delivered + 20
                     and agent.health.poll_overruns > skipped),
            60, "20 more messages delivered while more polls were skipped")
        await wait_for(lambda: b"overloaded: " in received.read_bytes(), 30,
                       "a status reporting the overload")
        assert agent.concurrency.lowest < 64
        assert agent.health.polls_throttled > 0

    telemetry, statuses = messages(received)
    # A device's skips are logged when they start and when they end, not at every skip.
    per_device: dict[str, list[str]] = {}
    for record in caplog.records:
        text = record.getMessage()
        if "poll overran" in text or "polled on time again" in text:
            per_device.setdefault(text.split()[1], []).append(
                "overran" if "poll overran" in text else "on time")
    assert per_device
    for device, events in per_device.items():
        assert events[::2] == ["overran"] * len(events[::2]), (device, events)
        assert events[1::2] == ["on time"] * len(events[1::2]), (device, events)
    assert len(telemetry) >= 20
    assert len({m.seq for m in telemetry}) == len(telemetry)
    overloaded = [s for s in statuses if s.reason and s.reason.startswith("overloaded: ")]
    assert overloaded and all(s.state == "online" and s.health for s in overloaded)
    assert any(s.health.poll_overruns > 0 for s in overloaded if s.health)
