"""The agent's SNMP edge: poll one device's uptime and interface table.

Two backends carry the exchanges, and this module judges what they bring back:

* SNMP v2c: the lean codec of :mod:`agent.ber` over :mod:`agent.snmp_v2c`'s asyncio
  UDP client (~10x less CPU per poll than pysnmp, docs/snmp.md);
* SNMPv3 (USM) with MD5/SHA/SHA-2 authentication and no privacy or AES-128: the
  same lean codec, with :mod:`agent.usm`'s crypto, over :mod:`agent.snmp_v3`'s
  client (imported when the first v3 target is polled);
* SNMPv3 with DES or AES-192/256 privacy: pysnmp 7 (:mod:`agent.snmp_pysnmp`),
  imported only when the first such target is polled, so an agent whose
  credentials are all lean-supported never loads pysnmp/pyasn1
  (:func:`lean_supports` is the one place that decides).

Both hand var-binds over in one neutral form, ``(oid, tag, value)``
(:data:`agent.ber.VarBind`), and every check below - error-status, the walk's loop
protections, the cell checks - is one code path for both. Library errors are
translated into :mod:`agent.errors` where they enter, in the backends.

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

import collections
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from agent import ber, oids
from agent.ber import VarBind
from agent.credentials import BackendChoice, SnmpV2c, SnmpV3
from agent.errors import (
    SnmpAccessError,
    SnmpConfigError,
    SnmpLimitError,
    SnmpProtocolError,
    SnmpResolveError,
)
from agent.oids import Oid, dotted
from agent.snmp_v2c import Address, UdpClient, V2cClient

if TYPE_CHECKING:
    from agent.snmp_pysnmp import PysnmpBackend
    from agent.snmp_v3 import V3Client


#: Error-statuses that refuse the polled objects to our credentials: cause ``access``.
_ACCESS_ERROR_STATUSES: Final = frozenset({"authorizationError", "noAccess", "noSuchName"})

_MAX_INDEX: Final = 2**31 - 1  # InterfaceIndex is 1..2147483647
_MAX_U32: Final = 2**32 - 1
_MAX_U64: Final = 2**64 - 1
_OPER_STATUS_RANGE: Final = range(1, 8)  # up(1) .. lowerLayerDown(7)
_ADMIN_STATUS_RANGE: Final = range(1, 4)  # up(1) down(2) testing(3)
#: The wire's bound on free text (``xanet.wire.ShortText``): longer names are cut here.
MAX_TEXT_CHARS: Final = 256
#: The wire's bound on interfaces per device poll: the default row bound of a walk.
MAX_ROWS: Final = 4096
#: Default bound on what one walk may hold (estimated bytes, see :func:`_cell_cost`).
MAX_WALK_BYTES: Final = 4 * 1024 * 1024
#: What a stored cell costs besides its octets (dict slot, int or str object), estimated.
_CELL_OVERHEAD_BYTES: Final = 64

#: Contained per-device faults, counted per poll (docs/snmp.md, "Bounds"):
ROWS_OVER_BOUND: Final = "rows_over_bound"  # rows beyond max_rows discarded (poll kept)
TEXT_TRUNCATED: Final = "text_truncated"  # ifName/ifDescr cut to MAX_TEXT_CHARS (poll kept)
WALK_REQUESTS: Final = "walk_requests"  # walk did not end within its request bound: limit
WALK_BYTES: Final = "walk_bytes"  # walk would hold more than max_walk_bytes: limit


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    device: str
    host: str
    credentials: SnmpV2c | SnmpV3
    port: int = 161
    timeout_s: float = 2.0
    retries: int = 1
    max_repetitions: int = 25  # GETBULK max-repetitions (rows per request)
    max_rows: int = MAX_ROWS  # interface rows kept; rows beyond are discarded and counted
    max_walk_bytes: int = MAX_WALK_BYTES  # a walk holding more fails with cause "limit"
    backend: BackendChoice = "auto"  # "pysnmp": never the lean codec for this device

    @property
    def max_walk_requests(self) -> int:
        """GETBULKs an honest walk of ``max_rows`` rows can need, twice, plus slack.

        Every request advances each column by ``max_repetitions`` rows, so a walk of at
        most ``max_rows`` rows ends within ``ceil(max_rows / max_repetitions) + 1``;
        more means the device sends rows that are not rows (endless instances).
        """
        return 2 * -(-self.max_rows // self.max_repetitions) + 16

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
    #: contained faults of this poll, ``(reason, count)``: ROWS_OVER_BOUND, TEXT_TRUNCATED
    contained: tuple[tuple[str, int], ...] = ()


# --------------------------------------------------------------------------- values
#
# Both backends hand var-binds over in the neutral form of agent.ber:
# ``(oid, tag, value)`` with ``tag`` the BER tag byte and ``value`` an int, bytes,
# an OID tuple or None. Every check below works on that form only.

_TAGS_NO_SUCH: Final = (ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE)
_TAGS_NUMBER: Final = (ber.INTEGER, ber.GAUGE32, ber.COUNTER32, ber.COUNTER64)
# What pysnmp's prettyPrint() says for these (kept: the messages predate the lean path).
_EXCEPTION_TEXT: Final = {
    ber.NO_SUCH_OBJECT: "No Such Object currently exists at this OID",
    ber.NO_SUCH_INSTANCE: "No Such Instance currently exists at this OID",
    ber.END_OF_MIB_VIEW: "No more variables left in this MIB View",
}
# RFC 3416 error-status names.
_ERROR_STATUS_NAMES: Final = (
    "noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess",
    "wrongType", "wrongLength", "wrongEncoding", "wrongValue", "noCreation",
    "inconsistentValue", "resourceUnavailable", "commitFailed", "undoFailed",
    "authorizationError", "notWritable", "inconsistentName",
)


def _type_name(tag: int) -> str:
    return ber.type_name(tag)


def _shown(tag: int, value: ber.Value) -> str:
    """A value as text, the way pysnmp's prettyPrint() shows it."""
    if isinstance(value, bytes):
        if tag == ber.IP_ADDRESS and value:
            return ".".join(str(octet) for octet in value)
        if any(octet < 32 or octet > 126 for octet in value):
            return "0x" + value.hex()
        return value.decode("ascii")
    if isinstance(value, tuple):
        return dotted(value)
    if value is None:
        return _EXCEPTION_TEXT.get(tag, "")
    return str(value)


