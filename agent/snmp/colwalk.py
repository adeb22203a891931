"""A GETBULK walk of any columns, whatever their index: cursors, loop protection, bounds. Pure.

The interface walk (:class:`agent.snmp.walk.Walk`) knows its rows are ifIndex values and
checks every cell as it comes; a profile's tables (:mod:`agent.profiles`) are indexed by
anything (an entPhysicalIndex, a UPS line, ``1.0`` on agents that get the MIB wrong), and
their cells are judged afterwards, by the profile (:mod:`agent.profiles.evaluate`). So this
walk keeps the var-binds as they came, in the neutral form of :mod:`agent.snmp.ber`.

The loop itself (cursors, the subtree/end/backwards checks, the request and byte bounds)
is the interface walk's: :class:`agent.snmp.walk.GetBulkLoop`; this module decides only
what a profile walk admits and keeps. Bounded as the interface walk (docs/snmp.md,
"Bounds"): rows beyond ``target.max_rows`` end their column (counted,
``ROWS_OVER_BOUND``); more than ``target.max_walk_requests`` GETBULKs or
``target.max_walk_bytes`` held fail with :class:`SnmpLimitError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.snmp.ber import VarBind
from agent.snmp.oids import Oid, dotted
from agent.snmp.table import ROWS_OVER_BOUND, Warnings
from agent.snmp.target import SnmpTarget
from agent.snmp.walk import FINISH, KEEP, GetBulkLoop


class ColumnWalk(GetBulkLoop[Oid]):
    """``columns`` (OIDs without instance) walked together with one GETBULK loop."""

    def __init__(self, target: SnmpTarget, columns: Sequence[Oid], warnings: Warnings,
                 what: str = "profile walk") -> None:
        super().__init__(target, list(dict.fromkeys(columns)), warnings, what)
        self._rows: dict[Oid, set[Oid]] = {column: set() for column in self._active}
        #: every var-bind inside a walked column, in the order received
        self.var_binds: list[VarBind] = []

    def _oid(self, column: Oid) -> Oid:
        return column

    def _name(self, column: Oid) -> str:
        return dotted(column)

    def _admit(self, column: Oid, oid: Oid) -> int:
        if len(oid) == len(column):
            return FINISH  # the column's own OID is no instance: left its subtree
        rows = self._rows[column]
        max_rows = self._target.max_rows
        if len(rows) >= max_rows:
            self._warnings.contained[ROWS_OVER_BOUND] += 1
            self._warnings.add(dotted(column), f"rows beyond {max_rows} discarded; "
                               "column walk stopped", dotted(oid))
            return FINISH
        rows.add(oid[len(column):])
        return KEEP

    def _store(self, column: Oid, oid: Oid, var_bind: VarBind) -> None:
        self.var_binds.append(var_bind)
