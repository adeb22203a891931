"""A profile's var-binds as checked values: types, scale, precision, enums, sentinels. Pure.

Var-binds come in the neutral form of :mod:`agent.snmp.ber` - ``(oid, tag, value)`` -
whichever backend carried them (:mod:`agent.snmp.profilewalk` collects them). Every
value of a profile comes out as one :class:`ProfileValue`: a checked number, label or
text, or *unknown* with the reason (:class:`Unknown`) - never a sentinel as a number.

As in the interface table (:mod:`agent.snmp.table`), a device that lies about one cell
(wrong type, out of range) loses that value only - it is unknown and the problem is
listed in :attr:`ProfileSample.warnings` - while the rest of the poll stands.

The value a gauge reports is ``raw x scale x multiply_by x 10^sensor_scale /
10^precision`` (ENTITY-SENSOR-MIB, RFC 3433: precision 1..9 is the number of decimals;
-8..0 says how many digits are accurate, the value has no decimals), computed exactly
and rounded once to a float. Counters stay raw (``raw``, ``counter_bits``): the rate
engine (:mod:`agent.rates`, :func:`counter_readings`) decides their deltas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Final

from agent.profiles.model import Kind, Metric, Oid, Profile, Table
from agent.snmp import ber
from agent.snmp.oids import dotted
from agent.snmp.table import MAX_TEXT_CHARS, TAGS_NO_SUCH, Warnings, shown

#: EntitySensorDataScale (RFC 3433) -> power of ten. exa(14) is 10^18 and peta(15)
#: 10^15: the MIB lists them in this order.
SENSOR_SCALE_POWER: Final = {
    1: -24, 2: -21, 3: -18, 4: -15, 5: -12, 6: -9, 7: -6, 8: -3, 9: 0,
    10: 3, 11: 6, 12: 9, 13: 12, 14: 18, 15: 15, 16: 21, 17: 24,
}
#: EntitySensorPrecision's range (RFC 3433).
SENSOR_PRECISION_RANGE: Final = range(-8, 10)

_KIND_TAGS: Final[Mapping[str, frozenset[int]]] = {
    "gauge": frozenset({ber.INTEGER, ber.GAUGE32}),
    "enum": frozenset({ber.INTEGER}),
    "counter": frozenset({ber.COUNTER32, ber.COUNTER64}),
    "string": frozenset({ber.OCTET_STRING}),
    "timeticks": frozenset({ber.TIMETICKS}),
}
_EXPECTED: Final = {
    "gauge": "Integer or Gauge32", "enum": "Integer", "counter": "Counter32 or Counter64",
    "string": "OctetString", "timeticks": "TimeTicks",
}
_TICKS_PER_S: Final = 100


class Unknown(StrEnum):
    """Why a value is unknown. The values are the strings a later wire will carry."""

    SENTINEL = "sentinel"
    """The device answered a value the profile declares as "don't know" (-1)."""
    ABSENT = "absent"
    """No such object or instance: the device does not have it."""
    WRONG_TYPE = "wrong_type"
    """The cell's type does not fit the metric's kind: a lying cell, dropped."""
    OUT_OF_RANGE = "out_of_range"
    """The raw value lies outside the profile's min/max: a lying cell, dropped."""
    NOT_IN_ENUM = "not_in_enum"
    """An enum value the profile has no label for."""
    NO_SCALE = "no_scale"
    """The row's scale, precision or multiplier column is missing, unknown or invalid."""


@dataclass(frozen=True, slots=True)
class ProfileValue:
    """One value of one profile on one device: a number, label or text, or unknown."""

    profile: str
    metric: str
    tags: tuple[tuple[str, str], ...]  # the row index and the table's tag columns; () scalars
    kind: Kind
    unit: str
    value: float | int | str | None  # gauge/timeticks float, counter int, enum label, text
    unknown: Unknown | None  # why ``value`` is None; None exactly when there is a value
    raw: int | str | None = None  # as the device sent it (enum code, counter reading, ticks)
    counter_bits: int | None = None  # 32 or 64 for a counter with a value

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """What names this series across polls: profile, metric, tags."""
        return self.profile, self.metric, self.tags


