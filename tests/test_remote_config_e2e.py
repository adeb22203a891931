"""Configs pushed to agents, signed, end to end (issue 18): the shipped Mosquitto config
(TLS, passwords, the ACL written by ``issue-agent-credentials.sh``, the publisher's
block), ``xanet config publish``, real ``xanet agent`` processes started with a bootstrap
file only, real snmpd, a real collector writing to a real InfluxDB.

What is checked on the wire's far end (InfluxDB): the pushed devices' points, the
``agent_status`` points with ``config_version`` and ``config_refusal``; and in the agent's
log and spool. docs/remote-config.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import lab
from agent.spool import Spool
from lab.fleet import agent_config, collector_config, to_toml
from lab.programs import Subprogram
from tests.pipeline import ROOT, running, start_collector, wait_for
from tests.test_security import (  # the shipped broker config, and the PKI it needs
    COLLECTOR_USER,
    DEPLOY,
    PROVINCE,
    Issued,
    Pki,
    SecureMosquitto,
    add_user,
    init_etc,
    issue,
    pki,  # noqa: F401 (a fixture)
)
from xanet import topics, wire
from xanet.mqtt import MqttConfig, tls_context
from xanet.signedconfig import generate, load_private_key, seal

pytestmark = pytest.mark.integration

PUBLISHER = "xanet-config"
SITE_P1 = ("00700", "pushhub")
SITE_P2 = ("00701", "pushbts")
STATUS_INTERVAL_S = 5.0  # lab.fleet's agents: the smallest the config allows
INTERVAL_S = 1.0


@dataclass
class Site:
    broker: SecureMosquitto
    etc: Path
    pki: Pki
    p1: Issued
    p2: Issued
    collector_password: str
    publisher_toml: Path  # xanet config publish --mqtt
    core_key: Path
    core_pub: Path
    new_key: Path  # the key a rotation moves to
    new_pub: Path
    rogue_key: Path  # a key no agent trusts

    def client(self, name: str, user: str, password: str) -> aiomqtt.Client:
        tls = MqttConfig.model_validate({"host": lab.HOST, "port": self.broker.port,
                                         "tls": True, "ca_file": self.pki.ca.cert})
        return aiomqtt.Client(lab.HOST, self.broker.port, identifier=name, username=user,
                              password=password, tls_context=tls_context(tls),
                              protocol=aiomqtt.ProtocolVersion.V5)


def _keys(out: Path, name: str) -> tuple[Path, Path]:
    private, public = generate()
    key, pub = out / f"{name}.key", out / f"{name}.pub"
    key.write_bytes(private)
    key.chmod(0o600)
    pub.write_bytes(public)
    return key, pub


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Site]:  # noqa: F811
    d = tmp_path_factory.mktemp("push")
    etc = d / "etc"
    init_etc(etc, pki)
    p1 = issue(etc, d / "hg-p1", "hg-p1", *SITE_P1)
    p2 = issue(etc, d / "hg-p2", "hg-p2", *SITE_P2)
    collector_password = os.urandom(12).hex()
    add_user(etc / "passwd", COLLECTOR_USER, collector_password)
    publisher_password = d / "publisher.password"
    publisher_password.write_text(os.urandom(12).hex())
    publisher_password.chmod(0o600)
    add_user(etc / "passwd", PUBLISHER, publisher_password.read_text())
    broker = SecureMosquitto(d / "broker", etc, pki.ca.cert)  # its port chosen already
    publisher_toml = d / "publisher.toml"
    publisher_toml.write_text(to_toml({"mqtt": {
        "host": lab.HOST, "port": broker.port, "tls": True, "ca_file": str(pki.ca.cert),
        "username": PUBLISHER, "password": {"file": str(publisher_password)}}}))
    broker.start()
    keys = d / "keys"
    keys.mkdir()
    try:
        yield Site(broker, etc, pki, p1, p2, collector_password, publisher_toml,
                   *_keys(keys, "core"), *_keys(keys, "new"), _keys(keys, "rogue")[0])
    finally:
        broker.stop()


# -- helpers ------------------------------------------------------------------------------


def device(name: str, snmpd: lab.Snmpd, **extra: Any) -> dict[str, Any]:
    return {"id": name, "host": lab.HOST, "port": snmpd.port, **extra}


def pushed_config(who: Issued, devices: list[dict[str, Any]]) -> str:
    """What the core pushes: identity, a credentials reference, polling, devices."""
    return to_toml({
        "agent": {"id": who.agent, "province": PROVINCE, "commune": who.commune,
                  "site": who.site},
        "polling": {"interval_s": INTERVAL_S, "timeout_s": 1.0, "retries": 0, "jitter": 0.2},
        "icmp": {"enabled": False},
        "snmp": {"version": "2c", "community": {"env": "T_PUSH_COMMUNITY"}},
        "devices": devices,
    })


def bootstrap(s: Site, who: Issued, tmp: Path, keys: list[Path], *,
              port: int | None = None) -> Path:
    """The box's file: identity, broker, credentials, CA, the core's key(s), spool."""
    cfg = agent_config(
        agent_id=who.agent, province=PROVINCE, commune=who.commune, site=who.site,
        mqtt_port=port or s.broker.port, spool_path=tmp / f"{who.agent}.sqlite3", devices=[],
        mqtt={"tls": True, "ca_file": str(who.out / "ca.crt"), "username": who.agent,
              "password": {"file": str(who.out / "mqtt.password")},
              "reconnect_min_s": 0.5, "reconnect_max_s": 1.0})
    for section in ("polling", "icmp", "devices"):  # pushed, not the box's
        del cfg[section]
    cfg["remote_config"] = {"enabled": True, "public_keys": [str(k) for k in keys],
                            "state_dir": str(tmp / f"{who.agent}-state")}
    path = tmp / f"{who.agent}.toml"
    path.write_text(to_toml(cfg))
    return path


def publish(s: Site, who: Issued, text: str, tmp: Path, *,
            key: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``xanet config publish``, the core's command."""
    cfg = tmp / f"push-{time.monotonic_ns()}.toml"
    cfg.write_text(text)
    args = ["config", "publish", "--agent", who.agent, "--config", str(cfg),
            "--key", str(key or s.core_key), "--mqtt", str(s.publisher_toml),
            "--state", str(tmp / "versions")]  # the version: the last published + 1
    return subprocess.run([sys.executable, "-m", "xanet.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


async def publish_raw(s: Site, topic: str, payload: bytes) -> None:
    """What a confused or hostile core might publish (the CLI refuses to)."""
    password = s.publisher_toml.with_suffix(".password").read_text()
    async with s.client(f"t-raw-{time.monotonic_ns()}", PUBLISHER, password) as c:
        await c.publish(topic, payload, qos=1, retain=True)


def collector(s: Site, tmp: Path, influx: lab.InfluxDB1, db: str,
              port: int | None = None) -> Any:
    return start_collector(collector_config(
        mqtt_port=port or s.broker.port, influx_url=influx.url, database=db,
        dead_letter_dir=tmp / "dead", collector_id=db,
        mqtt={"tls": True, "ca_file": str(s.pki.ca.cert), "username": COLLECTOR_USER,
              "password": {"env": "T_PUSH_COLLECTOR_PASSWORD"}}))


def points(influx: lab.InfluxDB1, db: str, agent: str) -> dict[str, list[float]]:
    """Each device's poll times (s), from InfluxDB."""
    out: dict[str, list[float]] = {}
    for row in influx.query(f"SELECT up FROM device WHERE agent = '{agent}' GROUP BY device",
                            db=db, epoch="ms"):
        out.setdefault(row["device"], []).append(row["time"] / 1000)
    return {k: sorted(v) for k, v in out.items()}


def statuses(influx: lab.InfluxDB1, db: str, agent: str) -> list[dict[str, Any]]:
    return influx.query("SELECT config_version, config_refusal, devices, reason FROM "
                        "agent_status "
                        f"WHERE agent = '{agent}' AND online = 1", db=db, epoch="ms")


def consecutive(times: list[float], interval_s: float) -> bool:
    """Every slot polled once: each poll time is its slot (start + phase + k·interval)
    plus a small delay, so the k's of consecutive polls are consecutive integers. A lost
    poll leaves a k out, a doubled one repeats it."""
    ks = [round((t - times[0]) / interval_s) for t in times]
    return len(times) >= 3 and ks == list(range(len(ks)))


def first_polls(influx: lab.InfluxDB1, db: str) -> dict[str, list[float]]:
    """Each device's times of interface points that say ``first_poll`` (no rate yet); the
    database is the test's own."""
    out: dict[str, list[float]] = {}
    for row in influx.query("SELECT rate_note FROM interface WHERE rate_note = 'first_poll' "
                            "GROUP BY device", db=db, epoch="ms"):
        out.setdefault(row["device"], []).append(row["time"] / 1000)
    return out


# -- the broker's side --------------------------------------------------------------------


async def test_each_agent_reads_only_its_own_config_topic(site: Site) -> None:
    """The ACL: the publisher writes configs; an agent receives its own, retained; its
    subscriptions to another agent's config topic and to them all bring nothing else
    (Mosquitto 2.0 grants the SUBACK and filters at delivery); it cannot write a config,
    not even its own."""
    s = site
    ours, theirs = b'{"for": "p1"}', b'{"for": "p2"}'
    await publish_raw(s, topics.config_topic("hg-p1"), ours)
    await publish_raw(s, topics.config_topic("hg-p2"), theirs)
    async with s.client("t-p1", "hg-p1", s.p1.password) as p1:
        codes = [await p1.subscribe(t, qos=1) for t in (
            topics.config_topic("hg-p1"), topics.config_topic("hg-p2"), "xanet/v1/config/#")]
        print(f"MEASURE SUBACK reason codes (own, another agent's, all): {codes}")
        # Mosquitto's acl_file never refuses a subscription (eclipse-mosquitto/mosquitto
        # #2042): a SUBACK 135 would be as good; what matters is that nothing arrives.
        values = [getattr(c[0], "value", c[0]) for c in codes]
        assert values[0] == 1 and all(v in (1, 0x87) for v in values), values
        # The broker sends a subscription's retained messages right after its SUBACK, in
        # order: ours (own), theirs if it were allowed, then ours again (the wildcard).
        got: list[bytes] = []
        async with asyncio.timeout(10):
            async for m in p1.messages:
                assert isinstance(m.payload, bytes)
                got.append(m.payload)
                if got.count(ours) == 2:
                    break
        assert got == [ours, ours], got
        await p1.publish(topics.config_topic("hg-p1"), b"forged", qos=1, retain=True)
    for who, expected in ((s.p1, ours), (s.p2, theirs)):
        async with s.client(f"t-{who.agent}-read", who.agent, who.password) as c:
            await c.subscribe(topics.config_topic(who.agent), qos=1)
            async with asyncio.timeout(10):
                async for m in c.messages:
                    assert m.payload == expected  # the forged publish was not stored
                    break
    acl = (s.etc / "acl").read_text()
    assert "user hg-p1\n" in acl and "topic read xanet/v1/config/hg-p1\n" in acl
    assert f"user {PUBLISHER}\ntopic readwrite xanet/v1/config/#\n" in acl
    assert acl.startswith((DEPLOY / "acl").read_text())


# -- the agent's side ---------------------------------------------------------------------


def _log_has(program: Subprogram, text: str) -> bool:
    return text in program.log()


async def test_bootstrap_only_agent_gets_its_config_applies_changes_and_refusals(
    site: Site, tmp_path: Path, snmpd: lab.Snmpd, influxdb: lab.InfluxDB1, db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A box with only the bootstrap file (broker, credentials, CA, the core's public key,
    spool): it receives its config, polls snmpd, and the data reaches InfluxDB. A change
    (device added, one removed, one re-timed) is applied within one status interval
    without a restart; the unchanged device loses or doubles no poll and keeps its rate
    state. A config signed by another key, an older version, another agent's config and
    a bad one are refused, each with its reason in the status (InfluxDB's agent_status),
    and the agent keeps polling on the config it runs."""
    s, who = site, site.p1
    monkeypatch.setenv("T_PUSH_COLLECTOR_PASSWORD", s.collector_password)
    a, b, d = (device(n, snmpd) for n in ("rtr-a", "rtr-b", "rtr-d"))
    v1 = pushed_config(who, [a, b, {**d, "poll_interval_s": 2.0}])
    r = publish(s, who, v1, tmp_path)
    assert r.returncode == 0 and "version 1 signed" in r.stdout, r.stderr
    agent = Subprogram("agent", bootstrap(s, who, tmp_path, [s.core_pub]),
                       env={"T_PUSH_COMMUNITY": snmpd.community})
    async with running(collector(s, tmp_path, influxdb, db)):
        started = time.monotonic()
        agent.start()
        try:
            await wait_for(lambda: points(influxdb, db, who.agent).get("rtr-a"), 60,
                           "the first point of a pushed device in InfluxDB", 0.05)
            boot_s = time.monotonic() - started
            print(f"MEASURE bootstrap-only agent start -> first point in InfluxDB: "
                  f"{boot_s:.2f}s (process start, TLS connect, retained config, first "
                  f"poll at its phase within {INTERVAL_S}s, collector, InfluxDB)")
            await wait_for(lambda: len(points(influxdb, db, who.agent).get("rtr-a", [])) >= 4,
                           30, "a few polls on version 1")
            assert _log_has(agent, "remote config: version 1 applied (3 device(s)")

            # v2: rtr-b removed, rtr-c added, rtr-d re-timed (2 s -> 1 s); rtr-a as it was.
            c = device("rtr-c", snmpd)
            v2 = pushed_config(who, [a, c, d])
            publishing_at = time.time()
            r = publish(s, who, v2, tmp_path)
            assert r.returncode == 0 and "version 2 signed" in r.stdout, r.stderr
            published_at = time.time()  # retained on the broker (the command read it back)
            v2_statuses = await wait_for(
                lambda: [st for st in statuses(influxdb, db, who.agent)
                         if st.get("config_version") == 2], 30, "version 2 in the status")
            applied_at = v2_statuses[0]["time"] / 1000  # the agent's stamp, sent at once
            assert applied_at - published_at < STATUS_INTERVAL_S  # within one interval
            await wait_for(lambda: points(influxdb, db, who.agent).get("rtr-c"), 30,
                           "the added device's first point")
            first_c = min(points(influxdb, db, who.agent)["rtr-c"])
            assert first_c - published_at < STATUS_INTERVAL_S
            print(f"MEASURE `xanet config publish` started -> applied (the agent's status "
                  f"stamp) {applied_at - publishing_at:.2f}s, -> the added device's first "
                  f"poll {first_c - publishing_at:.2f}s (the command itself took "
                  f"{published_at - publishing_at:.2f}s)")
            await asyncio.sleep(4 * INTERVAL_S)
            got = points(influxdb, db, who.agent)
            assert not [t for t in got["rtr-b"] if t > applied_at], "rtr-b still polled"
            assert consecutive([t for t in got["rtr-d"] if t > applied_at], INTERVAL_S)
            assert consecutive(got["rtr-a"], INTERVAL_S)  # none lost, none doubled
            firsts = first_polls(influxdb, db)
            assert firsts["rtr-a"] == [got["rtr-a"][0]] * len(firsts["rtr-a"]), firsts
            assert all(t > applied_at - INTERVAL_S
                       for t in firsts["rtr-c"] + firsts["rtr-d"][-1:]), firsts
            assert _log_has(agent, "config applied: 1 device(s) added, 1 removed, 1 changed, "
                            "1 kept running")

            # Refused, each with its reason; rtr-a keeps being polled on version 2.
            rogue = load_private_key(s.rogue_key)
            core = load_private_key(s.core_key)
            now = datetime.now(UTC)
            topic = topics.config_topic(who.agent)
            refusals = [
                ("unknown_key", seal(who.agent, 3, v2, now, rogue)),
                ("old_version", seal(who.agent, 1, v1, now, core)),
                ("wrong_agent", seal(s.p2.agent, 3, pushed_config(s.p2, [a]), now, core)),
                ("invalid_config", seal(who.agent, 3, v2 + "\n[[devices]\n", now, core)),
            ]
            bad = tmp_path / "bad.toml"
            bad.write_text(v2 + "\n[[devices]\n")
            r = publish(s, who, bad.read_text(), tmp_path)
            assert r.returncode == 2 and "not valid TOML" in r.stderr  # the core's check
            for reason, payload in refusals:
                before = len(statuses(influxdb, db, who.agent))
                await publish_raw(s, topic, payload)
                sent_at = time.time()

                def refused(reason: str = reason, before: int = before) -> list[Any]:
                    return [st for st in statuses(influxdb, db, who.agent)[before:]
                            if (st.get("config_refusal") or "").startswith(reason)]

                seen = await wait_for(refused, 30, f"the refusal {reason} in the status")
                assert seen[0]["config_version"] == 2
                assert f"pushed config refused: {reason}" in seen[0]["reason"]
                assert seen[0]["time"] / 1000 - sent_at < STATUS_INTERVAL_S
            refused_at = time.time()
            await asyncio.sleep(3 * INTERVAL_S)
            got = points(influxdb, db, who.agent)
            assert len([t for t in got["rtr-a"] if t > refused_at]) >= 2
            assert len([t for t in got["rtr-c"] if t > refused_at]) >= 2
            assert consecutive(got["rtr-a"], INTERVAL_S)
        finally:
            assert await asyncio.to_thread(agent.stop) == 0, agent.log()
    log = agent.log()
    assert "Traceback" not in log
    for reason, _ in refusals:
        assert f"remote config refused ({reason}: " in log, reason
    stored = json.loads((tmp_path / f"{who.agent}-state" / "config.signed.json").read_bytes())
    assert stored["envelope"]["version"] == 2
    assert wire.AgentHealth.model_fields["config_version"].default is None


def spooled_devices(path: Path) -> set[str]:
    spool = Spool(path, max_messages=100_000, max_age_s=3600, fsync="off")
    try:
        entries = spool.peek(limit=100_000)
    finally:
        spool.close()
    out: set[str] = set()
    for entry in entries:
        if entry.topic.endswith("/telemetry"):
            message = wire.decode(entry.payload, "telemetry")
            assert isinstance(message, wire.Telemetry)
            out |= {p.device for p in message.polls}
    return out


async def test_offline_restart_runs_the_stored_config_and_keys_rotate(
    site: Site, tmp_path: Path, snmpd: lab.Snmpd, influxdb: lab.InfluxDB1, db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Restarted while the broker is out of reach, the agent runs on its stored config
    (its polls wait in the spool, then reach InfluxDB). Key rotation as
    docs/remote-config.md says: the new public key added to the agent, the core signs
    with the new key, the old key removed: a config signed with the old one is refused,
    and the stored one (new key) still starts the agent."""
    s, who = site, site.p2
    monkeypatch.setenv("T_PUSH_COLLECTOR_PASSWORD", s.collector_password)
    env = {"T_PUSH_COMMUNITY": snmpd.community}
    x, y, z = (device(n, snmpd) for n in ("bts-x", "bts-y", "bts-z"))
    assert publish(s, who, pushed_config(who, [x, y]), tmp_path).returncode == 0
    spool = tmp_path / f"{who.agent}.sqlite3"

    def started(keys: list[Path], port: int | None = None) -> Subprogram:
        path = bootstrap(s, who, tmp_path, keys, port=port)
        return Subprogram("agent", path, env=env, log_path=path.with_suffix(
            f".{time.monotonic_ns()}.log")).start()

    first = started([s.core_pub])
    try:
        await wait_for(lambda: _log_has(first, "remote config: version 1 applied"), 30,
                       "version 1 applied")
    finally:
        assert await asyncio.to_thread(first.stop) == 0, first.log()

    # Restarted while its broker is out of reach (nothing listens on that port yet):
    # the stored config's devices are polled into the spool; then the broker comes back.
    # That broker already holds the collector's persistent session (its queue).
    back = SecureMosquitto(tmp_path / "broker-2", s.etc, s.pki.ca.cert)
    back.start()
    try:
        async with running(collector(s, tmp_path, influxdb, db, port=back.port)):
            await wait_for(lambda: back.log_path.read_text().count(
                "Sending SUBACK to xanet-collector") >= 2, 30,  # telemetry and status
                "the collector's session on the second broker")
    finally:
        back.stop()
    offline = started([s.core_pub], port=back.port)
    try:
        await wait_for(lambda: spooled_devices(spool) >= {"bts-x", "bts-y"}, 30,
                       "polls of the stored config's devices in the spool")
        back.start()
        came_back = time.time()
        await wait_for(lambda: spooled_devices(spool) == set(), 30, "the spool drained")
        async with running(collector(s, tmp_path, influxdb, db, port=back.port)):
            await wait_for(lambda: {"bts-x", "bts-y"} <= {
                k for k, v in points(influxdb, db, who.agent).items()
                if min(v) < came_back}, 30, "the offline polls in InfluxDB")
    finally:
        assert await asyncio.to_thread(offline.stop) == 0, offline.log()
        back.stop()
    assert "starting on the stored config version 1 (2 device(s))" in offline.log()

    async with running(collector(s, tmp_path, influxdb, db)):
        # Rotation, step 1: the agent trusts the old and the new key.
        both = started([s.core_pub, s.new_pub])
        try:
            await wait_for(lambda: _log_has(both, "mqtt connected"), 30, "connected")
            # Step 2: the core signs with the new key.
            r = publish(s, who, pushed_config(who, [x, y, z]), tmp_path, key=s.new_key)
            assert r.returncode == 0, r.stderr
            await wait_for(lambda: points(influxdb, db, who.agent).get("bts-z"), 30,
                           "the device of version 2, signed with the new key")
            assert "remote config: version 2 applied" in both.log()
        finally:
            assert await asyncio.to_thread(both.stop) == 0, both.log()
        # Step 3: the old key removed; the stored config (new key) starts the agent.
        new_only = started([s.new_pub])
        try:
            await wait_for(lambda: _log_has(new_only, "mqtt connected"), 30, "connected")
            before = len(statuses(influxdb, db, who.agent))
            r = publish(s, who, pushed_config(who, [x]), tmp_path, key=s.core_key)
            assert r.returncode == 0, r.stderr  # the core cannot know; the agent refuses
            seen = await wait_for(
                lambda: [st for st in statuses(influxdb, db, who.agent)[before:]
                         if (st.get("config_refusal") or "").startswith("unknown_key")],
                30, "unknown_key in the status")
            assert seen[0]["config_version"] == 2 and seen[0]["devices"] == 3
            since = time.time()
            await wait_for(lambda: [t for t in points(influxdb, db, who.agent).get("bts-z", [])
                                    if t > since], 30, "bts-z still polled")
        finally:
            assert await asyncio.to_thread(new_only.stop) == 0, new_only.log()
    log = new_only.log()
    assert "starting on the stored config version 2 (3 device(s))" in log
    assert "remote config refused (unknown_key: " in log and "Traceback" not in log
