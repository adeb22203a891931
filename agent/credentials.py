"""SNMP credentials as the poller uses them, and the rules every credential obeys. Pure.

The agent's config (:mod:`agent.config`) validates what a person wrote against these
rules, and builds these objects from it; the SNMP backends only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

AuthProtocol = Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5"]
PrivProtocol = Literal["AES", "AES192", "AES256", "DES"]
#: Which code carries a device's SNMP exchanges: ``auto`` (the lean codec where it
#: supports the credentials, pysnmp otherwise) or ``pysnmp`` (always).
BackendChoice = Literal["auto", "pysnmp"]

#: RFC 3414 11.2: USM passwords are at least 8 characters.
MIN_KEY_CHARS: Final = 8


@dataclass(frozen=True, slots=True)
class SnmpV2c:
    community: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SnmpV3:
    """SNMPv3 USM credentials: authPriv when ``priv_key`` is given, else authNoPriv."""

    user: str
    auth_key: str = field(repr=False)
    priv_key: str | None = field(repr=False)
    auth_protocol: AuthProtocol = "SHA"
    priv_protocol: PrivProtocol | None = "AES"

    def __post_init__(self) -> None:
        if len(self.auth_key) < MIN_KEY_CHARS:
            raise ValueError(f"SNMPv3 user {self.user!r}: auth key shorter than 8 characters")
        if self.priv_key is not None:
            if len(self.priv_key) < MIN_KEY_CHARS:
                raise ValueError(f"SNMPv3 user {self.user!r}: priv key shorter than 8 characters")
            if self.priv_protocol is None:
                raise ValueError(f"SNMPv3 user {self.user!r}: priv key given without priv protocol")
