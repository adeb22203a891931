"""The power state on the agent: a profile's ``[power]`` mapping (validated with file, key
and reason) and the derivation of ``wire.PowerReading`` from a poll's values
(agent/profiles/power.py), on the shipped ups-mib through the real evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.profiles.evaluate import ProfileSample, evaluate
from agent.profiles.load import ProfileError, load_catalog
from agent.profiles.model import Profile
from agent.profiles.power import power_reading, unknown_power
from agent.snmp import ber
from tests.test_profiles import problems_of, write_profile

UPS = load_catalog()["ups-mib"]
BATTERY = (1, 3, 6, 1, 2, 1, 33, 1, 2)
OUTPUT_SOURCE = {1: "other", 2: "none", 3: "normal", 4: "bypass", 5: "battery", 6: "booster",
                 7: "reducer"}
LOW = {3, 4}  # batteryLow, batteryDepleted

#: What a UPS may answer for one scalar: a value, the -1 sentinel, nothing, a lie.
Cell = tuple[int, int | bytes | None]  # (BER tag, value)


def answer(value: int) -> st.SearchStrategy[Cell]:
    return st.sampled_from([(ber.INTEGER, value), (ber.INTEGER, -1), (ber.NO_SUCH_OBJECT, None),
                            (ber.OCTET_STRING, b"n/a")])


def ups_sample(source: Cell, seconds: Cell, status: Cell, minutes: Cell,
               charge: Cell) -> ProfileSample:
    cells = {(*BATTERY, 2, 0): seconds, (*BATTERY, 1, 0): status, (*BATTERY, 3, 0): minutes,
             (*BATTERY, 4, 0): charge, (1, 3, 6, 1, 2, 1, 33, 1, 4, 1, 0): source}
    return evaluate(UPS, [(oid, tag, value) for oid, (tag, value) in cells.items()])


def readable(cell: Cell, ok: range) -> int | None:
    """The raw integer the profile accepts from ``cell`` (None: unknown to it)."""
    tag, value = cell
    return value if tag == ber.INTEGER and isinstance(value, int) and value in ok else None


@given(source=st.integers(1, 7).flatmap(answer), seconds=st.integers(0, 10**6).flatmap(answer),
       status=st.integers(1, 4).flatmap(answer), minutes=st.integers(0, 2000).flatmap(answer),
       charge=st.integers(0, 100).flatmap(answer))
def test_power_state_from_the_ups_mib_values(source: Cell, seconds: Cell, status: Cell,
                                             minutes: Cell, charge: Cell) -> None:
    got = power_reading(UPS, ups_sample(source, seconds, status, minutes, charge))
    assert got is not None and got.profile == "ups-mib"
    src = readable(source, range(1, 8))
    secs = readable(seconds, range(0, 2**31))
    stat = readable(status, range(1, 5))
    on_battery = src == 5 or (secs is not None and secs > 0)
    if src is None and secs is None:
        assert got.state == "unknown"  # nothing that decides could be read
    elif not on_battery:
        assert got.state == "mains"  # a low battery on mains is charging: still mains
    else:
        assert got.state == ("battery_low" if stat in LOW else "on_battery")
    mins, pct = readable(minutes, range(0, 10**6 + 1)), readable(charge, range(0, 101))
    assert got.minutes_remaining == (None if mins is None else float(mins))
    assert got.charge_pct == (None if pct is None else float(pct))
    assert got.seconds_on_battery == secs  # a sentinel or a lie is never a number


def test_a_failed_profile_or_one_without_power_says_so() -> None:
    assert unknown_power(UPS) is not None
    assert unknown_power(UPS).model_dump(exclude_none=True) == {"state": "unknown",
                                                                 "profile": "ups-mib"}
    sensors = load_catalog()["entity-sensor"]
    assert sensors.power is None
    assert unknown_power(sensors) is None
    assert power_reading(sensors, evaluate(sensors, [])) is None


def test_a_ups_that_answers_nothing_is_unknown_not_mains() -> None:
    got = power_reading(UPS, evaluate(UPS, []))
    assert got is not None
    assert got.model_dump(exclude_none=True) == {"state": "unknown", "profile": "ups-mib"}


MINIMAL: dict[str, Any] = {
    "name": "rectifier", "description": "test",
    "scalars": [
        {"name": "mode", "oid": "1.9.1.0", "kind": "enum", "enum": {"1": "ac", "2": "dc"}},
        {"name": "left_s", "oid": "1.9.2.0", "kind": "timeticks"},
        {"name": "volts", "oid": "1.9.3.0", "kind": "gauge", "scale": 0.01},
        {"name": "faults", "oid": "1.9.4.0", "kind": "counter"},
    ],
    "tables": [{"name": "cell", "columns": [{"name": "cell_volts", "oid": "1.9.5.1.2",
                                             "kind": "gauge"}]}],
}


def test_power_mapping_mistakes_are_all_reported_with_their_key() -> None:
    bad = {**MINIMAL, "power": {
        "on_battery": [{"metric": "mode", "labels": ["dc", "battery"]},
                       {"metric": "volts", "labels": ["x"]},
                       {"metric": "faults", "above": 0},
                       {"metric": "cell_volts", "below": 47},
                       {"metric": "mode"}],
        "battery_low": [{"metric": "volts", "below": 47, "above": 1}],
        "minutes_remaining": "mode", "charge_pct": "nothing",
    }}
    assert problems_of(bad) == [  # (the conditions' own mistakes first: then the rest)
        "power.on_battery[4].labels: a condition has exactly one of labels, above, below "
        "(got none)",
        "power.battery_low[0].labels: a condition has exactly one of labels, above, below "
        "(got above, below)",
    ]
    fixed = {**bad, "power": {**bad["power"], "on_battery": bad["power"]["on_battery"][:4],
                              "battery_low": [{"metric": "volts", "below": 47}]}}
    assert problems_of(fixed) == [
        "power.on_battery[0].labels[1]: 'battery' is no label of 'mode' (ac, dc)",
        "power.on_battery[1].labels: 'volts' is a gauge, not an enum or string",
        "power.on_battery[2].above: 'faults' is a counter, not a gauge or timeticks",
        "power.on_battery[3].metric: no scalar 'cell_volts' in this profile (the power "
        "mapping reads scalars)",
        "power.minutes_remaining: 'mode' is an enum, not a gauge or timeticks",
        "power.charge_pct: no scalar 'nothing' in this profile",
    ]


def test_a_user_profile_maps_power_from_its_own_scalars(tmp_path: Path) -> None:
    write_profile(tmp_path, "rectifier", """name = "rectifier"
