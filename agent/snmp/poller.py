"""The agent's SNMP edge: polls one device's uptime and interface table through the
backend that speaks its credentials - the only place that routes a target to a backend.

The interface columns are the shipped ``if-mib`` profile's (:func:`shipped_interface_columns`,
read once per process); a target polls them when ``target.interfaces`` (its profiles
name ``if-mib``), else its poll is sysUpTime alone (reachability).

The backends (:mod:`agent.snmp.lean_v2c`, :mod:`agent.snmp.lean_v3`,
:mod:`agent.snmp.pysnmp_backend`) are created on first use, the latter two imported
then too (crypto, pysnmp); :func:`agent.snmp.routing.backend_for` decides which one a
target gets, and the choice is logged once per device (INFO). What comes back is
judged by :mod:`agent.snmp.walk` and assembled by :mod:`agent.snmp.table`, one code
path whichever backend carried it.
"""

from __future__ import annotations

import collections
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.profiles.model import IF_MIB
from agent.snmp.backend import Backend
from agent.snmp.ber import VarBind
from agent.snmp.lean_v2c import LeanV2c
from agent.snmp.oids import Oid
from agent.snmp.routing import BackendKind, BackendName, backend_for, describe
from agent.snmp.table import (
    PORTS_PER_GET,
    InterfaceColumns,
    RawInterface,
    RawPoll,
    Warnings,
    assemble,
    counter_request,
    interface_columns,
    read_counter32,
)
from agent.snmp.target import SnmpTarget
from agent.snmp.walk import (
    UPTIME_REQUEST,
    UPTIME_WHAT,
    WALK_WHAT,
    GetBulkLoop,
    Walk,
    raise_for_status,
    read_uptime,
)

if TYPE_CHECKING:
    from agent.snmp.lean_v3 import LeanV3
    from agent.snmp.pysnmp_backend import PysnmpBackend

log = logging.getLogger(__name__)
COUNTERS_WHAT = "GET ifIn/OutOctets"


@functools.cache
def shipped_interface_columns() -> InterfaceColumns:
    """The interface engine's columns from the shipped ``if-mib`` profile, read once per
    process (never per poll)."""
    # (imported here: the catalog's loader checks if-mib with agent.snmp.table, whose
    # package imports this module)
    from agent.profiles.load import shipped_profile

    return interface_columns(shipped_profile(IF_MIB))


async def get(backend: Backend, target: SnmpTarget, request: tuple[Oid, ...],
              what: str) -> list[VarBind]:
    """One GET of ``request``; an error-status raises (:func:`raise_for_status`)."""
    status, index, var_binds = await backend.exchange(target, request, None, what)
    raise_for_status(target, what, request, status, index)
    return list(var_binds)


async def walk_all(backend: Backend, target: SnmpTarget, walk: GetBulkLoop[Any]) -> None:
    """Carry ``walk``'s GETBULKs until it says done (each answer's error-status checked)."""
    while (request := walk.next_request()) is not None:
        status, index, var_binds = await backend.exchange(
            target, request, target.max_repetitions, WALK_WHAT
        )
        raise_for_status(target, WALK_WHAT, request, status, index)
        walk.receive(var_binds)


