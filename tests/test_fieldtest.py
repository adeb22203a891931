"""``xanet agent test`` as a technician runs it on site: a child process (lab/programs.py)
against real devices (snmpsim serving real recordings of a router and a UPS, net-snmp's
snmpd with an SNMPv3 user, a UDP port where nothing listens) and the shipped Mosquitto
(TLS, password file, and the ACL ``deploy/mosquitto/issue-agent-credentials.sh`` writes).

Each case: what it prints (the failure, its likely causes, the broker's reason codes in
words) and its exit code (0 all good, 1 a device or the broker failed, 2 a bad config).
The test message reaches the broker on the site's test topic and nothing else (no status,
no telemetry: the collector's liveness and availability never see it), and the spool is
never opened. And the real agent logs each device's first answered poll at INFO, once.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import lab
from lab.fleet import agent_config, to_toml
from lab.programs import Subprogram, run_xanet
from lab.snmpd import Snmpd
from lab.snmpsim import RECORDING_IFX, SnmpSim
from lab.upssim import RECORDING_UPS
from tests.pipeline import wait_for
from tests.test_security import (
    COLLECTOR_USER,
    DEPLOY,
    PROVINCE,
    SITE_A,
    SITE_B,
    Issued,
    SecureMosquitto,
    add_user,
    issue,
    make_ca,
)
from xanet import topics
from xanet.mqtt import MqttConfig, tls_context

pytestmark = pytest.mark.integration
ROUTER_SYS = lab.snmprec_values(RECORDING_IFX)
ICMP = os.geteuid() == 0  # the agent pings with a raw socket (ping_group_range is closed)


@dataclass(frozen=True)
class Site:
    broker: SecureMosquitto
    ca: Path
    sim: SnmpSim
    snmpd: Snmpd
    a1: Issued  # issued for SITE_A, whose config the tests run
    a2: Issued  # issued for SITE_B: another site's credentials
    collector_password: str
    dead_port: int  # UDP: nothing listens there

    def env(self) -> dict[str, str]:
        return {"T_FT_ROUTER": "router", "T_FT_UPS": "ups", "T_FT_DEAD": "public",
                "T_FT_V3_AUTH": "wrong-auth-key-1", "T_FT_V3_PRIV": self.snmpd.v3_priv_key}

    def devices(self) -> list[dict[str, Any]]:
        sim, snmpd = self.sim, self.snmpd
        return [
            {"id": "router", "host": sim.host, "port": sim.port, "icmp": ICMP,
             "snmp": {"version": "2c", "community": {"env": "T_FT_ROUTER"}}},
            {"id": "ups", "host": sim.host, "port": sim.port, "profiles": ["ups-mib"],
             "snmp": {"version": "2c", "community": {"env": "T_FT_UPS"}}},
            {"id": "dead", "host": lab.HOST, "port": self.dead_port,
             "snmp": {"version": "2c", "community": {"env": "T_FT_DEAD"}}},
            {"id": "v3bad", "host": snmpd.host, "port": snmpd.port,
             "snmp": {"version": "3", "user": snmpd.v3_user,
                      "auth_key": {"env": "T_FT_V3_AUTH"},
                      "priv_key": {"env": "T_FT_V3_PRIV"}}},
        ]

    def config(self, tmp_path: Path, who: Issued, password: Path | None = None,
               only: tuple[str, ...] = ()) -> Path:
        """SITE_A's agent config with ``who``'s MQTT credentials (``password``: another
        password file; ``only``: these devices)."""
        cfg = agent_config(
            agent_id="hg-a1", province=PROVINCE, commune=SITE_A[0], site=SITE_A[1],
            mqtt_port=self.broker.port, spool_path=tmp_path / "spool" / "agent.sqlite3",
            interval_s=1.0,
            devices=[d for d in self.devices() if not only or d["id"] in only],
            polling={"timeout_s": 1.0, "retries": 0},
            mqtt={"host": lab.HOST, "tls": True, "ca_file": str(who.out / "ca.crt"),
                  "username": who.agent,
                  "password": {"file": str(password or who.out / "mqtt.password")}})
        (tmp_path / "spool").mkdir(exist_ok=True)
        path = tmp_path / "agent.toml"
        path.write_text(to_toml(cfg))
        return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, snmpd: Snmpd) -> Iterator[Site]:
    d = tmp_path_factory.mktemp("fieldtest")
    ca = make_ca(d / "ca", "xanet-test-ca")
    server = ca.issue(d / "ca", "localhost", san="DNS:localhost,IP:127.0.0.1")
    etc = d / "etc"
    (etc / "tls").mkdir(parents=True)
    shutil.copy(DEPLOY / "acl", etc / "acl")
    for src, name in [(ca.cert, "ca.crt"), (server[0], "server.crt"), (server[1], "server.key")]:
        shutil.copy(src, etc / "tls" / name)
    a1 = issue(etc, d / "hg-a1", "hg-a1", *SITE_A)
    a2 = issue(etc, d / "hg-a2", "hg-a2", *SITE_B)
    collector_password = uuid.uuid4().hex
    add_user(etc / "passwd", COLLECTOR_USER, collector_password)
    broker = SecureMosquitto(d / "broker", etc, ca.cert)
    sim = SnmpSim(d / "sim", {"router": RECORDING_IFX, "ups": RECORDING_UPS})
    broker.start()
    try:
        sim.start()
        try:
            yield Site(broker, ca.cert, sim, snmpd, a1, a2, collector_password,
                       lab.free_udp_port())
        finally:
            sim.stop()
    finally:
        broker.stop()


def agent_test(site: Site, config: Path, *args: str) -> tuple[int, str]:
    done = run_xanet("agent", "test", "--config", config, *args, env=site.env())
    print(done.stdout, done.stderr)  # shown when a test fails: the whole report
    return done.returncode, done.stdout


async def test_good_devices_and_broker_exit_0_and_only_the_test_topic_hears(
        site: Site, tmp_path: Path) -> None:
    """The router's sysName and interfaces, the UPS's power and profile values; the
    broker accepts the one message, on the test topic, not retained; the spool untouched."""
    config = site.config(tmp_path, site.a1, only=("router", "ups"))
    cfg = MqttConfig(host=lab.HOST, port=site.broker.port, tls=True, ca_file=site.ca)
    heard: list[aiomqtt.Message] = []
    async with aiomqtt.Client(lab.HOST, site.broker.port, identifier="t-ft-collector",
                              username=COLLECTOR_USER, password=site.collector_password,
                              tls_context=tls_context(cfg)) as sub:
        await sub.subscribe("xanet/v1/#", qos=1)

        async def listen() -> None:
            async for message in sub.messages:
                heard.append(message)

        listener = asyncio.create_task(listen())
        code, out = await asyncio.to_thread(agent_test, site, config)
        await wait_for(lambda: bool(heard), 10, "the test message heard")
        await asyncio.sleep(0.3)  # anything else it published would have come by now
        listener.cancel()
    assert code == 0, out
    assert f"sysName:  {ROUTER_SYS['1.3.6.1.2.1.1.5.0'][1]}" in out
    assert "sysDescr: Vyatta" in out and "uptime:" in out
    assert re.search(r"interfaces \(\d+\):\n +index +name +alias +oper +speed", out)
    assert re.search(r"\n +4 +eth1 +eth1 +up +1 Gbit/s +\d+ +\d+\n", out)
    assert "device ups (site lungcu-hub)" in out and "power: mains" in out
    assert "profile ups-mib: " in out and "battery" in out
    if ICMP:
        assert "ICMP echo: 2/2 replies" in out
    test_topic = topics.probe_topic(PROVINCE, *SITE_A)
    # PUBACK 0: this test subscribes to xanet/v1/# (a collector, which subscribes to
    # telemetry and status only, would get 16 "No matching subscribers": also accepted)
    assert f"test message on {test_topic}: PUBACK 0 (Success): accepted" in out
    assert "CONNACK: 0 (Success): connection accepted" in out
    assert out.endswith("result: all 2 device(s) OK; broker OK\n")
    assert [(str(m.topic), m.retain) for m in heard] == [(test_topic, False)]
    assert not any((tmp_path / "spool").iterdir())  # no spool file created


def test_dead_port_is_a_timeout_with_its_likely_causes_exit_1(site: Site,
                                                               tmp_path: Path) -> None:
    code, out = agent_test(site, site.config(tmp_path, site.a1), "--device", "dead",
                           "--no-broker")
    assert code == 1
    assert f"FAILED (timeout): lungcu-hub/dead: no response from {lab.HOST}:{site.dead_port}" \
        in out
    causes = out[out.index("likely causes:"):]
    assert "wrong address or port in the config" in causes
    assert "wrong community" in causes and "access list (ACL" in causes
    assert out.endswith("result: 1 of 1 device(s) FAILED (dead)\n")


def test_wrong_v3_key_is_auth_check_the_key_first_exit_1(site: Site, tmp_path: Path) -> None:
    code, out = agent_test(site, site.config(tmp_path, site.a1), "--device", "v3bad",
                           "--no-broker")
    assert code == 1
    assert "FAILED (auth):" in out and "usmStatsWrongDigests" in out
    first = out[out.index("likely causes:"):].splitlines()[1]
    assert "wrong authentication key (snmp.auth_key) or protocol" in first


def test_broker_refusals_print_the_reason_code_exit_1(site: Site, tmp_path: Path) -> None:
    """A wrong password: CONNACK 134. Another site's credentials: the ACL refuses the
    test topic, PUBACK 135. The device answers both times: the 1 is the broker's."""
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    code, out = agent_test(site, site.config(tmp_path, site.a1, password=wrong),
                           "--device", "router")
    assert code == 1, out
    # (Mosquitto 2 answers a wrong password with 135, not 134 "Bad User Name or Password")
    assert "CONNACK: 135 (Not authorized): connection REFUSED" in out
    assert "wrong password for MQTT user hg-a1" in out
    assert out.endswith("result: all 1 device(s) OK; broker FAILED\n")

    code, out = agent_test(site, site.config(tmp_path, site.a2), "--device", "router")
    assert code == 1, out
    assert "CONNACK: 0 (Success)" in out
    assert (f"test message on {topics.probe_topic(PROVINCE, *SITE_A)}: PUBACK 135 "
            "(Not authorized): REFUSED") in out
    assert "the credentials belong to another site" in out


