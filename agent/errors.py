"""The agent's error tree.

Library errors are translated where they enter the agent (``raise
SnmpTimeout(...) from exc``), so the rest of the agent only ever sees these.
Other parts of the agent add their own branches under :class:`AgentError`
(configuration, spool, uplink).
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class SnmpError(AgentError):
    """An SNMP exchange with one device failed; ``device`` names it."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.message = message


class SnmpTimeout(SnmpError):
    """No (usable) answer before the timeout, after all retries.

    SNMP agents stay silent on many failures, so this also covers a wrong
    v2c community and (with net-snmp) a wrong SNMPv3 privacy key.
    """


class SnmpAuthError(SnmpError):
    """The device answered but refused our credentials.

    SNMPv3 unknown user, wrong authentication key (wrong digest), unsupported
    security level, or an ``authorizationError``/``noAccess`` error-status.
    """


class SnmpProtocolError(SnmpError):
    """The device answered with an error-status or a response we cannot trust."""


class SpoolError(AgentError):
    """The spool could not store a message (disk full, I/O error); the message is lost
    and counted by the caller (``polls_dropped``)."""


class SpoolFull(SpoolError):
    """SQLite said SQLITE_FULL, or the file system said ENOSPC."""


class UplinkFatal(AgentError):
    """The broker refuses this agent's own status topic: its credentials do not match its
    site. Retrying cannot help; the program exits (code 78, EX_CONFIG) so the service
    manager shows it."""