class _Warnings:
    """Problems per (column, kind), counted, keeping the first example."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[str, int]] = {}
        #: contained faults by reason (ROWS_OVER_BOUND, TEXT_TRUNCATED)
        self.contained: collections.Counter[str] = collections.Counter()

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


def _as_text(tag: int, value: ber.Value) -> str | None:
    if tag != ber.OCTET_STRING or not isinstance(value, bytes):
        return None
    return value.decode("utf-8", "replace").rstrip("\x00")


def _as_number(tag: int, value: ber.Value, low: int, high: int) -> int | None:
    if tag not in _TAGS_NUMBER or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


def _as_counter(tag: int, value: ber.Value) -> _Counter | None:
    if not isinstance(value, int):
        return None
    if tag == ber.COUNTER32:
        return _Counter(value, wide=False) if 0 <= value <= _MAX_U32 else None
    if tag == ber.COUNTER64:
        return _Counter(value, wide=True) if 0 <= value <= _MAX_U64 else None
    return None


def _as_timeticks(tag: int, value: ber.Value) -> int | None:
    if tag != ber.TIMETICKS or not isinstance(value, int):
        return None
    return value if 0 <= value <= _MAX_U32 else None


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    oid: Oid
    parse: Callable[[int, ber.Value], object | None]
    expected: str


_IF_DESCR = _Column("ifDescr", oids.IF_DESCR, _as_text, "OctetString")
_IF_SPEED = _Column("ifSpeed", oids.IF_SPEED, lambda t, v: _as_number(t, v, 0, _MAX_U32), "Gauge32")
_IF_ADMIN = _Column(
    "ifAdminStatus", oids.IF_ADMIN_STATUS, lambda t, v: _as_number(t, v, 1, 3), "Integer 1..3"
)
_IF_OPER = _Column(
    "ifOperStatus", oids.IF_OPER_STATUS, lambda t, v: _as_number(t, v, 1, 7), "Integer 1..7"
)
_IF_IN = _Column("ifInOctets", oids.IF_IN_OCTETS, _as_counter, "Counter32")
_IF_OUT = _Column("ifOutOctets", oids.IF_OUT_OCTETS, _as_counter, "Counter32")
_IF_NAME = _Column("ifName", oids.IF_NAME, _as_text, "OctetString")
_IF_HC_IN = _Column("ifHCInOctets", oids.IF_HC_IN_OCTETS, _as_counter, "Counter64")
_IF_HC_OUT = _Column("ifHCOutOctets", oids.IF_HC_OUT_OCTETS, _as_counter, "Counter64")
_IF_HIGH_SPEED = _Column(
    "ifHighSpeed", oids.IF_HIGH_SPEED, lambda t, v: _as_number(t, v, 0, _MAX_U32), "Gauge32"
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


def _parse_cell(column: _Column, var_bind: VarBind, warnings: _Warnings) -> object | None:
    """Check a cell against its column's type; a bad cell is noted and gives None.

    Text longer than the wire's bound is cut to :data:`MAX_TEXT_CHARS` here and counted
    (``TEXT_TRUNCATED``): one 300-character ifDescr must not fail the device's poll.
    """
    oid, tag, value = var_bind
    result = column.parse(tag, value)
    if result is None:
        shown = _shown(tag, value)
        if len(shown) > 40:
            shown = shown[:40] + "..."
        warnings.add(
            column.name,
            f"expected {column.expected}, got {_type_name(tag)} {shown!r}; dropped",
            dotted(oid),
        )
    elif isinstance(result, str) and len(result) > MAX_TEXT_CHARS:
        warnings.add(column.name, f"longer than {MAX_TEXT_CHARS} characters; truncated",
                     dotted(oid))
        warnings.contained[TEXT_TRUNCATED] += 1
        result = result[:MAX_TEXT_CHARS]
    return result


def _cell_cost(var_bind: VarBind) -> int:
    """Estimated bytes a stored cell holds: its octets plus a fixed overhead."""
    value = var_bind[2]
    return _CELL_OVERHEAD_BYTES + (len(value) if isinstance(value, bytes) else 0)


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

Backend = Literal["lean", "pysnmp"]
_Response = tuple[int, int, Sequence[VarBind]]  # error-status, error-index, var-binds


class _Exchanger(Protocol):
    """One GET (``max_repetitions`` None) or GETBULK with ``target``; raises SnmpError.

    Timeouts and refusals below the PDU (USM reports) are the backend's to raise;
    the error-status and the var-binds come back for :class:`SnmpPoller` to judge.
    """

    async def exchange(
        self, target: SnmpTarget, request: Sequence[Oid], max_repetitions: int | None, what: str
    ) -> _Response: ...

    def close(self) -> None: ...


class _Lean:
    """What both lean backends keep: their UDP client and each device's resolved address."""

    def __init__(self, client: UdpClient[Any]) -> None:
        self._client = client
        self._addresses: dict[str, tuple[SnmpTarget, Address]] = {}

    @property
    def ignored(self) -> dict[str, int]:
        return dict(self._client.ignored)

    async def _address(self, target: SnmpTarget) -> Address:
        cached = self._addresses.get(target.device)
        if cached is not None and cached[0] == target:
            return cached[1]
        family = socket.AF_INET6 if is_ipv6(target.host) else socket.AF_INET
        try:
            address = await UdpClient.resolve(target.host, target.port, family, target.address)
        except (socket.gaierror, UnicodeError) as exc:  # no such name; IDNA-unencodable name
            raise SnmpResolveError(
                target.device, f"cannot address {target.address}: {exc}"
            ) from exc
        except OSError as exc:
            raise SnmpConfigError(
                target.device, f"cannot address {target.address}: {exc}"
            ) from exc
        self._addresses[target.device] = (target, address)
        return address

    def close(self) -> None:
        self._client.close()
        self._addresses.clear()


