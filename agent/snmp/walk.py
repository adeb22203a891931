"""One poll's exchanges judged: the sysUpTime answer, error-statuses, and the GETBULK walk
of the interface columns (cursors, loop protection, bounds). Pure, sans-IO.

The poller (:mod:`agent.snmp.poller`) carries the requests; everything here is fed
what came back and decides. One poll is:

1. one GET of ``sysUpTime.0`` - the reachability probe, judged by :func:`read_uptime`;
2. one GETBULK loop walking all needed ifTable and ifXTable columns together,
   each column advancing from its own cursor until it leaves its subtree
   (:class:`Walk`: ``next_request()`` / ``receive(var_binds)`` until it says done).

Whole-exchange failures (error-status, a walk that does not terminate or holds too
much, an unusable sysUpTime) raise the agent's errors (:mod:`agent.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Generic, TypeVar

from agent.errors import SnmpAccessError, SnmpLimitError, SnmpProtocolError
from agent.snmp import ber, oids
from agent.snmp.ber import VarBind
from agent.snmp.oids import Oid, dotted
from agent.snmp.table import (
    MAX_U32,
    ROWS_OVER_BOUND,
    TAGS_NO_SUCH,
    Column,
    Table,
    Warnings,
    as_number,
    as_timeticks,
    parse_cell,
    shown,
)
from agent.snmp.target import SnmpTarget

#: Error-statuses that refuse the polled objects to our credentials: cause ``access``.
_ACCESS_ERROR_STATUSES: Final = frozenset({"authorizationError", "noAccess", "noSuchName"})
# RFC 3416 error-status names.
ERROR_STATUS_NAMES: Final = (
    "noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess",
    "wrongType", "wrongLength", "wrongEncoding", "wrongValue", "noCreation",
    "inconsistentValue", "resourceUnavailable", "commitFailed", "undoFailed",
    "authorizationError", "notWritable", "inconsistentName",
)
_MAX_INDEX: Final = 2**31 - 1  # InterfaceIndex is 1..2147483647
#: What a stored cell costs besides its octets (dict slot, int or str object), estimated.
_CELL_OVERHEAD_BYTES: Final = 64

UPTIME_REQUEST: Final = (oids.SYS_UPTIME,)
UPTIME_WHAT: Final = "GET sysUpTime"
WALK_WHAT: Final = "GETBULK"


def raise_for_status(
    target: SnmpTarget, what: str, request: Sequence[Oid], error_status: int, error_index: int
) -> None:
    """Translate a response's error-status into the agent's errors."""
    if error_status == 0:
        return
    status = (
        ERROR_STATUS_NAMES[error_status]
        if 0 <= error_status < len(ERROR_STATUS_NAMES)
        else str(error_status)
    )
    position = error_index
    at = f" at {dotted(request[position - 1])}" if 1 <= position <= len(request) else ""
    error_class = SnmpAccessError if status in _ACCESS_ERROR_STATUSES else SnmpProtocolError
    raise error_class(
        target.device, f"{target.address} answered {what} with error-status {status}{at}"
    )


def read_uptime(
    target: SnmpTarget,
    error_status: int,
    error_index: int,
    var_binds: Sequence[VarBind],
    warnings: Warnings,
) -> int:
    """sysUpTime in ticks from the answer to :data:`UPTIME_REQUEST`; raises SnmpError."""
    raise_for_status(target, UPTIME_WHAT, UPTIME_REQUEST, error_status, error_index)
    if len(var_binds) != 1:
        raise SnmpProtocolError(
            target.device,
            f"{target.address} answered GET sysUpTime with {len(var_binds)} varbinds",
        )
    oid, tag, value = var_binds[0]
    where = f"{target.address} {dotted(oids.SYS_UPTIME)}"
    if oid != oids.SYS_UPTIME:
        raise SnmpProtocolError(
            target.device, f"{target.address} answered GET sysUpTime with OID {dotted(oid)}"
        )
    if tag in TAGS_NO_SUCH or tag == ber.END_OF_MIB_VIEW:
        raise SnmpProtocolError(target.device, f"{where}: {shown(tag, value)}")
    ticks = as_timeticks(tag, value)
    if ticks is None:
        # Some agents send sysUpTime with the wrong type; a plain unsigned
        # number is still usable, anything else is not.
        ticks = as_number(tag, value, 0, MAX_U32)
        if ticks is None:
            raise SnmpProtocolError(
                target.device,
                f"{where}: expected TimeTicks, got {ber.type_name(tag)} {shown(tag, value)!r}",
            )
        warnings.add(
            "sysUpTime",
            f"expected TimeTicks, got {ber.type_name(tag)}; used",
            dotted(oids.SYS_UPTIME),
        )
    return ticks


def cell_cost(var_bind: VarBind) -> int:
    """Estimated bytes a stored cell holds: its octets plus a fixed overhead."""
    value = var_bind[2]
    return _CELL_OVERHEAD_BYTES + (len(value) if isinstance(value, bytes) else 0)


K = TypeVar("K")

#: What a walk does with one var-bind inside its column (:meth:`GetBulkLoop._admit`).
KEEP: Final = 0  # count it against the byte bound and store it
DROP: Final = 1  # skip it, the column goes on
FINISH: Final = 2  # the column is done


class GetBulkLoop(Generic[K]):
    """Columns walked together with one GETBULK loop: the part every walk shares.

    Ask :meth:`next_request` for the OIDs of the next GETBULK (None: the walk is done),
    feed the answer's var-binds to :meth:`receive`, repeat. Each column keeps its own
    cursor and leaves the loop when it leaves its subtree, hits endOfMibView/noSuch*, or
    goes backwards (a looping agent: what came in order is kept, with a warning). More
    than ``target.max_walk_requests`` GETBULKs, or more than ``target.max_walk_bytes``
    held, fail with :class:`SnmpLimitError`. What a walk keeps of a var-bind inside its
    column is its own: :meth:`_admit` (row checks and bounds) and :meth:`_store`.
    """

    def __init__(self, target: SnmpTarget, columns: Sequence[K], warnings: Warnings,
                 what: str) -> None:
        self._target = target
        self._warnings = warnings
        self._what = what
        self._cursors: dict[K, Oid] = {column: self._oid(column) for column in columns}
        self._active = list(self._cursors)
        self._held_bytes = 0
        self._requests = 0

    def _oid(self, column: K) -> Oid:
        raise NotImplementedError

    def _name(self, column: K) -> str:
        raise NotImplementedError

    def _admit(self, column: K, oid: Oid) -> int:
        """KEEP, DROP or FINISH for a var-bind inside ``column`` (its cursor advanced)."""
        raise NotImplementedError

    def _store(self, column: K, oid: Oid, var_bind: VarBind) -> None:
        raise NotImplementedError

    def _rows_note(self) -> str:
        """Appended to a limit error (the rows seen so far), or empty."""
        return ""

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
                f"{target.max_walk_requests} GETBULK requests{self._rows_note()}",
            )
        return tuple(self._cursors[column] for column in self._active)

    def receive(self, var_binds: Sequence[VarBind]) -> None:
        """The var-binds answering the last :meth:`next_request` (error-status checked)."""
        target, cursors, active = self._target, self._cursors, self._active
        finished: set[K] = set()
        for position, var_bind in enumerate(var_binds):
            column = active[position % len(active)]
            if column in finished:
                continue
            oid, tag, _ = var_bind
            if tag == ber.END_OF_MIB_VIEW or tag in TAGS_NO_SUCH:
                finished.add(column)
                continue
            column_oid = self._oid(column)
            if oid[: len(column_oid)] != column_oid:
                finished.add(column)  # left its subtree: column done
                continue
            if oid <= cursors[column]:
                # A looping agent: keep what came in order, stop this column.
                self._warnings.add(
                    self._name(column),
                    f"non-increasing OID after {dotted(cursors[column])}; column walk stopped",
                    dotted(oid),
                )
                finished.add(column)
                continue
            cursors[column] = oid
            verdict = self._admit(column, oid)
            if verdict == FINISH:
                finished.add(column)
                continue
            if verdict == DROP:
                continue
            self._held_bytes += cell_cost(var_bind)
            if self._held_bytes > target.max_walk_bytes:
                raise SnmpLimitError(
                    target.device,
                    f"{target.address}: {self._what} holds more than "
                    f"{target.max_walk_bytes} bytes{self._rows_note()}",
                )
            self._store(column, oid, var_bind)
        self._active = [column for column in active if column not in finished]


class Walk(GetBulkLoop[Column]):
    """The interface columns walked with one GETBULK loop; every cell checked as it comes.

    Rows are ifIndex values: an instance that is not one is dropped with a warning.
    Bounded per device (docs/snmp.md, "Bounds"): rows beyond ``target.max_rows``
    (ifIndex values after the first ``max_rows`` seen) end their column's walk and
    are discarded and counted (``ROWS_OVER_BOUND``) - the poll keeps the rest; a walk
    that needs more than ``target.max_walk_requests`` GETBULKs or would hold more
    than ``target.max_walk_bytes`` fails with :class:`SnmpLimitError`.
    """

    def __init__(self, target: SnmpTarget, columns: Sequence[Column], warnings: Warnings) -> None:
        super().__init__(target, columns, warnings, "interface walk")
        #: the checked cells so far, by column and ifIndex
        self.cells: Table = {column: {} for column in columns}
        self._rows: set[int] = set()

    def _oid(self, column: Column) -> Oid:
        return column.oid

    def _name(self, column: Column) -> str:
        return column.name

    def _rows_note(self) -> str:
        return f" ({len(self._rows)} rows)"

    def _admit(self, column: Column, oid: Oid) -> int:
        suffix = oid[len(column.oid) :]
        if len(suffix) != 1 or not 1 <= suffix[0] <= _MAX_INDEX:
            self._warnings.add(column.name, "instance is not an ifIndex; dropped", dotted(oid))
            return DROP
        index = suffix[0]
        rows = self._rows
        if index not in rows:
            max_rows = self._target.max_rows
            if len(rows) >= max_rows:
                # Columns advance in ifIndex order: the rest of this one is beyond too.
                warnings = self._warnings
                if not warnings.contained[ROWS_OVER_BOUND]:
                    warnings.contained[ROWS_OVER_BOUND] = 1
                warnings.add(column.name,
                             f"rows beyond {max_rows} discarded; column walk stopped",
                             dotted(oid))
                return FINISH
            rows.add(index)
        return KEEP

    def _store(self, column: Column, oid: Oid, var_bind: VarBind) -> None:
        value = parse_cell(column, var_bind, self._warnings)
        if value is not None:
            self.cells[column][oid[len(column.oid)]] = value
