"""What a poll's two witnesses (SNMP, ICMP echo) say about a device. Pure.

Only a real loss of reachability - no witness reaches the device - may make it
``down``. A poll that failed for any other cause is a *monitoring* fault: the device
is ``unknown`` with the reason ``monitoring_error:<cause>`` (lost coverage, never
downtime), and the NOC gets one warning alert per device (:mod:`collector.monitoring`).

The decision, as data (:data:`DECISIONS`; ``reachable`` polls are always ``up``):

==============================  =================  ==============================
SNMP cause (poll not answered)  ICMP echo witness  device
==============================  =================  ==============================
``timeout``                     answered           unknown, ``monitoring_error:snmp_silent``
``timeout``                     not answered       down
``timeout``                     absent (ICMP off)  down (no second witness: as before)
``auth`` ``access`` ``resolve``  any                unknown, ``monitoring_error:<cause>``
``protocol`` ``config`` ``limit``
none (an agent before causes)   like ``timeout``
==============================  =================  ==============================

A **ping-only** device (no SNMP: CPE, ONT, radio; ``monitor = "ping"`` in the inventory)
has ICMP as its only witness (:data:`PING_ONLY`): answered -> up, not answered -> down,
a failure to ping at all (``resolve``, ``config``) -> unknown with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from xanet import wire

Ping = Literal["answered", "silent", "absent"]
Verdict = Literal["up", "down", "unknown"]

#: The causes that mean "no answer": the only ones that can make a device down.
SILENT_CAUSES: Final = frozenset({"timeout", None})
REASON_PREFIX: Final = "monitoring_error:"
SNMP_SILENT: Final = "snmp_silent"


@dataclass(frozen=True, slots=True)
class Decision:
    """What one poll says about the device: a state and, when unknown, why."""

    state: Verdict
    cause: str | None = None  # the monitoring fault (``snmp_silent``, ``auth``...)

    @property
    def reason(self) -> str | None:
        return None if self.cause is None else REASON_PREFIX + self.cause


UP: Final = Decision("up")
DOWN: Final = Decision("down")


def _fault(cause: str) -> Decision:
    return Decision("unknown", cause)


#: SNMP-polled devices, failed polls: (cause, ICMP witness) -> decision.
DECISIONS: Final[Mapping[tuple[wire.PollCause | None, Ping], Decision]] = {
    **{(silent, "answered"): _fault(SNMP_SILENT) for silent in (None, "timeout")},
    **{(silent, "silent"): DOWN for silent in (None, "timeout")},
    **{(silent, "absent"): DOWN for silent in (None, "timeout")},
    **{(cause, ping): _fault(cause)
       for cause in wire.POLL_CAUSES if cause != "timeout"
       for ping in ("answered", "silent", "absent")},
}

#: Ping-only devices, polls whose echo was not answered (or not sent): cause -> decision.
PING_ONLY: Final[Mapping[wire.PollCause | None, Decision]] = {
    None: DOWN,
    "timeout": DOWN,
    **{cause: _fault(cause) for cause in wire.POLL_CAUSES if cause != "timeout"},
}


def ping_witness(ping: wire.PingResult | None) -> Ping:
    if ping is None:
        return "absent"
    return "answered" if ping.received > 0 else "silent"


def decide(poll: wire.DevicePoll, *, ping_only: bool = False) -> Decision:
    """The device's state according to this poll (see the module's table)."""
    if poll.reachable and not ping_only:
        return UP
    witness = ping_witness(poll.ping)
    if ping_only:
        if witness == "answered" or (witness == "absent" and poll.reachable):
            return UP
        return PING_ONLY[poll.cause]
    return DECISIONS[(poll.cause, witness)]
