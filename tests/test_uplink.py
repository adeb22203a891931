"""The uplink against a real Mosquitto: a publish without PUBACK past
``mqtt.publish_timeout_s`` forces a reconnect, and nothing is lost once the broker is back;
messages fit the broker's Maximum Packet Size (MQTT v5 CONNACK) or are quarantined; a
corrupt spool is set aside and a full disk drops (and counts) polls without stopping the
agent. Refused credentials: tests/test_security.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import lab
from agent import packing
from agent.app import Agent
from agent.config import AgentConfig
from agent.snmp import RawInterface, RawPoll, SnmpTarget
from agent.spool import Spool
from agent.uplink_batches import packet_bytes
from lab.fleet import agent_config
from tests.disks import fill, small_tmpfs
from tests.factories import poll
from tests.pipeline import running, wait_for
from xanet import topics, wire


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
        tmp_path: Path, make_mosquitto: Callable[..., lab.Mosquitto],
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


async def test_mqtt_311_only_by_choice_and_it_says_so(
        tmp_path: Path, mosquitto: lab.Mosquitto, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("T_COMMUNITY", "unused")
    cfg = _config(tmp_path, mosquitto.port, ["olt-1"], mqtt={"protocol": "3.1.1"})
    agent = Agent(cfg, poller=InstantPoller())
    caplog.set_level(logging.WARNING, logger="xanet.agent.uplink")
    async with running(agent):
        await wait_for(lambda: agent.uplink.published >= 2, 20, "deliveries over 3.1.1")
    assert agent.uplink.max_packet_size is None  # 3.1.1 announces none
    [warning] = [r.getMessage() for r in caplog.records if "3.1.1" in r.getMessage()]
    assert "acknowledged like a delivered one" in warning


# -- size, corruption, full disk (issue 14 rows 3, 4, 10, 11) ---------------------------

class WidePoller:
    """Devices named ``huge*`` have ``wide`` interfaces with long names, the others one;
    no poll starts before ``ready`` is set (so the broker's limit is known)."""

    def __init__(self, wide: int, ready: asyncio.Event | None = None) -> None:
        self.wide = wide
        self.ready = ready
        self.polls = 0

    async def poll(self, target: SnmpTarget) -> RawPoll:
        if self.ready is not None:
            await self.ready.wait()
        self.polls += 1
        n = self.wide if target.device.split("/")[-1].startswith("huge") else 1
        return RawPoll(
            device=target.device, sys_uptime_cs=100 * self.polls, rtt_s=0.001,
            interfaces=tuple(
                RawInterface(index=i, name=f"xe-{i}/0/0 " + "uplink to the next commune " * 7,
                             descr=None, oper_status=1, admin_status=1, speed_bps=10**10,
                             in_octets=self.polls * i, out_octets=self.polls, hc=True,
                             discontinuity_cs=None)
                for i in range(1, n + 1)))

    def close(self) -> None:
        pass


def _config(tmp_path: Path, port: int, devices: list[str], spool: Path | None = None,
            **sections: dict[str, Any]) -> AgentConfig:
    return AgentConfig.model_validate(agent_config(
        agent_id="agent-size", site="hub-1", commune="02230", province="tq", mqtt_port=port,
        spool_path=spool or tmp_path / "spool.sqlite3", interval_s=1.0,
        devices=[{"id": d, "host": "192.0.2.1"} for d in devices],
        snmp={"version": "2c", "community": {"env": "T_COMMUNITY"}}, **sections))


async def _collect(client: aiomqtt.Client, into: list[tuple[str, bytes]]) -> None:
    async for m in client.messages:
        assert isinstance(m.payload, bytes)
        into.append((str(m.topic), m.payload))


async def test_messages_fit_the_brokers_limit_and_what_cannot_is_quarantined(
        tmp_path: Path, make_mosquitto: Callable[..., lab.Mosquitto],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker announces max_packet_size 40000 (v5 CONNACK) below the core limit
    (100,000): batches of 100 polls and each 400-interface poll (~100 kB) are cut to fit
    it, every interface arrives once; a message already in the spool that is too large
    for the broker is quarantined (counted, reported, never sent) and delivery goes on."""
    monkeypatch.setenv("T_COMMUNITY", "unused")
    broker = make_mosquitto(extra_conf="max_packet_size 40000")
    cfg = _config(tmp_path, broker.port, ["huge-1", *(f"olt-{i}" for i in range(4))],
                  batch={"max_polls": 100, "max_payload_bytes": 100_000, "linger_s": 0.3})
    topic = topics.build("tq", "02230", "hub-1", "telemetry")
    old = Spool(cfg.spool.path, max_messages=100, max_age_s=3600, fsync="off")
    big = [poll("huge-1", n_if=1000)]  # spooled by an agent configured for a bigger broker
    old.put(topic, lambda seq: wire.encode(wire.Telemetry(agent="agent-size", site="hub-1",
                                                          seq=seq, polls=big)), time.time())
    old.close()
    poller = WidePoller(400)
    agent = Agent(cfg, poller=poller)
    poller.ready = agent.uplink.connected
    got: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(lab.HOST, broker.port, identifier="t-size") as sub:
        await sub.subscribe("xanet/v1/#", qos=1)
        reader = asyncio.create_task(_collect(sub, got))
        async with running(agent):
            await wait_for(lambda: poller.polls >= 15 and agent.spool.depth == 0
                           and agent.uplink.published >= 6, 30, "polls delivered")
            await wait_for(lambda: any(json.loads(p).get("health", {}).get("quarantined")
                                       for t, p in got if t.endswith("/status")), 15,
                           "the status reporting the quarantine")
        reader.cancel()
    tele = [wire.decode(p, "telemetry") for t, p in got if t.endswith("/telemetry")]
    assert all(isinstance(m, wire.Telemetry) for m in tele)
    sizes = [packet_bytes(t, p, v5=True) for t, p in got if t.endswith("/telemetry")]
    assert max(sizes) <= 40000  # every PUBLISH within the broker's limit
    assert 0 not in {m.seq for m in tele}  # the quarantined one never went
    assert agent.spool.quarantined == 1
    reopened = Spool(cfg.spool.path, max_messages=100, max_age_s=3600, fsync="off")
    [(entry, why)] = reopened.quarantined_entries()
    assert reopened.quarantined == 1  # (the outbox holds what the stop flushed)
    reopened.close()
    assert entry.seq == 0 and "maximum packet size 40000" in why
    huge: dict[datetime, list[int]] = defaultdict(list)
    for m in tele:
        assert isinstance(m, wire.Telemetry)
        for p in m.polls:
            if p.device == "huge-1":
                huge[p.ts].extend(i.index for i in p.interfaces)
    assert huge and all(sorted(v) == list(range(1, 401)) for v in huge.values())
    parts = Counter(p.ts for m in tele if isinstance(m, wire.Telemetry) for p in m.polls
                    if p.device == "huge-1")
    assert min(parts.values()) >= 3  # ~100 kB in messages under 40 kB
    statuses = [json.loads(p) for t, p in got if t.endswith("/status")]
    online = [s for s in statuses if s["state"] == "online"
              and s.get("health", {}).get("quarantined") == 1]
    assert online and "quarantined: 1 message(s)" in online[-1]["reason"]
    last = online[-1]
    assert last["instance"] == agent.instance


def test_poll_larger_than_the_core_limit_is_split_by_interfaces() -> None:
    """Pure: the core's limit (batch.max_payload_bytes) cuts a 1,200-interface poll and a
    batch of 10 x 24-port devices into messages under it, losing and repeating nothing."""
    envelope = packing.envelope_bytes("agent-1", "hub-1", "box-1-0011aabb")
    huge = poll("huge", n_if=1200)
    small = [poll(f"d{i}", n_if=24) for i in range(10)]
    for limit in (16_384, 65_536, 262_144):
        groups = packing.pack([huge, *small], limit_bytes=limit, max_polls=100,
                              envelope=envelope)
        for g in groups:
            msg = wire.Telemetry(agent="agent-1", site="hub-1", seq=2**63 - 1,
                                 instance="box-1-0011aabb", polls=[p for p, _ in g])
            assert len(wire.encode(msg)) <= limit
        flat = [p for g in groups for p, _ in g]
        ifaces = [(p.device, i.index) for p in flat for i in p.interfaces]
        assert len(ifaces) == len(set(ifaces)) == 1200 + 240
        assert {p.device for p in flat} == {"huge", *(f"d{i}" for i in range(10))}
        assert all(p.ts == huge.ts for p in flat if p.device == "huge")


async def test_corrupt_spool_is_set_aside_and_numbering_goes_on(
        tmp_path: Path, make_mosquitto: Callable[..., lab.Mosquitto],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A spool overwritten mid-file (a power cut on a lying SD card): the agent sets the
    file aside, says so once in its log and in its status, starts a fresh spool whose
    sequence numbers continue above every number used before, and delivers."""
    monkeypatch.setenv("T_COMMUNITY", "unused")
    broker = make_mosquitto()
    cfg = _config(tmp_path, broker.port, ["olt-1"])
    old = Spool(cfg.spool.path, max_messages=100, max_age_s=3600, fsync="off")
    for _ in range(50):
        old.put("t", lambda seq: b"x" * 2000, time.time())
    used = old.next_seq
    old.close()
    with cfg.spool.path.open("r+b") as f:  # garbage over the middle of the file
        f.seek(cfg.spool.path.stat().st_size // 2)
        f.write(os.urandom(8192))
    poller = InstantPoller()
    agent = Agent(cfg, poller=poller)
    got: list[tuple[str, bytes]] = []
    caplog.set_level(logging.ERROR, logger="xanet.agent.spool")
    async with aiomqtt.Client(lab.HOST, broker.port, identifier="t-corrupt") as sub:
        await sub.subscribe("xanet/v1/#", qos=1)
        reader = asyncio.create_task(_collect(sub, got))
        async with running(agent):
            await wait_for(lambda: agent.uplink.published >= 3, 20, "deliveries")
        reader.cancel()
    aside = _set_aside(tmp_path)
    assert [n for n in aside if not n.endswith("-wal")], aside
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "set aside" in errors[0].getMessage()
    seqs = [m.seq for t, p in got if t.endswith("/telemetry")
            for m in [wire.decode(p, "telemetry")] if isinstance(m, wire.Telemetry)]
    assert seqs and min(seqs) >= used
    statuses = [json.loads(p) for t, p in got if t.endswith("/status")]
    assert any("spool file corrupt" in (s.get("reason") or "") for s in statuses)


def _set_aside(d: Path) -> list[str]:
    return [p.name for p in d.glob("spool.sqlite3.corrupt-*")]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only), unmounted after the test."""
    with small_tmpfs(tmp_path, "1m", "disk") as mnt:
        yield mnt


async def test_full_disk_drops_polls_counted_and_recovers(
        tmp_path: Path, tiny_disk: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The spool's disk fills up (no broker: the spool only grows): polls are counted as
    dropped with the reason, logged once, the agent keeps polling; once space is freed it
    stores again by itself."""
    monkeypatch.setenv("T_COMMUNITY", "unused")
    cfg = _config(tmp_path, lab.free_tcp_port(), [f"olt-{i}" for i in range(4)],
                  spool=tiny_disk / "spool.sqlite3")
    agent = Agent(cfg, poller=WidePoller(4))
    caplog.set_level(logging.INFO, logger="xanet.agent")
    async with running(agent):
        await wait_for(lambda: agent.spool.depth >= 4, 20, "first polls stored")
        filler = fill(tiny_disk)
        await wait_for(lambda: agent.health.polls_dropped >= 8, 30, "polls dropped")
        status = agent.status("online")
        assert status.health is not None and status.health.polls_dropped >= 8
        assert status.reason is not None and "polls dropped" in status.reason
        filler.unlink()
        stored = agent.spool.depth  # (in memory: wait_for checks from a thread)
        await wait_for(lambda: agent.spool.depth >= stored + 4
                       and agent.health.spool_error is None, 30, "storing again")
        dropped = agent.health.polls_dropped
    assert agent.health.polls_dropped == dropped
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("polls are dropped" in m for m in msgs) == 1
    assert sum("stores again" in m for m in msgs) == 1
    assert not any("Traceback" in m for m in msgs)
