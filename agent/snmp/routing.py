"""Which backend carries a target's exchanges, and how that choice is named in the log. Pure.

* SNMP v2c: the lean codec (``lean-v2c``, ~10x less CPU per poll than pysnmp,
  docs/snmp.md);
* SNMPv3 (USM) with any auth protocol and no privacy or AES-128: the same lean codec
  with USM of our own (``lean-v3``);
* SNMPv3 with DES or AES-192/256 privacy, and every target whose ``backend`` is
  ``"pysnmp"``: pysnmp 7 (``pysnmp``), imported only when the first such target is
  polled, so an agent whose targets are all lean never loads pysnmp/pyasn1.

:func:`lean_supports` is the one place that decides what the lean codec speaks.
"""

from __future__ import annotations

from typing import Literal

from agent.credentials import SnmpV2c, SnmpV3
from agent.snmp.target import SnmpTarget

#: The poller's knobs per SNMP version (comparisons and tests): the lean codec where it
#: supports the credentials, or pysnmp for every target of that version.
BackendKind = Literal["lean", "pysnmp"]
BackendName = Literal["lean-v2c", "lean-v3", "pysnmp"]


def lean_supports(credentials: SnmpV2c | SnmpV3) -> bool:
    """Whether the lean path speaks ``credentials``: v2c, and SNMPv3 with any auth
    protocol and no privacy or AES(-128). DES and AES-192/256 go to pysnmp."""
    if isinstance(credentials, SnmpV2c):
        return True
    return credentials.priv_key is None or credentials.priv_protocol == "AES"


def backend_for(
    target: SnmpTarget, v2c_backend: BackendKind = "lean", v3_backend: BackendKind = "lean"
) -> BackendName:
    """The backend that polls ``target``: its own ``backend`` choice first ("pysnmp":
    always pysnmp), then the poller's knob for its SNMP version, then :func:`lean_supports`."""
    credentials = target.credentials
    if target.backend == "pysnmp":
        return "pysnmp"
    if isinstance(credentials, SnmpV2c):
        return "lean-v2c" if v2c_backend == "lean" else "pysnmp"
    if v3_backend == "lean" and lean_supports(credentials):
        return "lean-v3"
    return "pysnmp"


def describe(target: SnmpTarget, backend: BackendName) -> str:
    """``SNMP backend lean-v3 (SHA/AES)``: the backend and what it speaks, no secrets."""
    credentials = target.credentials
    if isinstance(credentials, SnmpV2c):
        speaks = "v2c"
    else:
        privacy = credentials.priv_protocol if credentials.priv_key is not None else "noPriv"
        speaks = f"v3 {credentials.auth_protocol}/{privacy}"
    return f"SNMP backend {backend} ({speaks})"