@dataclass(frozen=True, slots=True)
class ProfileSample:
    """One profile's values of one device poll, and what the device lied about."""

    device: str
    profile: str
    values: tuple[ProfileValue, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Cell:
    value: int | str | None  # checked raw value; None: see ``unknown``
    unknown: Unknown | None
    bits: int | None = None  # a counter's width, from its type


def _check(metric: Metric, oid: Oid, tag: int, value: ber.Value, warnings: Warnings) -> _Cell:
    """A raw cell checked against its metric: type, sentinel, range, text bound."""
    if tag in TAGS_NO_SUCH or tag == ber.END_OF_MIB_VIEW:
        return _Cell(None, Unknown.ABSENT)
    raw: int | str | None = None
    if tag in _KIND_TAGS[metric.kind]:
        if isinstance(value, int):
            raw = value
        elif isinstance(value, bytes):
            raw = value.decode("utf-8", "replace").rstrip("\x00")
    if raw is None:
        text = shown(tag, value)
        text = text[:40] + "..." if len(text) > 40 else text
        warnings.add(metric.name, f"expected {_EXPECTED[metric.kind]}, got "
                     f"{ber.type_name(tag)} {text!r}; dropped", dotted(oid))
        return _Cell(None, Unknown.WRONG_TYPE)
    if raw in metric.unknown_values:
        return _Cell(None, Unknown.SENTINEL)
    if isinstance(raw, int) and not (
        (metric.min is None or raw >= metric.min) and (metric.max is None or raw <= metric.max)
    ):
        warnings.add(metric.name, f"{raw} outside {metric.min}..{metric.max}; dropped",
                     dotted(oid))
        return _Cell(None, Unknown.OUT_OF_RANGE)
    if isinstance(raw, str) and len(raw) > MAX_TEXT_CHARS:
        warnings.add(metric.name, f"longer than {MAX_TEXT_CHARS} characters; truncated",
                     dotted(oid))
        raw = raw[:MAX_TEXT_CHARS]
    bits = {ber.COUNTER32: 32, ber.COUNTER64: 64}.get(tag)
    return _Cell(raw, None, bits)


def _label(metric: Metric, cell: _Cell) -> str | None:
    """A tag's text: an enum's label, a number or text as written."""
    if cell.value is None:
        return None
    if metric.kind == "enum" and isinstance(cell.value, int):
        return metric.labels.get(cell.value, str(cell.value))
    return str(cell.value)


def _factor(metric: Metric, row: Mapping[str, _Cell], where: str,
            warnings: Warnings) -> Fraction | None:
    """What the raw value is multiplied by: scale, multiplier, sensor scale and precision;
    None when a column it needs is missing, unknown or invalid."""
    factor = metric.multiplier
    if metric.multiply_by is not None:
        by = row.get(metric.multiply_by)
        if by is None or not isinstance(by.value, int):
            return None
        factor *= by.value
    if metric.sensor_scale is not None:
        scale = row.get(metric.sensor_scale)
        if scale is None or not isinstance(scale.value, int):
            return None
        power = SENSOR_SCALE_POWER.get(scale.value)
        if power is None:
            warnings.add(metric.sensor_scale, f"{scale.value} is no EntitySensorDataScale",
                         where)
            return None
        factor *= Fraction(10) ** power
    if metric.sensor_precision is not None:
        precision = row.get(metric.sensor_precision)
        if precision is None or not isinstance(precision.value, int):
            return None
        if precision.value not in SENSOR_PRECISION_RANGE:
            warnings.add(metric.sensor_precision,
                         f"{precision.value} is no EntitySensorPrecision", where)
            return None
        factor /= Fraction(10) ** max(precision.value, 0)
    return factor


def _value(profile: str, metric: Metric, tags: tuple[tuple[str, str], ...], cell: _Cell | None,
           row: Mapping[str, _Cell], where: str, warnings: Warnings) -> ProfileValue:
    def unknown(reason: Unknown, raw: int | str | None = None) -> ProfileValue:
        return ProfileValue(profile, metric.name, tags, metric.kind, metric.unit, None, reason,
                            raw)

    if cell is None:
        return unknown(Unknown.ABSENT)
    if cell.value is None:
        assert cell.unknown is not None
        return unknown(cell.unknown)
    raw = cell.value
    kind = metric.kind
    value: float | int | str
    bits: int | None = None
    if kind == "gauge":
        assert isinstance(raw, int)
        factor = _factor(metric, row, where, warnings)
        if factor is None:
            return unknown(Unknown.NO_SCALE, raw)
        value = float(raw * factor)
    elif kind == "enum":
        assert isinstance(raw, int)
        label = metric.labels.get(raw)
        if label is None:
            warnings.add(metric.name, f"{raw} has no label in the profile", where)
            return unknown(Unknown.NOT_IN_ENUM, raw)
        value = label
    elif kind == "timeticks":
        assert isinstance(raw, int)
        value = raw / _TICKS_PER_S
    elif kind == "counter":
        assert isinstance(raw, int)
        value = raw
        bits = cell.bits
    else:
        value = raw
    return ProfileValue(profile, metric.name, tags, kind, metric.unit, value, None, raw, bits)


def evaluate(profile: Profile, var_binds: Iterable[ber.VarBind],
             warnings: Warnings | None = None, *, device: str = "") -> ProfileSample:
    """Every value of ``profile`` from the var-binds a device answered (GETs of its
    scalars, walks of its columns, in any order). Var-binds no scalar or column of the
    profile asked for are ignored."""
    warnings = Warnings() if warnings is None else warnings
    scalars = {metric.oid_tuple: metric for metric in profile.scalars}
    columns: dict[Oid, tuple[Table, Metric]] = {
        column.oid_tuple: (table, column) for table in profile.tables for column in table.columns
    }
    lengths = sorted({len(oid) for oid in columns})
    scalar_cells: dict[str, _Cell] = {}
    rows: dict[str, dict[Oid, dict[str, _Cell]]] = {table.name: {} for table in profile.tables}
    for oid, tag, value in var_binds:
        metric = scalars.get(oid)
        if metric is not None:
            scalar_cells[metric.name] = _check(metric, oid, tag, value, warnings)
            continue
        for length in lengths:
            found = columns.get(oid[:length])
            if found is None or len(oid) == length:
                continue
            table, column = found
            if tag in TAGS_NO_SUCH or tag == ber.END_OF_MIB_VIEW:
                break  # a walk's end, not a cell
            index = oid[length:]
            rows[table.name].setdefault(index, {})[column.name] = _check(
                column, oid, tag, value, warnings)
            break
    values: list[ProfileValue] = []
    for metric in profile.scalars:
        values.append(_value(profile.name, metric, (), scalar_cells.get(metric.name), {},
                             metric.oid, warnings))
    for table in profile.tables:
        emitted = table.emitted()
        by_name = {column.name: column for column in table.columns}
        for index in sorted(rows[table.name]):
            row = rows[table.name][index]
            if not any(column.name in row for column in emitted):
                continue  # a row of a tag column only (ENTITY-MIB entities without a sensor)
            tags = [(table.index, dotted(index))]
            for tag_name in table.tags:
                cell = row.get(tag_name)
                text = _label(by_name[tag_name], cell) if cell is not None else None
                if text is not None:
                    tags.append((tag_name, text))
            for column in emitted:
                where = f"{column.oid}.{dotted(index)}"
                values.append(_value(profile.name, column, tuple(tags), row.get(column.name),
                                     row, where, warnings))
    return ProfileSample(device, profile.name, tuple(values), warnings.render())


def counter_readings(
    sample: ProfileSample,
) -> dict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[int, int]]:
    """The counters of a sample with a value, as ``{key: (reading, bits)}``: what a rate
    engine (:func:`agent.rates.counter_delta`) takes from two consecutive polls."""
    return {
        value.key: (value.value, value.counter_bits)
        for value in sample.values
        if value.kind == "counter" and isinstance(value.value, int)
        and value.counter_bits is not None
    }

