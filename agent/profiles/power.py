"""A device's power state (mains, on battery, battery low, unknown) from a profile's values. Pure.

A profile's ``[power]`` mapping (:class:`agent.profiles.model.PowerMap`) names the scalars
that decide it; :func:`power_reading` reads them in one poll's values
(:class:`agent.profiles.evaluate.ProfileSample`) and returns the wire's
:class:`xanet.wire.PowerReading`:

* any ``on_battery`` condition that holds: on battery; then any ``battery_low``
  condition that holds: battery low (a low battery on mains is charging: mains);
* no condition holds and at least one could be read: mains;
* none could be read (every deciding value unknown: a sentinel, absent, a lie), or the
  profile's poll failed (:func:`unknown_power`): unknown.

The figures (minutes remaining, charge, seconds on battery) come along whatever the
state, when known and within the wire's bounds (else absent: never a made-up number).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from agent.profiles.evaluate import ProfileSample, ProfileValue
from agent.profiles.model import PowerCondition, PowerMap, Profile
from xanet import wire

#: The wire's bounds of each figure (:class:`xanet.wire.PowerReading`).
FIGURE_BOUNDS: Final[Mapping[str, tuple[float, float]]] = {
    "minutes_remaining": (0, 10**6),
    "charge_pct": (0, 100),
    "seconds_on_battery": (0, 2**31 - 1),
}


def holds(condition: PowerCondition, value: ProfileValue | None) -> bool | None:
    """Whether ``condition`` holds for ``value``; None when the value is unknown (or of a
    kind the condition cannot read)."""
    if value is None or value.value is None:
        return None
    got = value.value
    if condition.labels is not None:
        return got in condition.labels if isinstance(got, str) else None
    if isinstance(got, str):
        return None
    if condition.above is not None:
        return got > condition.above
    assert condition.below is not None  # PowerCondition: exactly one test
    return got < condition.below


def any_holds(conditions: Sequence[PowerCondition],
              scalars: Mapping[str, ProfileValue]) -> bool | None:
    """True when one condition holds; False when none does and one could be read; None
    when none could be read (or there are none)."""
    verdicts = [holds(c, scalars.get(c.metric)) for c in conditions]
    if any(verdicts):
        return True
    return False if False in verdicts else None


def state_of(mapping: PowerMap, scalars: Mapping[str, ProfileValue]) -> wire.PowerState:
    """The state the mapping reads in one poll's scalar values (by metric name)."""
    on_battery = any_holds(mapping.on_battery, scalars)
    if on_battery is None:
        return "unknown"
    if not on_battery:
        return "mains"
    return "battery_low" if any_holds(mapping.battery_low, scalars) else "on_battery"


def figure(value: ProfileValue | None, key: str) -> float | None:
    """A figure's number when known and within the wire's bounds for ``key``."""
    if value is None or isinstance(value.value, str) or value.value is None:
        return None
    low, high = FIGURE_BOUNDS[key]
    number = float(value.value)
    return number if low <= number <= high else None


def power_reading(profile: Profile, sample: ProfileSample) -> wire.PowerReading | None:
    """The power state ``sample`` says, by ``profile``'s ``[power]``; None when the profile
    maps none."""
    mapping = profile.power
    if mapping is None:
        return None
    scalars = {v.metric: v for v in sample.values if not v.tags}
    figures = {key: figure(scalars.get(name), key) for key, name in mapping.figures().items()}
    seconds = figures.pop("seconds_on_battery", None)
    return wire.PowerReading(
        state=state_of(mapping, scalars), profile=profile.name,
        minutes_remaining=figures.get("minutes_remaining"),
        charge_pct=figures.get("charge_pct"),
        seconds_on_battery=None if seconds is None else int(seconds),
    )


def unknown_power(profile: Profile) -> wire.PowerReading | None:
    """The power state of a profile whose poll failed: unknown (None: it maps none)."""
    if profile.power is None:
        return None
    return wire.PowerReading(state="unknown", profile=profile.name)
