"""The ICMP witness where reachability is really cut: the agent's poll in network
namespaces (lab/netns.py). The agent runs in namespace "site", snmpd in "dev", joined
by a veth pair; nftables in "dev" filters SNMP only, or everything.

Every packet is sent from inside the namespaces this test created.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.app import Agent
from agent.config import AgentConfig
from lab import free_tcp_port
from lab.netns import Lab, Netns, NetnsSnmpd, lab_skip_reason
from xanet import wire

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(lab_skip_reason() is not None, reason=lab_skip_reason() or ""),
]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


def poll_from(site: Netns, tmp_path: Path, dev_ip: str) -> dict[str, wire.DevicePoll]:
    """Poll the router (SNMP + ping) and a ping-only ONT at ``dev_ip``, from ``site``."""
    cfg = AgentConfig.model_validate({
        "agent": {"id": "agent-ns", "province": "tq", "commune": "02230", "site": "hub-1"},
        "mqtt": {"host": "127.0.0.1", "port": free_tcp_port()},  # not connected
        "polling": {"timeout_s": 0.5, "retries": 0},
        "icmp": {"count": 2, "interval_s": 0.05, "timeout_s": 0.4},
        "spool": {"path": str(tmp_path / "spool.sqlite3"), "fsync": "off"},
        "snmp": {"version": "2c", "community": {"env": "T_NS_COMMUNITY"}},
        "devices": [{"id": "rtr", "host": dev_ip}, {"id": "ont", "host": dev_ip, "snmp": False}],
    })

    async def scenario() -> dict[str, wire.DevicePoll]:
        agent = Agent(cfg)
        try:
            polls = await asyncio.gather(*(agent.poll_device(d) for d in cfg.devices))
        finally:
            agent.poller.close()
            agent.spool.close()
        return {p.device: p for p in polls}

    return site.call(lambda: asyncio.run(scenario()))


def test_filtered_snmp_and_unreachable_host(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, dev = lab.netns("site"), lab.netns("dev")
    _, dev_ip = lab.link(site, dev)
    snmpd = NetnsSnmpd(tmp_path / "snmpd", dev, dev_ip).start()
    monkeypatch.setenv("T_NS_COMMUNITY", snmpd.community)
    try:
        up = poll_from(site, tmp_path / "up", dev_ip)
        assert up["rtr"].reachable and up["rtr"].interfaces
        ping = up["rtr"].ping
        assert ping is not None and (ping.sent, ping.received) == (2, 2)
        assert ping.rtt_ms is not None and ping.rtt_ms > 0
        assert up["ont"].reachable and up["ont"].ping is not None

        dev.drop(proto="udp", dport=161)  # SNMP filtered; the host still answers ping
        filtered = poll_from(site, tmp_path / "filtered", dev_ip)
        rtr = filtered["rtr"]
        assert not rtr.reachable and rtr.cause == "timeout"
        assert rtr.ping is not None and rtr.ping.received == rtr.ping.sent == 2
        assert filtered["ont"].reachable  # the ONT is ping-only: still up

        dev.undrop()
        dev.drop()  # everything: the host is really unreachable
        cut = poll_from(site, tmp_path / "cut", dev_ip)
        for device in ("rtr", "ont"):
            poll = cut[device]
            assert not poll.reachable and poll.cause == "timeout"
            assert poll.ping is not None and poll.ping.sent == 2 and poll.ping.received == 0
            assert poll.ping.rtt_ms is None
    finally:
        snmpd.stop()


NO_ICMP_AGENT = """
import asyncio, json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
from agent.app import Agent
from agent.config import AgentConfig
cfg = AgentConfig.model_validate({
    "agent": {"id": "agent-noicmp", "province": "tq", "commune": "02230", "site": "hub-1"},
    "mqtt": {"host": "127.0.0.1", "port": 9},
    "polling": {"timeout_s": 0.3, "retries": 0},
    "spool": {"path": sys.argv[1], "fsync": "off"},
    "snmp": {"version": "2c", "community": {"env": "T_NS_COMMUNITY"}},
    "devices": [{"id": "ont", "host": "127.0.0.1", "snmp": False},
                {"id": "rtr", "host": "127.0.0.1", "port": 9}],
})
async def main():
    agent = Agent(cfg)
    rounds = []
    for _ in range(2):
        polls = await asyncio.gather(*(agent.poll_device(d) for d in cfg.devices))
        rounds.append({p.device: p.model_dump(mode="json", exclude_none=True) for p in polls})
    agent.poller.close()
    agent.spool.close()
    print(json.dumps(rounds))
asyncio.run(main())
"""


def test_no_icmp_permission_is_reported_once_and_polling_goes_on(
    lab: Lab, tmp_path: Path
) -> None:
    # A namespace whose ping_group_range admits no group (no datagram ICMP) and an agent
    # process without CAP_NET_RAW (no raw sockets): ICMP is impossible.
    ns = lab.netns("noicmp")
    ns.run(["sysctl", "-q", "-w", "net.ipv4.ping_group_range=1 0"])
    out = ns.run(["setpriv", "--bounding-set=-net_raw", sys.executable, "-c", NO_ICMP_AGENT,
                  str(tmp_path / "spool.sqlite3")],
                 env={**os.environ, "PYTHONPATH": str(ROOT), "T_NS_COMMUNITY": "public"})
    rounds = json.loads(out.stdout)
    for polls in rounds:
        assert "ping" not in polls["rtr"] and polls["rtr"]["cause"] == "timeout"
        ont = polls["ont"]
        assert not ont["reachable"] and ont["cause"] == "config" and "ping" not in ont
    errors = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, out.stderr  # once, not per poll or per device
    assert "ICMP echo unavailable" in errors[0]
    assert "ping_group_range" in errors[0] and "CAP_NET_RAW" in errors[0]
    # The ping-only device's state change is logged once too, with its device and site.
    assert sum("device ont (site hub-1): monitoring error, cause config" in line
               for line in out.stderr.splitlines()) == 1