class _LeanV2c(_Lean):
    """The v2c path: :mod:`agent.ber` over :class:`~agent.snmp_v2c.V2cClient`."""

    _client: V2cClient

    def __init__(self) -> None:
        super().__init__(V2cClient())

    async def exchange(
        self, target: SnmpTarget, request: Sequence[Oid], max_repetitions: int | None, what: str
    ) -> _Response:
        credentials = target.credentials
        if not isinstance(credentials, SnmpV2c):  # pragma: no cover - routed by SnmpPoller
            raise TypeError("the lean path speaks v2c only")
        address = await self._address(target)
        message = await self._client.request(
            device=target.device,
            address=address,
            community=credentials.community.encode(),
            oids=request,
            max_repetitions=max_repetitions,
            timeout_s=target.timeout_s,
            retries=target.retries,
            what=what,
        )
        return message.error_status, message.error_index, message.varbinds


def lean_supports(credentials: SnmpV2c | SnmpV3) -> bool:
    """Whether the lean path speaks ``credentials``: v2c, and SNMPv3 with any auth
    protocol and no privacy or AES(-128). DES and AES-192/256 go to pysnmp."""
    if isinstance(credentials, SnmpV2c):
        return True
    return credentials.priv_key is None or credentials.priv_protocol == "AES"


