"""The agent's ICMP echo edge: the second witness of a device's reachability.

SNMP alone cannot tell a dead device from a live one that will not answer SNMP (a
wrong v2c community, an SNMP ACL, a filtered port: all are silence). So every poll
also sends a few ICMP echo requests to the same address, concurrently with SNMP,
and the poll carries what came back (:class:`xanet.wire.PingResult`); the collector
decides with both witnesses (docs/availability.md).

icmplib does the packets, asynchronously (its sockets are non-blocking and read
through the event loop, so a ping never blocks the loop). Which socket: a datagram
ICMP socket where the kernel allows it for our group (``net.ipv4.ping_group_range``,
systemd's default opens it to every group), else a raw socket (root or CAP_NET_RAW).
The choice is made once per address family, at the first ping, and logged. When
neither is allowed, that is logged once, clearly, and polls carry no ``ping``:
the agent keeps polling SNMP.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Literal, Protocol

import icmplib  # type: ignore[import-untyped]  # ships no type information

from agent.errors import AgentError
from xanet import wire

log = logging.getLogger("xanet.agent.ping")

SocketKind = Literal["datagram", "raw"]


class PingError(AgentError):
    """Echo requests to one address could not be sent (the caller logs it, with the device)."""


class Pinger(Protocol):
    """The ICMP port: :class:`IcmpPinger`, or a fake in unit tests."""

    async def ping(self, address: str) -> wire.PingResult | None:
        """Echo ``address`` (an IP literal); None when ICMP is unavailable on this host
        (logged once by the pinger); raises :class:`PingError` for this address only."""
        ...


@dataclass(frozen=True, slots=True)
class PingPolicy:
    count: int = 2
    interval_s: float = 0.2
    timeout_s: float = 1.0


class IcmpPinger:
    """Pings with icmplib: ``count`` echo requests, ``timeout_s`` each, ``interval_s`` apart."""

    def __init__(self, policy: PingPolicy) -> None:
        self.policy = policy
        #: per address family: the socket kind that works here, or the reason none does
        self._kinds: dict[int, SocketKind | str] = {}

    def kind(self, family: int) -> SocketKind | str:
        """``"datagram"`` or ``"raw"`` for ``family``, or why ICMP is unavailable (cached)."""
        known = self._kinds.get(family)
        if known is not None:
            return known
        sock_class = icmplib.ICMPv6Socket if family == socket.AF_INET6 else icmplib.ICMPv4Socket
        found: SocketKind | str = "no ICMP socket"
        problems = []
        for kind, privileged in (("datagram", False), ("raw", True)):
            try:
                sock_class(privileged=privileged).close()
            except icmplib.ICMPLibError as exc:
                problems.append(f"{kind}: {exc}")
                continue
            found = kind
            break
        name = "ICMPv6" if family == socket.AF_INET6 else "ICMP"
        if found in ("datagram", "raw"):
            log.info("%s echo witness: %s sockets", name, found)
        else:
            found = (f"{name} echo unavailable ({'; '.join(problems)}): allow the agent's "
                     "group in net.ipv4.ping_group_range, or give it CAP_NET_RAW; polls carry "
                     "no ping")
            log.error("%s", found)
        self._kinds[family] = found
        return found

    async def ping(self, address: str) -> wire.PingResult | None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        kind = self.kind(family)
        if kind not in ("datagram", "raw"):
            return None
        p = self.policy
        try:
            host = await icmplib.async_ping(
                address, count=p.count, interval=p.interval_s, timeout=p.timeout_s,
                privileged=kind == "raw",
            )
        except icmplib.ICMPLibError as exc:  # the socket could not be made or used
            raise PingError(f"ICMP echo to {address} failed: {exc}") from exc
        if host.packets_sent < 1:  # every send failed (no route, a filter on this host)
            raise PingError(f"ICMP echo to {address}: no request could be sent")
        received = min(host.packets_received, host.packets_sent)
        return wire.PingResult(
            sent=host.packets_sent, received=received,
            rtt_ms=round(host.avg_rtt, 3) if received else None,
        )
