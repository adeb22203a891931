"""Only the right agents can speak: the shipped Mosquitto config (TLS listener,
no anonymous access, password file, per-agent ACL written by
``deploy/mosquitto/issue-agent-credentials.sh``) on a real broker, with
certificates generated here by openssl, and real agents and a real collector
writing to a real InfluxDB.

Mosquitto 2.x answers an unauthorised QoS 1 PUBLISH from an MQTT 3.1.1 client
with a PUBACK and drops it (and drops a Last Will on a topic the client may not
write), so what is observable is that the message never reaches a subscriber.
Those checks rely on ordering, not on waiting: Mosquitto handles one client's
packets in order and forwards a publish to every subscriber before it sends
the PUBACK, so once a marker published *after* the refused message has
arrived, the refused one would have arrived before it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import lab
from agent.app import Agent
from agent.config import AgentConfig
from agent.snmp import RawPoll, SnmpTarget
from lab.fleet import agent_config, to_toml
from lab.programs import Subprogram
from tests.factories import telemetry
from tests.pipeline import running, wait_for
from xanet import topics, wire
from xanet.mqtt import MqttConfig, tls_context

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "mosquitto"
ISSUE = DEPLOY / "issue-agent-credentials.sh"

PROVINCE = "ha-giang"
SITE_A = ("00688", "lungcu-hub")  # agent hg-a1
SITE_B = ("00689", "batdaison-bts")  # agent hg-a2
SITE_C = ("00690", "thaian-bts")  # agent hg-a3, issued in a test
SITE_D = ("00691", "thaian-hub")  # agent hg-a4, issued in a test
COLLECTOR_USER = "xanet-collector"


# --------------------------------------------------------------------------
# PKI, generated per test module with openssl (nothing secret in the repo)


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@dataclass(frozen=True)
class Ca:
    cert: Path
    key: Path

    def issue(self, out: Path, cn: str, *, san: str | None = None,
              usage: str = "serverAuth") -> tuple[Path, Path]:
        """A P-256 key and a certificate for ``cn`` signed by this CA."""
        key, csr, crt, ext = (out / f"{cn}.{s}" for s in ("key", "csr", "crt", "ext"))
        ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                       f"extendedKeyUsage={usage}\n"
                       + (f"subjectAltName={san}\n" if san else ""))
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                 "-set_serial", f"0x{uuid.uuid4().hex}", "-days", "2", "-extfile", ext,
                 "-out", crt)
        key.chmod(0o600)
        return crt, key


def make_ca(out: Path, name: str) -> Ca:
    out.mkdir(parents=True, exist_ok=True)
    cert, key = out / f"{name}.crt", out / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    key.chmod(0o600)
    return Ca(cert, key)


@dataclass(frozen=True)
class Pki:
    ca: Ca
    rogue_ca: Ca  # a CA the broker's clients do not trust
    server: tuple[Path, Path]  # for 127.0.0.1 / localhost, signed by ca
    wrong_name: tuple[Path, Path]  # signed by ca, but for another host name
    rogue_server: tuple[Path, Path]  # for 127.0.0.1, signed by rogue_ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d / "ca", "xanet-test-ca")
    rogue = make_ca(d / "rogue", "rogue-ca")
    return Pki(
        ca=ca,
        rogue_ca=rogue,
        server=ca.issue(d / "ca", "localhost", san="DNS:localhost,IP:127.0.0.1"),
        wrong_name=ca.issue(d / "ca", "broker.elsewhere", san="DNS:broker.elsewhere"),
        rogue_server=rogue.issue(d / "rogue", "localhost", san="DNS:localhost,IP:127.0.0.1"),
    )


# --------------------------------------------------------------------------
# the broker, configured from deploy/mosquitto/


def deployed_conf(etc: Path, data: Path, port: int, *, client_certs: bool = False) -> str:
    """deploy/mosquitto/mosquitto.conf with its paths moved under ``etc``/``data``,
    the listener bound to 127.0.0.1:``port``, logging to stderr, staying root;
    ``client_certs``: the README's certificate-identity mode."""
    text = (DEPLOY / "mosquitto.conf").read_text()
    certs = ("require_certificate true\nuse_identity_as_username true\n" if client_certs
             else "require_certificate false\n")
    for old, new in [("/etc/mosquitto/xanet", str(etc)),
                     ("/var/lib/mosquitto/", f"{data}/"),
                     ("\nlistener 8883\n", f"\nlistener {port} {lab.HOST}\n"),
                     ("\nrequire_certificate false\n", f"\n{certs}"),
                     ("log_dest syslog", "log_dest stderr")]:
        assert old in text, f"deploy/mosquitto/mosquitto.conf no longer has {old!r}"
        text = text.replace(old, new)
    return "user root\n" + text


class SecureMosquitto(lab.Mosquitto):
    """Mosquitto running the deployed config. Ready when a TLS handshake (verifying
    the server against the test CA) and an anonymous CONNECT get a CONNACK — which
    refuses the anonymous client."""

    def __init__(self, workdir: Path, etc: Path, ca: Path, *, client_certs: bool = False,
                 probe_cert: tuple[Path, Path] | None = None) -> None:
        super().__init__(workdir)
        self.etc = etc
        self.ca = ca
        self.client_certs = client_certs
        self.probe_cert = probe_cert

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)
        self.conf_path.write_text(deployed_conf(self.etc, self.data_dir, self.port,
                                                client_certs=self.client_certs))

    def _ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if self.probe_cert:
            ctx.load_cert_chain(*map(str, self.probe_cert))
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as raw, \
                    ctx.wrap_socket(raw, server_hostname=self.host) as s:
                s.sendall(lab.MQTT_CONNECT_PROBE)
                return s.recv(4)[:1] == b"\x20"
        except OSError:
            return False


