"""A site's thin uplink, really: a rate-limited (``tc tbf``), optionally lossy (nftables) link
between a site namespace and the core, with its bytes counted on the wire.

Three namespaces, made by :class:`lab.netns.Lab` (so everything stays inside them and
127.0.0.0/8; the root namespace gets no interface):

    site  ──veth──  wan  ──veth──  core  ──relay (unix socket)──  root's 127.0.0.1:broker

* **site**: the agent and its devices (snmpsim on the site's 127.0.0.1: SNMP stays local).
* **wan**: the modem/radio hop. It forwards, and its two egress qdiscs are the thin link:
  ``tbf rate R`` towards the core (uplink) and towards the site (downlink). The bottleneck
  is one hop away from the agent, as a real modem is, so the agent's TCP learns of it by
  loss and delay, not by a local qdisc refusing its packets.
* **core**: a TCP relay on its veth address to the broker in the root namespace, where the
  collector and InfluxDB run on loopback.

Loss (``loss_pct``) is an nftables ``numgen random`` drop on the *ingress* of each far end
(the core's veth for uplink packets, the site's for downlink ones): the packet crossed the
thin link, used its time, and is lost on arrival - a radio's loss, seen by TCP as loss.
(A drop in a sender's own output hook would be reported to its TCP as a local error and
retried at once: no loss at all.) ``netem`` is not available on this machine.

**tbf parameters**: ``burst`` 1,600 bytes (one full-size frame: below that a 1,514-byte
frame could never pass; above it the link would send short bursts faster than its rate),
``latency`` 500 ms (the queue holds half a second of the rate, 4 kB at 64 kbit/s - a small
modem buffer: more only adds the same delay to every packet, less makes TCP lose its
window to tail drops). Every veth has ``gso_max_segs 1``: no 64 kB GSO super-packets, so
each packet on the link is one frame, as on a real one, and a random drop drops one frame.

**Bytes on the wire** are the kernel's counters of the wan's egress devices (every frame
the thin link carried, Ethernet header included, retransmissions and lost frames too).

    with ThinLink(rate_kbit=64, loss_pct=5) as link:
        relay_port = link.expose(broker.port)            # core_ip:relay_port -> broker
        link.site.popen([...agent...])                   # the agent inside the site
        before = link.counters(); ...; used = link.counters() - before
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from lab.netns import Lab, Netns, NetnsError

#: tbf's bucket: one full-size Ethernet frame (1,514 bytes) and a little.
TBF_BURST_BYTES = 1600
#: tbf's queue, as the time it takes to send it at the link's rate.
TBF_LATENCY_MS = 500


@dataclass(frozen=True)
class LinkBytes:
    """What the thin link carried: frames' bytes and counts, each direction."""

    up_bytes: int
    down_bytes: int
    up_packets: int
    down_packets: int

    def __sub__(self, other: LinkBytes) -> LinkBytes:
        return LinkBytes(self.up_bytes - other.up_bytes, self.down_bytes - other.down_bytes,
                         self.up_packets - other.up_packets,
                         self.down_packets - other.down_packets)


def tbf_command(dev: str, rate_kbit: float) -> list[str]:
    """The ``tc`` command line that makes ``dev``'s egress a ``rate_kbit`` link."""
    return ["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{rate_kbit:g}kbit",
            "burst", str(TBF_BURST_BYTES), "latency", f"{TBF_LATENCY_MS}ms"]


def loss_ruleset(dev: str, loss_pct: float) -> str:
    """nftables: drop ``loss_pct`` % of the packets arriving on ``dev`` (netdev ingress).
    ``numgen random mod 1000`` gives 0.1 % steps."""
    per_mille = round(loss_pct * 10)
    return ("table netdev xanet_loss {\n"
            "  chain ingress {\n"
            f'    type filter hook ingress device "{dev}" priority 0; policy accept;\n'
            f"    numgen random mod 1000 < {per_mille} counter drop\n"
            "  }\n"
            "}\n")


class ThinLink:
    """The site, wan and core namespaces joined by a thin link; :meth:`close` removes all."""

    def __init__(self, *, rate_kbit: float = 64.0, loss_pct: float = 0.0) -> None:
        if rate_kbit <= 0:
            raise ValueError(f"rate_kbit must be > 0, not {rate_kbit}")
        if not 0 <= loss_pct < 100:
            raise ValueError(f"loss_pct must be in [0, 100), not {loss_pct}")
        self.rate_kbit = rate_kbit
        self.loss_pct = loss_pct
        self.lab = Lab()
        try:
            self.site, self.wan, self.core = (self.lab.netns(t) for t in ("site", "wan", "core"))
            self.site_ip, wan_site_ip = self.lab.link(self.site, self.wan)
            _, self.site_dev, _, self.wan_down_dev = self.lab.links[-1]
            wan_core_ip, self.core_ip = self.lab.link(self.wan, self.core)
            _, self.wan_up_dev, _, self.core_dev = self.lab.links[-1]
            for ns, dev in ((self.site, self.site_dev), (self.wan, self.wan_down_dev),
                            (self.wan, self.wan_up_dev), (self.core, self.core_dev)):
                ns.run(["ip", "link", "set", "dev", dev, "gso_max_segs", "1"])
            self.wan.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            self.site.run(["ip", "route", "add", f"{self.core_ip}/32", "via", wan_site_ip])
            self.core.run(["ip", "route", "add", f"{self.site_ip}/32", "via", wan_core_ip])
            self.wan.run(tbf_command(self.wan_up_dev, rate_kbit))
            self.wan.run(tbf_command(self.wan_down_dev, rate_kbit))
            if loss_pct:
                self.core.run(["nft", "-f", "-"], input_text=loss_ruleset(self.core_dev, loss_pct))
                self.site.run(["nft", "-f", "-"], input_text=loss_ruleset(self.site_dev, loss_pct))
        except BaseException:
            self.lab.close()
            raise

    def expose(self, root_port: int, port: int | None = None) -> int:
        """The root namespace's 127.0.0.1:``root_port`` (the broker) reachable from the site
        at ``core_ip``:port, over the thin link. Returns the port."""
        return self.lab.relay_to_root(self.core, root_port, port, bind=self.core_ip).port

    def _dev_stats(self, dev: str) -> tuple[int, int]:
        out = self.wan.run(["ip", "-j", "-s", "link", "show", "dev", dev]).stdout
        tx = json.loads(out)[0]["stats64"]["tx"]
        return int(tx["bytes"]), int(tx["packets"])

    def counters(self) -> LinkBytes:
        """Frames the thin link carried so far, up (site → core) and down."""
        up_bytes, up_packets = self._dev_stats(self.wan_up_dev)
        down_bytes, down_packets = self._dev_stats(self.wan_down_dev)
        return LinkBytes(up_bytes, down_bytes, up_packets, down_packets)

    def dropped(self) -> int:
        """Packets the loss rules dropped so far (both directions)."""
        total = 0
        for ns in (self.core, self.site):
            if not self.loss_pct:
                continue
            out = ns.run(["nft", "-j", "list", "table", "netdev", "xanet_loss"]).stdout
            for item in json.loads(out)["nftables"]:
                for expr in item.get("rule", {}).get("expr", []):
                    if "counter" in expr:
                        total += int(expr["counter"]["packets"])
        return total

    def close(self) -> None:
        self.lab.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


__all__ = ["LinkBytes", "Netns", "NetnsError", "ThinLink", "loss_ruleset", "tbf_command"]
