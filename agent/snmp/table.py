"""The interface engine: the if-mib profile's columns, the check of every cell, the poll. Pure.

The columns (OIDs, walk order) are the ``interface`` table of the ``if-mib`` profile
(agent/profiles/shipped/if-mib.toml, ``engine = "interfaces"``), turned into
:class:`InterfaceColumns` once (:func:`interface_columns`, called by the poller at
start); :data:`ENGINE` says what the engine makes of each, by metric name, and
:func:`engine_problems` whether a profile fits it.

Var-binds come in the neutral form of :mod:`agent.snmp.ber` - ``(oid, tag, value)``,
whichever backend carried them - and every check here is one code path for all.
Values are checked cell by cell. A device that lies about one cell (wrong type,
value out of range, bad instance) loses that value - it becomes ``None`` and
the problem is listed in :attr:`RawPoll.warnings` - while the rest of the poll
stands.

The interface *set* is the union of the indices seen in any polled column:
real devices have sparse tables (rows in ifXTable but not ifTable and the other
way round), so no column is trusted to list them all.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from agent.snmp import ber
from agent.snmp.ber import VarBind
from agent.snmp.oids import SYS_UPTIME, Oid, dotted

if TYPE_CHECKING:  # the engine reads a profile's attributes; no pydantic at import
    from agent.profiles.model import Profile

MAX_U32: Final = 2**32 - 1
_MAX_U64: Final = 2**64 - 1
#: The wire's bound on free text (``xanet.wire.ShortText``): longer names are cut here.
MAX_TEXT_CHARS: Final = 256

#: Contained per-device faults, counted per poll (docs/snmp.md, "Bounds"):
ROWS_OVER_BOUND: Final = "rows_over_bound"  # rows beyond max_rows discarded (poll kept)
TEXT_TRUNCATED: Final = "text_truncated"  # ifName/ifDescr/ifAlias cut to MAX_TEXT_CHARS
SPEED_CONTRADICTION: Final = "speed_contradiction"  # ifHighSpeed vs ifSpeed (RFC 2863): one kept
WALK_REQUESTS: Final = "walk_requests"  # walk did not end within its request bound: limit
WALK_BYTES: Final = "walk_bytes"  # walk would hold more than max_walk_bytes: limit


@dataclass(frozen=True, slots=True)
class RawInterface:
    index: int
    name: str  # ifName, else ifDescr, else f"if{index}"
    descr: str | None
    oper_status: int | None
    admin_status: int | None
    speed_bps: int | None  # ifSpeed below 2**32-1, else ifHighSpeed * 1e6 (pick_speed)
    in_octets: int | None
    out_octets: int | None
    hc: bool  # True when in/out_octets are the 64-bit counters
    discontinuity_cs: int | None  # ifCounterDiscontinuityTime (sysUpTime ticks)
    alias: str | None = None  # ifAlias, None when absent or empty


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

TAGS_NO_SUCH: Final = (ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE)
_TAGS_NUMBER: Final = (ber.INTEGER, ber.GAUGE32, ber.COUNTER32, ber.COUNTER64)
# What pysnmp's prettyPrint() says for these (kept: the messages predate the lean path).
_EXCEPTION_TEXT: Final = {
    ber.NO_SUCH_OBJECT: "No Such Object currently exists at this OID",
    ber.NO_SUCH_INSTANCE: "No Such Instance currently exists at this OID",
    ber.END_OF_MIB_VIEW: "No more variables left in this MIB View",
}
def shown(tag: int, value: ber.Value) -> str:
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


class Warnings:
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


def as_text(tag: int, value: ber.Value) -> str | None:
    if tag != ber.OCTET_STRING or not isinstance(value, bytes):
        return None
    return value.decode("utf-8", "replace").rstrip("\x00")


def as_number(tag: int, value: ber.Value, low: int, high: int) -> int | None:
    if tag not in _TAGS_NUMBER or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


def as_counter(tag: int, value: ber.Value) -> _Counter | None:
    if not isinstance(value, int):
        return None
    if tag == ber.COUNTER32:
        return _Counter(value, wide=False) if 0 <= value <= MAX_U32 else None
    if tag == ber.COUNTER64:
        return _Counter(value, wide=True) if 0 <= value <= _MAX_U64 else None
    return None


def as_timeticks(tag: int, value: ber.Value) -> int | None:
    if tag != ber.TIMETICKS or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_U32 else None


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    oid: Oid
    parse: Callable[[int, ber.Value], object | None]
    expected: str


def _number(low: int, high: int) -> Callable[[int, ber.Value], int | None]:
    return lambda tag, value: as_number(tag, value, low, high)


#: The profile whose table the interface engine runs on (agent/profiles/shipped/if-mib.toml).
IF_MIB: Final = "if-mib"
#: Its table of interface columns, by ifIndex.
INTERFACE_TABLE: Final = "interface"


@dataclass(frozen=True, slots=True)
class _Spec:
    """What the engine makes of one column of the if-mib profile (named by its metric)."""

    name: str  # the IF-MIB object, as warnings name it
    kind: str  # the profile's kind the engine expects
    parse: Callable[[int, ber.Value], object | None]
    expected: str
    scale: float = 1.0


#: Every column the interface engine reads, by the if-mib profile's metric name.
ENGINE: Final = {
    "descr": _Spec("ifDescr", "string", as_text, "OctetString"),
    "speed": _Spec("ifSpeed", "gauge", _number(0, MAX_U32), "Gauge32"),
    "admin_status": _Spec("ifAdminStatus", "enum", _number(1, 3), "Integer 1..3"),
    "oper_status": _Spec("ifOperStatus", "enum", _number(1, 7), "Integer 1..7"),
    "in_octets": _Spec("ifInOctets", "counter", as_counter, "Counter32"),
    "out_octets": _Spec("ifOutOctets", "counter", as_counter, "Counter32"),
    "name": _Spec("ifName", "string", as_text, "OctetString"),
    "hc_in_octets": _Spec("ifHCInOctets", "counter", as_counter, "Counter64"),
    "hc_out_octets": _Spec("ifHCOutOctets", "counter", as_counter, "Counter64"),
    "high_speed": _Spec("ifHighSpeed", "gauge", _number(0, MAX_U32), "Gauge32", 1e6),
    "counter_discontinuity": _Spec("ifCounterDiscontinuityTime", "timeticks", as_timeticks,
                                   "TimeTicks"),
    "alias": _Spec("ifAlias", "string", as_text, "OctetString"),
}


@dataclass(frozen=True, slots=True)
class InterfaceColumns:
    """The interface engine's columns, built once from the if-mib profile
    (:func:`interface_columns`): ``walked`` in the profile's order, and each by role."""

    walked: tuple[Column, ...]
    descr: Column
    speed: Column
    admin_status: Column
    oper_status: Column
    in_octets: Column
    out_octets: Column
    name: Column
    hc_in_octets: Column
    hc_out_octets: Column
    high_speed: Column
    counter_discontinuity: Column
    alias: Column


