"""The uplink against a real Mosquitto that stops answering: a publish without PUBACK past
``mqtt.publish_timeout_s`` forces a reconnect, and nothing is lost once the broker is back."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.app import Agent
from agent.config import AgentConfig
from agent.snmp import RawInterface, RawPoll, SnmpTarget
from tests import services
from tests.pipeline import agent_config, running, wait_for


class InstantPoller:
    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, target: SnmpTarget) -> RawPoll:
        self.polls += 1
        return RawPoll(
            device=target.device, sys_uptime_cs=100 * self.polls, rtt_s=0.001,
            interfaces=(RawInterface(index=1, name="ge-0/0/0", descr=None, oper_status=1,
                                     admin_status=1, speed_bps=10**9, in_octets=self.polls,
                                     out_octets=self.polls, hc=True, discontinuity_cs=None),))

    def close(self) -> None:
        pass


async def test_publish_without_puback_forces_a_reconnect_and_loses_nothing(
        tmp_path: Path, make_mosquitto: Callable[..., services.Mosquitto],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("T_COMMUNITY", "unused")
    broker = make_mosquitto()
    cfg = agent_config(
        agent_id="agent-puback", site="hub-1", commune="02230", province="tq",
        mqtt_port=broker.port, spool_path=tmp_path / "spool.sqlite3", interval_s=1.0,
        devices=[{"id": f"olt-{i}", "host": "192.0.2.1"} for i in range(2)],
        snmp={"version": "2c", "community": {"env": "T_COMMUNITY"}},
        mqtt={"publish_timeout_s": 1.0, "keepalive_s": 60},  # the timeout, not keepalive, acts
        icmp={"enabled": False},  # 192.0.2.1 is never sent anything: the poller is a fake
    )
    poller = InstantPoller()
    agent = Agent(AgentConfig.model_validate(cfg), poller=poller)
    pid = broker.pid
    assert pid is not None
    caplog.set_level(logging.WARNING, logger="xanet.agent.uplink")
    async with running(agent):
        await wait_for(lambda: agent.uplink.published >= 4, 30, "first deliveries")
        os.kill(pid, signal.SIGSTOP)  # the broker stops answering; its socket stays open
        try:
            await wait_for(lambda: any(r.name == "xanet.agent.uplink" and "retry in" in
                                       r.getMessage() for r in caplog.records), 30,
                           "the uplink giving up on an unacknowledged publish")
        finally:
            os.kill(pid, signal.SIGCONT)
        polled = poller.polls
        await wait_for(lambda: agent.uplink.connected.is_set() and agent.uplink.published
                       >= polled and agent.spool.depth == 0, 60, "everything delivered")
        assert agent.spool.dropped == 0
