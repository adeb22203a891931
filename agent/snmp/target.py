"""What the poller knows of one device: address, credentials, bounds, backend choice. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from agent.credentials import BackendChoice, SnmpV2c, SnmpV3

#: The wire's bound on interfaces per device poll: the default row bound of a walk.
MAX_ROWS: Final = 4096
#: Default bound on what one walk may hold (estimated bytes, see
#: :func:`agent.snmp.walk.cell_cost`).
MAX_WALK_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    device: str
    host: str
    credentials: SnmpV2c | SnmpV3
    port: int = 161
    timeout_s: float = 2.0
    retries: int = 1
    max_repetitions: int = 25  # GETBULK max-repetitions (rows per request)
    max_rows: int = MAX_ROWS  # interface rows kept; rows beyond are discarded and counted
    max_walk_bytes: int = MAX_WALK_BYTES  # a walk holding more fails with cause "limit"
    backend: BackendChoice = "auto"  # "pysnmp": never the lean codec for this device
    interfaces: bool = True  # walk the interface table (its profiles name if-mib)

    @property
    def max_walk_requests(self) -> int:
        """GETBULKs an honest walk of ``max_rows`` rows can need, twice, plus slack.

        Every request advances each column by ``max_repetitions`` rows, so a walk of at
        most ``max_rows`` rows ends within ``ceil(max_rows / max_repetitions) + 1``;
        more means the device sends rows that are not rows (endless instances).
        """
        return 2 * -(-self.max_rows // self.max_repetitions) + 16

    @property
    def address(self) -> str:
        """``host:port``, IPv6 literals in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False