class SnmpPoller:
    """Polls devices over SNMP: the lean codec when it speaks the credentials, pysnmp
    otherwise or when the target asks for it (``backend = "pysnmp"``).

    ``v2c_backend``/``v3_backend`` set to ``"pysnmp"`` send every target of that SNMP
    version to pysnmp (comparisons and tests). pysnmp is imported when the first target
    that needs it is polled: an agent polling lean-supported devices only never loads it.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        v2c_backend: BackendKind = "lean",
        v3_backend: BackendKind = "lean",
        interfaces: InterfaceColumns | None = None,
    ) -> None:
        self._clock = clock
        #: the interface engine's columns (default: the shipped if-mib profile's)
        self.interfaces = interfaces or shipped_interface_columns()
        self._v2c_backend = v2c_backend
        self._v3_backend = v3_backend
        self._lean: LeanV2c | None = None
        self._lean_v3: LeanV3 | None = None
        self._pysnmp: PysnmpBackend | None = None
        self._chosen: dict[str, str] = {}  # device -> what was logged for it
        self._closed = False

    @property
    def ignored_datagrams(self) -> dict[str, int]:
        """Datagrams the lean paths dropped, by reason (none tied to a request)."""
        ignored: collections.Counter[str] = collections.Counter()
        for lean in (self._lean, self._lean_v3):
            if lean is not None:
                ignored.update(lean.client.ignored)
        return dict(ignored)

    async def poll(self, target: SnmpTarget) -> RawPoll:
        """Uptime and interfaces of ``target`` (its interfaces only when
        ``target.interfaces``: the if-mib profile); raises :class:`SnmpError` subclasses."""
        if self._closed:
            raise RuntimeError("SnmpPoller is closed")
        started = self._clock()
        backend = self.backend(target)
        warnings = Warnings()
        status, index, var_binds = await backend.exchange(target, UPTIME_REQUEST, None,
                                                          UPTIME_WHAT)
        uptime = read_uptime(target, status, index, var_binds, warnings)
        interfaces: tuple[RawInterface, ...] = ()
        if target.interfaces:
            columns = self.interfaces
            walk = Walk(target, columns.walked, warnings)
            await walk_all(backend, target, walk)
            interfaces = assemble(walk.cells, columns, warnings)
        return RawPoll(
            device=target.device,
            sys_uptime_cs=uptime,
            interfaces=interfaces,
            rtt_s=self._clock() - started,
            warnings=warnings.render(),
            contained=tuple(sorted(warnings.contained.items())),
        )

    async def read_counters(self, target: SnmpTarget, indices: tuple[int, ...]
                            ) -> tuple[int, dict[int, tuple[int | None, int | None]]]:
        """sysUpTime and the Counter32 ifIn/OutOctets of ``indices`` (readings between
        polls, :mod:`agent.subpoll`): one GET per :data:`PORTS_PER_GET` ports after the
        uptime's. Raises :class:`SnmpError` subclasses."""
        if self._closed:
            raise RuntimeError("SnmpPoller is closed")
        backend = self.backend(target)
        warnings = Warnings()
        status, index, var_binds = await backend.exchange(target, UPTIME_REQUEST, None,
                                                          UPTIME_WHAT)
        uptime = read_uptime(target, status, index, var_binds, warnings)
        counters: dict[int, tuple[int | None, int | None]] = {}
        for start in range(0, len(indices), PORTS_PER_GET):
            chunk = indices[start:start + PORTS_PER_GET]
            request = counter_request(self.interfaces, chunk)
            var_binds = await get(backend, target, request, COUNTERS_WHAT)
            counters.update(read_counter32(self.interfaces, var_binds, chunk))
        return uptime, counters

    def close(self) -> None:
        """Close the sockets. Idempotent; call it while the event loop runs."""
        if self._closed:
            return
        self._closed = True
        for backend in (self._lean, self._lean_v3, self._pysnmp):
            if backend is not None:
                backend.close()

    def backend(self, target: SnmpTarget) -> Backend:
        """The backend for ``target`` (created on first use); the choice logged once."""
        name = backend_for(target, self._v2c_backend, self._v3_backend)
        self._log_choice(target, name)
        if name == "lean-v2c":
            if self._lean is None:
                self._lean = LeanV2c()
            return self._lean
        if name == "lean-v3":
            if self._lean_v3 is None:
                from agent.snmp.lean_v3 import LeanV3  # lazily: v2c-only agents need no crypto

                self._lean_v3 = LeanV3()
            return self._lean_v3
        if self._pysnmp is None:
            from agent.snmp.pysnmp_backend import PysnmpBackend  # lazily: ~15-25 MB

            self._pysnmp = PysnmpBackend()
        return self._pysnmp

    def _log_choice(self, target: SnmpTarget, name: BackendName) -> None:
        shown = describe(target, name)
        if self._chosen.get(target.device) != shown:
            self._chosen[target.device] = shown
            log.info("device %s: %s", target.device, shown)
