"""Where a device is: its host name resolved once per poll, for both witnesses.

A device's ``host`` may be an IP literal (no look-up at all) or a name. A name is
resolved once at every poll - so a renumbered device is followed - and the address
is used by SNMP and ICMP alike: both witnesses talk to the same box, and a name that
does not resolve fails the poll with cause ``resolve`` (no SNMP, no ping sent).
The look-up runs in the event loop's resolver thread pool (``loop.getaddrinfo``),
never on the loop itself, and is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Protocol


class Resolver(Protocol):
    """The name-resolution port: :class:`SystemResolver`, or a fake in unit tests."""

    async def resolve(self, host: str, timeout_s: float) -> str:
        """``host`` as an IP literal; raises ``OSError`` (``socket.gaierror``) when it
        does not resolve, ``TimeoutError`` when the look-up takes longer than ``timeout_s``."""
        ...


def literal(host: str) -> str | None:
    """``host`` as a normalised IP literal, or None when it is a name."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class SystemResolver:
    """The system's resolver (``getaddrinfo``): IPv4 preferred, IPv6 when a name has only that."""

    async def resolve(self, host: str, timeout_s: float) -> str:
        address = literal(host)
        if address is not None:
            return address
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        if not infos:
            raise socket.gaierror(socket.EAI_NODATA, f"no address for {host}")
        infos.sort(key=lambda info: info[0] != socket.AF_INET)  # IPv4 first, as before
        return str(infos[0][4][0])
