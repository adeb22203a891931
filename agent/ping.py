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

One socket per ping, as icmplib does it. A datagram socket only ever receives its own
replies (the kernel matches them by the echo identifier). A raw socket receives a copy
of every ICMP packet the host gets, so with k pings in flight each reply would be read
and parsed k times (measured: 669 us of CPU per echo at 64 in flight against 74 us with
datagram sockets, bench/ping_cost.py); each raw socket therefore gets a classic BPF
filter that lets the kernel pass it only echo replies carrying its own identifier.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import random
import socket
import struct
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import icmplib  # type: ignore[import-untyped]  # ships no type information

from agent.errors import AgentError
from xanet import wire

log = logging.getLogger("xanet.agent.ping")

SocketKind = Literal["datagram", "raw"]

_SO_ATTACH_FILTER: Final = 26  # linux/asm-generic/socket.h
# Classic BPF (linux/filter.h): (code, jt, jf, k) per instruction; "accept" = 0xffff bytes.
_ECHO_REPLY_V4: Final = 0
_ECHO_REPLY_V6: Final = 129


def _filter_v4(ident: int) -> list[tuple[int, int, int, int]]:
    """Raw IPv4 ICMP sockets see the IP header: ICMP type at 4*IHL, identifier at +4."""
    return [
        (0xB1, 0, 0, 0),                # ldxb 4*([0]&0xf)   X = IP header length
        (0x50, 0, 0, 0),                # ldb [x+0]          A = ICMP type
        (0x15, 0, 3, _ECHO_REPLY_V4),   # jeq #0 ? next : drop
        (0x48, 0, 0, 4),                # ldh [x+4]          A = identifier
        (0x15, 0, 1, ident),            # jeq #ident ? accept : drop
        (0x06, 0, 0, 0xFFFF),           # accept
        (0x06, 0, 0, 0),                # drop
    ]


def _filter_v6(ident: int) -> list[tuple[int, int, int, int]]:
    """Raw ICMPv6 sockets see the ICMPv6 message only: type at 0, identifier at 4."""
    return [
        (0x30, 0, 0, 0),                # ldb [0]
        (0x15, 0, 3, _ECHO_REPLY_V6),   # jeq #129 ? next : drop
        (0x28, 0, 0, 4),                # ldh [4]
        (0x15, 0, 1, ident),
        (0x06, 0, 0, 0xFFFF),
        (0x06, 0, 0, 0),
    ]


def only_own_replies(sock: socket.socket, family: int, ident: int) -> bool:
    """Attach the BPF filter to a raw ICMP socket; False where the kernel refuses it
    (not Linux): then the socket just reads more, the answers stay right."""
    program = _filter_v6(ident) if family == socket.AF_INET6 else _filter_v4(ident)
    code = ctypes.create_string_buffer(
        b"".join(struct.pack("HBBI", *insn) for insn in program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(code))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


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
        #: per address family: the socket kind that works here (None: none does)
        self._kinds: dict[int, SocketKind | None] = {}
        #: per address family where ICMP is unavailable: why (logged once)
        self.unavailable: dict[int, str] = {}
        self._next_ident = random.randrange(1 << 16)

    def kind(self, family: int) -> SocketKind | None:
        """``"datagram"`` or ``"raw"`` for ``family``; None when ICMP is unavailable here
        (:attr:`unavailable` says why). Found at the first call, logged once, cached."""
        if family in self._kinds:
            return self._kinds[family]
        sock_class = icmplib.ICMPv6Socket if family == socket.AF_INET6 else icmplib.ICMPv4Socket
        found: SocketKind | None = None
        problems = []
        for kind, privileged in (("datagram", False), ("raw", True)):
            try:
                sock_class(privileged=privileged).close()
            except icmplib.ICMPLibError as exc:
                problems.append(f"{kind}: {exc}")
                continue
            found = "datagram" if kind == "datagram" else "raw"
            break
        name = "ICMPv6" if family == socket.AF_INET6 else "ICMP"
        if found is not None:
            log.info("%s echo witness: %s sockets", name, found)
        else:
            self.unavailable[family] = (
                f"{name} echo unavailable ({'; '.join(problems)}): allow the agent's group in "
                "net.ipv4.ping_group_range, or give it CAP_NET_RAW; polls carry no ping")
            log.error("%s", self.unavailable[family])
        self._kinds[family] = found
        return found

    async def ping(self, address: str) -> wire.PingResult | None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        kind = self.kind(family)
        if kind is None:  # why not is logged once, by kind()
            return None
        try:
            sent, rtts_ms = await self._echo(address, family, kind)
        except icmplib.ICMPLibError as exc:  # the socket could not be made
            raise PingError(f"ICMP echo to {address} failed: {exc}") from exc
        if sent < 1:  # every send failed (no route, a filter on this host)
            raise PingError(f"ICMP echo to {address}: no request could be sent")
        received = min(len(rtts_ms), sent)
        return wire.PingResult(
            sent=sent, received=received,
            rtt_ms=round(sum(rtts_ms) / len(rtts_ms), 3) if rtts_ms else None,
        )

    async def _echo(self, address: str, family: int, kind: SocketKind) -> tuple[int, list[float]]:
        """icmplib's ``async_ping``, with the BPF filter on raw sockets: (sent, RTTs in ms)."""
        p = self.policy
        ident = self._next_ident = (self._next_ident + 1) & 0xFFFF
        sock_class = icmplib.ICMPv6Socket if family == socket.AF_INET6 else icmplib.ICMPv4Socket
        icmp = sock_class(privileged=kind == "raw")
        if kind == "raw":
            only_own_replies(icmp.sock, family, ident)
        sent, rtts_ms = 0, []
        with icmplib.AsyncSocket(icmp) as sock:
            for sequence in range(p.count):
                if sequence:
                    await asyncio.sleep(p.interval_s)
                request = icmplib.ICMPRequest(destination=address, id=ident, sequence=sequence)
                try:
                    sock.send(request)
                    sent += 1
                    reply = await sock.receive(request, p.timeout_s)
                    reply.raise_for_status()
                except icmplib.ICMPLibError:  # not sent, no reply in time, or an ICMP error
                    continue
                rtts_ms.append((reply.time - request.time) * 1000)
        return sent, rtts_ms
