"""A regional Mosquitto bridged to a core broker over a link the test cuts and heals.

The bridge is ``deploy/mosquitto/bridge.conf``, filled in as ``issue-bridge-credentials.sh``
fills it (:func:`bridge_section`), with the test's keepalive (5 s: Mosquitto's least for a
bridge) and retry timers, and the deployed regional.conf's in-flight and queue bounds. Two
namespaces, made by :class:`lab.netns.Lab` (so the traffic stays inside them and 127.0.0.0/8):

    region  ──veth──  core  ──relay (unix socket)──  root's 127.0.0.1:core broker

* **region**: the regional broker on the region's 127.0.0.1 and the test's publishers
  (the sites), which reach it over the region's loopback: a cut never touches them.
* **core**: a TCP relay on its veth address to the core broker in the root namespace,
  where the collector and InfluxDB run on loopback.

A **cut** is nftables dropping every packet that arrives on either end of the veth pair
(``Netns.drop()`` in both namespaces): the bridge's TCP connection stays open and sees
nothing, as over a dead WAN link, until its keepalive gives up; its reconnection attempts
go unanswered until :meth:`BridgedRegion.heal`.

    with BridgedRegion(tmp, core.port, provinces=["ha-giang"]) as region:
        region.region.call(asyncio.run, publish(region.broker.port))   # a site, inside
        region.cut(); ...; region.heal()
        region.wait_bridged()
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from lab.base import ServiceError
from lab.mosquitto import MQTT_CONNECT_PROBE, Mosquitto
from lab.netns import Lab, Netns

ROOT = Path(__file__).resolve().parent.parent
BRIDGE_TEMPLATE = ROOT / "deploy" / "mosquitto" / "bridge.conf"
REGIONAL_CONF = ROOT / "deploy" / "mosquitto" / "regional.conf"
CORE_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
#: what the lab's regional broker takes from the deployed regional.conf
BOUNDS = ("max_inflight_messages ", "max_queued_messages ", "max_queued_bytes ")
KINDS_OUT = ("telemetry", "status", "test", "batch")
#: the bridge's TLS options (dropped for a plain test core)
TLS_OPTIONS = ("bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_keyfile",
               "bridge_tls_version", "bridge_insecure")


def topic_lines(provinces: list[str]) -> str:
    """The bridge's ``out`` lines: each province's four site topics, QoS 1 (as the script)."""
    return "\n".join(f"topic xanet/v1/{p}/+/+/{kind} out 1"
                     for p in provinces for kind in KINDS_OUT)


def regional_bounds() -> str:
    """The deployed regional broker's in-flight and queue bounds (regional.conf's lines)."""
    return _bounds(REGIONAL_CONF)


def core_bounds() -> str:
    """The deployed core broker's in-flight and queue bounds (mosquitto.conf's lines): what
    a regional backlog meets at the core (the collector's queue)."""
    return _bounds(CORE_CONF)


def _bounds(conf: Path) -> str:
    return "\n".join(ln for ln in conf.read_text().splitlines() if ln.startswith(BOUNDS))


def bridge_section(template: str, *, region: str, core_host: str, core_port: int,
                   provinces: list[str], password: str = "", tls: bool = True,
                   keepalive_s: int | None = None, restart_s: str | None = None) -> str:
    """``deploy/mosquitto/bridge.conf`` filled in for one region. ``tls=False`` drops the
    ``bridge_*`` TLS lines (a plain test core), an empty password the credential line;
    ``keepalive_s``/``restart_s`` replace the production timers (tests cut for seconds)."""
    text = (template.replace("@REGION@", region).replace("@CORE_HOST@", core_host)
            .replace("@CORE_PORT@", str(core_port)).replace("@PASSWORD@", password)
            .replace("@TOPICS@", topic_lines(provinces)))
    lines = text.splitlines()
    if not tls:
        lines = [ln for ln in lines if not ln.startswith(TLS_OPTIONS)]
    if not password:
        lines = [ln for ln in lines if not ln.startswith("remote_password")]
    if keepalive_s is not None:
        lines = [f"keepalive_interval {keepalive_s}" if ln.startswith("keepalive_interval ")
                 else ln for ln in lines]
    if restart_s is not None:
        lines = [f"restart_timeout {restart_s}" if ln.startswith("restart_timeout ")
                 else ln for ln in lines]
    left = re.findall(r"@[A-Z_]+@", "\n".join(lines))
    if left:
        raise ValueError(f"bridge.conf has fields this lab does not fill: {left}")
    return "\n".join(lines) + "\n"


class NetnsMosquitto(Mosquitto):
    """Mosquitto inside a namespace, on that namespace's 127.0.0.1 (lab.mosquitto's config).
    Readiness: an MQTT CONNACK (accepted or not), probed from a thread inside the namespace."""

    def __init__(self, workdir: str | os.PathLike[str], ns: Netns, *, extra_conf: str = "",
                 port: int = 1883) -> None:
        super().__init__(workdir, port, extra_conf)
        self.ns = ns

    def _command(self) -> list[str]:
        return self.ns.wrap(super()._command())

    def _ready(self) -> bool:
        return self.ns.call(_probe, self.host, self.port)


def _probe(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as s:
            s.sendall(MQTT_CONNECT_PROBE)
            ack = s.recv(4)
            s.sendall(b"\xe0\x00")
            return ack[:1] == b"\x20"  # refused (a broker wanting logins) is ready too
    except OSError:
        return False


class BridgedRegion:
    """The region and core namespaces, the relay to the core broker and the regional
    broker bridged through it; :meth:`close` stops and removes them all.

    The regional broker has the deployed bounds (:func:`regional_bounds`), then
    ``regional_conf`` (a later line wins: e.g. ``max_inflight_messages 1``), then the
    bridge; ``password`` logs the bridge in on the core (as ``xanet-bridge-{region}``)."""

    def __init__(self, workdir: Path, core_port: int, *, provinces: list[str],
                 region: str = "test-region", keepalive_s: int = 5, restart_s: str = "1 1",
                 regional_conf: str = "", password: str = "") -> None:
        self.lab = Lab()
        try:
            self.region, self.core = self.lab.netns("region"), self.lab.netns("core")
            _, self.core_ip = self.lab.link(self.region, self.core)
            relay = self.lab.relay_to_root(self.core, core_port, bind=self.core_ip)
            self.bridge_name = f"xanet-bridge-{region}"
            bridge = bridge_section(
                BRIDGE_TEMPLATE.read_text(), region=region, core_host=self.core_ip,
                core_port=relay.port, provinces=provinces, password=password, tls=False,
                keepalive_s=keepalive_s, restart_s=restart_s)
            self.broker = NetnsMosquitto(
                workdir / "regional", self.region,
                extra_conf=f"{regional_bounds()}\n{regional_conf}\nlog_type debug\n{bridge}")
            self.broker.start()
        except BaseException:
            self.lab.close()
            raise

    def cut(self) -> None:
        """Every packet between the region and the core dropped on arrival (both ways)."""
        self.region.drop()
        self.core.drop()

    def heal(self) -> None:
        self.region.undrop()
        self.core.undrop()

    def bridge_connections(self) -> int:
        """How many times the bridge connected so far (its log's CONNACKs from the core)."""
        return self.broker.log_path.read_text(errors="replace").count(
            "Received CONNACK on connection ")

    def wait_bridged(self, after: int = 0, timeout_s: float = 30.0) -> None:
        """Wait until the bridge connected more than ``after`` times."""
        deadline = time.monotonic() + timeout_s
        while self.bridge_connections() <= after:
            if time.monotonic() > deadline:
                raise ServiceError(f"bridge not connected after {timeout_s:.0f}s:\n"
                                   f"{self.broker.log_tail()}")
            time.sleep(0.05)

    def rss_bytes(self) -> int:
        """The regional broker's resident memory (from /proc)."""
        if self.broker.pid is None:
            raise ServiceError("the regional broker is not running")
        # ``ip netns exec`` execs its command: the launcher's pid is the broker's.
        for line in Path(f"/proc/{self.broker.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def close(self) -> None:
        try:
            self.broker.stop()
        finally:
            self.lab.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


__all__ = ["BridgedRegion", "NetnsMosquitto", "bridge_section", "core_bounds", "regional_bounds",
           "topic_lines"]