@dataclass(frozen=True)
class Issued:
    agent: str
    commune: str
    site: str
    out: Path  # what issue-agent-credentials.sh wrote for the site box

    @property
    def password(self) -> str:
        return (self.out / "mqtt.password").read_text().strip()

    def topic(self, kind: topics.Kind = "telemetry") -> str:
        return topics.build(PROVINCE, self.commune, self.site, kind)


def issue(etc: Path, out: Path, agent: str, commune: str, site: str,
          *extra: str) -> Issued:
    subprocess.run([str(ISSUE), "--dir", str(etc), "--out", str(out), "--host", "127.0.0.1",
                    *extra, agent, PROVINCE, commune, site],
                   check=True, capture_output=True, text=True)
    return Issued(agent, commune, site, out)


@dataclass
class Deployment:
    broker: SecureMosquitto
    etc: Path
    pki: Pki
    a1: Issued
    a2: Issued
    collector_password: str

    def tls(self, **kw: Any) -> MqttConfig:
        base: dict[str, Any] = {"host": lab.HOST, "port": self.broker.port, "tls": True,
                                "ca_file": self.pki.ca.cert}
        return MqttConfig.model_validate({**base, **kw})

    def client(self, name: str, username: str | None, password: str | None,
               cfg: MqttConfig | None = None, **kw: Any) -> aiomqtt.Client:
        cfg = cfg or self.tls()
        return aiomqtt.Client(lab.HOST, self.broker.port, identifier=name,
                              username=username, password=password,
                              tls_context=tls_context(cfg), **kw)

    def collector_client(self, name: str = "t-collector") -> aiomqtt.Client:
        return self.client(name, COLLECTOR_USER, self.collector_password)

    def agent_client(self, who: Issued, name: str | None = None) -> aiomqtt.Client:
        return self.client(name or f"t-{who.agent}", who.agent, who.password)


def init_etc(etc: Path, pki: Pki) -> None:
    """What an operator does once (README.md): the ACL template, the TLS files."""
    (etc / "tls").mkdir(parents=True)
    (etc / "acl").write_text((DEPLOY / "acl").read_text())
    for src, name in [(pki.ca.cert, "ca.crt"), (pki.server[0], "server.crt"),
                      (pki.server[1], "server.key")]:
        (etc / "tls" / name).write_bytes(src.read_bytes())


def add_user(passwd: Path, user: str, password: str) -> None:
    """mosquitto_passwd with the password on stdin (as the README shows)."""
    subprocess.run(["mosquitto_passwd", str(passwd), user], input=f"{password}\n{password}\n",
                   check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Deployment]:
    d = tmp_path_factory.mktemp("deploy")
    etc = d / "etc"
    init_etc(etc, pki)
    a1 = issue(etc, d / "hg-a1", "hg-a1", *SITE_A)
    a2 = issue(etc, d / "hg-a2", "hg-a2", *SITE_B)
    collector_password = uuid.uuid4().hex
    add_user(etc / "passwd", COLLECTOR_USER, collector_password)
    broker = SecureMosquitto(d / "broker", etc, pki.ca.cert)
    broker.start()
    try:
        yield Deployment(broker, etc, pki, a1, a2, collector_password)
    finally:
        broker.stop()


# --------------------------------------------------------------------------
# the script


