"""Every failed poll says why (issue 13): the agent's DevicePoll against real devices.

Real net-snmp snmpd (v2c and SNMPv3 users), both SNMP paths (lean and pysnmp), the
lying responder of tests/test_ber_lying_agent.py, the ICMP witness to 127.0.0.1 (raw
sockets as root, datagram sockets where ``ping_group_range`` allows). Name look-ups
are answered by a replaced ``getaddrinfo`` - no real DNS query is ever sent.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import lab
from agent.app import Agent
from agent.config import AgentConfig, DeviceConfig
from agent.snmp import SnmpPoller, ber
from lab import Snmpd
from tests.test_ber_lying_agent import _Liar, _serve

pytestmark = pytest.mark.integration

ENV = {"T_COMMUNITY": "", "T_BAD_COMMUNITY": "not-the-community", "T_AUTH": "",
       "T_PRIV": "", "T_BAD_AUTH": "wrong-auth-key-1", "T_BAD_PRIV": "wrong-priv-key-1",
       "T_SHORT": "short"}
SITE = "hub-1"


def config(tmp_path: Path, devices: list[dict[str, Any]], **sections: Any) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"id": "agent-cause", "province": "tq", "commune": "02230", "site": SITE},
        # Never connected: these tests poll devices one at a time, the uplink does not run.
        "mqtt": {"host": "127.0.0.1", "port": lab.free_tcp_port()},
        "polling": {"timeout_s": 0.5, "retries": 0},
        "icmp": {"count": 1, "timeout_s": 2.0},  # a loaded CI machine: pysnmp holds the loop
        "spool": {"path": str(tmp_path / "spool.sqlite3"), "fsync": "off"},
        "devices": devices,
        **sections,
    })


def v3(user: str, auth: str = "T_AUTH", priv: str | None = "T_PRIV",
       **kw: Any) -> dict[str, Any]:
    creds: dict[str, Any] = {"version": "3", "user": user, "auth_key": {"env": auth}, **kw}
    creds["priv_key"] = {"env": priv} if priv else None
    if not priv:
        creds["priv_protocol"] = None
    return creds


@pytest.fixture
def env(snmpd: Snmpd, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**ENV, "T_COMMUNITY": snmpd.community, "T_AUTH": snmpd.v3_auth_key,
                        "T_PRIV": snmpd.v3_priv_key}.items():
        monkeypatch.setenv(name, value)


async def poll_all(agent: Agent) -> dict[str, Any]:
    polls = await asyncio.gather(*(agent.poll_device(d) for d in agent.cfg.devices))
    return {p.device: p for p in polls}


@pytest.fixture
async def closing() -> AsyncIterator[list[Agent]]:
    agents: list[Agent] = []
    yield agents
    for agent in agents:
        agent.poller.close()
        agent.spool.close()


@pytest.mark.parametrize("backend", ["lean", "pysnmp"])
async def test_snmpd_refusals_have_their_cause(
    backend: str, tmp_path: Path, snmpd: Snmpd, env: None, closing: list[Agent]
) -> None:
    user, port = snmpd.v3_user, snmpd.port
    devices = [
        {"id": "good-v3", "snmp": v3(user)},
        {"id": "wrong-auth", "snmp": v3(user, auth="T_BAD_AUTH")},
        {"id": "wrong-priv", "snmp": v3(user, priv="T_BAD_PRIV")},
        {"id": "unknown-user", "snmp": v3("nobody")},
        {"id": "authnopriv-for-priv-user", "snmp": v3(user, priv=None)},
        {"id": "wrong-community",
         "snmp": {"version": "2c", "community": {"env": "T_BAD_COMMUNITY"}}},
        {"id": "short-key", "snmp": v3(user, auth="T_SHORT")},
    ]
    cfg = config(tmp_path, [{"host": "127.0.0.1", "port": port, **d} for d in devices])
    agent = Agent(cfg, poller=SnmpPoller(v2c_backend=backend,  # type: ignore[arg-type]
                                         v3_backend=backend))  # type: ignore[arg-type]
    closing.append(agent)
    polls = await poll_all(agent)

    good = polls["good-v3"]
    assert good.reachable and good.cause is None and good.interfaces
    expected = {
        "wrong-auth": "auth",          # usmStatsWrongDigests report
        "unknown-user": "auth",        # usmStatsUnknownUserNames report
        "authnopriv-for-priv-user": "access",  # error-status authorizationError
        "wrong-priv": "timeout",       # net-snmp drops what it cannot decrypt: silence
        "wrong-community": "timeout",  # snmpd is silent to a wrong community
        "short-key": "config",         # our own key is unusable (< 8 characters)
    }
    assert {d: polls[d].cause for d in expected} == expected
    for device in expected:
        poll = polls[device]
        assert not poll.reachable and not poll.interfaces
        assert poll.error and device in poll.error
        if device != "short-key":
            # The second witness: the host answers ICMP, so silence is not an outage.
            assert poll.ping is not None and poll.ping.received == poll.ping.sent == 1
    assert polls["short-key"].ping is not None  # a config fault still pings
    assert good.ping is not None and good.ping.received == 1 and good.ping.rtt_ms is not None
    # auth, auth, access, config: four monitoring errors; the two timeouts are not.
    assert agent.health.monitoring_errors == 4
    health = agent.status("online").health
    assert health is not None and health.monitoring_errors == 4

    # Fixed on the device side (here: the right key) -> the device leaves the count.
    agent.plans["hub-1/wrong-auth"] = agent.plans["hub-1/good-v3"]
    again = await agent.poll_device(cfg.devices[1])
    assert again.reachable and agent.health.monitoring_errors == 3


async def test_a_name_is_resolved_once_per_poll_for_both_witnesses(
    tmp_path: Path, snmpd: Snmpd, env: None, closing: list[Agent],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked_up: list[str] = []

    async def resolver(host: str, *_args: object, **_kwargs: object) -> list[Any]:
        looked_up.append(host)
        if host == "rtr.hub-1.example":  # the system's resolver is never asked
            return [(socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("127.0.0.1", 0))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)
    snmp = {"version": "2c", "community": {"env": "T_COMMUNITY"}}
    cfg = config(tmp_path, [
        {"id": "named", "host": "rtr.hub-1.example", "port": snmpd.port, "snmp": snmp},
        {"id": "nowhere", "host": "gone.hub-1.example", "port": snmpd.port, "snmp": snmp},
        {"id": "cpe-named", "host": "gone.hub-1.example", "snmp": False},
    ])
    agent = Agent(cfg)
    closing.append(agent)
    polls = await poll_all(agent)
    assert polls["named"].reachable and polls["named"].ping is not None
    assert polls["named"].ping.received == 1
    for device in ("nowhere", "cpe-named"):
        assert polls[device].cause == "resolve" and not polls[device].reachable
        assert polls[device].ping is None  # nothing sent to a name that does not resolve
        assert "gone.hub-1.example" in (polls[device].error or "")
    assert sorted(looked_up) == sorted(["rtr.hub-1.example", "gone.hub-1.example",
                                        "gone.hub-1.example"])  # one look-up per poll
    await agent.poll_device(cfg.devices[0])
    assert looked_up.count("rtr.hub-1.example") == 2  # and again at the next poll
    assert agent.health.monitoring_errors == 2


def _malformed(message: ber.Message, wire: bytes) -> list[bytes]:
    return [wire[:-3]]


def _no_access(message: ber.Message, wire: bytes) -> list[bytes]:
    return [ber.encode_message(replace(message, error_status=6, error_index=1))]


@pytest.mark.parametrize("backend", ["lean", "pysnmp"])
async def test_lying_answers_are_protocol_or_access(
    backend: str, tmp_path: Path, closing: list[Agent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_COMMUNITY", "public")
    servers = [await _serve(_Liar(spoil)) for spoil in (_malformed, _no_access, None)]
    try:
        cfg = config(tmp_path, [
            {"id": name, "host": "127.0.0.1", "port": port,
             "snmp": {"version": "2c", "community": {"env": "T_COMMUNITY"}}}
            for name, (_, port) in zip(("malformed", "no-access", "honest"), servers,
                                       strict=True)
        ], icmp={"enabled": False})
        agent = Agent(cfg, poller=SnmpPoller(v2c_backend=backend))  # type: ignore[arg-type]
        closing.append(agent)
        polls = await poll_all(agent)
    finally:
        for transport, _ in servers:
            transport.close()
    if backend == "lean":
        assert polls["malformed"].cause == "protocol"
        assert "malformed response" in (polls["malformed"].error or "")
    else:  # pysnmp drops a datagram it cannot parse: silence (docs/snmp.md, "Causes")
        assert polls["malformed"].cause == "timeout"
    assert polls["no-access"].cause == "access"
    assert polls["honest"].reachable and len(polls["honest"].interfaces) == 2
    assert all(p.ping is None for p in polls.values())  # [icmp] enabled = false


async def test_ping_only_device(tmp_path: Path, closing: list[Agent]) -> None:
    cfg = config(tmp_path, [
        {"id": "ont-1", "host": "127.0.0.1", "snmp": False, "icmp": True},
        {"id": "ont-2", "host": "::1", "snmp": False, "icmp": True},
    ], icmp={"enabled": False, "count": 2, "interval_s": 0.05})  # on per device
    agent = Agent(cfg)
    closing.append(agent)
    polls = await poll_all(agent)
    for poll in polls.values():
        assert poll.reachable and poll.cause is None and poll.interfaces == []
        assert poll.ping is not None and poll.ping.sent == 2 and poll.ping.received == 2
        assert poll.rtt_ms == poll.ping.rtt_ms and poll.uptime_cs is None
    assert agent.health.monitoring_errors == 0


def test_a_ping_only_device_needs_icmp() -> None:
    with pytest.raises(ValueError, match=r"devices\[0\]: a ping-only device"):
        AgentConfig.model_validate({
            "agent": {"id": "a", "province": "tq", "commune": "02230", "site": SITE},
            "devices": [{"id": "ont-1", "host": "127.0.0.1", "snmp": False, "icmp": False}],
        })
    dev = DeviceConfig.model_validate({"id": "x", "host": "127.0.0.1", "snmp": False})
    assert dev.snmp is False
