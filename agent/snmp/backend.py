"""The port every SNMP backend honours: one GET or GETBULK exchange with a target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.snmp.ber import VarBind
from agent.snmp.oids import Oid
from agent.snmp.target import SnmpTarget

#: error-status, error-index, var-binds in the neutral form of :mod:`agent.snmp.ber`
Answer = tuple[int, int, Sequence[VarBind]]


class Backend(Protocol):
    """One GET (``max_repetitions`` None) or GETBULK with ``target``; raises SnmpError.

    Timeouts and refusals below the PDU (USM reports) are the backend's to raise;
    the error-status and the var-binds come back for the poller to judge
    (:mod:`agent.snmp.walk`). Library errors are translated into :mod:`agent.errors`
    where they enter, in the backend.
    """

    async def exchange(
        self, target: SnmpTarget, request: Sequence[Oid], max_repetitions: int | None, what: str
    ) -> Answer: ...

    def close(self) -> None: ...
