"""Device profiles: the model's rules, the catalog (shipped + user directory), device
selection, check-config, and property tests of the pure evaluation (scale, precision,
enum, sentinel, index tags, a lying cell loses only itself)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.profiles.evaluate import SENSOR_SCALE_POWER, Unknown, counter_readings, evaluate
from agent.profiles.load import ProfileError, catalog_problems, load_catalog
from agent.profiles.model import Profile
from agent.profiles.select import select_profiles, unknown_names
from agent.rates import counter_delta
from agent.snmp import ber
from tests.test_config import GOOD_AGENT
from xanet.cli import check_file
from xanet.config import ConfigError, parse_model

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {"entity-sensor", "host-resources", "if-mib", "paloalto-pan-common", "ups-mib"}

SENSOR: dict[str, Any] = {
    "name": "sensors", "description": "test",
    "tables": [{
        "name": "sensor", "tags": ["entity", "kind_of"],
        "columns": [
            {"name": "kind_of", "oid": "1.9.1", "kind": "enum", "enum": {"8": "celsius"}},
            {"name": "scale", "oid": "1.9.2", "kind": "gauge"},
            {"name": "precision", "oid": "1.9.3", "kind": "gauge"},
            {"name": "value", "oid": "1.9.4", "kind": "gauge", "sensor_scale": "scale",
             "sensor_precision": "precision", "unknown_values": [-1], "min": -10**9,
             "max": 10**9},
            {"name": "status", "oid": "1.9.5", "kind": "enum",
             "enum": {"1": "ok", "2": "unavailable"}},
            {"name": "octets", "oid": "1.9.6", "kind": "counter"},
            {"name": "entity", "oid": "1.8.7", "kind": "string"},
        ],
    }],
}


def profile(data: dict[str, Any]) -> Profile:
    return parse_model(data, Profile, "test.toml")


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        profile(data)
    return info.value.problems


# ------------------------------------------------------------------- the model

def test_shipped_profiles_load_without_problems() -> None:
    catalog, problems = catalog_problems()
    assert problems == []
    assert set(catalog) == SHIPPED
    assert catalog["paloalto-pan-common"].sys_object_ids == ["1.3.6.1.4.1.25461.2.3"]


def test_profile_mistakes_are_all_reported_with_their_key() -> None:
    bad = {
        "name": "Bad Name", "description": "x",
        "scalars": [
            {"name": "a", "oid": "1.3.6.x", "kind": "gauge"},
            {"name": "a", "oid": "1.3.6.1.0", "kind": "float"},
            {"name": "b", "oid": "1.3.6.2.0", "kind": "gauge", "enum": {"1": "up"}},
            {"name": "c", "oid": "1.3.6.3.0", "kind": "gauge", "multiply_by": "a"},
            {"name": "d", "oid": "1.3.6.4.0", "kind": "counter", "scale": 0.1},
            {"name": "e", "oid": "1.3.6.4.0", "kind": "enum", "enum": {"x": "y"}},
        ],
        "tables": [{"name": "t", "tags": ["nope"], "columns": [
            {"name": "v", "oid": "1.3.9.1", "kind": "gauge", "sensor_scale": "missing"},
            {"name": "w", "oid": "1.3.9.2", "kind": "gauge", "multiply_by": "s"},
            {"name": "s", "oid": "1.3.9.3", "kind": "string"},
        ]}],
    }
    problems = problems_of(bad)
    text = "\n".join(problems)
    for expected in (
        "name: not a valid id",
        "scalars[0].oid: not a numeric OID",
        "scalars[1].kind: Input should be 'gauge', 'counter', 'enum', 'string' or 'timeticks'",
        'scalars[2].enum: only for kind = "enum"',
        'scalars[4].scale: only for kind = "gauge"',
        "scalars[5].enum.x: the values an enum maps are integers",
        "tables[0].tags[0]: no column 'nope' in table 't'",
        "tables[0].columns[0].sensor_scale: no column 'missing' in table 't'",
        "tables[0].columns[1].multiply_by: column 's' is a string, not a number",
    ):
        assert expected in text, (expected, problems)


def test_profile_duplicates_and_scalar_references() -> None:
    problems = problems_of({
        "name": "dup", "description": "x",
        "scalars": [{"name": "a", "oid": "1.3.6.1.0", "kind": "gauge"},
                    {"name": "a", "oid": "1.3.6.1.0", "kind": "gauge"},
                    {"name": "c", "oid": "1.3.6.3.0", "kind": "gauge", "multiply_by": "a"}],
        "tables": [{"name": "t", "columns": [{"name": "x", "oid": "1.3.7", "kind": "gauge"},
                                             {"name": "y", "oid": "1.3.7.2", "kind": "gauge"}]},
                   {"name": "t", "columns": [{"name": "z", "oid": "1.3.8", "kind": "gauge"}]}],
    })
    text = "\n".join(problems)
    assert "scalars[1].name: duplicate name 'a' (also scalars[0])" in text
    assert "scalars[1].oid: 1.3.6.1.0 is polled by scalars[0] too" in text
    assert "scalars[2].multiply_by: a scalar has no row to take 'a' from" in text
    assert "tables[1].name: duplicate table 't'" in text
    assert "tables[0].columns[1].oid: lies inside column tables[0].columns[0]" in text


# ----------------------------------------------------------------- the catalog

def write_profile(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


UPS_OVERRIDE = """
name = "ups-mib"
description = "Huawei UPS5000: frequencies in 0.01 Hz"
{override}
[[scalars]]
name = "output_frequency"
oid = "1.3.6.1.2.1.33.1.4.2.0"
kind = "gauge"
unit = "Hz"
scale = 0.01
"""


def test_user_profiles_add_names_and_override_only_when_they_say_so(tmp_path: Path) -> None:
    user = tmp_path / "profiles"
    write_profile(user, "mine", 'name = "site-sensors"\ndescription = "x"\n'
                  '[[scalars]]\nname = "t"\noid = "1.3.6.1.4.1.9.1.0"\nkind = "gauge"\n')
    ups = write_profile(user, "ups", UPS_OVERRIDE.format(override=""))
    with pytest.raises(ProfileError) as info:
        load_catalog(user)
    assert str(info.value) == (f"{ups}: name: 'ups-mib' is a shipped profile (write override "
                               "= true to replace it, or choose another name)")
    ups.write_text(UPS_OVERRIDE.format(override="override = true"))
    catalog = load_catalog(user)
    assert set(catalog) == SHIPPED | {"site-sensors"}
    assert catalog["ups-mib"].scalars[0].multiplier == Decimal("0.01")
    write_profile(user, "again", 'name = "site-sensors"\ndescription = "y"\n'
                  '[[scalars]]\nname = "t"\noid = "1.3.6.1.4.1.9.2.0"\nkind = "gauge"\n')
    write_profile(user, "broken", 'name = "x"\n[[scalars]]\noid = "1..3"\n')
    write_profile(user, "lone", UPS_OVERRIDE.format(override="override = true")
                  .replace('"ups-mib"', '"no-such"'))
    _, problems = catalog_problems(user)
    assert problems == [
        f"{user / 'broken.toml'}: description: required key is missing",
        f"{user / 'broken.toml'}: scalars[0].name: required key is missing",
        f"{user / 'broken.toml'}: scalars[0].oid: not a numeric OID (digits separated by '.', "
        "e.g. 1.3.6.1.2.1.33.1.2.1) (got '1..3')",
        f"{user / 'broken.toml'}: scalars[0].kind: required key is missing",
        f"{user / 'lone.toml'}: override: there is no shipped profile 'no-such' to replace",
        f"{user / 'mine.toml'}: name: 'site-sensors' is also defined in {user / 'again.toml'}",
    ]


def test_select_by_name_and_by_sys_object_id() -> None:
    catalog = load_catalog()
    palo = (1, 3, 6, 1, 4, 1, 25461, 2, 3, 9)
    assert [p.name for p in select_profiles(["auto"], catalog, palo)] == ["paloalto-pan-common"]
    assert select_profiles(["auto"], catalog, (1, 3, 6, 1, 4, 1, 25461, 2, 4)) == []
    assert select_profiles(["auto"], catalog, None) == []
    chosen = select_profiles(["ups-mib", "auto", "paloalto-pan-common"], catalog, palo)
    assert [p.name for p in chosen] == ["ups-mib", "paloalto-pan-common"]
    assert unknown_names(["auto", "ups-mib", "ups-mbi"], catalog) == ["ups-mbi"]


# ---------------------------------------------------------------- check-config

AGENT_WITH_PROFILES = GOOD_AGENT + """profiles = ["ups-mib", "ups-mbi", "auto"]
[[devices]]
id = "d2"
host = "127.0.0.2"
profiles = ["entity-sensor", "entity-sensor"]
[profiles]
default = ["auto", "Host"]
dir = "{dir}"
"""


def test_check_config_reports_profile_mistakes_with_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_COMMUNITY", "public")
    config = tmp_path / "agent.toml"
    config.write_text(AGENT_WITH_PROFILES.replace("{dir}", str(tmp_path / "none")))
    assert check_file(config, files=False) == [
        f"{config}: profiles.default[1]: not a valid id: use 1-64 lowercase ASCII letters, "
        "digits and '-', not at the start or end (ids appear in MQTT topics, tags and labels) "
        "(got 'Host')",
    ]
    config.write_text(config.read_text().replace('"Host"', '"host-resources"'))
    assert check_file(config, files=False) == [
        f"{config}: devices[1].profiles[1]: 'entity-sensor' is named twice",
    ]
    user = tmp_path / "profiles"
    write_profile(user, "bad", 'name = "bad"\ndescription = "x"\n'
                  '[[scalars]]\nname = "t"\noid = "1.3.6.1.4.1.9.1.0"\nkind = "float"\n')
    config.write_text(AGENT_WITH_PROFILES.replace("{dir}", str(user))
                      .replace(', "entity-sensor"]', "]").replace('"Host"', '"host-resources"'))
    problems = check_file(config)
    assert [p for p in problems if "spool" not in p] == [
        f"{config}: profiles.dir: {user / 'bad.toml'}: scalars[0].kind: Input should be "
        "'gauge', 'counter', 'enum', 'string' or 'timeticks' (got 'float')",
        f"{config}: devices[0].profiles[1]: unknown profile 'ups-mbi' (known: entity-sensor, "
        'host-resources, if-mib, paloalto-pan-common, ups-mib, or "auto")',
    ]


def test_check_config_cli_prints_profile_problems_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(GOOD_AGENT + 'profiles = ["no-such-profile"]\n')
    done = subprocess.run([sys.executable, "-m", "xanet.cli", "check-config", str(config)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={"T_COMMUNITY": "public", "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "devices[0].profiles[0]: unknown profile 'no-such-profile'" in done.stderr


# ------------------------------------------------------- evaluation, properties

SENSOR_PROFILE = profile(SENSOR)


def int_cell(oid: str, value: int, tag: int = ber.INTEGER) -> ber.VarBind:
    return (tuple(int(p) for p in oid.split(".")), tag, value)


def sensor_row(index: int, *, value: int, scale: int = 9, precision: int = 0,
               name: str = "cpu", status: int = 1) -> list[ber.VarBind]:
    return [
        int_cell(f"1.9.1.{index}", 8), int_cell(f"1.9.2.{index}", scale),
        int_cell(f"1.9.3.{index}", precision), int_cell(f"1.9.4.{index}", value),
        int_cell(f"1.9.5.{index}", status), int_cell(f"1.9.6.{index}", 7, ber.COUNTER64),
        ((1, 8, 7, index), ber.OCTET_STRING, name.encode()),
    ]


@given(raw=st.integers(-10**9, 10**9), scale=st.integers(1, 17), precision=st.integers(-8, 9))
def test_scale_and_precision_give_the_exact_decimal(raw: int, scale: int, precision: int) -> None:
    sample = evaluate(SENSOR_PROFILE, sensor_row(3, value=raw, scale=scale,
                                                 precision=precision))
    (value,) = [v for v in sample.values if v.metric == "value"]
    if raw == -1:
        assert (value.value, value.unknown) == (None, Unknown.SENTINEL)
        return
    want = Decimal(raw).scaleb(SENSOR_SCALE_POWER[scale] - max(precision, 0))
    assert value.value == float(want)
    assert value.unknown is None


@given(code=st.integers(-5, 5))
def test_enum_labels_and_unlabelled_codes(code: int) -> None:
    sample = evaluate(SENSOR_PROFILE, [*sensor_row(1, value=5), int_cell("1.9.5.1", code)])
    (status,) = [v for v in sample.values if v.metric == "status"]
    labels = {1: "ok", 2: "unavailable"}
    assert status.raw == code
    if code in labels:
        assert (status.value, status.unknown) == (labels[code], None)
    else:
        assert (status.value, status.unknown) == (None, Unknown.NOT_IN_ENUM)


@given(sentinel=st.booleans(), raw=st.integers(-10**9, 10**9))
def test_a_sentinel_is_never_a_number(sentinel: bool, raw: int) -> None:
    value = -1 if sentinel else raw
    sample = evaluate(SENSOR_PROFILE, sensor_row(2, value=value))
    (got,) = [v for v in sample.values if v.metric == "value"]
    assert (got.unknown is Unknown.SENTINEL) == (value == -1)
    assert (got.value is None) == (value == -1)


@given(rows=st.dictionaries(st.integers(1, 10**9),  # the value is the index: within max
                            st.text(st.characters(codec="ascii", exclude_categories=("Cc",)),
                                    min_size=1, max_size=20),
                            min_size=1, max_size=8))
def test_index_tags_come_from_the_rows_own_columns(rows: dict[int, str]) -> None:
    var_binds = [vb for index, name in rows.items() for vb in sensor_row(index, value=index,
                                                                         name=name)]
    sample = evaluate(SENSOR_PROFILE, reversed(var_binds))
    values = [v for v in sample.values if v.metric == "value"]
    assert len(values) == len(rows)
    for value in values:
        tags = dict(value.tags)
        index = int(tags["index"])
        assert tags == {"index": str(index), "entity": rows[index], "kind_of": "celsius"}
        assert value.value == float(index)


LIES = st.sampled_from([
    (ber.OCTET_STRING, b"n/a", Unknown.WRONG_TYPE),
    (ber.COUNTER32, 5, Unknown.WRONG_TYPE),
    (ber.NULL, None, Unknown.WRONG_TYPE),
    (ber.INTEGER, 10**9 + 1, Unknown.OUT_OF_RANGE),
    (ber.NO_SUCH_INSTANCE, None, Unknown.ABSENT),
])


@given(liar=st.integers(1, 6), lie=LIES)
def test_a_lying_cell_loses_only_its_value(liar: int, lie: tuple[int, ber.Value, Unknown]) -> None:
    tag, bad, reason = lie
    var_binds = [vb for index in range(1, 7) for vb in sensor_row(index, value=10 * index)]
    honest = evaluate(SENSOR_PROFILE, var_binds)
    lied = [((1, 9, 4, liar), tag, bad) if vb[0] == (1, 9, 4, liar) else vb for vb in var_binds]
    sample = evaluate(SENSOR_PROFILE, lied)
    changed = [(a, b) for a, b in zip(honest.values, sample.values, strict=True) if a != b]
    assert len(changed) == 1
    before, after = changed[0]
    assert before.value == 10.0 * liar and dict(before.tags)["index"] == str(liar)
    assert (after.value, after.unknown) == (None, reason)
    assert (len(sample.warnings) == 1) == (reason is not Unknown.ABSENT)


def test_a_bad_scale_makes_only_its_rows_value_unknown() -> None:
    sample = evaluate(SENSOR_PROFILE, [*sensor_row(1, value=5, scale=99),
                                       *sensor_row(2, value=5, precision=12)])
    values = [v for v in sample.values if v.metric == "value"]
    assert [v.unknown for v in values] == [Unknown.NO_SCALE, Unknown.NO_SCALE]
    assert [v.raw for v in values] == [5, 5]
    assert len(sample.warnings) == 2


@given(first=st.integers(0, 2**64 - 1), second=st.integers(0, 2**64 - 1))
def test_counters_stay_raw_for_the_rate_engine(first: int, second: int) -> None:
    readings = [counter_readings(evaluate(SENSOR_PROFILE, [
        *sensor_row(1, value=1)[:-2], int_cell("1.9.6.1", n, ber.COUNTER64)]))
        for n in (first, second)]
    key = ("sensors", "octets", (("index", "1"), ("kind_of", "celsius")))
    (a, bits), (b, _) = readings[0][key], readings[1][key]
    assert (a, b, bits) == (first, second, 64)
    assert counter_delta(a, b, bits) == (second - first if second >= first else None)


def test_scalars_absent_and_present() -> None:
    ups = load_catalog()["ups-mib"]
    sample = evaluate(ups, [
        ((1, 3, 6, 1, 2, 1, 33, 1, 2, 1, 0), ber.INTEGER, 3),
        ((1, 3, 6, 1, 2, 1, 33, 1, 2, 3, 0), ber.NO_SUCH_OBJECT, None),
        ((1, 3, 6, 1, 2, 1, 33, 1, 4, 2, 0), ber.INTEGER, 499),
        ((1, 3, 6, 1, 2, 1, 33, 1, 2, 4, 0), ber.INTEGER, 101),
    ])
    got = {v.metric: v for v in sample.values}
    assert got["battery_status"].value == "batteryLow"
    assert got["minutes_remaining"].unknown is Unknown.ABSENT
    assert got["output_frequency"].value == 49.9
    assert got["charge_remaining"].unknown is Unknown.OUT_OF_RANGE
    assert got["seconds_on_battery"].unknown is Unknown.ABSENT


def test_the_worked_example_of_docs_profiles_md(tmp_path: Path) -> None:
    """The override docs/profiles.md writes, loaded as a user profile and fed the Huawei
    UPS5000's recorded frequency (5000, in 0.01 Hz)."""
    doc = (ROOT / "docs" / "profiles.md").read_text()
    start = doc.index("```toml\n# UPS-MIB as the Huawei UPS5000") + len("```toml\n")
    write_profile(tmp_path, "ups-mib-huawei", doc[start:doc.index("```", start)])
    ups = load_catalog(tmp_path)["ups-mib"]
    assert ups.description == "UPS-MIB, Huawei UPS5000 frequencies in 0.01 Hz"
    sample = evaluate(ups, [((1, 3, 6, 1, 2, 1, 33, 1, 3, 3, 1, 2, 1), ber.GAUGE32, 5000),
                            ((1, 3, 6, 1, 2, 1, 33, 1, 2, 3, 0), ber.INTEGER, -1)])
    got = {v.metric: v for v in sample.values}
    assert got["input_frequency"].value == 50.0
    assert got["input_frequency"].tags == (("line", "1"),)
    assert got["minutes_remaining"].unknown is Unknown.SENTINEL


HOST_RESOURCES = load_catalog()["host-resources"]


@given(units=st.integers(1, 2**31 - 1), size=st.integers(0, 2**31 - 1),
       used=st.one_of(st.integers(0, 2**31 - 1), st.just(-5)))
def test_storage_bytes_are_size_times_allocation_units(units: int, size: int,
                                                       used: int) -> None:
    storage = "1.3.6.1.2.1.25.2.3.1"
    sample = evaluate(HOST_RESOURCES, [
        ((1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 3, 4), ber.OCTET_STRING, b"/var"),
        int_cell(f"{storage}.4.4", units), int_cell(f"{storage}.5.4", size),
        int_cell(f"{storage}.6.4", used),
    ])
    got = {v.metric: v for v in sample.values}
    assert got["storage_size"].value == float(size * units)
    assert got["storage_size"].tags == (("storage_index", "4"), ("storage", "/var"))
    if used < 0:  # below min = 0: a lie, only this value lost
        assert got["storage_used"].unknown is Unknown.OUT_OF_RANGE
    else:
        assert got["storage_used"].value == float(used * units)
    assert got["allocation_failures"].unknown is Unknown.ABSENT
    assert "allocation_units" not in got  # a multiplier, not a value of its own