def engine_problems(profile: Profile) -> list[str]:
    """What keeps the interface engine from running on ``profile`` (``key.path: reason``):
    its ``interface`` table must hold exactly the engine's columns, of the engine's kinds."""
    tables = [i for i, table in enumerate(profile.tables) if table.name == INTERFACE_TABLE]
    if not tables:
        return [f"tables: the interface engine needs a table {INTERFACE_TABLE!r}"]
    t = tables[0]
    problems: list[str] = []
    seen: set[str] = set()
    for i, metric in enumerate(profile.tables[t].columns):
        where = f"tables[{t}].columns[{i}]"
        spec = ENGINE.get(metric.name)
        seen.add(metric.name)
        if spec is None:
            problems.append(f"{where}.name: the interface engine reads no column "
                            f"{metric.name!r} (it reads {', '.join(ENGINE)})")
        elif metric.kind != spec.kind:
            problems.append(f"{where}.kind: {metric.name!r} is a {spec.kind} to the interface "
                            f"engine (got {metric.kind!r})")
        elif metric.scale != spec.scale:
            problems.append(f"{where}.scale: {metric.name!r} is scaled by {spec.scale:g} in "
                            f"the interface engine (got {metric.scale:g})")
    problems += [f"tables[{t}].columns: the interface engine needs a column {name!r}"
                 for name in ENGINE if name not in seen]
    problems += [f"scalars[{i}].oid: the interface engine reads sysUpTime "
                 f"({dotted(SYS_UPTIME)}) and no other scalar"
                 for i, metric in enumerate(profile.scalars) if metric.oid_tuple != SYS_UPTIME]
    return problems