def test_bad_config_exits_2_with_check_configs_lines(site: Site, tmp_path: Path) -> None:
    config = site.config(tmp_path, site.a1)
    env = {k: v for k, v in site.env().items() if k != "T_FT_UPS"}
    env_off = {"T_FT_UPS": ""}  # unset in the child: an empty value is refused the same
    tested = run_xanet("agent", "test", "--config", config, env={**env, **env_off})
    checked = run_xanet("check-config", config, env={**env, **env_off})
    assert tested.returncode == 2 and tested.stdout == ""
    assert checked.stderr.strip() and checked.stderr in tested.stderr


def test_the_agent_logs_a_devices_first_answer_once(site: Site, tmp_path: Path) -> None:
    """The real agent, polling every second: one INFO line saying the router answered."""
    config = site.config(tmp_path, site.a1, only=("router",))
    agent = Subprogram("agent", config, env=site.env()).start()
    try:
        wait_for_sync(lambda: "first poll answered" in agent.log(), 20)
        time.sleep(3.0)  # three more polls
    finally:
        agent.stop()
    lines = [ln for ln in agent.log().splitlines() if "first poll answered" in ln]
    assert len(lines) == 1, agent.log()
    print(lines[0])
    assert " INFO xanet.agent: device router (site lungcu-hub): first poll answered: " \
        in lines[0]
    assert re.search(r"\d+ interface\(s\), \d+ up, uptime [\d.]+ [dh], [\d.]+ ms", lines[0])


def wait_for_sync(ok: Callable[[], bool], timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)