class _LeanV3(_Lean):
    """The SNMPv3 path for :func:`lean_supports` credentials: :class:`agent.snmp_v3.V3Client`."""

    _client: V3Client

    def __init__(self) -> None:
        from agent import snmp_v3, usm  # lazily: v2c-only agents need no crypto

        super().__init__(snmp_v3.V3Client())
        self._usm = usm
        self._credentials_type = snmp_v3.Credentials

    async def exchange(
        self, target: SnmpTarget, request: Sequence[Oid], max_repetitions: int | None, what: str
    ) -> _Response:
        credentials = target.credentials
        if not isinstance(credentials, SnmpV3) or not lean_supports(credentials):
            raise TypeError("routed by SnmpPoller")  # pragma: no cover
        address = await self._address(target)
        scoped = await self._client.request(
            device=target.device,
            address=address,
            credentials=self._credentials_type(
                user=credentials.user.encode(),
                auth=self._usm.AUTH_PROTOCOLS[credentials.auth_protocol],
                auth_password=credentials.auth_key.encode(),
                priv_password=(
                    credentials.priv_key.encode() if credentials.priv_key is not None else None
                ),
            ),
            oids=request,
            max_repetitions=max_repetitions,
            timeout_s=target.timeout_s,
            retries=target.retries,
            what=what,
        )
        return scoped.error_status, scoped.error_index, scoped.varbinds