def test_issue_script_writes_exact_acl_and_private_files(deployment: Deployment) -> None:
    acl = (deployment.etc / "acl").read_text()
    assert ("user hg-a1\n"
            f"topic write xanet/v1/{PROVINCE}/00688/lungcu-hub/telemetry\n"
            f"topic write xanet/v1/{PROVINCE}/00688/lungcu-hub/status\n"
            f"topic write xanet/v1/{PROVINCE}/00688/lungcu-hub/test\n"
            f"topic write xanet/v1/{PROVINCE}/00688/lungcu-hub/batch\n"
            "topic read xanet/v1/config/hg-a1\n"
            "topic read xanet/v1/core/capabilities\n") in acl
    assert (f"user {COLLECTOR_USER}\ntopic read xanet/v1/#\n"
            "topic write xanet/v1/core/capabilities\n") in acl
    # No line grants anything to anonymous clients or to every user.
    lines = [ln.split() for ln in acl.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == ["user", COLLECTOR_USER]
    assert not [ln for ln in lines if ln[0] == "pattern"]
    out = deployment.a1.out
    for name in ("mqtt.password", "ca.crt", "mqtt.toml"):
        assert (out / name).stat().st_mode & 0o077 == 0, name
    assert (deployment.etc / "passwd").stat().st_mode & 0o077 == 0
    # The [mqtt] section it writes is a valid config (TLS on, secret from a file).
    import tomllib
    cfg = MqttConfig.model_validate(tomllib.loads((out / "mqtt.toml").read_text())["mqtt"])
    assert cfg.tls and cfg.username == "hg-a1" and cfg.password is not None
    assert cfg.password.file is not None


@pytest.mark.parametrize("args, message", [
    (["hg-a1", PROVINCE, "00688", "lungcu-hub"], "already has a password"),
    (["hg:x", PROVINCE, "00688", "lungcu-hub"], "no ':'"),
    (["hg-x", PROVINCE, "00688", "lungcu-hub/#"], "site 'lungcu-hub/#'"),
    (["hg-x", PROVINCE, "+", "lungcu-hub"], "commune '+'"),
    (["--cert", "hg-x", PROVINCE, "00688", "lungcu-hub"], "--cert needs --ca-key"),
])
def test_issue_script_refuses(deployment: Deployment, tmp_path: Path, args: list[str],
                              message: str) -> None:
    before = (deployment.etc / "acl").read_text()
    r = subprocess.run([str(ISSUE), "--dir", str(deployment.etc), "--out",
                        str(tmp_path / "out"), *args], capture_output=True, text=True)
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert (deployment.etc / "acl").read_text() == before


# --------------------------------------------------------------------------
# who may connect


async def test_anonymous_and_wrong_passwords_cannot_connect(deployment: Deployment) -> None:
    d = deployment
    refused = [
        ("anonymous", None, None),
        ("wrong password", "hg-a1", "not-the-password"),
        ("another agent's password", "hg-a1", d.a2.password),
        ("unknown user", "hg-a9", d.a1.password),
        ("collector name, agent password", COLLECTOR_USER, d.a1.password),
    ]
    for what, user, password in refused:
        with pytest.raises(aiomqtt.MqttCodeError) as info:
            async with d.client(f"t-refused-{uuid.uuid4().hex[:6]}", user, password):
                pass
        # CONNACK "not authorised" (paho reports the 3.1.1 code 5 as reason code 135)
        assert str(info.value.rc) == "Not authorized", (what, info.value)
    # ... while the issued credentials do connect.
    async with d.agent_client(d.a1):
        pass


def test_plain_mqtt_is_not_spoken(deployment: Deployment) -> None:
    """A plain-text CONNECT on the TLS port gets no CONNACK: the broker drops the connection."""
    with socket.create_connection((lab.HOST, deployment.broker.port), timeout=30) as s:
        s.sendall(lab.MQTT_CONNECT_PROBE)
        try:
            answer = s.recv(4)
        except ConnectionResetError:
            answer = b""
    assert answer == b""


async def test_client_refuses_a_broker_it_cannot_verify(
    deployment: Deployment, pki: Pki, tmp_path: Path,
) -> None:
    d = deployment
    # 1. The client's CA bundle does not hold the broker's CA (system store, or another CA).
    for cfg in (MqttConfig(host=lab.HOST, port=d.broker.port, tls=True),
                d.tls(ca_file=pki.rogue_ca.cert)):
        with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
            async with d.client("t-untrusting", "hg-a1", d.a1.password, cfg):
                pass
    # 2. A broker whose certificate is signed by the right CA but names another host,
    # 3. an impostor broker with a certificate for this address from another CA.
    for (crt, key), why in [(pki.wrong_name, "Hostname mismatch|IP address mismatch"),
                            (pki.rogue_server, "unable to get local issuer")]:
        etc = tmp_path / f"etc-{crt.stem}"
        etc.mkdir()
        (etc / "tls").mkdir()
        (etc / "acl").write_text((DEPLOY / "acl").read_text())
        (etc / "passwd").write_bytes((d.etc / "passwd").read_bytes())
        (etc / "tls" / "ca.crt").write_bytes(pki.ca.cert.read_bytes())
        (etc / "tls" / "server.crt").write_bytes(crt.read_bytes())
        (etc / "tls" / "server.key").write_bytes(key.read_bytes())
        probe_ca = pki.ca.cert if crt == pki.wrong_name[0] else pki.rogue_ca.cert
        impostor = _ImpostorMosquitto(tmp_path / f"broker-{crt.stem}", etc, probe_ca)
        with impostor:
            cfg = MqttConfig(host=lab.HOST, port=impostor.port, tls=True,
                             ca_file=pki.ca.cert)
            with pytest.raises(aiomqtt.MqttError, match=why):
                async with aiomqtt.Client(lab.HOST, impostor.port, identifier="t-victim",
                                          username="hg-a1", password=d.a1.password,
                                          tls_context=tls_context(cfg)):
                    pass
            assert "hg-a1" not in impostor.log_path.read_text()  # no CONNECT was sent


class _ImpostorMosquitto(SecureMosquitto):
    """Readiness without host name checking (its certificate names another host)."""

    def _ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.check_hostname = False
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as raw, \
                    ctx.wrap_socket(raw) as s:
                s.sendall(lab.MQTT_CONNECT_PROBE)
                return s.recv(4)[:1] == b"\x20"
        except OSError:
            return False


# --------------------------------------------------------------------------
# what each identity may publish and read


async def test_acl_agents_write_only_their_site_collector_reads_only(
    deployment: Deployment,
) -> None:
    d = deployment
    a1_own = wire.encode(telemetry(seq=1, site=d.a1.site, agent="hg-a1"))
    a1_as_b = wire.encode(telemetry(seq=2, site=d.a2.site, agent="hg-a1"))
    coll_as_a = wire.encode(telemetry(seq=3, site=d.a1.site, agent="xanet-collector"))
    marker = wire.encode(telemetry(seq=4, site=d.a2.site, agent="hg-a2"))
    # One connection per identity (use_username_as_clientid): hg-a2 is the snooper and
    # publishes the marker itself.
    async with d.collector_client() as coll, d.agent_client(d.a2, "t-a2-sub") as snoop:
        await coll.subscribe("#", qos=1)
        # granted, but an agent may read nothing (but the core's capability message)
        await snoop.subscribe("#", qos=1)
        async with d.agent_client(d.a1) as a1:
            await a1.publish(d.a1.topic(), a1_own, qos=1)
            await a1.publish(d.a2.topic(), a1_as_b, qos=1)  # PUBACKed (3.1.1), dropped
            await a1.publish(d.a2.topic("status"), a1_as_b, qos=1, retain=True)
            await a1.publish("xanet/v1/elsewhere/x/y/telemetry", a1_own, qos=1)
            await a1.publish("$SYS/broker/x", a1_own, qos=1)
            await coll.publish(d.a1.topic(), coll_as_a, qos=1)
        await snoop.publish(d.a2.topic(), marker, qos=1)
        got: list[tuple[str, bytes]] = []
        async with asyncio.timeout(20):
            async for m in coll.messages:
                assert isinstance(m.payload, bytes)
                if m.retain:  # retained status of agents in other tests
                    continue
                got.append((str(m.topic), m.payload))
                if m.payload == marker:
                    break
        assert got == [(d.a1.topic(), a1_own), (d.a2.topic(), marker)]
        # The snooping agent's own publish is answered after everything before it
        # was routed: whatever it might have been sent is queued by now.
        await snoop.publish(d.a2.topic("status"), b"{}", qos=1)
        assert len(snoop.messages) == 0
    # The refused retained status was not stored either.
    async with d.collector_client("t-collector-2") as late:
        await late.subscribe(d.a2.topic("status"), qos=1)
        await late.subscribe(d.a2.topic(), qos=1)
        async with d.agent_client(d.a2) as a2:
            await a2.publish(d.a2.topic(), marker, qos=1)
        async with asyncio.timeout(20):
            async for m in late.messages:
                assert m.payload == marker and not m.retain, m.payload
                break


def _mqtt_str(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def connect_with_will(client_id: str, user: str, password: str, will_topic: str,
                      will: bytes) -> bytes:
    """An MQTT 3.1.1 CONNECT with username, password and a QoS 1 Last Will."""
    flags = 0x80 | 0x40 | 0x08 | 0x04 | 0x02  # user, password, will QoS 1, will, clean
    body = (_mqtt_str(b"MQTT") + bytes([4, flags]) + (60).to_bytes(2, "big")
            + _mqtt_str(client_id.encode()) + _mqtt_str(will_topic.encode()) + _mqtt_str(will)
            + _mqtt_str(user.encode()) + _mqtt_str(password.encode()))
    n, length = len(body), b""
    while True:
        n, digit = divmod(n, 128)
        length += bytes([digit | (0x80 if n else 0)])
        if not n:
            return b"\x10" + length + body


async def test_last_will_on_another_sites_topic_is_dropped(deployment: Deployment) -> None:
    d = deployment
    forged = wire.encode(wire.Status(agent="hg-a1", site=d.a2.site, state="offline",
                                     reason="forged will"))
    honest = wire.encode(wire.Status(agent="hg-a1", site=d.a1.site, state="offline",
                                     reason="own will"))
    ctx = ssl.create_default_context(cafile=str(d.pki.ca.cert))
    async with d.collector_client() as coll:
        await coll.subscribe("#", qos=1)
        for topic, payload in [(d.a2.topic("status"), forged), (d.a1.topic("status"), honest)]:
            # Connect, get CONNACK 0, then vanish without DISCONNECT: the broker sends the will.
            with socket.create_connection((lab.HOST, d.broker.port), timeout=10) as raw, \
                    ctx.wrap_socket(raw, server_hostname=lab.HOST) as s:
                s.sendall(connect_with_will(f"t-will-{uuid.uuid4().hex[:6]}", "hg-a1",
                                            d.a1.password, topic, payload))
                assert s.recv(4) == b"\x20\x02\x00\x00"
        async with asyncio.timeout(20):
            async for m in coll.messages:
                if m.retain:  # retained status of agents in other tests
                    continue
                assert m.payload == honest, m.payload  # the forged will came first, if at all
                break


# --------------------------------------------------------------------------
# end to end: real agents and collector over TLS, into InfluxDB


def _read_spool(path: Path) -> tuple[int, set[int]]:
    """(next_seq, seqs still in the outbox), read-only."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        next_seq = int(con.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])
        return next_seq, {int(r[0]) for r in con.execute("SELECT seq FROM outbox")}
    finally:
        con.close()


async def _read_telemetry(client: aiomqtt.Client, into: list[wire.Telemetry]) -> None:
    """Collect telemetry (one reader task for the whole test: cancelling a read in the
    middle can drop the message it just took)."""
    from xanet import compact

    async for m in client.messages:
        assert isinstance(m.payload, bytes)
        if str(m.topic).endswith("/batch"):  # the backlog, as compact batches
            batch = compact.decode(m.payload)
            assert all(isinstance(one, wire.Telemetry) for one in batch), batch
            into.extend(one for one in batch if isinstance(one, wire.Telemetry))
            continue
        msg = wire.decode(m.payload, "telemetry")
        assert isinstance(msg, wire.Telemetry)
        into.append(msg)


async def _quiet(into: list[Any], idle_s: float = 1.0) -> None:
    """Wait until nothing more arrived for ``idle_s``."""
    while True:
        n = len(into)
        await asyncio.sleep(idle_s)
        if len(into) == n:
            return


async def test_agent_with_another_sites_credentials_keeps_every_poll_then_delivers_all(
    deployment: Deployment, tmp_path: Path, snmpd: lab.Snmpd,
) -> None:
    """The real ``xanet agent`` of site C started with hg-a2's credentials: the broker
    answers its birth status "not authorized" (MQTT v5 PUBACK 135); the agent logs one
    error naming the topic and the user, exits 78 without a traceback after a bounded
    number of tries, and has acknowledged nothing out of its spool; the broker's log shows
    the denial. Restarted with its own credentials it delivers every poll exactly once."""
    d = deployment
    commune, site = SITE_C
    a3 = issue(d.etc, tmp_path / "hg-a3", "hg-a3", commune, site)
    assert d.broker.pid is not None
    os.kill(d.broker.pid, signal.SIGHUP)  # re-read passwd and acl, as the README says
    spool = tmp_path / "a3.sqlite3"
    env = {"T_SEC_COMMUNITY": snmpd.community}
    device = {"host": lab.HOST, "port": snmpd.port,
              "snmp": {"version": "2c", "community": {"env": "T_SEC_COMMUNITY"}}}

    def config(who: Issued) -> str:
        return to_toml(agent_config(
            agent_id="hg-a3", province=PROVINCE, commune=commune, site=site,
            mqtt_port=d.broker.port, spool_path=spool, interval_s=1.0,
            devices=[{"id": f"dev-{i}", **device} for i in range(2)],
            mqtt={"tls": True, "ca_file": str(who.out / "ca.crt"), "username": who.agent,
                  "password": {"file": str(who.out / "mqtt.password")},
                  "reconnect_min_s": 1.0, "reconnect_max_s": 1.5}))

    path = tmp_path / "agent.toml"
    path.write_text(config(d.a2))
    started = time.monotonic()
    wrong = Subprogram("agent", path, env=env).start()
    assert wrong.proc is not None
    rc = await asyncio.to_thread(wrong.proc.wait, 60)
    print(f"MEASURE refused status: exit {rc} after {time.monotonic() - started:.1f}s")
    log = wrong.log()
    assert rc == 78, log
    assert "Traceback" not in log
    errors = [ln for ln in log.splitlines() if " ERROR " in ln]
    assert len(errors) == 1, errors
    assert a3.topic("status") in errors[0] and "user hg-a2" in errors[0], errors[0]
    assert "xanet agent: the broker refuses this agent's status topic" in log
    first_next, left = _read_spool(spool)
    assert first_next >= 2 and left == set(range(first_next))  # nothing acknowledged
    broker_log = d.broker.log_path.read_text()
    assert f"Denied PUBLISH from hg-a2 (d0, q1, r1, m1, '{a3.topic('status')}'" in broker_log

    path.write_text(config(a3))
    got: list[wire.Telemetry] = []
    async with d.collector_client("t-count") as sub:
        await sub.subscribe(a3.topic(), qos=1)
        await sub.subscribe(a3.topic("batch"), qos=1)
        log_lines = len(d.broker.log_path.read_text().splitlines())
        reader = asyncio.create_task(_read_telemetry(sub, got))
        right = Subprogram("agent", path, env=env).start()
        try:
            await wait_for(lambda: set(range(first_next)) <= {t.seq for t in got}
                           and len({t.seq for t in got}) >= first_next + 4, 60,
                           "the refused run's polls and live ones")
        finally:
            assert await asyncio.to_thread(right.stop) == 0, right.log()
        await _quiet(got)  # whatever was acknowledged was routed before its PUBACK
        reader.cancel()
        per_message = ((len(d.broker.log_path.read_text().splitlines()) - log_lines)
                       / len(got))
    final_next, left = _read_spool(spool)
    seqs = Counter(t.seq for t in got)
    assert max(seqs.values()) == 1  # nothing doubled
    assert set(seqs) | left == set(range(final_next))  # nothing lost
    # Routed but stopped before its PUBACK was read: it goes again at the next start, a
    # duplicate the collector recognises by its sequence number.
    assert len(set(seqs) & left) <= 8  # mqtt.max_inflight
    assert set(range(first_next)) <= set(seqs)  # the refused run's polls arrived
    polls = Counter((p.device, p.ts) for t in got for p in t.polls)
    assert max(polls.values()) == 1
    assert {t.instance for t in got} - {None} and all(t.agent == "hg-a3" for t in got)
    print(f"MEASURE broker log with log_type debug: {per_message:.1f} lines per telemetry "
          "message (agent + subscriber, statuses and pings included)")


class _CountingPoller:
    """A device that answers at once (SNMP is not the point here)."""

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, target: SnmpTarget) -> RawPoll:
        self.polls += 1
        return RawPoll(device=target.device, sys_uptime_cs=100 * self.polls, rtt_s=0.001,
                       interfaces=())

    def close(self) -> None:
        pass


async def test_refused_telemetry_stays_in_the_spool_until_the_acl_is_fixed(
    deployment: Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """The broker lets hg-a4 publish its status but not its telemetry (an ACL line
    missing): every telemetry publish is answered 135 over MQTT v5, nothing leaves the
    spool, publishing stops (no hot loop: one retry per reconnect_max_s), one error names
    the topic and the user, the status says it. Once the ACL is fixed (SIGHUP) every poll
    arrives, once."""
    d = deployment
    commune, site = SITE_D
    a4 = issue(d.etc, tmp_path / "hg-a4", "hg-a4", commune, site)
    acl = d.etc / "acl"
    full = acl.read_text()
    acl.write_text(full.replace(f"topic write {a4.topic()}\n", ""))
    assert d.broker.pid is not None
    os.kill(d.broker.pid, signal.SIGHUP)
    cfg = AgentConfig.model_validate(agent_config(
        agent_id="hg-a4", province=PROVINCE, commune=commune, site=site,
        mqtt_port=d.broker.port, spool_path=tmp_path / "a4.sqlite3", interval_s=1.0,
        devices=[{"id": f"dev-{i}", "host": "192.0.2.1", "snmp": {
            "version": "2c", "community": {"file": str(a4.out / "mqtt.password")}}}
            for i in range(2)],
        mqtt={"tls": True, "ca_file": str(a4.out / "ca.crt"), "username": "hg-a4",
              "password": {"file": str(a4.out / "mqtt.password")},
              "reconnect_min_s": 0.5, "reconnect_max_s": 2.0}))
    agent = Agent(cfg, poller=_CountingPoller())
    caplog.set_level(logging.WARNING, logger="xanet.agent")
    statuses: list[wire.Status] = []
    got: list[wire.Telemetry] = []

    async def read(sub: aiomqtt.Client) -> None:
        async for m in sub.messages:
            assert isinstance(m.payload, bytes)
            msg = wire.decode(m.payload, "status" if str(m.topic).endswith("status")
                              else "telemetry")
            (statuses if isinstance(msg, wire.Status) else got).append(msg)  # type: ignore[arg-type]

    async with d.collector_client("t-a4") as sub:
        await sub.subscribe(a4.topic(), qos=1)
        await sub.subscribe(a4.topic("status"), qos=1)
        reader = asyncio.create_task(read(sub))
        async with running(agent):
            await wait_for(lambda: any(s.health and s.health.refused for s in statuses), 20,
                           "a status reporting the refusal")
            await asyncio.sleep(4)  # two retry periods
            assert agent.uplink.published == 0 and not got
            assert agent.spool.depth >= 4  # every poll kept
            assert agent.uplink.refused <= cfg.mqtt.max_inflight + 2  # no hot loop
            print(f"MEASURE refused telemetry: {agent.uplink.refused} refusal(s) counted, "
                  f"{agent.spool.depth} message(s) kept")
            refused = [s for s in statuses if s.health and s.health.refused]
            assert refused[-1].reason and "refused: broker refuses" in refused[-1].reason
            assert refused[-1].instance == agent.instance
            acl.write_text(full)
            os.kill(d.broker.pid, signal.SIGHUP)
            await wait_for(lambda: agent.uplink.refusal is None and agent.spool.depth == 0,
                           20, "delivery after the ACL was fixed")
            polled = agent.spool.next_seq
            await wait_for(lambda: len(got) >= polled, 20, "every message at the subscriber")
        reader.cancel()
    seqs = Counter(t.seq for t in got)
    assert set(range(polled)) <= set(seqs) and max(seqs.values()) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert a4.topic() in errors[0] and "user hg-a4" in errors[0] and "135" in errors[0]


async def test_two_boxes_with_one_identity_back_off_and_fire_no_false_offline(
    deployment: Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Two agent processes with hg-a1's credentials (a cloned SD card): each connection
    takes the other's session over. They see it, say so, back off (the delay no longer
    starts from the bottom), and the MQTT v5 Will Delay keeps the takeovers from firing
    the offline Last Will; their statuses carry two instance ids for the core to see."""
    d = deployment
    commune, site = SITE_A

    def box(name: str) -> Agent:
        return Agent(AgentConfig.model_validate(agent_config(
            agent_id="hg-a1", province=PROVINCE, commune=commune, site=site,
            mqtt_port=d.broker.port, spool_path=tmp_path / f"{name}.sqlite3", interval_s=1.0,
            devices=[{"id": "dev-0", "host": "192.0.2.1", "snmp": {
                "version": "2c", "community": {"file": str(d.a1.out / "mqtt.password")}}}],
            mqtt={"tls": True, "ca_file": str(d.a1.out / "ca.crt"), "username": "hg-a1",
                  "password": {"file": str(d.a1.out / "mqtt.password")},
                  "reconnect_min_s": 0.3, "reconnect_max_s": 3.0, "will_delay_s": 5})),
            poller=_CountingPoller())

    one, two = box("one"), box("two")
    caplog.set_level(logging.WARNING, logger="xanet.agent.uplink")
    statuses: list[wire.Status] = []

    async def read(sub: aiomqtt.Client) -> None:
        async for m in sub.messages:
            assert isinstance(m.payload, bytes)
            if not m.retain:
                msg = wire.decode(m.payload, "status")
                assert isinstance(msg, wire.Status)
                statuses.append(msg)

    async with d.collector_client("t-twins") as sub:
        await sub.subscribe(d.a1.topic("status"), qos=1)
        reader = asyncio.create_task(read(sub))
        async with running(one, two):
            await wait_for(lambda: one.uplink.taken_over + two.uplink.taken_over >= 2, 30,
                           "the takeovers seen")
            await asyncio.sleep(1.0)
            policy_attempts = max(one.uplink.policy.attempt, two.uplink.policy.attempt)
        # stopped cleanly: each says "stopped", none "connection lost"
        await asyncio.sleep(0.5)
        reader.cancel()
    lost = [s for s in statuses if s.reason == "connection lost (last will)"]
    assert lost == []  # no false offline from the takeovers
    assert {s.instance for s in statuses if s.state == "online"} == {one.instance,
                                                                     two.instance}
    assert policy_attempts >= 2  # backing off, not reconnecting from the bottom each time
    warnings = [r.getMessage() for r in caplog.records if "session taken over" in r.getMessage()]
    assert warnings and all("user hg-a1" in w for w in warnings)


async def test_identity_is_bound_to_credentials(deployment: Deployment) -> None:
    """With ``use_username_as_clientid``: hg-a1 connecting with the collector's client id
    or with hg-a2's neither kicks the collector nor fires hg-a2's Last Will, and cannot
    wipe the collector's persistent session (MQTT v5, clean start off)."""
    d = deployment
    session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    session.SessionExpiryInterval = 300

    def collector() -> aiomqtt.Client:
        return d.client("xanet-collector-main", COLLECTOR_USER, d.collector_password,
                        protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
                        properties=session)

    will = wire.encode(wire.Status(agent="hg-a2", site=d.a2.site, state="offline",
                                   reason="connection lost (last will)"))
    a2_status = d.a2.topic("status")
    offline = 0
    got: list[bytes] = []
    async with collector() as coll:
        await coll.subscribe("xanet/v1/#", qos=1)
        async with d.client("hg-a2", "hg-a2", d.a2.password,
                            protocol=aiomqtt.ProtocolVersion.V5,
                            will=aiomqtt.Will(a2_status, will, qos=1, retain=True)) as a2:
            for stolen in ("xanet-collector-main", "xanet-collector", "hg-a2"):
                async with d.client(stolen, "hg-a1", d.a1.password) as a1:
                    await a1.publish(d.a1.topic(), stolen.encode(), qos=1)
            await a2.publish(d.a2.topic(), b"marker", qos=1)
            async with asyncio.timeout(20):
                async for m in coll.messages:  # ends with an error if coll was kicked
                    assert isinstance(m.payload, bytes)
                    if m.retain:
                        continue
                    offline += str(m.topic) == a2_status
                    got.append(m.payload)
                    if m.payload == b"marker":
                        break
        # a2 said goodbye cleanly (DISCONNECT): its Will is dropped, not sent
    assert offline == 0
    assert got == [b"xanet-collector-main", b"xanet-collector", b"hg-a2", b"marker"]
    # The collector's session outlives its connection, and a clean-start connect with
    # its client id under other credentials cannot wipe it.
    async with d.client("xanet-collector-main", "hg-a1", d.a1.password,
                        protocol=aiomqtt.ProtocolVersion.V5, clean_start=True) as a1:
        for i in range(3):
            await a1.publish(d.a1.topic(), f"queued-{i}".encode(), qos=1)
    queued: list[bytes] = []
    async with collector() as coll:  # no subscribe: the session still has it
        async with asyncio.timeout(20):
            async for m in coll.messages:
                assert isinstance(m.payload, bytes)
                if not m.retain:
                    queued.append(m.payload)
                if len(queued) == 3:
                    break
    assert queued == [b"queued-0", b"queued-1", b"queued-2"]
    log = d.broker.log_path.read_text()
    assert "as xanet-collector-main" not in log  # the id sent is never the id used
    assert "as xanet-collector (p5, c0" in log


# --------------------------------------------------------------------------
# certificate identity


async def test_certificate_identity_replaces_the_password(pki: Pki, tmp_path: Path) -> None:
    """With ``require_certificate true`` and ``use_identity_as_username true`` (the
    README's certificate mode) a client needs a certificate from the CA; its CN is
    the user name the ACL applies to."""
    etc = tmp_path / "etc"
    init_etc(etc, pki)
    a3 = issue(etc, tmp_path / "hg-a3", "hg-a3", *SITE_A, "--cert", "--ca-key", str(pki.ca.key))
    coll_crt, coll_key = pki.ca.issue(tmp_path, COLLECTOR_USER, usage="clientAuth")
    stranger = pki.rogue_ca.issue(tmp_path, "hg-a3", usage="clientAuth")
    broker = SecureMosquitto(tmp_path / "broker", etc, pki.ca.cert,
                             client_certs=True, probe_cert=(coll_crt, coll_key))

    def client(name: str, cert: tuple[Path, Path] | None, *, tls12: bool = False,
               **kw: Any) -> aiomqtt.Client:
        cfg = MqttConfig(host=lab.HOST, port=broker.port, tls=True, ca_file=pki.ca.cert,
                         cert_file=cert[0] if cert else None,
                         key_file=cert[1] if cert else None)
        ctx = tls_context(cfg)
        assert ctx is not None
        if tls12:  # the broker's refusal of the client certificate ends the handshake itself
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return aiomqtt.Client(lab.HOST, broker.port, identifier=name, tls_context=ctx,
                              **kw)

    own = a3.topic()
    other = topics.build(PROVINCE, *SITE_B, "telemetry")
    with broker:
        for name, cert in [("no-cert", None), ("stranger", stranger)]:
            with pytest.raises(aiomqtt.MqttError, match=r"SSL|TLS"):
                async with client(f"t-{name}", cert, tls12=True, username="hg-a3",
                                  password=a3.password):
                    pass
        async with client("t-coll", (coll_crt, coll_key)) as coll:
            await coll.subscribe("xanet/v1/#", qos=1)
            agent_cert = (a3.out / "client.crt", a3.out / "client.key")
            async with client("t-a3", agent_cert) as a3c:  # no user name, no password
                await a3c.publish(other, b"not mine", qos=1)
                await a3c.publish(own, b"mine", qos=1)
            async with asyncio.timeout(20):
                async for m in coll.messages:
                    assert (str(m.topic), m.payload) == (own, b"mine")
                    break


SITE_E = ("00692", "lungcu-bts")  # agent hg-a5, issued in a test


async def test_an_acl_without_the_batch_line_gets_json(
    deployment: Deployment, tmp_path: Path,
) -> None:
    """hg-a5's ACL block reads the core's capability message but lacks its site's batch
    line (credentials edited by hand, or half-upgraded): the agent reads the announcement
    through the ACL, its first compact batch is refused (135), and it sends the backlog as
    JSON from then on - every message once, none lost."""
    from agent.spool import Spool
    from lab.backlog import site_backlog
    from xanet import capabilities, compact
    d = deployment
    commune, site = SITE_E
    a5 = issue(d.etc, tmp_path / "hg-a5", "hg-a5", commune, site)
    acl = d.etc / "acl"
    full = acl.read_text()
    acl.write_text(full.replace(f"topic write {a5.topic('batch')}\n", ""))
    assert d.broker.pid is not None
    os.kill(d.broker.pid, signal.SIGHUP)
    spool = Spool(tmp_path / "a5.sqlite3", max_messages=1000, max_age_s=86400, fsync="off")
    for m in site_backlog(n_dev=1, n_if=4, polls=6, agent="hg-a5", site=site,
                          t0=datetime.now(UTC) - timedelta(hours=1)):
        spool.put(a5.topic(), lambda seq, m=m: wire.encode(m.model_copy(
            update={"seq": seq, "sent": None, "instance": None})), time.time())
    spool.close()
    cfg = AgentConfig.model_validate(agent_config(
        agent_id="hg-a5", province=PROVINCE, commune=commune, site=site,
        mqtt_port=d.broker.port, spool_path=tmp_path / "a5.sqlite3", interval_s=60.0,
        devices=[{"id": "dev-0", "host": "192.0.2.1", "snmp": {
            "version": "2c", "community": {"file": str(a5.out / "mqtt.password")}}}],
        mqtt={"tls": True, "ca_file": str(a5.out / "ca.crt"), "username": "hg-a5",
              "password": {"file": str(a5.out / "mqtt.password")},
              "reconnect_min_s": 0.5, "reconnect_max_s": 1.0}))
    agent = Agent(cfg, poller=_CountingPoller())
    got: list[int] = []

    async def read(sub: aiomqtt.Client) -> None:
        async for m in sub.messages:
            assert isinstance(m.payload, bytes)
            assert str(m.topic) == a5.topic(), m.topic  # nothing on the batch topic
            msg = wire.decode(m.payload, "telemetry")
            assert isinstance(msg, wire.Telemetry)
            got.append(msg.seq)

    announce = capabilities.encode(capabilities.announce(compact.Limits()))
    async with d.collector_client("t-a5") as sub:
        try:
            await sub.publish(topics.CAPABILITIES, announce, qos=1, retain=True)
            await sub.subscribe(a5.topic(), qos=1)
            await sub.subscribe(a5.topic("batch"), qos=1)
            reader = asyncio.create_task(read(sub))
            async with running(agent):
                await wait_for(lambda: set(range(6)) <= set(got), 30, "the backlog as JSON")
            reader.cancel()
        finally:
            await sub.publish(topics.CAPABILITIES, b"", qos=1, retain=True)  # clear it
            acl.write_text(full)
            os.kill(d.broker.pid, signal.SIGHUP)
    assert agent.uplink.capabilities is not None and agent.uplink.capabilities.batches
    assert agent.uplink.batches_refused and agent.uplink.batches_sent == 0
    assert Counter(got)[0] == 1 and max(Counter(got).values()) == 1


def _partition_acl_example() -> str:
    """The partition blocks deploy/mosquitto/acl shows (commented), uncommented."""
    text = (DEPLOY / "acl").read_text()
    start = text.index("# user xanet-part-p08")
    block = text[start:text.index("\n\n", start)]
    return "\n".join(ln.removeprefix("#").strip() for ln in block.splitlines()) + "\n"


async def test_acl_partition_users_claim_renew_and_read_only_their_partition(
    deployment: Deployment,
) -> None:
    """The ACL example of docs/deploy-core.md, "Two collectors per partition": each
    member's own user claims the lease, the partition's data user renews it (and reads its
    provinces only); no other partition's lease is theirs."""
    d = deployment
    with (d.etc / "acl").open("a") as f:
        f.write("\n" + _partition_acl_example())
    users = {u: uuid.uuid4().hex for u in
             ("xanet-part-p08", "xanet-collector-p08-a", "xanet-collector-p08-b")}
    for user, password in users.items():
        add_user(d.etc / "passwd", user, password)
    os.kill(d.broker.pid, signal.SIGHUP)  # re-read passwd and acl, as the README says
    await asyncio.sleep(0.5)
    lease, other = "xanet/v1/core/lease/p08", "xanet/v1/core/lease/p09"
    marker = b'{"op":"renew","epoch":2,"holder":"a","ts":0}'
    got: list[tuple[str, bytes]] = []
    async with d.client("x", "xanet-part-p08", users["xanet-part-p08"]) as data, \
            d.client("y", "xanet-collector-p08-b", users["xanet-collector-p08-b"]) as b:
        await b.subscribe("xanet/v1/#", qos=1)
        await data.subscribe("xanet/v1/#", qos=1)
        async with d.client("z", "xanet-collector-p08-a", users["xanet-collector-p08-a"]) as a:
            await a.publish(lease, b"claim-a", qos=1)
            await a.publish(other, b"claim-other", qos=1)  # PUBACKed (3.1.1), dropped
            await a.publish("xanet/v1/08/x/y/telemetry", b"fake", qos=1)  # dropped
        async with d.agent_client(d.a1) as a1:  # province ha-giang: not the partition's
            await a1.publish(d.a1.topic(), b"not-p08", qos=1)
        await data.publish(lease, marker, qos=1)
        async with asyncio.timeout(20):
            async for m in b.messages:
                assert isinstance(m.payload, bytes)
                if not m.retain:
                    got.append((str(m.topic), m.payload))
                if m.payload == marker:
                    break
        seen_by_data: list[bytes] = []
        async with asyncio.timeout(20):
            async for m in data.messages:
                assert isinstance(m.payload, bytes)
                if not m.retain:
                    seen_by_data.append(m.payload)
                if m.payload == marker:
                    break
    assert got == [(lease, b"claim-a"), (lease, marker)]
    assert seen_by_data == [b"claim-a", marker]
