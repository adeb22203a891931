"""Numeric OIDs of the MIB-II / IF-MIB objects the agent polls.

Numeric on purpose: pysnmp 7 bundles no IF-MIB and the agent compiles no MIBs
at start-up. Columns are given without the instance suffix (the ifIndex).

The interface engine walks the columns the ``if-mib`` profile names
(:func:`agent.snmp.table.interface_columns`); the IF-MIB names below are for simulators
and tests, and tests/test_ifmib.py proves them equal to the profile's, OID for OID.
"""

from __future__ import annotations

Oid = tuple[int, ...]

# SNMPv2-MIB
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)  # TimeTicks, hundredths of a second

# IF-MIB ifTable (ifEntry = 1.3.6.1.2.1.2.2.1)
IF_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IF_DESCR: Oid = (*IF_ENTRY, 2)  # DisplayString
IF_TYPE: Oid = (*IF_ENTRY, 3)  # IANAifType (not polled by default)
IF_SPEED: Oid = (*IF_ENTRY, 5)  # Gauge32, bit/s
IF_ADMIN_STATUS: Oid = (*IF_ENTRY, 7)  # up(1) down(2) testing(3)
IF_OPER_STATUS: Oid = (*IF_ENTRY, 8)  # up(1) .. lowerLayerDown(7)
IF_IN_OCTETS: Oid = (*IF_ENTRY, 10)  # Counter32
IF_OUT_OCTETS: Oid = (*IF_ENTRY, 16)  # Counter32

# IF-MIB ifXTable (ifXEntry = 1.3.6.1.2.1.31.1.1.1)
IFX_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_NAME: Oid = (*IFX_ENTRY, 1)  # DisplayString
IF_HC_IN_OCTETS: Oid = (*IFX_ENTRY, 6)  # Counter64
IF_HC_OUT_OCTETS: Oid = (*IFX_ENTRY, 10)  # Counter64
IF_HIGH_SPEED: Oid = (*IFX_ENTRY, 15)  # Gauge32, Mbit/s
IF_ALIAS: Oid = (*IFX_ENTRY, 18)  # DisplayString (SIZE 0..64): the operator's port label
IF_COUNTER_DISCONTINUITY_TIME: Oid = (*IFX_ENTRY, 19)  # TimeStamp (sysUpTime value)


def dotted(oid: Oid) -> str:
    """``(1, 3, 6)`` -> ``"1.3.6"``."""
    return ".".join(str(part) for part in oid)
