"""The agent's SNMP edge: poll one device's uptime and interface table.

A thin adapter around pysnmp 7 (asyncio, v3arch). It owns one
:class:`~pysnmp.hlapi.v3arch.asyncio.SnmpEngine` for every device it polls and
translates every pysnmp outcome into :mod:`agent.errors` where it enters.

One poll is:

1. one GET of ``sysUpTime.0`` - the reachability probe. A timeout here fails
   the poll at once (no walk against a dead device);
2. one GETBULK loop walking all needed ifTable and ifXTable columns together,
   each column advancing from its own cursor until it leaves its subtree.

Values are checked cell by cell. A device that lies about one cell (wrong type,
value out of range, bad instance) loses that value - it becomes ``None`` and
the problem is listed in :attr:`RawPoll.warnings` - while the rest of the poll
stands. Whole-exchange failures (timeouts, refused credentials, error-status,
a walk that does not terminate, an unusable sysUpTime) raise.

The interface *set* is the union of the indices seen in any polled column:
real devices have sparse tables (rows in ifXTable but not ifTable and the other
way round), so no column is trusted to list them all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pyasn1.error import PyAsn1Error
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    usmAesBlumenthalCfb192Protocol,
    usmAesBlumenthalCfb256Protocol,
    usmAesCfb128Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
    usmNoPrivProtocol,
)
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902, rfc1905

from agent import oids
from agent.errors import SnmpAuthError, SnmpError, SnmpProtocolError, SnmpTimeout
from agent.oids import Oid, dotted

AuthProtocol = Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5"]
PrivProtocol = Literal["AES", "AES192", "AES256", "DES"]

_AUTH_PROTOCOLS: Final[dict[str, Any]] = {
    "SHA": usmHMACSHAAuthProtocol,
    "SHA224": usmHMAC128SHA224AuthProtocol,
    "SHA256": usmHMAC192SHA256AuthProtocol,
    "SHA384": usmHMAC256SHA384AuthProtocol,
    "SHA512": usmHMAC384SHA512AuthProtocol,
    "MD5": usmHMACMD5AuthProtocol,
}
# AES192/AES256 as net-snmp means them (Blumenthal key extension); Cisco's
# "AES192C/AES256C" (Reeder) variant is not offered.
_PRIV_PROTOCOLS: Final[dict[str, Any]] = {
    "AES": usmAesCfb128Protocol,
    "AES192": usmAesBlumenthalCfb192Protocol,
    "AES256": usmAesBlumenthalCfb256Protocol,
    "DES": usmDESPrivProtocol,
}

# Error indications that mean "the device answered, and refused us".
_AUTH_INDICATIONS: Final = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.DecryptionError,
    errind.NotInTimeWindow,
    errind.UnknownEngineID,
    errind.UnknownCommunityName,
)
_AUTH_ERROR_STATUSES: Final = frozenset({"authorizationError", "noAccess"})

_MAX_INDEX: Final = 2**31 - 1  # InterfaceIndex is 1..2147483647
_MAX_U32: Final = 2**32 - 1
_MAX_U64: Final = 2**64 - 1
_OPER_STATUS_RANGE: Final = range(1, 8)  # up(1) .. lowerLayerDown(7)
_ADMIN_STATUS_RANGE: Final = range(1, 4)  # up(1) down(2) testing(3)
# Loop protection: a walk that needs more requests than this is not terminating.
_MAX_WALK_REQUESTS: Final = 5_000


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class SnmpV2c:
    community: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SnmpV3:
    """SNMPv3 USM credentials: authPriv when ``priv_key`` is given, else authNoPriv."""

    user: str
    auth_key: str = field(repr=False)
    priv_key: str | None = field(repr=False)
    auth_protocol: AuthProtocol = "SHA"
    priv_protocol: PrivProtocol | None = "AES"

    def __post_init__(self) -> None:
        if len(self.auth_key) < 8:
            raise ValueError(f"SNMPv3 user {self.user!r}: auth key shorter than 8 characters")
        if self.priv_key is not None:
            if len(self.priv_key) < 8:
                raise ValueError(f"SNMPv3 user {self.user!r}: priv key shorter than 8 characters")
            if self.priv_protocol is None:
                raise ValueError(f"SNMPv3 user {self.user!r}: priv key given without priv protocol")


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    device: str
    host: str
    credentials: SnmpV2c | SnmpV3
    port: int = 161
    timeout_s: float = 2.0
    retries: int = 1
    max_repetitions: int = 25  # GETBULK max-repetitions (rows per request)

    @property
    def address(self) -> str:
        """``host:port``, IPv6 literals in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class RawInterface:
    index: int
    name: str  # ifName, else ifDescr, else f"if{index}"
    descr: str | None
    oper_status: int | None
    admin_status: int | None
    speed_bps: int | None  # ifHighSpeed * 1e6 when > 0, else ifSpeed; None when 0/absent
    in_octets: int | None
    out_octets: int | None
    hc: bool  # True when in/out_octets are the 64-bit counters
    discontinuity_cs: int | None  # ifCounterDiscontinuityTime (sysUpTime ticks)


