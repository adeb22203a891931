"""The agent's error tree.

Library errors are translated where they enter the agent (``raise
SnmpTimeout(...) from exc``), so the rest of the agent only ever sees these.
Other parts of the agent add their own branches under :class:`AgentError`
(configuration, spool, uplink).

Every :class:`SnmpError` carries ``cause``: why a poll failed, as the wire says it
(:data:`xanet.wire.PollCause`, docs/availability.md). The class decides the cause,
never the message text; only :class:`SnmpTimeout` (no answer at all) can mean the
device is down - every other cause is a monitoring fault.
"""

from __future__ import annotations

from typing import ClassVar

from xanet.wire import PollCause


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class SnmpError(AgentError):
    """A poll of one device failed; ``device`` names it, ``cause`` says why."""

    #: The wire's cause for this failure. The base class: a failure we cannot place
    #: more precisely (a library error, a closed client) - a monitoring fault.
    cause: ClassVar[PollCause] = "protocol"

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.message = message


class SnmpTimeout(SnmpError):
    """No answer before the timeout, after all retries.

    SNMP agents stay silent on many failures, so this also covers a wrong
    v2c community and (with net-snmp) a wrong SNMPv3 privacy key: the ICMP
    witness tells those apart from a device that is really gone.
    """

    cause: ClassVar[PollCause] = "timeout"


class SnmpAuthError(SnmpError):
    """The device answered but refused our credentials (SNMPv3 USM reports).

    Unknown user, wrong digest (authentication key or protocol), decryption
    error, unsupported security level, not in time window after the one resync.
    """

    cause: ClassVar[PollCause] = "auth"


class SnmpAccessError(SnmpError):
    """The device took our credentials but refused the polled objects.

    An ``authorizationError``, ``noAccess`` or ``noSuchName`` error-status (the
    community's or user's view does not include sysUpTime or the interface columns).
    """

    cause: ClassVar[PollCause] = "access"


class SnmpResolveError(SnmpError):
    """The device's host name does not resolve (no SNMP and no ping was sent)."""

    cause: ClassVar[PollCause] = "resolve"


class SnmpProtocolError(SnmpError):
    """The device answered with an error-status or a response we cannot trust."""

    cause: ClassVar[PollCause] = "protocol"


class SnmpConfigError(SnmpError):
    """The agent's own configuration cannot be used for this device.

    Credentials the SNMP stack refuses (a key too short), a transport this host
    cannot open (IPv6 disabled), a cipher the installed libraries lack.
    """

    cause: ClassVar[PollCause] = "config"


class SnmpLimitError(SnmpError):
    """The device's answer exceeded a per-device bound (walk requests or bytes).

    The poll is given up so that one device cannot take the agent's memory or
    time (docs/snmp.md, "Bounds"); the other devices are not affected.
    """

    cause: ClassVar[PollCause] = "limit"


class SpoolError(AgentError):
    """The spool could not store a message (disk full, I/O error); the message is lost
    and counted by the caller (``polls_dropped``)."""


class SpoolFull(SpoolError):
    """SQLite said SQLITE_FULL, or the file system said ENOSPC."""


class UplinkFatal(AgentError):
    """The broker refuses this agent's own status topic: its credentials do not match its
    site. Retrying cannot help; the program exits (code 78, EX_CONFIG) so the service
    manager shows it."""
