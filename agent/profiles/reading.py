"""What one profile's poll says on the wire: a ProfileSample as a ``wire.ProfileReading``. Pure.

Each :class:`agent.profiles.evaluate.ProfileValue` becomes one
:class:`xanet.wire.ProfileValue`: gauge and timeticks as ``value`` with their ``unit``;
a counter as ``counter`` with its ``rate`` per second (:mod:`agent.profiles.counters`) or
the ``rate_note`` saying why there is none; an enum as ``text`` (its label) with ``code``;
a string as ``text``; an unknown as ``unknown`` with the reason - never a number. The
row's tags become a dict (absent for scalars).

Bounded as the wire wants: at most :data:`xanet.wire.MAX_PROFILE_VALUES` values (the rest
dropped, said in a warning) and :data:`xanet.wire.MAX_PROFILE_WARNINGS` warnings (the last
one says how many more there were); texts cut to the wire's short text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from agent.profiles.counters import CounterRate, SeriesKey
from agent.profiles.evaluate import ProfileSample, ProfileValue
from xanet import wire

#: The wire's short text (``ShortText``): warnings, errors, texts and tag values.
SHORT_TEXT: Final = 256
_CODE_RANGE: Final = range(-(2**31), 2**32)


def value_on_wire(value: ProfileValue, rate: CounterRate | None = None) -> wire.ProfileValue:
    """One value as the wire carries it (``rate``: a counter's, from the rate engine)."""
    tags = {name: text[:SHORT_TEXT] for name, text in value.tags} or None
    unit = value.unit or None
    if value.unknown is not None or value.value is None:
        return wire.ProfileValue(metric=value.metric, tags=tags, unit=unit,
                                 unknown=value.unknown.value if value.unknown else "absent")
    got = value.value
    if value.kind == "counter":
        assert isinstance(got, int)
        return wire.ProfileValue(
            metric=value.metric, tags=tags, unit=unit, counter=got,
            rate=None if rate is None else rate.per_s,
            rate_note=None if rate is None or rate.note is None else rate.note.value)
    if value.kind == "enum":
        code = value.raw if isinstance(value.raw, int) and value.raw in _CODE_RANGE else None
        return wire.ProfileValue(metric=value.metric, tags=tags, unit=unit,
                                 text=str(got)[:SHORT_TEXT], code=code)
    if isinstance(got, str):
        return wire.ProfileValue(metric=value.metric, tags=tags, unit=unit,
                                 text=got[:SHORT_TEXT])
    return wire.ProfileValue(metric=value.metric, tags=tags, unit=unit, value=float(got))


def bounded_warnings(warnings: Sequence[str]) -> list[str] | None:
    """At most the wire's number of warnings, each cut to its short text; the last says
    how many more there were."""
    if not warnings:
        return None
    cap = wire.MAX_PROFILE_WARNINGS
    kept = [w[:SHORT_TEXT] for w in warnings]
    if len(kept) > cap:
        kept = [*kept[:cap - 1], f"... and {len(warnings) - cap + 1} more warning(s)"]
    return kept


def to_reading(sample: ProfileSample,
               rates: Mapping[SeriesKey, CounterRate] | None = None) -> wire.ProfileReading:
    """A profile's values and warnings as the wire's reading (``rates``: its counters')."""
    rates = rates or {}
    values = [value_on_wire(v, rates.get(v.key)) for v in sample.values]
    warnings = list(sample.warnings)
    if len(values) > wire.MAX_PROFILE_VALUES:
        warnings.insert(0, f"{len(values) - wire.MAX_PROFILE_VALUES} value(s) beyond "
                        f"{wire.MAX_PROFILE_VALUES} not sent")
        values = values[:wire.MAX_PROFILE_VALUES]
    return wire.ProfileReading(profile=sample.profile, values=values,
                               warnings=bounded_warnings(warnings))


def failed_reading(profile: str, cause: wire.PollCause, error: str) -> wire.ProfileReading:
    """A profile whose poll failed: why, and no values."""
    return wire.ProfileReading(profile=profile, error=error[:SHORT_TEXT] or cause,
                               cause=cause)
