"""A regional broker bridged to the core (issue 20): cut the bridge under load, heal,
every message delivered, in order per agent; the retained configs and the capability
message reach the region; the bridge's credentials and ACL on the core are the script's.

The cut test: the core broker runs the deployed ACL (``deploy/mosquitto/acl``) with the
bridge's block from ``issue-bridge-credentials.sh``; the regional broker runs the bridge of
``deploy/mosquitto/bridge.conf`` (lab/bridge.py) inside a namespace with agents issued by
``issue-agent-credentials.sh`` (the edge ACL), the sites (publishers) next to it; a real
``Collector`` on the core writes the session InfluxDB, and an MQTT v5 persistent
subscriber on the core records the arrival order. The cut is nftables dropping everything
on the veth between the region and the core. That link has no TLS (the core's certificate
would have to name an address made at run time); the TLS test runs the script's bridge
file as issued against the deployed core mosquitto.conf (TLS listener), without a cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import lab
from lab.bridge import BRIDGE_TEMPLATE, BridgedRegion, bridge_section, core_bounds
from lab.fleet import collector_config
from lab.netns import lab_skip_reason
from lab.regionload import Sent, Site, audit, message, publish_region, sites
from tests.pipeline import running, start_collector, wait_for
from tests.test_security import SecureMosquitto, make_ca
from xanet import wire

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "mosquitto"
PROVINCE = "ha-giang"
REGION = "north"
AUDIT_USER = "t-audit"
STATE_USER = "t-state"


def measure(what: str, **numbers: object) -> None:
    print(f"MEASURE {what}: " + " ".join(f"{k}={v}" for k, v in numbers.items()))


def add_user(passwd: Path, user: str, password: str) -> None:
    subprocess.run(["mosquitto_passwd", str(passwd), user], input=f"{password}\n{password}\n",
                   check=True, capture_output=True, text=True)


def issue_bridge(etc: Path, out: Path, *provinces: str, host: str = "core.example.org",
                 port: int = 8883) -> str:
    """Run the deployed script on ``etc`` (the core's files); returns the bridge's password."""
    subprocess.run([str(DEPLOY / "issue-bridge-credentials.sh"), "--dir", str(etc),
                    "--out", str(out), "--host", host, "--port", str(port), REGION, *provinces],
                   check=True, capture_output=True, text=True)
    for line in (out / "20-xanet-bridge.conf").read_text().splitlines():
        if line.startswith("remote_password "):
            return line.split()[1]
    raise AssertionError("no remote_password in the issued bridge config")


def core_etc(tmp: Path) -> tuple[Path, str, dict[str, str]]:
    """The core's passwd and ACL as deployed: the shipped ACL, the bridge's block from the
    script, the collector's and the config publisher's users, and one audit reader."""
    etc = tmp / "core-etc"
    (etc / "tls").mkdir(parents=True)
    (etc / "tls" / "ca.crt").write_text("(the CA; this test's core link has no TLS)\n")
    (etc / "acl").write_text((DEPLOY / "acl").read_text())
    bridge_password = issue_bridge(etc, tmp / "bridge-out", PROVINCE)
    passwords = {u: uuid.uuid4().hex
                 for u in ("xanet-collector", "xanet-config", AUDIT_USER, STATE_USER)}
    for user, password in passwords.items():
        add_user(etc / "passwd", user, password)
    with (etc / "acl").open("a") as acl:
        acl.write(f"\nuser {AUDIT_USER}\ntopic read xanet/v1/#\n"
                  f"\nuser {STATE_USER}\ntopic read xanet/v1/bridge/#\n")
    return etc, bridge_password, passwords


def regional_etc(tmp: Path, region_sites: list[Site],
                 tls: dict[str, Path] | None = None) -> tuple[Path, dict[str, str]]:
    """The regional broker's passwd and ACL: the shipped regional.acl and one block per
    agent from issue-agent-credentials.sh, as on the core; returns the agents' passwords.
    ``tls``: the files of ``tls/`` by name (default: a placeholder CA file)."""
    etc = tmp / "regional-etc"
    (etc / "tls").mkdir(parents=True)
    for name, src in (tls or {}).items():
        (etc / "tls" / name).write_bytes(src.read_bytes())
    if not tls:
        (etc / "tls" / "ca.crt").write_text("(the CA)\n")
    (etc / "acl").write_text((DEPLOY / "regional.acl").read_text())
    passwords = {}
    for s in region_sites:
        out = tmp / "issued" / s.agent
        subprocess.run([str(DEPLOY / "issue-agent-credentials.sh"), "--dir", str(etc),
                        "--out", str(out), "--host", "127.0.0.1", s.agent, s.province,
                        s.commune, s.site], check=True, capture_output=True, text=True)
        passwords[s.agent] = (out / "mqtt.password").read_text().strip()
    return etc, passwords


def core_conf(etc: Path) -> str:
    """What the deployed mosquitto.conf says about identity, on the lab's plain listener."""
    return (f"allow_anonymous false\npassword_file {etc}/passwd\nacl_file {etc}/acl\n"
            "use_username_as_clientid true\n")


class CoreMosquitto(lab.Mosquitto):
    """The lab's broker with logins required: ready at any CONNACK (the probe is refused)."""

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                s.sendall(lab.MQTT_CONNECT_PROBE)
                return s.recv(4)[:1] == b"\x20"
        except OSError:
            return False


def test_the_script_writes_what_the_lab_runs(tmp_path: Path) -> None:
    """The script's bridge config is the template filled in as lab/bridge.py fills it, and
    its ACL block grants exactly the region's topics."""
    etc = tmp_path / "etc"
    (etc / "tls").mkdir(parents=True)
    (etc / "tls" / "ca.crt").write_text("ca\n")
    (etc / "acl").write_text((DEPLOY / "acl").read_text())
    password = issue_bridge(etc, tmp_path / "out", "ha-giang", "tuyen-quang",
                            host="core.example.org", port=8883)
    issued = (tmp_path / "out" / "20-xanet-bridge.conf").read_text()
    assert issued == bridge_section(BRIDGE_TEMPLATE.read_text(), region=REGION,
                                    core_host="core.example.org", core_port=8883,
                                    provinces=["ha-giang", "tuyen-quang"], password=password)
    assert (tmp_path / "out" / "20-xanet-bridge.conf").stat().st_mode & 0o077 == 0
    block = (etc / "acl").read_text().split(f"user xanet-bridge-{REGION}\n", 1)[1].splitlines()
    assert block == [
        *(f"topic write xanet/v1/{p}/+/+/{k}" for p in ("ha-giang", "tuyen-quang")
          for k in ("telemetry", "status", "test", "batch")),
        f"topic write xanet/v1/bridge/{REGION}/state",
        "topic read xanet/v1/config/#",
        "topic read xanet/v1/core/capabilities",
    ]
    again = subprocess.run([str(DEPLOY / "issue-bridge-credentials.sh"), "--dir", str(etc),
                            "--out", str(tmp_path / "out2"), REGION, "ha-giang"],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "already has a password" in again.stderr


IMPOSTOR_SEQ = 10**6


async def _impostor(port: int, who: Site, password: str, victim: Site) -> None:
    """``who``'s credentials publishing telemetry in ``victim``'s name on its topic."""
    origin = datetime.now(UTC) - timedelta(days=1)
    async with aiomqtt.Client("127.0.0.1", port, identifier=who.agent, username=who.agent,
                              password=password) as client:
        await client.publish(victim.topic, message(victim, IMPOSTOR_SEQ, origin, 60.0, 1),
                             qos=1)


async def _retained(port: int, password: str, topic: str) -> bytes:
    """The retained message on ``topic`` at the core, read as the state reader."""
    async with aiomqtt.Client(lab.HOST, port, identifier=STATE_USER, username=STATE_USER,
                              password=password) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(2):
            message = await anext(aiter(client.messages))
    return bytes(message.payload)


def _persistent() -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    return props


async def _retained_in_region(region: BridgedRegion, topic: str, who: Site,
                              password: str) -> bytes | None:
    """The retained message on ``topic`` at the regional broker, read from inside the
    region by agent ``who`` (None: none within 3 s)."""

    async def read() -> bytes | None:
        async with aiomqtt.Client("127.0.0.1", region.broker.port, identifier=who.agent,
                                  username=who.agent, password=password) as client:
            await client.subscribe(topic, qos=1)
            try:
                async with asyncio.timeout(3):
                    async for m in client.messages:
                        return bytes(m.payload) if m.retain else None
            except TimeoutError:
                return None
        return None

    return await asyncio.to_thread(region.region.call, asyncio.run, read())


@pytest.mark.skipif(lab_skip_reason() is not None, reason=str(lab_skip_reason()))
async def test_bridge_cut_under_load_then_healed_loses_nothing_and_keeps_order(
    tmp_path: Path, influxdb: lab.InfluxDB1, db: str,
) -> None:
    etc, bridge_password, pw = core_etc(tmp_path)
    conf = f"{core_bounds()}\n{core_conf(etc)}"  # the deployed core's queue bounds
    with CoreMosquitto(tmp_path / "core", extra_conf=conf) as core:
        await _cut_and_heal(tmp_path, core, bridge_password, pw, influxdb, db)


async def _cut_and_heal(tmp_path: Path, core: lab.Mosquitto, bridge_password: str,
                        pw: dict[str, str], influxdb: lab.InfluxDB1, db: str) -> None:
    (tmp_path / "collector.password").write_text(pw["xanet-collector"] + "\n")
    (tmp_path / "collector.password").chmod(0o600)
    collector = start_collector(collector_config(
        mqtt_port=core.port, influx_url=influxdb.url, dead_letter_dir=tmp_path / "dl",
        database=db, collector={"province": PROVINCE},
        mqtt={"username": "xanet-collector",
              "password": {"file": str(tmp_path / "collector.password")}}))
    region_sites = sites(PROVINCE, 8)
    edge, agent_pw = regional_etc(tmp_path, region_sites)
    rate, warm_s, cut_s, after_s = 40.0, 3.0, 10.0, 6.0
    sent = Sent()
    arrivals: list[tuple[str, int]] = []

    async def record(sub: aiomqtt.Client) -> None:
        async for m in sub.messages:
            msg = wire.decode(bytes(m.payload), "telemetry")
            assert isinstance(msg, wire.Telemetry)
            arrivals.append((msg.agent, msg.seq))

    with BridgedRegion(tmp_path, core.port, provinces=[PROVINCE], region=REGION,
                       password=bridge_password,
                       regional_conf=core_conf(edge)) as region:
        region.wait_bridged()
        async with running(collector), aiomqtt.Client(
                lab.HOST, core.port, identifier=AUDIT_USER, username=AUDIT_USER,
                password=pw[AUDIT_USER], protocol=aiomqtt.ProtocolVersion.V5,
                clean_start=False, properties=_persistent()) as sub:
            await sub.subscribe(f"xanet/v1/{PROVINCE}/+/+/telemetry", qos=1)
            recorder = asyncio.create_task(record(sub))
            # In from the core: a config published (retained) before the cut, and the
            # collector's capability message, both retained at the regional broker.
            config_topic = f"xanet/v1/config/{region_sites[0].agent}"
            reader = (region_sites[0], agent_pw[region_sites[0].agent])
            async with aiomqtt.Client(lab.HOST, core.port, identifier="xanet-config",
                                      username="xanet-config",
                                      password=pw["xanet-config"]) as publisher:
                await publisher.publish(config_topic, b"config-1", qos=1, retain=True)
            assert await _retained_in_region(region, config_topic, *reader) == b"config-1"
            assert await _retained_in_region(region, "xanet/v1/core/capabilities",
                                            *reader), \
                "the core's capability message is not retained at the regional broker"

            # The edge ACL: an agent publishing on another site's topic is refused there.
            await asyncio.to_thread(region.region.call, asyncio.run, _impostor(
                region.broker.port, region_sites[0], agent_pw[region_sites[0].agent],
                region_sites[1]))

            load = asyncio.create_task(asyncio.to_thread(
                region.region.call, publish_region, "127.0.0.1", region.broker.port,
                region_sites, rate_per_s=rate, duration_s=warm_s + cut_s + after_s,
                sent=sent, passwords=agent_pw))
            await asyncio.sleep(warm_s)
            connections = region.bridge_connections()
            region.cut()
            t_cut, at_cut = time.monotonic(), len(arrivals)
            await asyncio.sleep(cut_s / 2)
            async with aiomqtt.Client(lab.HOST, core.port, identifier="xanet-config",
                                      username="xanet-config",
                                      password=pw["xanet-config"]) as publisher:
                await publisher.publish(config_topic, b"config-2", qos=1, retain=True)
            await asyncio.sleep(cut_s / 2)
            # The core noticed (1.5 x the bridge's 5 s keepalive): the bridge's Will says 0.
            state = await _retained(core.port, pw[STATE_USER], f"xanet/v1/bridge/{REGION}/state")
            at_heal = len(arrivals)
            region.heal()
            t_heal = time.monotonic()
            await asyncio.to_thread(region.wait_bridged, connections)
            reconnect_s = time.monotonic() - t_heal
            await load
            queued = sent.sent_between(t_cut, t_heal)
            await wait_for(lambda: {*arrivals} >= sent.expected(), 15, "every message at core")
            await wait_for(lambda: all(
                collector.sequences.gaps(s.agent) == 0
                and collector.sequences.highest(s.agent) == sent.next_seq[s.agent] - 1
                for s in region_sites), 15, "the collector saw every message")
            recorder.cancel()
            denied = region.broker.log_path.read_text().count(
                f"Denied PUBLISH from {region_sites[0].agent} ")
            # The config published during the cut reached the region after the heal.
            assert await _retained_in_region(region, config_topic, *reader) == b"config-2"

    result = audit(sent.expected(), arrivals)
    points = influxdb.query('SELECT count("seq") FROM "device" GROUP BY "agent"', db=db)
    stored = {r["agent"]: int(r["count"]) for r in points} if points else {}
    measure("bridge cut", sent=result.sent, queued_during_cut=queued,
            arrived_during_cut=at_heal - at_cut, reconnect_after_heal_s=f"{reconnect_s:.1f}",
            redelivered=result.redelivered, collector_duplicates=collector.sequences.duplicates,
            out_of_order=len(result.out_of_order), lost=len(result.lost))
    assert state == b"0", f"the bridge's state on the core during the cut: {state!r}"
    assert denied == 1, "the regional broker did not refuse the impostor's message"
    assert (region_sites[1].agent, IMPOSTOR_SEQ) not in arrivals
    # The cut was real: the region kept publishing, the core got (almost) nothing.
    assert queued >= rate * cut_s * 0.8, f"only {queued} published during the cut"
    assert at_heal - at_cut <= len(region_sites) + 20, "messages crossed the cut"
    assert result.sent >= rate * (warm_s + cut_s + after_s) * 0.8
    assert not result.lost, f"{len(result.lost)} lost: {result.lost[:10]}"
    assert not result.out_of_order, f"out of order: {result.out_of_order[:10]}"
    # Re-deliveries: at most what was in flight (regional.conf: 100), each one seen by the
    # collector as a duplicate (it got what the audit subscriber got).
    assert result.redelivered <= 100
    assert collector.sequences.duplicates == result.redelivered
    # One point per message in InfluxDB, duplicates or not.
    assert stored == {s.agent: sent.next_seq[s.agent] for s in region_sites}


async def test_bridge_over_tls_to_the_deployed_core_holds_to_its_provinces(
    tmp_path: Path,
) -> None:
    """The deployed regional.conf with the script's bridge file, TLS and all, against the
    core running the deployed mosquitto.conf (TLS listener, passwords, ACL): the region's
    topics go out, the configs come in retained, and the core's ACL refuses what the bridge
    may not publish (a regional broker configured, or tampered with, to forward another
    province)."""
    ca = make_ca(tmp_path / "ca", "xanet-test-ca")
    server = ca.issue(tmp_path / "ca", "localhost", san="DNS:localhost,IP:127.0.0.1")
    etc = tmp_path / "core-etc"
    (etc / "tls").mkdir(parents=True)
    (etc / "acl").write_text((DEPLOY / "acl").read_text())
    for src, name in [(ca.cert, "ca.crt"), (server[0], "server.crt"), (server[1], "server.key")]:
        (etc / "tls" / name).write_bytes(src.read_bytes())
    core = SecureMosquitto(tmp_path / "core", etc, ca.cert)
    issue_bridge(etc, tmp_path / "bridge-out", PROVINCE, host="127.0.0.1", port=core.port)
    pw = {u: uuid.uuid4().hex for u in ("xanet-config", AUDIT_USER)}
    for user, password in pw.items():
        add_user(etc / "passwd", user, password)
    with (etc / "acl").open("a") as acl:
        acl.write(f"\nuser {AUDIT_USER}\ntopic read xanet/v1/#\n")
    issued = (tmp_path / "bridge-out" / "20-xanet-bridge.conf").read_text()
    assert "\nbridge_cafile /etc/mosquitto/xanet/tls/ca.crt\n" in issued
    # The regional host: regional.acl, its agents issued there (one of another province:
    # a regional broker configured, or tampered with, to forward a province not its own).
    mine, other = sites(PROVINCE, 1)[0], sites("lao-cai", 1)[0]
    edge, agent_pw = regional_etc(tmp_path, [mine, other], tls={
        "ca.crt": ca.cert, "server.crt": server[0], "server.key": server[1]})
    bridge = issued + "topic xanet/v1/lao-cai/+/+/telemetry out 1\n"
    tls = ssl.create_default_context(cafile=str(ca.cert))
    with core, RegionalMosquitto(tmp_path / "regional", edge, ca.cert, bridge) as regional:
        await wait_for(lambda: "Received CONNACK on connection " in
                       regional.log_path.read_text(), 15, "the bridge connected over TLS")
        async with aiomqtt.Client(lab.HOST, core.port, identifier=AUDIT_USER,
                                  username=AUDIT_USER, password=pw[AUDIT_USER],
                                  tls_context=tls) as sub:
            await sub.subscribe("xanet/v1/#", qos=1)
            async with aiomqtt.Client(lab.HOST, core.port, identifier="xanet-config",
                                      username="xanet-config", password=pw["xanet-config"],
                                      tls_context=tls) as config:
                await config.publish(f"xanet/v1/config/{mine.agent}", b"signed", qos=1,
                                     retain=True)
            origin = datetime.now(UTC) - timedelta(days=1)
            for s in (other, mine):  # the other province's first
                async with aiomqtt.Client(lab.HOST, regional.port, identifier=s.agent,
                                          username=s.agent, password=agent_pw[s.agent],
                                          tls_context=tls) as site:
                    await site.publish(s.topic, message(s, 0, origin, 60.0, 1), qos=1)
            # The other province's message went first: once this one is in, it would be too.
            got: dict[str, bytes] = {}
            state = f"xanet/v1/bridge/{REGION}/state"
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    async for m in sub.messages:
                        got[str(m.topic)] = bytes(m.payload)
                        if {mine.topic, state} <= got.keys():
                            break
        async with aiomqtt.Client(lab.HOST, regional.port, identifier=mine.agent,
                                  username=mine.agent, password=agent_pw[mine.agent],
                                  tls_context=tls) as agent:
            await agent.subscribe(f"xanet/v1/config/{mine.agent}", qos=1)
            async with asyncio.timeout(5):
                retained = await anext(aiter(agent.messages))
    assert mine.topic in got, f"the region's telemetry did not reach the core: {sorted(got)}"
    assert other.topic not in got, "the core let the bridge publish another province's site"
    assert got.get(state) == b"1"
    assert retained.retain and bytes(retained.payload) == b"signed"
    assert f"Denied PUBLISH from xanet-bridge-{REGION} " in core.log_path.read_text()


class RegionalMosquitto(SecureMosquitto):
    """A regional broker running deploy/mosquitto/regional.conf and a bridge file, their
    /etc paths moved under ``etc``, the listener on 127.0.0.1, logging to stderr (debug
    included, as regional.conf has it)."""

    def __init__(self, workdir: Path, etc: Path, ca: Path, bridge: str) -> None:
        super().__init__(workdir, etc, ca)
        self.bridge = bridge

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)
        text = (DEPLOY / "regional.conf").read_text() + self.bridge
        for old, new in [("/etc/mosquitto/xanet", str(self.etc)),
                         ("/var/lib/mosquitto/", f"{self.data_dir}/"),
                         ("\nlistener 8883\n", f"\nlistener {self.port} {lab.HOST}\n"),
                         ("log_dest syslog", "log_dest stderr")]:
            assert old in text, f"deploy/mosquitto/regional.conf no longer has {old!r}"
            text = text.replace(old, new)
        self.conf_path.write_text("user root\n" + text)
