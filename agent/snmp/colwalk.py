"""A GETBULK walk of any columns, whatever their index: cursors, loop protection, bounds. Pure.

The interface walk (:class:`agent.snmp.walk.Walk`) knows its rows are ifIndex values and
checks every cell as it comes; a profile's tables (:mod:`agent.profiles`) are indexed by
anything (an entPhysicalIndex, a UPS line, ``1.0`` on agents that get the MIB wrong), and
their cells are judged afterwards, by the profile (:mod:`agent.profiles.evaluate`). So this
walk keeps the var-binds as they came, in the neutral form of :mod:`agent.snmp.ber`.

Ask :meth:`ColumnWalk.next_request` for the OIDs of the next GETBULK (None: done), feed
the answer to :meth:`ColumnWalk.receive`, repeat. Each column keeps its own cursor and
leaves the loop when it leaves its subtree, hits endOfMibView/noSuch*, or goes backwards.
Bounded as the interface walk (docs/snmp.md, "Bounds"): rows beyond ``target.max_rows``
end their column (counted, ``ROWS_OVER_BOUND``); more than ``target.max_walk_requests``
GETBULKs or ``target.max_walk_bytes`` held fail with :class:`SnmpLimitError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.errors import SnmpLimitError
from agent.snmp import ber
from agent.snmp.ber import VarBind
from agent.snmp.oids import Oid, dotted
from agent.snmp.table import ROWS_OVER_BOUND, TAGS_NO_SUCH, Warnings
from agent.snmp.target import SnmpTarget
from agent.snmp.walk import cell_cost


class ColumnWalk:
    """``columns`` (OIDs without instance) walked together with one GETBULK loop."""

    def __init__(self, target: SnmpTarget, columns: Sequence[Oid], warnings: Warnings,
                 what: str = "profile walk") -> None:
        self._target = target
        self._warnings = warnings
        self._what = what
        self._cursors: dict[Oid, Oid] = {column: column for column in dict.fromkeys(columns)}
        self._active = list(self._cursors)
        self._rows: dict[Oid, set[Oid]] = {column: set() for column in self._active}
        self._requests = 0
        self._held_bytes = 0
        #: every var-bind inside a walked column, in the order received
        self.var_binds: list[VarBind] = []

    def next_request(self) -> tuple[Oid, ...] | None:
        """The OIDs of the next GETBULK, or None when every column is done."""
        if not self._active:
            return None
        self._requests += 1
        target = self._target
        if self._requests > target.max_walk_requests:
            raise SnmpLimitError(
                target.device,
                f"{target.address}: {self._what} did not end after "
                f"{target.max_walk_requests} GETBULK requests",
            )
        return tuple(self._cursors[column] for column in self._active)

    def receive(self, var_binds: Sequence[VarBind]) -> None:
        """The var-binds answering the last :meth:`next_request` (error-status checked)."""
        target, warnings, cursors = self._target, self._warnings, self._cursors
        active = self._active
        finished: set[Oid] = set()
        for position, var_bind in enumerate(var_binds):
            column = active[position % len(active)]
            if column in finished:
                continue
            oid, tag, _ = var_bind
            if tag == ber.END_OF_MIB_VIEW or tag in TAGS_NO_SUCH:
                finished.add(column)
                continue
            if oid[: len(column)] != column or len(oid) == len(column):
                finished.add(column)  # left its subtree: column done
                continue
            if oid <= cursors[column]:
                warnings.add(dotted(column), f"non-increasing OID after "
                             f"{dotted(cursors[column])}; column walk stopped", dotted(oid))
                finished.add(column)
                continue
            cursors[column] = oid
            rows = self._rows[column]
            if len(rows) >= target.max_rows:
                warnings.contained[ROWS_OVER_BOUND] += 1
                warnings.add(dotted(column), f"rows beyond {target.max_rows} discarded; "
                             "column walk stopped", dotted(oid))
                finished.add(column)
                continue
            rows.add(oid[len(column):])
            self._held_bytes += cell_cost(var_bind)
            if self._held_bytes > target.max_walk_bytes:
                raise SnmpLimitError(
                    target.device,
                    f"{target.address}: {self._what} holds more than "
                    f"{target.max_walk_bytes} bytes",
                )
            self.var_binds.append(var_bind)
        self._active = [column for column in active if column not in finished]
