"""What a device profile may say: its scalars and columns, and the rules it obeys. Pure.

A profile (a TOML file, :mod:`agent.profiles.load`) names SNMP objects by numeric OID
and says how each answer becomes a value (:mod:`agent.profiles.evaluate`):

* ``kind`` - ``gauge`` (a number now), ``counter`` (Counter32/64, left raw for the rate
  engine), ``enum`` (an INTEGER with a label per value), ``string``, ``timeticks``;
* ``unit`` and ``scale`` (a decimal multiplier: ``0.1`` for "0.1 Hz" units), a
  ``multiply_by`` column (hrStorageSize x hrStorageAllocationUnits), and the
  ENTITY-SENSOR-MIB style ``sensor_scale`` / ``sensor_precision`` columns of the same row;
* ``unknown_values`` - sentinels meaning "the device does not know" (UPS agents answer
  -1): such a value is unknown, never a number; ``min``/``max`` - the range a raw value
  must lie in (outside: the cell is a lie and loses its value);
* a table's ``tags`` - other columns of the row (walked like the values, possibly of
  another table with the same index, e.g. ENTITY-MIB entPhysicalName) that label each
  of its values, besides the row index itself;
* ``[power]`` (:class:`PowerMap`) - which of its scalars say that the site runs on
  batteries, that the battery is low, and how long it lasts (:mod:`agent.profiles.power`).

Every rule a profile breaks is reported at once (``key.path: reason``), in the one
error format of :mod:`xanet.config`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from xanet import wire
from xanet.config import Problems, Strict
from xanet.ids import CanonicalId

Kind = Literal["gauge", "counter", "enum", "string", "timeticks"]
NUMERIC_KINDS: Final = frozenset({"gauge", "enum"})
#: Kinds whose value is a number after scaling (what ``above``/``below`` and the power
#: figures read), and kinds whose value is text (what ``labels`` reads).
NUMBER_KINDS: Final = frozenset({"gauge", "timeticks"})
TEXT_KINDS: Final = frozenset({"enum", "string"})
#: An enum label travels as the wire's short text.
MAX_LABEL_CHARS: Final = 256
#: What ``profiles = [...]`` may name besides a profile: choose by sysObjectID.
AUTO: Final = "auto"
#: The profile the interface engine runs on; a device polls its interfaces when it names it.
IF_MIB: Final = "if-mib"
#: Who evaluates a profile: :mod:`agent.profiles.evaluate` ("generic"), or the interface
#: engine (:mod:`agent.snmp.table`: per-port 64/32-bit counter choice, speed, rates,
#: Counter32 readings between polls, the wire's interface list) for ``if-mib`` alone.
Engine = Literal["generic", "interfaces"]

Oid = tuple[int, ...]
_OID = re.compile(r"^\.?[0-2](\.(0|[1-9][0-9]{0,9})){1,127}$")
_MAX_SUBID: Final = 2**32 - 1
MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


def _check_oid(value: str) -> str:
    if not _OID.fullmatch(value) or any(int(p) > _MAX_SUBID for p in value.lstrip(".").split(".")):
        raise ValueError("not a numeric OID (digits separated by '.', e.g. 1.3.6.1.2.1.33.1.2.1)")
    return value.lstrip(".")


#: A numeric OID as text, without a leading dot.
OidText = Annotated[str, AfterValidator(_check_oid)]


def parse_oid(text: str) -> Oid:
    """``"1.3.6"`` -> ``(1, 3, 6)`` (``text`` already checked by :data:`OidText`)."""
    return tuple(int(part) for part in text.split("."))


class Metric(Strict):
    """One scalar or one table column."""

    name: MetricName = Field(description="the value's name (lowercase, digits, '_')")
    oid: OidText = Field(description="numeric OID: a scalar's instance (…​.0) or a column")
    kind: Kind
    description: str = ""
    unit: str = Field(default="", max_length=16, description="as sent on the wire")
    scale: float = Field(
        default=1.0, description="decimal multiplier of the raw value (gauge only): 0.1, 1024"
    )
    multiply_by: str | None = Field(
        default=None, description="a gauge column of the same row the value is multiplied by"
    )
    sensor_scale: str | None = Field(
        default=None, description="column of the row holding an EntitySensorDataScale"
    )
    sensor_precision: str | None = Field(
        default=None, description="column of the row holding an EntitySensorPrecision"
    )
    enum: dict[str, str] | None = Field(default=None, description="label per value (enum only)")
    unknown_values: list[int | str] = Field(
        default_factory=list, description="raw values meaning unknown (sentinels)"
    )
    min: int | None = Field(default=None, description="smallest raw value a device may send")
    max: int | None = Field(default=None, description="largest raw value a device may send")
    emit: bool | None = Field(
        default=None,
        description="a value of its own (default: yes, unless another column uses it as a "
        "tag, scale, precision or multiplier)",
    )

    @model_validator(mode="after")
    def _rules(self) -> Metric:
        problems: list[str] = []
        if self.enum is not None and self.kind != "enum":
            problems.append(f"enum: only for kind = \"enum\" (this is {self.kind!r})")
        if self.kind == "enum" and not self.enum:
            problems.append("enum: kind = \"enum\" needs a map of value = label")
        for key, label in (self.enum or {}).items():
            if not re.fullmatch(r"-?[0-9]{1,10}", key):
                problems.append(f"enum.{key}: the values an enum maps are integers")
            if not 1 <= len(label) <= MAX_LABEL_CHARS:
                problems.append(f"enum.{key}: a label has 1 to {MAX_LABEL_CHARS} characters")
        if self.scale == 0 or self.scale != self.scale:
            problems.append("scale: must be a non-zero number")
        numeric_only = ("multiply_by", "sensor_scale", "sensor_precision")
        if self.kind != "gauge":
            if self.scale != 1:
                problems.append(f"scale: only for kind = \"gauge\" (this is {self.kind!r})")
            problems += [f"{key}: only for kind = \"gauge\" (this is {self.kind!r})"
                         for key in numeric_only if getattr(self, key) is not None]
        for i, sentinel in enumerate(self.unknown_values):
            if isinstance(sentinel, str) != (self.kind == "string"):
                problems.append(f"unknown_values[{i}]: a {self.kind} sentinel is "
                                f"{'text' if self.kind == 'string' else 'an integer'}")
        if (self.min is not None or self.max is not None) and self.kind == "string":
            problems.append("min: a range is for numbers, not kind = \"string\"")
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append(f"min: {self.min} is above max {self.max}")
        if problems:
            raise Problems(problems)
        return self

    @property
    def oid_tuple(self) -> Oid:
        return parse_oid(self.oid)

    @property
    def multiplier(self) -> Fraction:
        """:attr:`scale` exactly as written (``0.1`` is 1/10, not the nearest float)."""
        return Fraction(repr(self.scale))

    @property
    def labels(self) -> dict[int, str]:
        """The enum map with integer keys."""
        return {int(key): label for key, label in (self.enum or {}).items()}

    def references(self) -> dict[str, str]:
        """The other columns this one uses, by key: ``{"sensor_scale": "scale", ...}``."""
        keys = ("multiply_by", "sensor_scale", "sensor_precision")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


class Table(Strict):
    """Columns of one SNMP table (or of tables sharing one index), walked together."""

    name: MetricName
    description: str = ""
    index: MetricName = Field(default="index", description="the tag naming the row index")
    tags: list[MetricName] = Field(
        default_factory=list, description="columns whose value labels every value of the row"
    )
    columns: list[Metric] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Table:
        problems: list[str] = []
        by_name = {column.name: column for column in self.columns}
        for i, tag in enumerate(self.tags):
            if tag not in by_name:
                problems.append(f"tags[{i}]: no column {tag!r} in table {self.name!r}")
            elif by_name[tag].kind == "counter":
                problems.append(f"tags[{i}]: a counter ({tag!r}) cannot label a row")
        if self.index in by_name:
            problems.append(f"index: {self.index!r} is also a column name")
        if len(self.tags) >= wire.MAX_PROFILE_TAGS:
            problems.append(f"tags: at most {wire.MAX_PROFILE_TAGS - 1} (with the row index, "
                            f"a value carries at most {wire.MAX_PROFILE_TAGS} tags)")
        for i, column in enumerate(self.columns):
            for key, ref in column.references().items():
                target = by_name.get(ref)
                if target is None:
                    problems.append(f"columns[{i}].{key}: no column {ref!r} in table "
                                    f"{self.name!r}")
                elif ref == column.name:
                    problems.append(f"columns[{i}].{key}: a column cannot scale itself")
                elif target.kind not in NUMERIC_KINDS:
                    problems.append(f"columns[{i}].{key}: column {ref!r} is a {target.kind}, "
                                    "not a number")
                elif target.references():
                    problems.append(f"columns[{i}].{key}: column {ref!r} is scaled itself")
        if problems:
            raise Problems(problems)
        return self

    def helpers(self) -> set[str]:
        """Columns used by others (tags, scales, multipliers)."""
        used = set(self.tags)
        for column in self.columns:
            used.update(column.references().values())
        return used

    def emitted(self) -> list[Metric]:
        """The columns that are values of their own."""
        helpers = self.helpers()
        return [c for c in self.columns
                if (c.emit if c.emit is not None else c.name not in helpers)]


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


class PowerCondition(Strict):
    """One test of a scalar's value: ``labels`` (enum, string: the value is one of them),
    or ``above`` / ``below`` (gauge, timeticks: the number is greater / smaller)."""

    metric: MetricName = Field(description="a scalar of this profile")
    labels: list[str] | None = Field(
        default=None, min_length=1, description="enum or string: the value is one of these")
    above: float | None = Field(default=None, description="gauge or timeticks: value > above")
    below: float | None = Field(default=None, description="gauge or timeticks: value < below")

    @model_validator(mode="after")
    def _one_test(self) -> PowerCondition:
        given = [key for key in ("labels", "above", "below") if getattr(self, key) is not None]
        if len(given) != 1:
            raise Problems([f"labels: a condition has exactly one of labels, above, below "
                            f"(got {', '.join(given) or 'none'})"])
        return self


class PowerMap(Strict):
    """``[power]``: how a profile says the site's power (docs/profiles.md, "Power").

    The site is on battery when any ``on_battery`` condition holds, on mains when none
    holds and at least one could be read, unknown when none could; on battery, any
    ``battery_low`` condition that holds makes it battery low.
    """

    on_battery: list[PowerCondition] = Field(
        min_length=1, description="any that holds: the site runs on its batteries")
    battery_low: list[PowerCondition] = Field(
        default_factory=list, description="on battery, any that holds: the battery is low")
    minutes_remaining: MetricName | None = Field(
        default=None, description="the scalar estimating the minutes left on battery")
    charge_pct: MetricName | None = Field(
        default=None, description="the scalar giving the charge left, in percent")
    seconds_on_battery: MetricName | None = Field(
        default=None, description="the scalar giving the time on battery, in seconds")

    def figures(self) -> dict[str, str]:
        """The scalars of the figures, by key: ``{"charge_pct": "charge_remaining"}``."""
        keys = ("minutes_remaining", "charge_pct", "seconds_on_battery")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}

    def problems(self, scalars: dict[str, Metric]) -> list[str]:
        """What does not fit the profile's scalars (key paths under ``power``)."""
        problems: list[str] = []
        tests = [(f"on_battery[{i}]", c) for i, c in enumerate(self.on_battery)]
        tests += [(f"battery_low[{i}]", c) for i, c in enumerate(self.battery_low)]
        for where, condition in tests:
            metric = scalars.get(condition.metric)
            if metric is None:
                problems.append(f"power.{where}.metric: no scalar {condition.metric!r} in "
                                "this profile (the power mapping reads scalars)")
            elif condition.labels is not None:
                if metric.kind not in TEXT_KINDS:
                    problems.append(f"power.{where}.labels: {condition.metric!r} is "
                                    f"{_a(metric.kind)}, not an enum or string")
                elif metric.kind == "enum":
                    known = set(metric.labels.values())
                    problems += [f"power.{where}.labels[{i}]: {label!r} is no label of "
                                 f"{condition.metric!r} ({', '.join(sorted(known))})"
                                 for i, label in enumerate(condition.labels)
                                 if label not in known]
            elif metric.kind not in NUMBER_KINDS:
                key = "above" if condition.above is not None else "below"
                problems.append(f"power.{where}.{key}: {condition.metric!r} is "
                                f"{_a(metric.kind)}, not a gauge or timeticks")
        for key, name in self.figures().items():
            metric = scalars.get(name)
            if metric is None:
                problems.append(f"power.{key}: no scalar {name!r} in this profile")
            elif metric.kind not in NUMBER_KINDS:
                problems.append(f"power.{key}: {name!r} is {_a(metric.kind)}, not a "
                                "gauge or timeticks")
        return problems


