"""SNMP credentials as the poller uses them, and the rules every credential obeys. Pure.

The rules live here once (:func:`v3_problems`): the credential objects refuse what breaks
them, and the agent's config (:mod:`agent.config`) reports the same problems, with their
key paths, in ``xanet check-config`` and at start, then builds these objects from it
(:func:`agent.config.credentials_from`); the SNMP backends only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

# The names a credential may use; their one home is xanet (the inventory names them too).
from xanet.snmpnames import AuthProtocol as AuthProtocol
from xanet.snmpnames import PrivProtocol as PrivProtocol
from xanet.snmpnames import SecurityLevel as SecurityLevel

#: Which code carries a device's SNMP exchanges: ``auto`` (the lean codec where it
#: supports the credentials, pysnmp otherwise) or ``pysnmp`` (always).
BackendChoice = Literal["auto", "pysnmp"]

#: RFC 3414 11.2: USM passwords are at least 8 characters.
MIN_KEY_CHARS: Final = 8
#: RFC 3414 (SnmpAdminString of a usmUserName): 1 to 32 characters.
MAX_USER_CHARS: Final = 32


def v3_problems(user: str, auth_key: str | None, priv_key: str | None,
                priv_protocol: PrivProtocol | None) -> list[tuple[str, str]]:
    """Every rule an SNMPv3 credential breaks, as ``(field, reason)``; a key given as
    None is not known yet (a secret not read) and not judged."""
    problems: list[tuple[str, str]] = []
    if not 1 <= len(user) <= MAX_USER_CHARS:
        problems.append(("user", f"SNMPv3 user name has 1 to {MAX_USER_CHARS} characters"))
    if auth_key is not None and len(auth_key) < MIN_KEY_CHARS:
        problems.append(("auth_key", f"SNMPv3 user {user!r}: auth key shorter than "
                         f"{MIN_KEY_CHARS} characters ({len(auth_key)})"))
    if priv_key is not None:
        if len(priv_key) < MIN_KEY_CHARS:
            problems.append(("priv_key", f"SNMPv3 user {user!r}: priv key shorter than "
                             f"{MIN_KEY_CHARS} characters ({len(priv_key)})"))
        if priv_protocol is None:
            problems.append(("priv_protocol", f"SNMPv3 user {user!r}: priv key given "
                             "without priv protocol"))
    return problems


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

    @property
    def security_level(self) -> SecurityLevel:
        return "authNoPriv" if self.priv_key is None else "authPriv"

    def __post_init__(self) -> None:
        problems = v3_problems(self.user, self.auth_key, self.priv_key, self.priv_protocol)
        if problems:
            raise ValueError("; ".join(reason for _, reason in problems))