@dataclass(frozen=True, slots=True)
class RawPoll:
    device: str
    sys_uptime_cs: int
    interfaces: tuple[RawInterface, ...]
    rtt_s: float  # wall time of the whole poll (GET + walk)
    warnings: tuple[str, ...] = ()  # cells the device lied about, dropped to None


# --------------------------------------------------------------------------- values

_NULL: Final = rfc1902.Null("")
_TAG_COUNTER32: Final = rfc1902.Counter32.tagSet
_TAG_COUNTER64: Final = rfc1902.Counter64.tagSet
_TAG_GAUGE32: Final = rfc1902.Gauge32.tagSet  # same tag as Unsigned32
_TAG_INTEGER: Final = rfc1902.Integer32.tagSet
_TAG_TIMETICKS: Final = rfc1902.TimeTicks.tagSet
_TAG_OCTETS: Final = rfc1902.OctetString.tagSet
_TAG_END: Final = rfc1905.EndOfMibView.tagSet
_TAGS_NO_SUCH: Final = (rfc1905.NoSuchObject.tagSet, rfc1905.NoSuchInstance.tagSet)
_TAGS_NUMBER: Final = (_TAG_INTEGER, _TAG_GAUGE32, _TAG_COUNTER32, _TAG_COUNTER64)
_TYPE_NAMES: Final = {
    _TAG_COUNTER32: "Counter32",
    _TAG_COUNTER64: "Counter64",
    _TAG_GAUGE32: "Gauge32",
    _TAG_INTEGER: "Integer",
    _TAG_TIMETICKS: "TimeTicks",
    _TAG_OCTETS: "OctetString",
    rfc1902.IpAddress.tagSet: "IpAddress",
    rfc1902.ObjectIdentifier.tagSet: "ObjectIdentifier",
    rfc1902.Opaque.tagSet: "Opaque",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(value.tagSet, type(value).__name__)


class _Warnings:
    """Problems per (column, kind), counted, keeping the first example."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[str, int]] = {}

    def add(self, column: str, problem: str, where: str) -> None:
        key = (column, problem)
        first, count = self._seen.get(key, (where, 0))
        self._seen[key] = (first, count + 1)

    def render(self) -> tuple[str, ...]:
        lines = []
        for (column, problem), (where, count) in self._seen.items():
            more = f" (and {count - 1} more)" if count > 1 else ""
            lines.append(f"{column}: {problem} at {where}{more}")
        return tuple(lines)


@dataclass(frozen=True, slots=True)
class _Counter:
    value: int
    wide: bool  # Counter64


def _as_text(value: Any) -> str | None:
    if value.tagSet != _TAG_OCTETS:
        return None
    return bytes(value.asOctets()).decode("utf-8", "replace").rstrip("\x00")


def _as_number(value: Any, low: int, high: int) -> int | None:
    if value.tagSet not in _TAGS_NUMBER:
        return None
    number = int(value)
    return number if low <= number <= high else None


def _as_counter(value: Any) -> _Counter | None:
    if value.tagSet == _TAG_COUNTER32:
        number = int(value)
        return _Counter(number, wide=False) if 0 <= number <= _MAX_U32 else None
    if value.tagSet == _TAG_COUNTER64:
        number = int(value)
        return _Counter(number, wide=True) if 0 <= number <= _MAX_U64 else None
    return None


def _as_timeticks(value: Any) -> int | None:
    if value.tagSet != _TAG_TIMETICKS:
        return None
    number = int(value)
    return number if 0 <= number <= _MAX_U32 else None


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    oid: Oid
    parse: Callable[[Any], object | None]
    expected: str


_IF_DESCR = _Column("ifDescr", oids.IF_DESCR, _as_text, "OctetString")
_IF_SPEED = _Column("ifSpeed", oids.IF_SPEED, lambda v: _as_number(v, 0, _MAX_U32), "Gauge32")
_IF_ADMIN = _Column(
    "ifAdminStatus", oids.IF_ADMIN_STATUS, lambda v: _as_number(v, 1, 3), "Integer 1..3"
)
_IF_OPER = _Column(
    "ifOperStatus", oids.IF_OPER_STATUS, lambda v: _as_number(v, 1, 7), "Integer 1..7"
)
_IF_IN = _Column("ifInOctets", oids.IF_IN_OCTETS, _as_counter, "Counter32")
_IF_OUT = _Column("ifOutOctets", oids.IF_OUT_OCTETS, _as_counter, "Counter32")
_IF_NAME = _Column("ifName", oids.IF_NAME, _as_text, "OctetString")
_IF_HC_IN = _Column("ifHCInOctets", oids.IF_HC_IN_OCTETS, _as_counter, "Counter64")
_IF_HC_OUT = _Column("ifHCOutOctets", oids.IF_HC_OUT_OCTETS, _as_counter, "Counter64")
_IF_HIGH_SPEED = _Column(
    "ifHighSpeed", oids.IF_HIGH_SPEED, lambda v: _as_number(v, 0, _MAX_U32), "Gauge32"
)
_IF_DISCONTINUITY = _Column(
    "ifCounterDiscontinuityTime", oids.IF_COUNTER_DISCONTINUITY_TIME, _as_timeticks, "TimeTicks"
)
_COLUMNS: Final = (
    _IF_DESCR,
    _IF_SPEED,
    _IF_ADMIN,
    _IF_OPER,
    _IF_IN,
    _IF_OUT,
    _IF_NAME,
    _IF_HC_IN,
    _IF_HC_OUT,
    _IF_HIGH_SPEED,
    _IF_DISCONTINUITY,
)

_Table = dict[_Column, dict[int, object]]


def _parse_cells(raw: dict[_Column, dict[int, tuple[Oid, Any]]], warnings: _Warnings) -> _Table:
    """Check every cell against its column's type; bad cells are dropped and noted."""
    table: _Table = {}
    for column, cells in raw.items():
        parsed: dict[int, object] = {}
        for index, (oid, value) in cells.items():
            result = column.parse(value)
            if result is None:
                shown = value.prettyPrint()
                if len(shown) > 40:
                    shown = shown[:40] + "..."
                warnings.add(
                    column.name,
                    f"expected {column.expected}, got {_type_name(value)} {shown!r}; dropped",
                    dotted(oid),
                )
                continue
            parsed[index] = result
        table[column] = parsed
    return table


def _pick_counters(
    table: _Table, index: int, warnings: _Warnings
) -> tuple[int | None, int | None, bool]:
    """64-bit ifHC* when both are there, else 32-bit ifIn/OutOctets."""
    hc_in = table[_IF_HC_IN].get(index)
    hc_out = table[_IF_HC_OUT].get(index)
    if isinstance(hc_in, _Counter) and isinstance(hc_out, _Counter):
        if hc_in.wide and hc_out.wide:
            return hc_in.value, hc_out.value, True
        warnings.add(
            "ifHCInOctets",
            "Counter32 in a 64-bit column; used ifIn/OutOctets",
            f"{dotted(oids.IF_HC_IN_OCTETS)}.{index}",
        )
    low_in = table[_IF_IN].get(index)
    low_out = table[_IF_OUT].get(index)
    if not (isinstance(low_in, _Counter) and isinstance(low_out, _Counter)):
        # One direction only: keep it, the width of what we have decides hc.
        one = low_in if isinstance(low_in, _Counter) else low_out
        if isinstance(one, _Counter):
            return (
                low_in.value if isinstance(low_in, _Counter) else None,
                low_out.value if isinstance(low_out, _Counter) else None,
                one.wide,
            )
        return None, None, False
    if low_in.wide != low_out.wide:
        warnings.add(
            "ifInOctets",
            "in/out counters of different widths; dropped",
            f"{dotted(oids.IF_IN_OCTETS)}.{index}",
        )
        return None, None, False
    if low_in.wide:
        warnings.add(
            "ifInOctets",
            "Counter64 in a 32-bit column; used as 64-bit",
            f"{dotted(oids.IF_IN_OCTETS)}.{index}",
        )
    return low_in.value, low_out.value, low_in.wide


def _assemble(table: _Table, warnings: _Warnings) -> tuple[RawInterface, ...]:
    indices: set[int] = set()
    for cells in table.values():
        indices.update(cells)
    interfaces = []
    for index in sorted(indices):
        descr = table[_IF_DESCR].get(index)
        name = table[_IF_NAME].get(index)
        high_speed = table[_IF_HIGH_SPEED].get(index)
        speed = table[_IF_SPEED].get(index)
        speed_bps: int | None = None
        if isinstance(high_speed, int) and high_speed > 0:
            speed_bps = high_speed * 1_000_000
        elif isinstance(speed, int) and speed > 0:
            speed_bps = speed
        in_octets, out_octets, hc = _pick_counters(table, index, warnings)
        oper = table[_IF_OPER].get(index)
        admin = table[_IF_ADMIN].get(index)
        discontinuity = table[_IF_DISCONTINUITY].get(index)
        interfaces.append(
            RawInterface(
                index=index,
                name=(name if isinstance(name, str) and name else None)
                or (descr if isinstance(descr, str) and descr else None)
                or f"if{index}",
                descr=descr if isinstance(descr, str) else None,
                oper_status=oper if isinstance(oper, int) else None,
                admin_status=admin if isinstance(admin, int) else None,
                speed_bps=speed_bps,
                in_octets=in_octets,
                out_octets=out_octets,
                hc=hc,
                discontinuity_cs=discontinuity if isinstance(discontinuity, int) else None,
            )
        )
    return tuple(interfaces)


# --------------------------------------------------------------------------- poller


@dataclass(slots=True)
class _Session:
    """What pysnmp needs to talk to one device; cached per device."""

    target: SnmpTarget
    engine: Any
    auth: Any
    transport: Any


class SnmpPoller:
    """Polls devices over SNMP v2c/v3 with one shared pysnmp engine.

    pysnmp's USM keys users by name, so two devices with the *same* v3 user
    name but different keys cannot share an engine; such a device gets an
    engine of its own (created on demand, closed with the poller).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._engine: Any = SnmpEngine()
        self._v3_users: dict[str, SnmpV3] = {}  # registered in self._engine
        self._extra_engines: dict[SnmpV3, Any] = {}
        self._sessions: dict[str, _Session] = {}
        self._context: Any = ContextData()
        self._closed = False

    async def poll(self, target: SnmpTarget) -> RawPoll:
        """Uptime and interfaces of ``target``; raises :class:`SnmpError` subclasses."""
        if self._closed:
            raise RuntimeError("SnmpPoller is closed")
        started = self._clock()
        session = await self._session(target)
        warnings = _Warnings()
        uptime = await self._get_uptime(session, warnings)
        raw = await self._walk(session, _COLUMNS, warnings)
        table = _parse_cells(raw, warnings)
        interfaces = _assemble(table, warnings)
        return RawPoll(
            device=target.device,
            sys_uptime_cs=uptime,
            interfaces=interfaces,
            rtt_s=self._clock() - started,
            warnings=warnings.render(),
        )

    def close(self) -> None:
        """Close the engines' sockets. Idempotent; call it while the event loop runs."""
        if self._closed:
            return
        self._closed = True
        for engine in (self._engine, *self._extra_engines.values()):
            engine.close_dispatcher()
        self._sessions.clear()

    # -- session set-up ---------------------------------------------------------------

    async def _session(self, target: SnmpTarget) -> _Session:
        cached = self._sessions.get(target.device)
        if cached is not None and cached.target == target:
            return cached
        engine, auth = self._engine_and_auth(target.credentials)
        try:
            transport_class = Udp6TransportTarget if _is_ipv6(target.host) else UdpTransportTarget
            transport = await transport_class.create(
                (target.host, target.port), timeout=target.timeout_s, retries=target.retries
            )
        except PySnmpError as exc:
            raise SnmpError(target.device, f"cannot address {target.address}: {exc}") from exc
        session = _Session(target, engine, auth, transport)
        self._sessions[target.device] = session
        return session

    def _engine_and_auth(self, credentials: SnmpV2c | SnmpV3) -> tuple[Any, Any]:
        if isinstance(credentials, SnmpV2c):
            return self._engine, CommunityData(credentials.community, mpModel=1)
        auth = UsmUserData(
            credentials.user,
            authKey=credentials.auth_key,
            privKey=credentials.priv_key,
            authProtocol=_AUTH_PROTOCOLS[credentials.auth_protocol],
            privProtocol=(
                _PRIV_PROTOCOLS[credentials.priv_protocol]
                if credentials.priv_key is not None and credentials.priv_protocol is not None
                else usmNoPrivProtocol
            ),
        )
        registered = self._v3_users.setdefault(credentials.user, credentials)
        if registered == credentials:
            return self._engine, auth
        engine = self._extra_engines.get(credentials)
        if engine is None:
            engine = self._extra_engines[credentials] = SnmpEngine()
        return engine, auth

    # -- exchanges --------------------------------------------------------------------

    async def _request(
        self, session: _Session, request: Sequence[Oid], max_repetitions: int | None
    ) -> tuple[Any, Any, Any, Sequence[tuple[Any, Any]]]:
        """One GET (``max_repetitions`` None) or GETBULK exchange; pysnmp's raw outcome.

        What pysnmp's ``get_cmd``/``bulk_cmd`` do, minus their MIB resolution of every
        requested OID (``ObjectType.resolve_with_mib``, ~0.4 ms of CPU per OID even with
        ``lookupMib=False``): numeric OIDs need none, so the var-binds go to the command
        generator as ``(ObjectName, Null)`` pairs. Responses come back unresolved, as
        with ``lookupMib=False``.
        """
        engine, context = session.engine, self._context
        addr_name, _ = LCD.configure(engine, session.auth, session.transport,
                                     context.contextName)
        future: asyncio.Future[tuple[Any, Any, Any, Sequence[tuple[Any, Any]]]]
        future = asyncio.get_running_loop().create_future()

        def done(_engine: Any, _handle: Any, error_indication: Any, error_status: Any,
                 error_index: Any, var_binds: Any, _ctx: Any) -> None:
            if not future.done():
                future.set_result((error_indication, error_status, error_index, var_binds))

        var_binds = [(rfc1902.ObjectName(oid), _NULL) for oid in request]
        if max_repetitions is None:
            cmdgen.GetCommandGenerator().send_varbinds(
                engine, addr_name, context.contextEngineId, context.contextName, var_binds, done
            )
        else:
            cmdgen.BulkCommandGenerator().send_varbinds(
                engine, addr_name, context.contextEngineId, context.contextName,
                0, max_repetitions, var_binds, done,
            )
        return await future

    async def _get_uptime(self, session: _Session, warnings: _Warnings) -> int:
        target = session.target
        request = (oids.SYS_UPTIME,)
        try:
            error_indication, error_status, error_index, var_binds = await self._request(
                session, request, None
            )
        except (PySnmpError, PyAsn1Error) as exc:
            raise SnmpError(target.device, f"GET sysUpTime from {target.address}: {exc}") from exc
        _raise_for_errors(
            target, "GET sysUpTime", request, error_indication, error_status, error_index
        )
        if len(var_binds) != 1:
            raise SnmpProtocolError(
                target.device,
                f"{target.address} answered GET sysUpTime with {len(var_binds)} varbinds",
            )
        oid, value = tuple(var_binds[0][0]), var_binds[0][1]
        where = f"{target.address} {dotted(oids.SYS_UPTIME)}"
        if oid != oids.SYS_UPTIME:
            raise SnmpProtocolError(
                target.device, f"{target.address} answered GET sysUpTime with OID {dotted(oid)}"
            )
        if value.tagSet in _TAGS_NO_SUCH or value.tagSet == _TAG_END:
            raise SnmpProtocolError(target.device, f"{where}: {value.prettyPrint()}")
        ticks = _as_timeticks(value)
        if ticks is None:
            # Some agents send sysUpTime with the wrong type; a plain unsigned
            # number is still usable, anything else is not.
            ticks = _as_number(value, 0, _MAX_U32)
            if ticks is None:
                raise SnmpProtocolError(
                    target.device,
                    f"{where}: expected TimeTicks, got {_type_name(value)} {value.prettyPrint()!r}",
                )
            warnings.add(
                "sysUpTime",
                f"expected TimeTicks, got {_type_name(value)}; used",
                dotted(oids.SYS_UPTIME),
            )
        return ticks

    async def _walk(
        self, session: _Session, columns: Sequence[_Column], warnings: _Warnings
    ) -> dict[_Column, dict[int, tuple[Oid, Any]]]:
        """Walk ``columns`` together with one GETBULK loop.

        Each column keeps its own cursor and leaves the loop when it leaves its
        subtree, hits endOfMibView/noSuch*, or goes backwards (a looping agent).
        """
        target = session.target
        cursors: dict[_Column, Oid] = {column: column.oid for column in columns}
        cells: dict[_Column, dict[int, tuple[Oid, Any]]] = {column: {} for column in columns}
        active = list(columns)
        requests = 0
        while active:
            requests += 1
            if requests > _MAX_WALK_REQUESTS:
                raise SnmpProtocolError(
                    target.device,
                    f"{target.address}: interface walk did not end after "
                    f"{_MAX_WALK_REQUESTS} GETBULK requests",
                )
            request = tuple(cursors[column] for column in active)
            try:
                error_indication, error_status, error_index, var_binds = await self._request(
                    session, request, target.max_repetitions
                )
            except (PySnmpError, PyAsn1Error) as exc:
                raise SnmpError(target.device, f"GETBULK to {target.address}: {exc}") from exc
            _raise_for_errors(
                target, "GETBULK", request, error_indication, error_status, error_index
            )
            finished: set[_Column] = set()
            for position, (name, value) in enumerate(var_binds):
                column = active[position % len(active)]
                if column in finished:
                    continue
                oid = tuple(name)
                if value.tagSet == _TAG_END or value.tagSet in _TAGS_NO_SUCH:
                    finished.add(column)
                    continue
                if oid[: len(column.oid)] != column.oid:
                    finished.add(column)  # left its subtree: column done
                    continue
                if oid <= cursors[column]:
                    # A looping agent: keep what came in order, stop this column.
                    warnings.add(
                        column.name,
                        f"non-increasing OID after {dotted(cursors[column])}; column walk stopped",
                        dotted(oid),
                    )
                    finished.add(column)
                    continue
                cursors[column] = oid
                suffix = oid[len(column.oid) :]
                if len(suffix) != 1 or not 1 <= suffix[0] <= _MAX_INDEX:
                    warnings.add(column.name, "instance is not an ifIndex; dropped", dotted(oid))
                    continue
                cells[column][suffix[0]] = (oid, value)
            active = [column for column in active if column not in finished]
        return cells


def _is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


def _raise_for_errors(
    target: SnmpTarget,
    what: str,
    request: Sequence[Oid],
    error_indication: Any,
    error_status: Any,
    error_index: Any,
) -> None:
    """Translate pysnmp's errorIndication / error-status into the agent's errors."""
    if error_indication:
        if isinstance(error_indication, errind.RequestTimedOut):
            raise SnmpTimeout(
                target.device,
                f"no response from {target.address} to {what} within {target.timeout_s:g} s "
                f"x {target.retries + 1} tries",
            ) from error_indication
        if isinstance(error_indication, _AUTH_INDICATIONS):
            raise SnmpAuthError(
                target.device, f"{target.address} refused {what}: {error_indication}"
            ) from error_indication
        exc = error_indication if isinstance(error_indication, BaseException) else None
        raise SnmpProtocolError(
            target.device, f"{target.address} {what}: {error_indication}"
        ) from exc
    if error_status and int(error_status) != 0:
        status = (
            error_status.prettyPrint()
            if hasattr(error_status, "prettyPrint")
            else str(error_status)
        )
        position = int(error_index) if error_index else 0
        at = f" at {dotted(request[position - 1])}" if 1 <= position <= len(request) else ""
        error_class = SnmpAuthError if status in _AUTH_ERROR_STATUSES else SnmpProtocolError
        raise error_class(
            target.device, f"{target.address} answered {what} with error-status {status}{at}"
        )
