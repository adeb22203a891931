"""One device cannot hurt the agent (issue 14 rows 5 and 6).

The real agent (schedule, rates, wire models, spool) polls, side by side with real
snmpd: a device with 5,000 ifTable rows, one with a 300-character ifDescr, one whose
table never ends, one whose walk never ends with rows that are not rows. Each is
contained to itself - cut, bounded, counted or failed with its cause - and the agent
keeps polling every device on time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

import lab
from agent import snmp
from agent.app import Agent
from agent.config import AgentConfig
from agent.spool import Spool
from lab import Snmpd
from lab.big_agent import MODES, BigMib, serve
from xanet import wire

pytestmark = pytest.mark.integration

SITE = "hub-1"


def config(tmp_path: Path, devices: list[dict[str, Any]], **polling: Any) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"id": "agent-contain", "province": "tq", "commune": "02230", "site": SITE},
        # Nothing listens there: every message stays in the spool, where the test reads it.
        "mqtt": {"host": "127.0.0.1", "port": lab.free_tcp_port(), "reconnect_max_s": 5},
        "polling": {"interval_s": 1.0, "jitter": 0.3, "timeout_s": 0.5, "retries": 0,
                    **polling},
        "icmp": {"enabled": False},
        "spool": {"path": str(tmp_path / "spool.sqlite3"), "fsync": "off"},
        "snmp": {"version": "2c", "community": {"env": "T_COMMUNITY"}},
        "devices": devices,
    })


def spooled(path: Path) -> list[wire.DevicePoll]:
    spool = Spool(path, max_messages=100_000, max_age_s=3600, fsync="off")
    try:
        entries = spool.peek(limit=100_000)
    finally:
        spool.close()
    polls: list[wire.DevicePoll] = []
    parts: dict[tuple[str, object], wire.DevicePoll] = {}
    declared: dict[tuple[str, object], int] = {}
    seen: dict[tuple[str, object], int] = {}
    for entry in entries:
        message = wire.decode(entry.payload, "telemetry")  # what the collector will accept
        assert isinstance(message, wire.Telemetry)
        for poll in message.polls:
            if poll.parts is None:
                polls.append(poll)
                continue
            # a poll too large for one message travels in parts (agent/packing.py): the
            # same device and ts, its interfaces in order: put it back together
            key = (poll.device, poll.ts)
            declared[key] = poll.parts
            seen[key] = seen.get(key, 0) + 1
            whole = parts.get(key)
            if whole is None:
                parts[key] = poll.model_copy(update={"parts": None})
                polls.append(parts[key])
                continue
            joined = whole.model_copy(update={"interfaces": whole.interfaces + poll.interfaces})
            polls[polls.index(whole)] = parts[key] = joined
    assert seen == declared  # every part of every split poll is in the spool
    return polls


async def test_huge_long_and_endless_devices_are_contained(
    tmp_path: Path, snmpd: Snmpd, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("T_COMMUNITY", "public")
    servers = {name: await serve(MODES[name]()) for name in MODES}
    devices: list[dict[str, Any]] = [
        {"id": name, "host": "127.0.0.1", "port": port} for name, (_, port) in servers.items()
    ]
    ids = [d["id"] for d in devices]
    devices[ids.index("endless")]["max_interfaces"] = 1000
    # Its walk is given up after 2 x ceil(100 / 25) + 16 = 24 GETBULKs (344 by default).
    devices[ids.index("endless-nested")]["max_interfaces"] = 100
    devices.append({"id": "good", "host": "127.0.0.1", "port": snmpd.port,
                    "snmp": {"version": "2c", "community": {"env": "T_SNMPD"}}})
    monkeypatch.setenv("T_SNMPD", snmpd.community)
    cfg = config(tmp_path, devices, interval_s=2.0)
    agent = Agent(cfg)
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(agent.run(stop))
    try:
        with caplog.at_level(logging.WARNING, logger="xanet.agent"):
            await asyncio.sleep(6.3)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)  # ends by itself: nothing in it raised
        for transport, _ in servers.values():
            transport.close()
    ran_s = time.monotonic() - started

    polls: dict[str, list[wire.DevicePoll]] = {}
    for poll in spooled(cfg.spool.path):
        polls.setdefault(poll.device, []).append(poll)
    # Every device polled at its slots: none was held up by its neighbours. (Only the
    # huge ones may overrun their own slot on a busy machine: their responder shares
    # this event loop.)
    overran = {r.getMessage().split()[1] for r in caplog.records if "overran" in r.getMessage()}
    assert not overran & {"good", "long-descr", "endless-nested"}, overran
    for device in [*ids, "good"]:
        assert len(polls.get(device, [])) >= int(ran_s / 2.0) - 1 >= 2, (device, polls.keys())

    wide = polls["wide"][-1]  # 5,000 rows: the first 4,096 (the wire's bound) kept
    assert wide.reachable and len(wide.interfaces) == wire.MAX_INTERFACES_PER_POLL
    assert [i.index for i in wide.interfaces] == list(range(1, 4097))
    endless = polls["endless"][-1]  # never ends: cut at the device's own bound
    assert endless.reachable and len(endless.interfaces) == 1000
    long_descr = polls["long-descr"][-1]  # 300 characters: cut to the wire's 256
    assert long_descr.reachable
    assert [len(i.name) for i in long_descr.interfaces] == [4, snmp.MAX_TEXT_CHARS, 4]
    nested = polls["endless-nested"][-1]  # rows that are not rows, for ever: given up
    assert not nested.reachable and nested.cause == "limit"
    assert "did not end after" in (nested.error or "")
    assert polls["good"][-1].reachable and polls["good"][-1].interfaces

    n_wide, n_endless = len(polls["wide"]), len(polls["endless"])
    contained = agent.health.contained
    assert contained[snmp.ROWS_OVER_BOUND] >= n_wide + n_endless
    assert contained[snmp.TEXT_TRUNCATED] >= len(polls["long-descr"])
    assert contained["poll_limit"] == len(polls["endless-nested"])
    assert agent.health.monitoring_errors == 1  # endless-nested, cause limit


async def test_walk_byte_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_COMMUNITY", "public")
    transport, port = await serve(BigMib(rows=5000, descr=lambda i: f"{i:0200d}"))
    try:
        cfg = config(tmp_path, [{"id": "fat", "host": "127.0.0.1", "port": port}],
                     max_walk_bytes=64 * 1024)
        agent = Agent(cfg)
        poll = await agent.poll_device(cfg.devices[0])
        agent.poller.close()
        agent.spool.close()
    finally:
        transport.close()
    assert not poll.reachable and poll.cause == "limit"
    assert "holds more than 65536 bytes" in (poll.error or "")


async def test_an_unexpected_exception_is_this_devices_protocol_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug or a value nothing bounded: a RawPoll the wire refuses (index 0 is no ifIndex).
    monkeypatch.setenv("T_COMMUNITY", "public")

    class Broken:
        async def poll(self, target: snmp.SnmpTarget) -> snmp.RawPoll:
            bad = snmp.RawInterface(index=0, name="x", descr=None, oper_status=1,
                                    admin_status=1, speed_bps=None, in_octets=1, out_octets=1,
                                    hc=True, discontinuity_cs=None)
            return snmp.RawPoll(device=target.device, sys_uptime_cs=1, interfaces=(bad,),
                                rtt_s=0.001)

        def close(self) -> None:
            pass

    cfg = config(tmp_path, [{"id": "odd", "host": "127.0.0.1"}])
    agent = Agent(cfg, poller=Broken())
    with caplog.at_level(logging.WARNING, logger="xanet.agent"):
        polls = [await agent.poll_device(cfg.devices[0]) for _ in range(3)]
    agent.spool.close()
    for poll in polls:
        assert not poll.reachable and poll.cause == "protocol"
        assert "ValidationError" in (poll.error or "")
    assert agent.health.contained["poll_exception"] == 3
    traced = [r for r in caplog.records if r.exc_info]
    assert len(traced) == 1 and "device odd (site hub-1)" in traced[0].getMessage()


async def test_a_failing_ping_leaves_the_poll_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_COMMUNITY", "public")

    class Exploding:  # an ICMP library surprise, not a PingError
        async def ping(self, address: str) -> wire.PingResult | None:
            raise RuntimeError("icmp library surprise")

    transport, port = await serve(BigMib(rows=3))
    try:
        cfg = config(tmp_path, [{"id": "rtr", "host": "127.0.0.1", "port": port,
                                 "icmp": True}])
        agent = Agent(cfg, pinger=Exploding())
        poll = await agent.poll_device(cfg.devices[0])
        agent.poller.close()
        agent.spool.close()
    finally:
        transport.close()
    assert poll.reachable and len(poll.interfaces) == 3 and poll.ping is None
    assert agent.health.contained["ping_exception"] == 1
