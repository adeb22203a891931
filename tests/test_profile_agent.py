"""The real agent polls device profiles and sends them: snmpsim serving real recordings
(snmpsim-data) → the agent's poll loop → real Mosquitto → a subscriber decoding the wire.

Every profile value on the wire must equal the recording after the MIB's scale (UPS-MIB)
or the row's scale and precision (ENTITY-SENSOR-MIB), computed here with Decimal from the
``.snmprec`` text; sentinels are ``unknown``, never numbers; the UPSes carry their power
state. Recordings made from a real one (copied and changed, served by the same snmpsim):
a UPS on battery with its battery low, a UPS whose agent refuses upsBatteryStatus (the
profile fails, the device does not), and counters that advance and wrap (snmpsim
``numeric``) read through a user profile with its own interval.
"""

from __future__ import annotations

import asyncio
import bz2
import contextlib
import itertools
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import lab
from agent.app import Agent
from agent.config import AgentConfig
from agent.profiles.load import load_catalog
from agent.profiles.model import Metric, Profile
from lab import SimInterface, SnmpSim, write_numeric_recording
from lab.fleet import agent_config
from tests.pipeline import running, wait_for
from tests.test_profile_recordings import SCALE_POWER, UPS_COLUMNS, UPS_GAUGES
from xanet import wire

pytestmark = pytest.mark.integration

DATA = lab.SNMPSIM_DATA_DIR
EAST = DATA / "UPS/eastpower-istars-swv053.snmprec.bz2"
CATALOG = load_catalog()
UPS = "1.3.6.1.2.1.33.1"
SENSOR = "1.3.6.1.2.1.99.1.1.1"
#: Octets per second: the Counter32 wraps every 5.4 s, 1.6e9 octets between two polls of
#: the profile (2 s apart): one wrap at most, so the delta is exact.
IN_RATE = 8e8


def changed(lines: dict[str, str], into: Path) -> Path:
    """The EAST iStars recording with ``lines`` (OID -> ``tag|value``) replaced."""
    text = bz2.decompress(EAST.read_bytes()).decode("latin-1").splitlines()
    out = [f"{oid}|{lines[oid]}" if (oid := line.split("|", 1)[0]) in lines else line
           for line in text]
    into.write_text("\n".join(out) + "\n", encoding="latin-1")
    return into


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSim]:
    """One snmpsim for the module: three real recordings and three made from them."""
    made = tmp_path_factory.mktemp("profile-recordings")
    recordings = {
        "ups-east": EAST,
        "ups-huawei": DATA / "UPS/huawei-gse200m.snmprec.bz2",
        "fw-pa": DATA / "network/firewall/paloalto-pa-5000.snmprec.bz2",
        # the mains gone: output from the battery, 30 min on it, battery low, 12 min left
        "ups-battery": changed({f"{UPS}.4.1.0": "2|5", f"{UPS}.2.2.0": "2|1800",
                                f"{UPS}.2.1.0": "2|3", f"{UPS}.2.3.0": "2|12",
                                f"{UPS}.2.4.0": "2|18"}, made / "battery.snmprec"),
        # an agent that refuses upsBatteryStatus: the profile's GET fails
        "ups-refuses": changed({f"{UPS}.2.1.0": "2:error|op=get,status=authorizationError"},
                               made / "refuses.snmprec"),
        "counters": write_numeric_recording(made / "counters.snmprec", interfaces=[
            SimInterface(1, "ge-0/0/0", in_rate=IN_RATE, speed_bps=10**10)]),
    }
    daemon = SnmpSim(tmp_path_factory.mktemp("profile-agent-sim"), recordings)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def device(sim: SnmpSim, name: str, profiles: list[str]) -> dict[str, Any]:
    return {"id": name, "host": sim.host, "port": sim.port, "profiles": profiles,
            "snmp": {"version": "2c", "community": {"env": f"T_PROFILE_{name.upper()}"}}}