def interface_columns(profile: Profile) -> InterfaceColumns:
    """The engine's columns from the if-mib profile's ``interface`` table: OIDs and their
    order from the profile, each cell's check from :data:`ENGINE`. Raises ``ValueError``
    (:func:`engine_problems`) when the profile does not fit the engine."""
    problems = engine_problems(profile)
    if problems:
        raise ValueError(f"profile {profile.name!r}: " + "; ".join(problems))
    (table,) = [table for table in profile.tables if table.name == INTERFACE_TABLE]
    by_name = {metric.name: Column(ENGINE[metric.name].name, metric.oid_tuple,
                                   ENGINE[metric.name].parse, ENGINE[metric.name].expected)
               for metric in table.columns}
    return InterfaceColumns(walked=tuple(by_name.values()), **by_name)


Table = dict[Column, dict[int, object]]


def parse_cell(column: Column, var_bind: VarBind, warnings: Warnings) -> object | None:
    """Check a cell against its column's type; a bad cell is noted and gives None.

    Text longer than the wire's bound is cut to :data:`MAX_TEXT_CHARS` here and counted
    (``TEXT_TRUNCATED``): one 300-character ifDescr must not fail the device's poll.
    """
    oid, tag, value = var_bind
    result = column.parse(tag, value)
    if result is None:
        text = shown(tag, value)
        if len(text) > 40:
            text = text[:40] + "..."
        warnings.add(
            column.name,
            f"expected {column.expected}, got {ber.type_name(tag)} {text!r}; dropped",
            dotted(oid),
        )
    elif isinstance(result, str) and len(result) > MAX_TEXT_CHARS:
        warnings.add(column.name, f"longer than {MAX_TEXT_CHARS} characters; truncated",
                     dotted(oid))
        warnings.contained[TEXT_TRUNCATED] += 1
        result = result[:MAX_TEXT_CHARS]
    return result


def pick_counters(
    table: Table, columns: InterfaceColumns, index: int, warnings: Warnings
) -> tuple[int | None, int | None, bool]:
    """64-bit ifHC* when both are there, else 32-bit ifIn/OutOctets."""
    hc_in = table[columns.hc_in_octets].get(index)
    hc_out = table[columns.hc_out_octets].get(index)
    if isinstance(hc_in, _Counter) and isinstance(hc_out, _Counter):
        if hc_in.wide and hc_out.wide:
            return hc_in.value, hc_out.value, True
        warnings.add(
            "ifHCInOctets",
            "Counter32 in a 64-bit column; used ifIn/OutOctets",
            f"{dotted(columns.hc_in_octets.oid)}.{index}",
        )
    low_in = table[columns.in_octets].get(index)
    low_out = table[columns.out_octets].get(index)
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
            f"{dotted(columns.in_octets.oid)}.{index}",
        )
        return None, None, False
    if low_in.wide:
        warnings.add(
            "ifInOctets",
            "Counter64 in a 32-bit column; used as 64-bit",
            f"{dotted(columns.in_octets.oid)}.{index}",
        )
    return low_in.value, low_out.value, low_in.wide


#: Above this, an ifHighSpeed (Mbit/s) is not believed: 10 Tbit/s, beyond any port built.
MAX_PLAUSIBLE_HIGH_SPEED_MBPS: Final = 10_000_000
_MBPS: Final = 1_000_000
#: ifHighSpeed is ifSpeed rounded to Mbit/s (RFC 2863: "n" means n-0.5 .. n+0.5 Mbit/s).
_ROUNDING_BPS: Final = _MBPS // 2


