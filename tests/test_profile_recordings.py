"""Parsing truth of device profiles on real recordings (snmpsim-data), polled through a real
snmpsim by :mod:`agent.snmp.profilewalk`, on both SNMP paths (lean and pysnmp).

Every value must equal the recording after the MIB's scale (UPS-MIB, RFC 1628) or the
row's scale and precision (ENTITY-SENSOR-MIB, RFC 3433); sentinels (-1, "don't know")
must be unknown, never numbers. The expectation is computed here from the ``.snmprec``
text with :class:`decimal.Decimal` and the MIBs' units written out below, not through
the profile engine.

Observed in the recordings (and asserted): the EAST iStars UPS indexes its UPS tables
``1.0``, ``2.0``, ``3.0`` (two sub-identifiers: the agent gets the MIB wrong; the rows are
kept under that index); the Huawei UPS5000 answers -1 for minutes and charge remaining
and for the battery temperature, and reports its frequencies in 0.01 Hz where the MIB
says 0.1 Hz (so 500.0 Hz comes out: the value the MIB defines; docs/profiles.md shows
the override that fixes it); the Palo Alto PA-5050 has 14 sensors (10 fans in rpm, 4
temperatures in °C).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

import lab
from agent.profiles.evaluate import ProfileSample, ProfileValue, Unknown
from agent.profiles.load import load_catalog
from agent.snmp import SnmpPoller, SnmpTarget, SnmpV2c
from agent.snmp.profilewalk import poll_profile, poll_profiles
from lab import SnmpSim

pytestmark = pytest.mark.integration

DATA = lab.SNMPSIM_DATA_DIR
RECORDINGS = {
    "ups/eastpower": DATA / "UPS/eastpower-istars-swv053.snmprec.bz2",
    "ups/huawei": DATA / "UPS/huawei-gse200m.snmprec.bz2",
    "fw/paloalto": DATA / "network/firewall/paloalto-pa-5000.snmprec.bz2",
}
CATALOG = load_catalog()

UPS = "1.3.6.1.2.1.33.1"
#: UPS-MIB objects: metric -> (OID, unit multiplier as the MIB states it). Sentinel -1.
UPS_GAUGES = {
    "seconds_on_battery": (f"{UPS}.2.2.0", "1"),
    "minutes_remaining": (f"{UPS}.2.3.0", "1"),
    "charge_remaining": (f"{UPS}.2.4.0", "1"),
    "battery_voltage": (f"{UPS}.2.5.0", "0.1"),
    "output_frequency": (f"{UPS}.4.2.0", "0.1"),
    "alarms_present": (f"{UPS}.6.1.0", "1"),
}
UPS_NO_SENTINEL = {"alarms_present", "battery_temperature"}
UPS_COLUMNS = {
    "input_frequency": (f"{UPS}.3.3.1.2", "0.1"),
    "input_voltage": (f"{UPS}.3.3.1.3", "1"),
    "input_current": (f"{UPS}.3.3.1.4", "0.1"),
    "output_voltage": (f"{UPS}.4.4.1.2", "1"),
    "output_power": (f"{UPS}.4.4.1.4", "1"),
    "output_load": (f"{UPS}.4.4.1.5", "1"),
}
BATTERY_STATUS = {1: "unknown", 2: "batteryNormal", 3: "batteryLow", 4: "batteryDepleted"}
OUTPUT_SOURCE = {1: "other", 2: "none", 3: "normal", 4: "bypass", 5: "battery",
                 6: "booster", 7: "reducer"}
#: EntitySensorDataScale -> power of ten, as RFC 3433's comments give them.
SCALE_POWER = {1: -24, 2: -21, 3: -18, 4: -15, 5: -12, 6: -9, 7: -6, 8: -3, 9: 0, 10: 3,
               11: 6, 12: 9, 13: 12, 14: 18, 15: 15, 16: 21, 17: 24}
SENSOR_TYPE = {8: "celsius", 10: "rpm"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSim]:
    """One snmpsim for the module, serving the three recordings."""
    daemon = SnmpSim(tmp_path_factory.mktemp("profile-sim"), RECORDINGS)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(params=["lean", "pysnmp"])
async def poller(request: pytest.FixtureRequest) -> AsyncIterator[SnmpPoller]:
    p = SnmpPoller(v2c_backend=request.param, v3_backend=request.param)
    yield p
    p.close()


def target(sim: SnmpSim, community: str) -> SnmpTarget:
    return SnmpTarget(device=community.replace("/", "-"), host="127.0.0.1", port=sim.port,
                      credentials=SnmpV2c(community), max_repetitions=10)


def recording(community: str) -> dict[str, tuple[str, str]]:
    return lab.snmprec_values(RECORDINGS[community])


def scaled(text: str, multiplier: str) -> float:
    return float(Decimal(text) * Decimal(multiplier))


def by_key(sample: ProfileSample) -> dict[tuple[str, tuple[tuple[str, str], ...]], ProfileValue]:
    return {(v.metric, v.tags): v for v in sample.values}


def assert_gauge(got: ProfileValue, cell: tuple[str, str] | None, multiplier: str,
                 sentinel: bool) -> str:
    """One gauge against its recorded cell; returns what it was ("value", "sentinel"...)."""
    if cell is None:
        assert (got.value, got.unknown) == (None, Unknown.ABSENT)
        return "absent"
    assert cell[0] in ("2", "66"), cell
    if sentinel and int(cell[1]) == -1:
        assert (got.value, got.unknown) == (None, Unknown.SENTINEL), got
        return "sentinel"
    assert got.unknown is None, got
    assert got.value == scaled(cell[1], multiplier), (got, cell)
    assert isinstance(got.value, float)
    return "value"


@pytest.mark.parametrize("community", ["ups/eastpower", "ups/huawei"])
async def test_ups_mib_values_equal_the_recording(
    sim: SnmpSim, poller: SnmpPoller, community: str
) -> None:
    rec = recording(community)
    sample = await poll_profile(poller, target(sim, community), CATALOG["ups-mib"])
    got = by_key(sample)
    seen: dict[str, int] = {}

    for metric, (oid, multiplier) in UPS_GAUGES.items():
        what = assert_gauge(got[(metric, ())], rec.get(oid), multiplier,
                            metric not in UPS_NO_SENTINEL)
        seen[what] = seen.get(what, 0) + 1
    temperature = rec[f"{UPS}.2.7.0"]
    assert got[("battery_temperature", ())].value == float(temperature[1])
    for metric, oid, labels in (("battery_status", f"{UPS}.2.1.0", BATTERY_STATUS),
                                ("output_source", f"{UPS}.4.1.0", OUTPUT_SOURCE)):
        value = got[(metric, ())]
        assert value.value == labels[int(rec[oid][1])]
        assert value.raw == int(rec[oid][1])
    line_bads = got[("input_line_bads", ())]
    assert line_bads.unknown == (Unknown.ABSENT if f"{UPS}.3.1.0" not in rec
                                 else Unknown.WRONG_TYPE)  # both record no Counter32

    rows = 0
    for metric, (column, multiplier) in UPS_COLUMNS.items():
        recorded = {oid[len(column) + 1:]: cell for oid, cell in rec.items()
                    if oid.startswith(column + ".")}
        indices = {tags[0][1] for (name, tags) in got if name == metric}
        assert set(recorded) <= indices
        for index in indices:
            value = got[(metric, (("line", index),))]
            what = assert_gauge(value, recorded.get(index), multiplier, sentinel=True)
            seen[what] = seen.get(what, 0) + 1
            rows += what == "value"
    assert rows >= 6
    if community == "ups/huawei":
        assert seen["sentinel"] == 2  # minutes and charge remaining answer -1
        assert got[("input_frequency", (("line", "1"),))].value == 500.0  # 0.01 Hz units
    else:
        assert got[("input_voltage", (("line", "3.0"),))].value == 234.0
        assert got[("minutes_remaining", ())].value == 0.0
    assert all(v.value is None for v in sample.values if v.unknown is not None)
    assert not any(isinstance(v.value, float) and v.value < 0 for v in sample.values
                   if v.metric != "battery_temperature")


async def test_entity_sensors_equal_the_recording_after_scale_and_precision(
    sim: SnmpSim, poller: SnmpPoller
) -> None:
    rec = recording("fw/paloalto")
    table = "1.3.6.1.2.1.99.1.1.1"
    sensors = sorted({oid.rsplit(".", 1)[1] for oid in rec if oid.startswith(table + ".4.")},
                     key=int)
    assert len(sensors) == 14

    sample = await poll_profile(poller, target(sim, "fw/paloalto"), CATALOG["entity-sensor"])

    assert sample.warnings == ()
    values = [v for v in sample.values if v.metric == "sensor_value"]
    assert len(values) == 14
    for value in values:
        tags = dict(value.tags)
        index = tags["entity_index"]
        raw = int(rec[f"{table}.4.{index}"][1])
        power = SCALE_POWER[int(rec[f"{table}.2.{index}"][1])]
        precision = int(rec[f"{table}.3.{index}"][1])
        want = Decimal(raw).scaleb(power - max(precision, 0))
        assert value.value == float(want)
        assert value.unknown is None
        assert tags["entity"] == rec[f"1.3.6.1.2.1.47.1.1.1.1.7.{index}"][1]
        assert tags["sensor_type"] == SENSOR_TYPE[int(rec[f"{table}.1.{index}"][1])]
    status = {dict(v.tags)["entity_index"]: v.value for v in sample.values
              if v.metric == "sensor_status"}
    assert status == dict.fromkeys(sensors, "ok")
    temperatures = {dict(v.tags)["entity"]: v.value for v in values
                    if dict(v.tags)["sensor_type"] == "celsius"}
    assert temperatures["Temperature @ Jaguar [U172]"] == 34.0


async def test_auto_chooses_the_vendor_profile_by_sys_object_id(
    sim: SnmpSim, poller: SnmpPoller
) -> None:
    rec = recording("fw/paloalto")
    samples = await poll_profiles(poller, target(sim, "fw/paloalto"), ["auto"], CATALOG)
    assert [s.profile for s in samples] == ["paloalto-pan-common"]
    got = {v.metric: v.value for v in samples[0].values}
    assert got["session_active"] == float(rec["1.3.6.1.4.1.25461.2.1.2.3.3.0"][1]) == 81258
    assert got["session_utilization"] == 4.0
    assert got["sw_version"] == "8.0.1"
    ups = await poll_profiles(poller, target(sim, "ups/eastpower"), ["auto", "ups-mib"],
                              CATALOG)
    assert [s.profile for s in ups] == ["ups-mib"]  # its sysObjectID selects nothing