async def run_agent(tmp_path: Path, sim: SnmpSim, mosquitto: lab.Mosquitto,
                    monkeypatch: pytest.MonkeyPatch, devices: dict[str, list[str]],
                    done: Callable[[list[wire.DevicePoll]], bool],
                    **sections: dict[str, Any]) -> tuple[Agent, list[wire.DevicePoll]]:
    """Runs the real agent on ``devices`` (name -> profiles; the name is the community)
    until ``done`` holds for the polls received over MQTT; returns them in order."""
    for name in devices:
        monkeypatch.setenv(f"T_PROFILE_{name.upper()}", name)
    agent = Agent(AgentConfig.model_validate(agent_config(
        agent_id="agent-prof", site="prof-site", commune="00688", province="ha-giang",
        mqtt_port=mosquitto.port, spool_path=tmp_path / "spool.sqlite3", interval_s=1.0,
        devices=[device(sim, name, profiles) for name, profiles in devices.items()],
        polling={"timeout_s": 2.0, "jitter": 0.0}, **sections)))
    got: list[wire.DevicePoll] = []

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if str(message.topic).endswith("/telemetry"):
                decoded = wire.decode(bytes(message.payload), "telemetry")  # type: ignore[arg-type]
                assert isinstance(decoded, wire.Telemetry)
                got.extend(decoded.polls)

    async with aiomqtt.Client(lab.HOST, mosquitto.port, identifier="t-profiles") as sub:
        await sub.subscribe("xanet/v1/ha-giang/00688/prof-site/telemetry", qos=1)
        reader = asyncio.create_task(collect(sub))
        async with running(agent):
            await wait_for(lambda: done(got), 40, "profile polls over MQTT", 0.1)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return agent, got


# ------------------------------------------------------------------ the expectation

def wire_cell(metric: Metric, cell: tuple[str, str] | None,
              multiplier: Decimal) -> dict[str, Any]:
    """What the wire must say of one recorded cell (Decimal arithmetic, MIB units)."""
    if cell is None:
        return {"unknown": "absent"}
    tag, text = cell
    if metric.kind == "string":
        return {"text": text} if tag == "4" else {"unknown": "wrong_type"}
    if metric.kind == "counter":
        return {"counter": int(text)} if tag in ("65", "70") else {"unknown": "wrong_type"}
    assert tag in ("2", "66"), (metric.name, cell)
    raw = int(text)
    if raw in metric.unknown_values:
        return {"unknown": "sentinel"}
    if metric.kind == "enum":
        return {"text": metric.labels[raw], "code": raw}
    return {"value": float(Decimal(raw) * multiplier)}