class Profile(Strict):
    """One device profile: what to poll of a kind of device, and how to read it."""

    name: CanonicalId = Field(description="the profile's name, as devices select it")
    description: str = Field(min_length=1)
    source: str = Field(default="", description="the MIB(s) it was written from")
    sys_object_ids: list[OidText] = Field(
        default_factory=list,
        description='sysObjectID prefixes that select it for profiles = ["auto"]',
    )
    interval_s: float | None = Field(
        default=None, ge=1, le=86400, description="its own poll interval (default: the device's)"
    )
    override: bool = Field(
        default=False, description="a user profile replacing a shipped one of the same name"
    )
    stretch_when_saturated: bool = Field(
        default=False,
        description="not availability-critical: while the uplink is saturated its interval "
        "stretches (x2 steps, at most x8) and comes back as the backlog drains "
        "(docs/profiles.md); never the interface profile",
    )
    engine: Engine = Field(
        default="generic",
        description='"generic": values evaluated by the profile engine; "interfaces": the '
        "interface engine (if-mib only: 64/32-bit counters per port, rates, the wire's "
        "interface list)",
    )
    scalars: list[Metric] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    power: PowerMap | None = Field(
        default=None, description="which scalars say the site's power state (docs/profiles.md)")

    @model_validator(mode="after")
    def _unique(self) -> Profile:
        problems: list[str] = []
        if not self.scalars and not self.tables:
            problems.append("scalars: a profile polls at least one scalar or table")
        if (self.engine == "interfaces") != (self.name == IF_MIB):
            problems.append(f'engine: "interfaces" is the {IF_MIB} profile\'s engine, and '
                            f'{IF_MIB} runs on no other (got {self.engine!r})')
        if self.stretch_when_saturated and self.engine == "interfaces":
            problems.append("stretch_when_saturated: the interface poll is availability-"
                            "critical and never stretches")
        tables: dict[str, int] = {}
        for i, table in enumerate(self.tables):
            if table.name in tables:
                problems.append(f"tables[{i}].name: duplicate table {table.name!r} "
                                f"(also tables[{tables[table.name]}])")
            tables.setdefault(table.name, i)
        names: dict[str, str] = {}
        oids: dict[str, str] = {}
        places = [(f"scalars[{i}]", m) for i, m in enumerate(self.scalars)]
        places += [(f"tables[{t}].columns[{i}]", m)
                   for t, table in enumerate(self.tables) for i, m in enumerate(table.columns)]
        for where, metric in places:
            if metric.name in names:
                problems.append(f"{where}.name: duplicate name {metric.name!r} "
                                f"(also {names[metric.name]})")
            names.setdefault(metric.name, where)
            if metric.oid in oids:
                problems.append(f"{where}.oid: {metric.oid} is polled by {oids[metric.oid]} too")
            oids.setdefault(metric.oid, where)
        for i, metric in enumerate(self.scalars):
            problems += [f"scalars[{i}].{key}: a scalar has no row to take {ref!r} from"
                         for key, ref in metric.references().items()]
        columns = [(where, m) for where, m in places if where.startswith("tables")]
        for where, metric in columns:
            for other_where, other in columns:
                if other is not metric and other.oid.startswith(metric.oid + "."):
                    problems.append(f"{other_where}.oid: lies inside column {where} "
                                    f"({metric.oid})")
        if self.power is not None:
            problems += self.power.problems({metric.name: metric for metric in self.scalars})
        if problems:
            raise Problems(problems)
        return self

    @property
    def sys_object_id_prefixes(self) -> tuple[Oid, ...]:
        return tuple(parse_oid(text) for text in self.sys_object_ids)
