"""How a point is written as InfluxDB line protocol: the escaping and the encoder. Pure.

What is written (measurements, tags, fields) is :mod:`collector.schema`; this module only
encodes. Integers above 2^63-1 cannot be stored as InfluxDB integers; such a value is left
out of the point (and counted by the caller), never wrapped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache

INT_MAX = 2**63 - 1
FieldValue = int | float | bool | str

# Escaping (docs/data.md, "Line protocol escaping"), as InfluxDB's parser reads it:
# * measurement: "," and " " are escaped with a backslash; tag keys, tag values and field
#   keys: ",", "=" and " ". Any other backslash is literal there (InfluxDB 1.x stores
#   ``a\\b`` as two backslashes): a backslash round-trips - except directly before ",",
#   "=", " " or '"', or at the very end, where parsers read it as (part of) an escape (1.x
#   unescapes '\\"' in measurements and field keys but not in tags; VictoriaMetrics also
#   reads "\\\\" as one): there it is written as U+29F5 (REVERSE SOLIDUS OPERATOR, which
#   looks like one).
# * string field values: "\\" and '"' are escaped with a backslash (both round-trip).
# * line protocol is one point per line: a newline or carriage return cannot be carried
#   anywhere; they are written as the visible symbols U+240A and U+240D.
NEWLINE, CARRIAGE_RETURN, LONE_BACKSLASH = "\u240a", "\u240d", "\u29f5"
_MEAS_ESC = str.maketrans({",": r"\,", " ": r"\ ", "\n": NEWLINE, "\r": CARRIAGE_RETURN})
_TAG_ESC = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": NEWLINE,
                          "\r": CARRIAGE_RETURN})
_STR_ESC = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": NEWLINE, "\r": CARRIAGE_RETURN})
_LONE = re.compile(r'\\(?=[,= "]|\Z)')


def escape_measurement(name: str) -> str:
    if "\\" in name:
        name = _LONE.sub(LONE_BACKSLASH, name)
    return name.translate(_MEAS_ESC)


def escape_identifier(text: str) -> str:
    """A tag key, tag value or field key as line protocol."""
    if "\\" in text:
        text = _LONE.sub(LONE_BACKSLASH, text)
    return text.translate(_TAG_ESC)


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return f'"{value.translate(_STR_ESC)}"'


# Keys, measurement names and most tag values repeat from line to line (field names are
# constants, device and interface names recur every poll): escape each distinct string
# once. str.translate per key and value was the encoder's largest cost (profile in
# BENCHMARKS.md). Bounded caches: a flood of distinct names only evicts.
@lru_cache(maxsize=1024)
def _escape_measurement(name: str) -> str:
    return escape_measurement(name)


@lru_cache(maxsize=1024)
def _escape_key(key: str) -> str:
    return escape_identifier(key)


@lru_cache(maxsize=65536)
def _escape_tag_value(value: str) -> str:
    return escape_identifier(value)


def _value(v: FieldValue) -> str | None:
    """A field value as line protocol; ``None`` for an integer InfluxDB cannot store."""
    kind = type(v)
    if kind is float:  # the common cases first, by exact type; subclasses below
        return repr(v)
    if kind is int:
        return f"{v}i" if -INT_MAX <= v <= INT_MAX else None  # type: ignore[operator]  # an int
    if isinstance(v, int) and not isinstance(v, bool) and not -INT_MAX <= v <= INT_MAX:
        return None
    return _field(v)


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue | None],
    ts_ms: int,
) -> str | None:
    """One line; ``None`` when no field has a value (InfluxDB rejects such lines)."""
    field_parts = []
    for k, v in fields.items():
        if v is None:
            continue
        text = _value(v)
        if text is not None:
            field_parts.append(f"{_escape_key(k)}={text}")
    if not field_parts:
        return None
    tag_parts = "".join(
        f",{_escape_key(k)}={_escape_tag_value(v)}"
        for k, v in sorted(tags.items())
        if v != ""
    )
    return f"{_escape_measurement(measurement)}{tag_parts} {','.join(field_parts)} {ts_ms}"


def to_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


# For encoders that build a line without :func:`line`'s dicts (collector.schema's
# telemetry_lines, the hot path): the same text, piece by piece.


def tag(key: str, value: str) -> str:
    """``,key=value`` (``key`` needs no escaping), or nothing for an empty value (as
    :func:`line` does)."""
    return f",{key}={_escape_tag_value(value)}" if value != "" else ""


def put(parts: list[str], key: str, v: FieldValue | None) -> None:
    """Append ``key=value`` (``key`` needs no escaping) unless the value is absent or cannot
    be stored."""
    if v is not None:
        text = _value(v)
        if text is not None:
            parts.append(f"{key}={text}")


def field_value(v: FieldValue) -> str | None:
    """A field value as line protocol; ``None`` for an integer InfluxDB cannot store."""
    return _value(v)