def expected(profile: Profile, rec: dict[str, tuple[str, str]],
             multiplier: Callable[[str, str], Decimal]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every value the profile must send for recording ``rec``, by (metric, row index)
    (``multiplier(metric, index)``: the unit as the MIB states it, or the row's scale)."""
    out = {}
    for metric in profile.scalars:
        cell = wire_cell(metric, rec.get(metric.oid), multiplier(metric.name, ""))
        out[(metric.name, "")] = {"metric": metric.name, **_unit(metric), **cell}
    for table in profile.tables:
        emitted, by_name = table.emitted(), {c.name: c for c in table.columns}
        rows = {oid[len(c.oid) + 1:] for c in emitted for oid in rec
                if oid.startswith(c.oid + ".")}
        for index in rows:
            tags = {table.index: index}
            for name in table.tags:
                cell = rec.get(f"{by_name[name].oid}.{index}")
                if cell is not None:
                    tags[name] = wire_cell(by_name[name], cell, Decimal(1))["text"]
            for column in emitted:
                cell = wire_cell(column, rec.get(f"{column.oid}.{index}"),
                                 multiplier(column.name, index))
                out[(column.name, index)] = {"metric": column.name, "tags": tags,
                                             **_unit(column), **cell}
    return out


def _unit(metric: Metric) -> dict[str, str]:
    return {"unit": metric.unit} if metric.unit else {}


def ups_unit(metric: str, _: str) -> Decimal:
    units = {**UPS_GAUGES, **UPS_COLUMNS}
    return Decimal(units[metric][1]) if metric in units else Decimal(1)


def sensor_unit(rec: dict[str, tuple[str, str]]) -> Callable[[str, str], Decimal]:
    def unit(_: str, index: str) -> Decimal:
        power = SCALE_POWER[int(rec[f"{SENSOR}.2.{index}"][1])]
        precision = int(rec[f"{SENSOR}.3.{index}"][1])
        return Decimal(1).scaleb(power - max(precision, 0))
    return unit


def sent(reading: wire.ProfileReading) -> dict[tuple[str, str], dict[str, Any]]:
    """A reading's values by (metric, row index), as the wire dumps them."""
    out = {}
    for value in reading.values:
        index = next(iter(value.tags.values())) if value.tags else ""
        out[(value.metric, index)] = value.model_dump(exclude_none=True)
    return out


def first_with(polls: list[wire.DevicePoll], device_id: str,
               profile: str) -> wire.DevicePoll | None:
    return next((p for p in polls if p.device == device_id and any(
        r.profile == profile for r in p.profiles or [])), None)


def reading_of(poll: wire.DevicePoll, profile: str) -> wire.ProfileReading:
    return next(r for r in poll.profiles or [] if r.profile == profile)


# ------------------------------------------------------------------ the tests

DEVICES = {
    "ups-east": ["ups-mib"], "ups-huawei": ["auto", "ups-mib"],
    "fw-pa": ["auto", "entity-sensor"], "ups-battery": ["ups-mib"],
}


async def test_the_agent_sends_every_profile_value_as_recorded_and_the_power_state(
        tmp_path: Path, sim: SnmpSim, mosquitto: lab.Mosquitto,
        monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = [("ups-east", "ups-mib"), ("ups-huawei", "ups-mib"), ("fw-pa", "entity-sensor"),
              ("fw-pa", "paloalto-pan-common"), ("ups-battery", "ups-mib")]
    _, polls = await run_agent(tmp_path, sim, mosquitto, monkeypatch, DEVICES,
                               lambda got: all(first_with(got, d, p) for d, p in wanted))
    checked = 0
    per_device: dict[str, int] = {}
    for name, community in (("ups-east", "ups-east"), ("ups-huawei", "ups-huawei"),
                            ("ups-battery", "ups-battery")):
        poll = first_with(polls, name, "ups-mib")
        assert poll is not None and poll.reachable and poll.cause is None
        reading = reading_of(poll, "ups-mib")
        want = expected(CATALOG["ups-mib"], lab.snmprec_values(sim.recording_path(community)),
                        ups_unit)
        assert sent(reading) == want
        assert all(v.value is None for v in reading.values if v.unknown is not None)
        checked += len(want)
        per_device[name] = len(want)
    fw = first_with(polls, "fw-pa", "entity-sensor")
    assert fw is not None and fw.power is None  # a firewall maps no power
    rec = lab.snmprec_values(sim.recording_path("fw-pa"))
    sensors = sent(reading_of(fw, "entity-sensor"))
    assert sensors == expected(CATALOG["entity-sensor"], rec, sensor_unit(rec))
    assert len([k for k in sensors if k[0] == "sensor_value"]) == 14
    pan = first_with(polls, "fw-pa", "paloalto-pan-common")  # chosen by "auto"
    assert pan is not None
    assert sent(reading_of(pan, "paloalto-pan-common")) == expected(
        CATALOG["paloalto-pan-common"], rec, lambda *_: Decimal(1))
    checked += len(sensors) + len(reading_of(pan, "paloalto-pan-common").values)
    per_device["fw-pa"] = len(sensors) + len(reading_of(pan, "paloalto-pan-common").values)
    print(f"profile values on the wire checked against the recordings: {per_device}")
    assert checked >= 100

    power = {name: poll.power for name in ("ups-east", "ups-huawei", "ups-battery")
             if (poll := first_with(polls, name, "ups-mib")) is not None}
    assert power == {
        "ups-east": wire.PowerReading(state="mains", profile="ups-mib", minutes_remaining=0,
                                      charge_pct=100, seconds_on_battery=0),
        # the Huawei answers -1 for minutes and charge remaining: unknown, never -1
        "ups-huawei": wire.PowerReading(state="mains", profile="ups-mib",
                                        seconds_on_battery=0),
        "ups-battery": wire.PowerReading(state="battery_low", profile="ups-mib",
                                         minutes_remaining=12, charge_pct=18,
                                         seconds_on_battery=1800),
    }


PORT_PROFILE = """name = "port-octets"
description = "test: an interface's octet counters read as a profile"
interval_s = 2

[[tables]]
name = "port"
index = "ifindex"
tags = ["port"]

[[tables.columns]]
name = "port"
oid = "1.3.6.1.2.1.31.1.1.1.1"
kind = "string"

[[tables.columns]]
name = "in_octets"
oid = "1.3.6.1.2.1.2.2.1.10"
kind = "counter"
unit = "B"

[[tables.columns]]
name = "in_octets_hc"
oid = "1.3.6.1.2.1.31.1.1.1.6"
kind = "counter"
unit = "B"
"""


async def test_counters_rates_intervals_and_a_failing_profile_through_the_agent(
        tmp_path: Path, sim: SnmpSim, mosquitto: lab.Mosquitto,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "port-octets.toml").write_text(PORT_PROFILE)
    caplog.set_level("INFO", logger="xanet.agent")

    def counter32(poll: wire.DevicePoll) -> wire.ProfileValue:
        return next(v for v in (poll.profiles or [])[0].values if v.metric == "in_octets")

    def enough(got: list[wire.DevicePoll]) -> bool:
        read = [counter32(p) for p in got if p.device == "counters" and p.profiles]
        wrapped = any((b.counter or 0) < (a.counter or 0) for a, b in itertools.pairwise(read))
        refused = [p for p in got if p.device == "ups-refuses"]
        return len(read) >= 3 and wrapped and len(refused) >= 3

    agent, polls = await run_agent(
        tmp_path, sim, mosquitto, monkeypatch,
        {"counters": ["port-octets", "if-mib"], "ups-refuses": ["ups-mib"]}, enough,
        profiles={"dir": str(profiles)})

    counted = [p for p in polls if p.device == "counters"]
    with_profile = [i for i, p in enumerate(counted) if p.profiles]
    assert all(b - a == 2 for a, b in itertools.pairwise(with_profile)), \
        with_profile  # its own 2 s interval: every other poll of the 1 s device
    # if-mib is the interface path's: never walked as a profile
    assert {tuple(r.profile for r in p.profiles or []) for p in counted} == {(), ("port-octets",)}
    notes, rates = [], []
    for p in counted:
        if p.profiles:
            values = {v.metric: v for v in p.profiles[0].values}
            assert values["in_octets"].tags == {"ifindex": "1", "port": "ge-0/0/0"}
            notes.append(values["in_octets"].rate_note)
            rates += [v.rate for v in values.values() if v.rate is not None]
    assert notes[0] == "first_poll" and notes[1:] == [None] * (len(notes) - 1)
    assert len(rates) >= 4  # both counters, two intervals at least, one across the wrap
    assert all(r == pytest.approx(IN_RATE, rel=0.02) for r in rates), rates

    refused = [p for p in polls if p.device == "ups-refuses"]
    assert all(p.reachable and p.cause is None for p in refused)  # the device stands
    for p in refused:
        (reading,) = p.profiles or []
        assert (reading.profile, reading.cause, reading.values) == ("ups-mib", "access", [])
        assert p.power == wire.PowerReading(state="unknown", profile="ups-mib")
    warnings = [r.getMessage() for r in caplog.records if "profile ups-mib failed" in
                r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(
        "device ups-refuses (site prof-site): profile ups-mib failed (cause access)")
    assert agent.health.profile_failures >= 3
    assert agent.health.monitoring_errors == 1