def pick_speed(speed: int | None, high_speed: int | None) -> tuple[int | None, str | None]:
    """An interface's speed in bit/s from ifSpeed and ifHighSpeed, and the contradiction
    between them when there is one (RFC 2863; docs/counters.md, "Interface speed").

    Below 2**32-1 ifSpeed is exact, so it wins; at 2**32-1 (or absent, or 0) the speed is
    ifHighSpeed x 10**6. A disagreement beyond ifHighSpeed's rounding is a contradiction,
    named in the second value: ``high_speed_in_bps`` (ifHighSpeed equals ifSpeed: a device
    reporting it in bit/s - ifSpeed kept, never a 10**15 bit/s port), ``speed_wrapped``
    (ifSpeed is ifHighSpeed x 10**6 modulo 2**32: ifHighSpeed kept), ``implausible``
    (ifHighSpeed above 10 Tbit/s: not used), or ``disagree`` (ifSpeed kept).
    """
    high = high_speed if high_speed is not None and high_speed > 0 else None
    if high is not None and high > MAX_PLAUSIBLE_HIGH_SPEED_MBPS:
        exact = speed if speed is not None and 0 < speed < MAX_U32 else None
        why = "high_speed_in_bps" if exact is not None and high == exact else "implausible"
        return exact, why
    if speed is None or speed <= 0:
        return (None if high is None else high * _MBPS), None
    if speed >= MAX_U32:
        return (speed if high is None else high * _MBPS), None
    if high is None or abs(high * _MBPS - speed) <= _ROUNDING_BPS:
        return speed, None
    if high == speed:
        return speed, "high_speed_in_bps"
    high_bps = high * _MBPS
    if high_bps > MAX_U32 and abs(high_bps % 2**32 - speed) <= _ROUNDING_BPS:
        return high_bps, "speed_wrapped"
    return speed, "disagree"


#: Counter32 readings between polls: the OIDs of one GET, at most this many ports each.
PORTS_PER_GET: Final = 24


def counter_request(columns: InterfaceColumns, indices: tuple[int, ...]) -> tuple[Oid, ...]:
    """ifInOctets and ifOutOctets of ``indices`` (one GET: at most PORTS_PER_GET ports)."""
    in_oid, out_oid = columns.in_octets.oid, columns.out_octets.oid
    return tuple(oid for index in indices for oid in ((*in_oid, index), (*out_oid, index)))


def read_counter32(columns: InterfaceColumns, var_binds: Sequence[VarBind],
                   indices: tuple[int, ...]) -> dict[int, tuple[int | None, int | None]]:
    """The answer to :func:`counter_request`: (in, out) per port, None where the cell is
    not a Counter32 of that port (a wrong OID, type or range is a missing reading)."""
    asked = counter_request(columns, indices)
    values: dict[Oid, int | None] = {oid: None for oid in asked}
    if len(var_binds) == len(asked):
        for want, (oid, tag, value) in zip(asked, var_binds, strict=True):
            cell = as_counter(tag, value) if oid == want else None
            values[want] = cell.value if cell is not None and not cell.wide else None
    in_oid, out_oid = columns.in_octets.oid, columns.out_octets.oid
    return {index: (values[(*in_oid, index)], values[(*out_oid, index)]) for index in indices}


def assemble(table: Table, columns: InterfaceColumns,
             warnings: Warnings) -> tuple[RawInterface, ...]:
    indices: set[int] = set()
    for cells in table.values():
        indices.update(cells)
    interfaces = []
    for index in sorted(indices):
        descr = table[columns.descr].get(index)
        name = table[columns.name].get(index)
        high_speed = table[columns.high_speed].get(index)
        speed = table[columns.speed].get(index)
        speed_bps, contradiction = pick_speed(
            speed if isinstance(speed, int) else None,
            high_speed if isinstance(high_speed, int) else None,
        )
        if contradiction is not None:
            warnings.add(
                "ifHighSpeed",
                f"contradicts ifSpeed ({contradiction}, RFC 2863)",
                f"{dotted(columns.high_speed.oid)}.{index} "
                f"(ifHighSpeed {high_speed}, ifSpeed {speed}: speed {speed_bps} bit/s used)",
            )
            warnings.contained[SPEED_CONTRADICTION] += 1
        in_octets, out_octets, hc = pick_counters(table, columns, index, warnings)
        oper = table[columns.oper_status].get(index)
        admin = table[columns.admin_status].get(index)
        discontinuity = table[columns.counter_discontinuity].get(index)
        alias = table[columns.alias].get(index)
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
                alias=alias if isinstance(alias, str) and alias else None,
            )
        )
    return tuple(interfaces)

