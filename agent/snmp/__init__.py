"""The agent's SNMP edge: poll one device's uptime and interface table.

The package's names for the rest of the agent are here; its modules, by layer:

* pure: :mod:`~agent.snmp.target` (a device to poll), :mod:`~agent.snmp.routing`
  (which backend), :mod:`~agent.snmp.table` (the interface engine: the ``if-mib``
  profile's columns, cell checks, the assembled poll), :mod:`~agent.snmp.walk` (the
  GETBULK walk and the answers judged),
  :mod:`~agent.snmp.ber` (the codec, by protocol version), :mod:`~agent.snmp.usm`
  (USM crypto), :mod:`~agent.snmp.usm_session` (USM, sans-IO),
  :mod:`~agent.snmp.exchange` (what an answer means to a request in flight),
  :mod:`~agent.snmp.oids`, :mod:`~agent.snmp.colwalk` (a walk of any columns);
* edges: :mod:`~agent.snmp.udp` (the one asyncio UDP client), the backends behind
  :mod:`~agent.snmp.backend` (:mod:`~agent.snmp.lean_v2c`,
  :mod:`~agent.snmp.lean_v3`, :mod:`~agent.snmp.pysnmp_backend`), and
  :mod:`~agent.snmp.poller`, the only router; :mod:`~agent.snmp.profilewalk` polls a
  device for its profiles (:mod:`agent.profiles`) through the poller's backends.
"""

from agent.credentials import SnmpV2c, SnmpV3
from agent.snmp.poller import SnmpPoller
from agent.snmp.routing import BackendKind, lean_supports
from agent.snmp.table import (
    MAX_TEXT_CHARS,
    ROWS_OVER_BOUND,
    SPEED_CONTRADICTION,
    TEXT_TRUNCATED,
    WALK_BYTES,
    WALK_REQUESTS,
    RawInterface,
    RawPoll,
)
from agent.snmp.target import MAX_ROWS, MAX_WALK_BYTES, SnmpTarget, is_ipv6

__all__ = [
    "MAX_ROWS",
    "MAX_TEXT_CHARS",
    "MAX_WALK_BYTES",
    "ROWS_OVER_BOUND",
    "SPEED_CONTRADICTION",
    "TEXT_TRUNCATED",
    "WALK_BYTES",
    "WALK_REQUESTS",
    "BackendKind",
    "RawInterface",
    "RawPoll",
    "SnmpPoller",
    "SnmpTarget",
    "SnmpV2c",
    "SnmpV3",
    "is_ipv6",
    "lean_supports",
]