class SnmpPoller:
    """Polls devices over SNMP: the lean codec when :func:`lean_supports` the
    credentials, pysnmp otherwise.

    pysnmp is imported when the first target that needs it is polled (SNMPv3 with
    DES/AES-192/AES-256 privacy, or any target of a kind whose backend is set to
    ``"pysnmp"`` here - ``v2c_backend``/``v3_backend`` exist for comparisons and
    tests): an agent polling lean-supported devices only never loads it.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        v2c_backend: Backend = "lean",
        v3_backend: Backend = "lean",
    ) -> None:
        self._clock = clock
        self._v2c_backend = v2c_backend
        self._v3_backend = v3_backend
        self._lean: _LeanV2c | None = None
        self._lean_v3: _LeanV3 | None = None
        self._pysnmp: PysnmpBackend | None = None
        self._closed = False

    @property
    def ignored_datagrams(self) -> dict[str, int]:
        """Datagrams the lean paths dropped, by reason (none tied to a request)."""
        ignored: collections.Counter[str] = collections.Counter()
        for lean in (self._lean, self._lean_v3):
            if lean is not None:
                ignored.update(lean.ignored)
        return dict(ignored)

    async def poll(self, target: SnmpTarget) -> RawPoll:
        """Uptime and interfaces of ``target``; raises :class:`SnmpError` subclasses."""
        if self._closed:
            raise RuntimeError("SnmpPoller is closed")
        started = self._clock()
        backend = self._backend(target)
        warnings = _Warnings()
        uptime = await _get_uptime(backend, target, warnings)
        table = await _walk(backend, target, _COLUMNS, warnings)
        interfaces = _assemble(table, warnings)
        return RawPoll(
            device=target.device,
            sys_uptime_cs=uptime,
            interfaces=interfaces,
            rtt_s=self._clock() - started,
            warnings=warnings.render(),
            contained=tuple(sorted(warnings.contained.items())),
        )

    def close(self) -> None:
        """Close the sockets. Idempotent; call it while the event loop runs."""
        if self._closed:
            return
        self._closed = True
        if self._lean is not None:
            self._lean.close()
        if self._lean_v3 is not None:
            self._lean_v3.close()
        if self._pysnmp is not None:
            self._pysnmp.close()

    def _backend(self, target: SnmpTarget) -> _Exchanger:
        if isinstance(target.credentials, SnmpV2c) and self._v2c_backend == "lean":
            if self._lean is None:
                self._lean = _LeanV2c()
            return self._lean
        credentials = target.credentials
        if (
            isinstance(credentials, SnmpV3)
            and self._v3_backend == "lean"
            and lean_supports(credentials)
        ):
            if self._lean_v3 is None:
                self._lean_v3 = _LeanV3()
            return self._lean_v3
        if self._pysnmp is None:
            from agent.snmp_pysnmp import PysnmpBackend  # lazily: ~15-25 MB

            self._pysnmp = PysnmpBackend()
        return self._pysnmp


# --------------------------------------------------------------------------- exchanges


async def _get_uptime(backend: _Exchanger, target: SnmpTarget, warnings: _Warnings) -> int:
    what = "GET sysUpTime"
    request = (oids.SYS_UPTIME,)
    error_status, error_index, var_binds = await backend.exchange(target, request, None, what)
    _raise_for_status(target, what, request, error_status, error_index)
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
    if tag in _TAGS_NO_SUCH or tag == ber.END_OF_MIB_VIEW:
        raise SnmpProtocolError(target.device, f"{where}: {_shown(tag, value)}")
    ticks = _as_timeticks(tag, value)
    if ticks is None:
        # Some agents send sysUpTime with the wrong type; a plain unsigned
        # number is still usable, anything else is not.
        ticks = _as_number(tag, value, 0, _MAX_U32)
        if ticks is None:
            raise SnmpProtocolError(
                target.device,
                f"{where}: expected TimeTicks, got {_type_name(tag)} {_shown(tag, value)!r}",
            )
        warnings.add(
            "sysUpTime",
            f"expected TimeTicks, got {_type_name(tag)}; used",
            dotted(oids.SYS_UPTIME),
        )
    return ticks


async def _walk(
    backend: _Exchanger, target: SnmpTarget, columns: Sequence[_Column], warnings: _Warnings
) -> _Table:
    """Walk ``columns`` together with one GETBULK loop; every cell checked as it comes.

    Each column keeps its own cursor and leaves the loop when it leaves its
    subtree, hits endOfMibView/noSuch*, or goes backwards (a looping agent).

    Bounded per device (docs/snmp.md, "Bounds"): rows beyond ``target.max_rows``
    (ifIndex values after the first ``max_rows`` seen) end their column's walk and
    are discarded and counted (``ROWS_OVER_BOUND``) - the poll keeps the rest; a walk
    that needs more than ``target.max_walk_requests`` GETBULKs or would hold more
    than ``target.max_walk_bytes`` fails with :class:`SnmpLimitError`.
    """
    cursors: dict[_Column, Oid] = {column: column.oid for column in columns}
    cells: _Table = {column: {} for column in columns}
    rows: set[int] = set()
    held_bytes = 0
    active = list(columns)
    requests = 0
    max_requests = target.max_walk_requests
    while active:
        requests += 1
        if requests > max_requests:
            raise SnmpLimitError(
                target.device,
                f"{target.address}: interface walk did not end after "
                f"{max_requests} GETBULK requests ({len(rows)} rows)",
            )
        request = tuple(cursors[column] for column in active)
        error_status, error_index, var_binds = await backend.exchange(
            target, request, target.max_repetitions, "GETBULK"
        )
        _raise_for_status(target, "GETBULK", request, error_status, error_index)
        finished: set[_Column] = set()
        for position, var_bind in enumerate(var_binds):
            column = active[position % len(active)]
            if column in finished:
                continue
            oid, tag, _ = var_bind
            if tag == ber.END_OF_MIB_VIEW or tag in _TAGS_NO_SUCH:
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
            index = suffix[0]
            if index not in rows:
                if len(rows) >= target.max_rows:
                    # Columns advance in ifIndex order: the rest of this one is beyond too.
                    if not warnings.contained[ROWS_OVER_BOUND]:
                        warnings.contained[ROWS_OVER_BOUND] = 1
                    warnings.add(column.name,
                                 f"rows beyond {target.max_rows} discarded; column walk stopped",
                                 dotted(oid))
                    finished.add(column)
                    continue
                rows.add(index)
            held_bytes += _cell_cost(var_bind)
            if held_bytes > target.max_walk_bytes:
                raise SnmpLimitError(
                    target.device,
                    f"{target.address}: interface walk holds more than "
                    f"{target.max_walk_bytes} bytes ({len(rows)} rows)",
                )
            value = _parse_cell(column, var_bind, warnings)
            if value is not None:
                cells[column][index] = value
        active = [column for column in active if column not in finished]
    return cells


def is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


def _raise_for_status(
    target: SnmpTarget, what: str, request: Sequence[Oid], error_status: int, error_index: int
) -> None:
    """Translate a response's error-status into the agent's errors."""
    if error_status == 0:
        return
    status = (
        _ERROR_STATUS_NAMES[error_status]
        if 0 <= error_status < len(_ERROR_STATUS_NAMES)
        else str(error_status)
    )
    position = error_index
    at = f" at {dotted(request[position - 1])}" if 1 <= position <= len(request) else ""
    error_class = SnmpAccessError if status in _ACCESS_ERROR_STATUSES else SnmpProtocolError
    raise error_class(
        target.device, f"{target.address} answered {what} with error-status {status}{at}"
    )
