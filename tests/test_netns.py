"""lab/netns.py itself: namespaces joined by a veth, nftables faults, a relay, cleanup.

Every packet here is sent from inside the namespaces the test created.
"""

from __future__ import annotations

import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import icmplib
import pytest

from lab import OID_SYS_UPTIME, snmp_env
from lab.netns import Lab, Netns, NetnsSnmpd, lab_skip_reason

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(lab_skip_reason() is not None, reason=lab_skip_reason() or ""),
]


def _ping(host: str) -> int:
    """Echo replies received (raw ICMP socket: the test runs as root)."""
    return int(icmplib.ping(host, count=1, timeout=0.3, privileged=True).packets_received)


def _snmp_answers(ns: Netns, host: str, community: str) -> bool:
    out = ns.run(["snmpget", "-v2c", "-c", community, "-t", "0.3", "-r", "0", "-On", "-Oq",
                      f"udp:{host}:161", OID_SYS_UPTIME], check=False, env=snmp_env())
    return out.returncode == 0


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                          check=True).stdout


def test_veth_nft_faults_and_cleanup(tmp_path: Path) -> None:
    with Lab() as lab:
        site, dev = lab.netns("site"), lab.netns("dev")
        site_ip, dev_ip = lab.link(site, dev)
        assert site.name in _namespaces() and dev.name in _namespaces()
        snmpd = NetnsSnmpd(tmp_path / "snmpd", dev, dev_ip).start()
        try:
            assert site.call(_ping, dev_ip) == 1
            assert dev.call(_ping, site_ip) == 1
            assert _snmp_answers(site, dev_ip, snmpd.community)
            # The root namespace has no route to the namespaces' addresses at all.
            assert dev_ip not in subprocess.run(["ip", "-4", "addr"], capture_output=True,
                                                text=True, check=True).stdout

            dev.drop(proto="udp", dport=161)  # SNMP filtered, the host still answers ping
            assert not _snmp_answers(site, dev_ip, snmpd.community)
            assert site.call(_ping, dev_ip) == 1

            dev.undrop()
            assert _snmp_answers(site, dev_ip, snmpd.community)

            dev.drop()  # everything: really unreachable
            assert site.call(_ping, dev_ip) == 0
            assert not _snmp_answers(site, dev_ip, snmpd.community)
            # loopback inside the namespace is never cut
            assert dev.call(_ping, "127.0.0.1") == 1

            dev.undrop()
            lab.set_link(site, dev, up=False)  # the cable cut instead of a filter
            assert site.call(_ping, dev_ip) == 0
            lab.set_link(site, dev, up=True)
            assert site.call(_ping, dev_ip) == 1
        finally:
            snmpd.stop()
        names = (site.name, dev.name)
    listing = _namespaces()
    assert not any(n in listing for n in names), listing


class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline().upper())


def test_relay_reaches_root_loopback(lab: Lab) -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root_port = server.server_address[1]
        ns = lab.netns("agent")
        relay = lab.relay_to_root(ns, root_port, port=18830)

        def talk() -> bytes:
            with socket.create_connection(("127.0.0.1", relay.port), timeout=3) as s:
                s.sendall(b"hello from the namespace\n")
                return s.makefile("rb").readline()

        assert ns.call(talk) == b"HELLO FROM THE NAMESPACE\n"
        # The same port in the root namespace is not the relay (nothing listens there).
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", 18830), timeout=1).close()
    finally:
        server.shutdown()
        server.server_close()
