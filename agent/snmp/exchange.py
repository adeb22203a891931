"""What one answer means to a request in flight: the outcomes a sans-IO exchange returns
to the UDP client (:mod:`agent.snmp.udp`). Pure.

An exchange (the v2c judge in :mod:`agent.snmp.lean_v2c`, the USM session in
:mod:`agent.snmp.usm_session`) is fed each datagram that carries its request's id from
its device and says one of:

* :class:`Response` - the answer; the request is done;
* :class:`Resend` - send this next (USM discovery done, time window resynchronised);
* :class:`Refused` - the device refused our credentials (a USM report);
* :class:`Ignored` - not an answer after all (a forged digest): wait on, count it;
* :class:`Failed` - the answer, but unusable (malformed, not ours to take).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """A datagram to send and wait for, matched by ``msg_id`` (request-id or msgID)."""

    msg_id: int
    data: bytes
    what: str  # for messages: "GETBULK", "GET sysUpTime (engine discovery)"


@dataclass(frozen=True, slots=True)
class Response(Generic[T]):
    answer: T


@dataclass(frozen=True, slots=True)
class Resend:
    send: Send


@dataclass(frozen=True, slots=True)
class Refused:
    problem: str  # what the device said, e.g. "usmStatsUnknownUserNames (unknown user)"


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str  # the counter's key: "bad digest", "unknown msgID", ...
    detail: str


@dataclass(frozen=True, slots=True)
class Failed:
    problem: str
    what: str | None = None  # overrides the request's ``what`` in the message


Outcome = Response[T] | Resend | Refused | Ignored | Failed