description = "a DC rectifier: on battery when the mode says dc"

[power]
on_battery = [{ metric = "mode", labels = ["dc"] }]
battery_low = [{ metric = "volts", below = 47.5 }]
minutes_remaining = "left_min"

[[scalars]]
name = "mode"
oid = "1.9.1.0"
kind = "enum"
enum = { 1 = "ac", 2 = "dc" }

[[scalars]]
name = "left_min"
oid = "1.9.2.0"
kind = "gauge"
unknown_values = [-1]

[[scalars]]
name = "volts"
oid = "1.9.3.0"
kind = "gauge"
scale = 0.01
""")
    rectifier = load_catalog(tmp_path)["rectifier"]
    sample = evaluate(rectifier, [((1, 9, 1, 0), ber.INTEGER, 2),
                                  ((1, 9, 2, 0), ber.INTEGER, 25),
                                  ((1, 9, 3, 0), ber.INTEGER, 4700)])
    got = power_reading(rectifier, sample)
    assert got is not None
    assert (got.state, got.minutes_remaining, got.charge_pct) == ("battery_low", 25.0, None)
    write_profile(tmp_path, "rectifier", (tmp_path / "rectifier.toml").read_text()
                  .replace('labels = ["dc"]', 'labels = ["DC"]'))
    with pytest.raises(ProfileError) as info:
        load_catalog(tmp_path)
    assert info.value.lines == [f"{tmp_path / 'rectifier.toml'}: power.on_battery[0].labels[0]: "
                                "'DC' is no label of 'mode' (ac, dc)"]


def test_shipped_ups_mib_maps_power_and_overriding_it_replaces_the_mapping() -> None:
    assert UPS.power is not None
    assert [c.metric for c in UPS.power.on_battery] == ["output_source", "seconds_on_battery"]
    assert UPS.power.figures() == {"minutes_remaining": "minutes_remaining",
                                   "charge_pct": "charge_remaining",
                                   "seconds_on_battery": "seconds_on_battery"}
    assert isinstance(UPS, Profile)
