"""Every measurement's lines: byte for byte what the writers wrote before the schema had one
home (GOLDEN: produced by the collector at a0f8b49 from the same inputs), and made only of
the tags and fields collector/schema.py declares."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collector import readback, schema
from collector.alerting import outage_lines
from collector.availability import (
    ElementPoint,
    Emission,
    Rollup,
    ServiceKey,
    ServicePoint,
    Topology,
)
from collector.facts import emission_lines
from collector.maintenance import Window, to_line
from collector.outages import Alert, AlertEvent
from collector.unmapped import UnmappedLog
from tests.factories import poll, telemetry
from tests.profiledata import power_readings, profile_readings
from xanet import topics, wire
from xanet.inventory import load_inventory

ROOT = Path(__file__).resolve().parent.parent
TS = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
WHERE = topics.parse("xanet/v1/08/02269/hub-thuong-lam/telemetry")

GOLDEN = [  # lines as InfluxDB receives them, one a line
    'device,agent=agent-a,commune=02269,device=rtr1,province=08,site=site-a up=1i,rtt_ms=3.5,uptime_s=1234.56,seq=7i 1795662000000',  # noqa: E501
    'interface,commune=02269,device=rtr1,ifindex=1,ifname=ge-0/0/1,province=08,site=site-a oper=1i,admin=1i,speed_bps=1000000000i,hc=1i,in_octets=1000i,out_octets=2000i 1795662000000',  # noqa: E501
    'interface,commune=02269,device=rtr1,ifindex=2,ifname=ge-0/0/2,province=08,site=site-a oper=1i,admin=1i,speed_bps=1000000000i,hc=1i,in_octets=2000i,out_octets=4000i 1795662000000',  # noqa: E501
    'device,agent=agent-a,commune=02269,device=d-2,province=08,site=site-a up=0i,seq=7i,error="no \\"SNMP\\"",cause="timeout",ping_sent=4i,ping_received=3i,ping_loss_pct=25.0,ping_rtt_ms=12.5 1795662000000',  # noqa: E501
    'agent_status,agent=a,commune=02269,province=08,site=hub-thuong-lam online=1i,spool_depth=3i,spool_dropped=1i,spool_oldest_age_s=2.5,poll_overruns=0i,devices=4i,refused=0i,quarantined=0i,polls_dropped=0i,monitoring_errors=0i,instance="i-1" 1795662000000',  # noqa: E501
    'agent_status,agent=a,commune=02269,province=08,site=hub-thuong-lam online=0i,reason="lost" 1795662000000',  # noqa: E501
    'element_state,commune=02269,device=rtr-1,element=hub-thuong-lam/rtr-1/ge-0/0/0,interface=ge-0/0/0,province=08,site=hub-thuong-lam state="up",code=1i 1795662000000',  # noqa: E501
    'element_state,commune=02269,device=olt-1,element=hub-thuong-lam/olt-1,province=08,site=hub-thuong-lam state="unknown",code=-1i,reason="stale" 1795662001000',  # noqa: E501
    'element_state,device=dev,element=nosite/dev/if,interface=if,province=08,site=nosite state="down",code=0i 1795662000000',  # noqa: E501
    'service_state,commune=02269,province=08,service=fibre state="maintenance",code=-2i 1795662000000',  # noqa: E501
    'availability,commune=02269,province=08,service=fibre up_s=200.0,down_s=50.0,unknown_s=50.0,maintenance_s=0.0,bucket_s=300.0,availability_pct=80.0,coverage_pct=83.33333333333333 1795662000000',  # noqa: E501
    'availability,commune=02266,province=08,service=mobile up_s=0.0,down_s=0.0,unknown_s=0.0,maintenance_s=300.0,bucket_s=300.0 1795662000000',  # noqa: E501
    'outage,commune=02269,device=rtr1,kind=device_down,province=08,site=hub-thuong-lam open=1i,children="s1,s2",summary="Down \\"x\\"",maintenance=true 1795662000000',  # noqa: E501
    'outage,commune=02269,device=rtr1,kind=device_down,province=08,site=hub-thuong-lam open=1i,children="s1,s2",summary="Down \\"x\\"",maintenance=true 1795662000000',  # noqa: E501
    'outage,commune=02269,device=rtr1,kind=device_down,province=08,site=hub-thuong-lam open=0i,children="s1,s2",summary="Down \\"x\\"",maintenance=true 1795662060000',  # noqa: E501
    'maintenance,province=08,scope=device,target=hub-thuong-lam/rtr1 start_ms=1795662000000i,end_ms=1795665600000i,reason="swap",who="ops",silence_id="sil-1",ended=true 1795662000000',  # noqa: E501
    'unmapped_device,collector=core-1,device=x\\ y,site=hub polls=3i 1234',
    'collector_stats,collector=core-1 received=1i,rejected_invalid=2i 1234',
]
#: Issue 17's profile values and power readings (new: these lines have no past to match).
GOLDEN_PROFILES = [
    'device,agent=agent-a,commune=02269,device=ups-1,province=08,site=site-a up=1i,seq=8i 1795662000000',  # noqa: E501
    'profile,commune=02269,device=ups-1,profile=ups-mib,province=08,site=site-a warnings="output_load: 300 outside 0..200; dropped" 1795662000000',  # noqa: E501
    'profile,commune=02269,device=ups-1,metric=minutes_remaining,profile=ups-mib,province=08,site=site-a,unit=min value=40.0 1795662000000',  # noqa: E501
    'profile,commune=02269,device=ups-1,metric=battery_voltage,profile=ups-mib,province=08,site=site-a,unit=V unknown="sentinel" 1795662000000',  # noqa: E501
    'profile,commune=02269,device=ups-1,metric=output_source,profile=ups-mib,province=08,site=site-a text="battery",code=5i 1795662000000',  # noqa: E501
    'profile,commune=02269,device=ups-1,metric=input_line_bads,profile=ups-mib,province=08,site=site-a counter=7i,rate=0.5 1795662000000',  # noqa: E501
    'profile,commune=02269,device=ups-1,metric=input_voltage,profile=ups-mib,province=08,site=site-a,t_line=1.0,unit=V value=0.0 1795662000000',  # noqa: E501
    'profile,commune=02269,device=ups-1,metric=sensor_value,profile=entity-sensor,province=08,site=site-a,t_entity=Temperature\\ @\\ 10G\\ Phys\\ [U171],t_entity_index=12,t_sensor_type=celsius value=23.0 1795662000000',  # noqa: E501
    'profile,commune=02269,device=ups-1,profile=host-resources,province=08,site=site-a error="no response",cause="timeout" 1795662000000',  # noqa: E501
    'power,commune=02269,device=ups-1,province=08,site=site-a state="on_battery",code=1i,minutes_remaining=40.0,charge_pct=100.0,seconds_on_battery=600i,profile="ups-mib" 1795662000000',  # noqa: E501
]


def _profile_lines() -> list[str]:
    """A UPS on battery (values, a sentinel, a label, a counter, a table row), a sensor with
    its name, a profile that failed."""
    msg = wire.Telemetry(agent="agent-a", site="site-a", seq=8, polls=[wire.DevicePoll(
        device="ups-1", ts=TS, reachable=True, profiles=[
            wire.ProfileReading(profile="ups-mib", values=[
                wire.ProfileValue(metric="minutes_remaining", unit="min", value=40),
                wire.ProfileValue(metric="battery_voltage", unit="V", unknown="sentinel"),
                wire.ProfileValue(metric="output_source", text="battery", code=5),
                wire.ProfileValue(metric="input_line_bads", counter=7, rate=0.5),
                wire.ProfileValue(metric="input_voltage", unit="V", tags={"line": "1.0"},
                                  value=0.0)],
                warnings=["output_load: 300 outside 0..200; dropped"]),
            wire.ProfileReading(profile="entity-sensor", values=[wire.ProfileValue(
                metric="sensor_value", value=23.0, tags={
                    "entity_index": "12", "entity": "Temperature @ 10G Phys [U171]",
                    "sensor_type": "celsius"})]),
            wire.ProfileReading(profile="host-resources", error="no response",
                                cause="timeout")],
        power=wire.PowerReading(state="on_battery", profile="ups-mib", minutes_remaining=40,
                                charge_pct=100, seconds_on_battery=600))])
    return schema.telemetry_lines(WHERE, msg)


def _lines() -> list[str]:
    """One or more lines of every measurement, through the writers' own functions."""
    out: list[str] = []
    msg = telemetry(seq=7, polls=[poll("rtr1", ts=TS, n_if=2), wire.DevicePoll(
        device="d-2", ts=TS, reachable=False, error='no "SNMP"', cause="timeout",
        ping=wire.PingResult(sent=4, received=3, rtt_ms=12.5))])
    out += schema.telemetry_lines(WHERE, msg)
    h = wire.AgentHealth(spool_depth=3, spool_dropped=1, spool_oldest_age_s=2.5,
                         poll_overruns=0, devices=4)
    out.append(schema.status_line(WHERE, wire.Status(
        agent="a", site="hub-thuong-lam", state="online", ts=TS, health=h, instance="i-1"), TS))
    out.append(schema.status_line(WHERE, wire.Status(
        agent="a", site="hub-thuong-lam", state="offline", reason="lost"), TS))
    inv = load_inventory(ROOT / "config" / "inventory.example.toml")
    el = [e.element for e in Topology.from_inventory(inv).elements][:3]
    t = TS.timestamp()
    fibre, mobile = ServiceKey("02269", "fibre"), ServiceKey("02266", "mobile")
    out += emission_lines(Emission(
        elements=[ElementPoint(el[0], t, "up"), ElementPoint(el[-1], t + 1, "unknown", "stale"),
                  ElementPoint("nosite/dev/if", t, "down")],
        services=[ServicePoint(fibre, t, "maintenance")],
        rollups=[Rollup(fibre, t, 300.0, 200.0, 50.0, 50.0, 0.0),
                 Rollup(mobile, t, 300.0, 0.0, 0.0, 0.0, 300.0)]), inv)
    a = Alert(unit="site:hub", kind="device_down",
              labels={"alertname": "X", "commune": "02269", "site": "hub-thuong-lam",
                      "device": "rtr1", "service": ""},
              annotations={"summary_en": 'Down "x"'}, starts_at=t, ends_at=t + 60,
              children=("s1", "s2"), maintenance=True)
    out += outage_lines([AlertEvent("firing", a), AlertEvent("resolved", a)], "08")
    out.append(to_line(Window("08", "device", "hub-thuong-lam/rtr1", t, t + 3600, "swap", "ops",
                              "sil-1", True)))
    out += UnmappedLog().lines({("hub", "x y"): 3}, "core-1", 1234)
    ln = schema.collector_stats_line("core-1", {"received": 1, "rejected_invalid": 2}, 1234)
    assert ln is not None
    out.append(ln)
    return out + _profile_lines()


def test_every_measurement_is_written_as_before() -> None:
    assert _lines() == GOLDEN + GOLDEN_PROFILES


def _declared(names: tuple[str, ...], name: str) -> bool:
    """``name`` is one of ``names``, or of a family (``t_{tag}``, ``rejected_{reason}``)."""
    return any(re.fullmatch(re.sub(r"\{[a-z_]+\}", "[a-z0-9_]+", d), name) for d in names)


def _checkpoint_lines() -> list[str]:
    return [schema.checkpoint_line("part-1", 0, 2, 7, "ab" * 32, "eJzLSM3JyQcABiwCFQ==",
                                   "core-1", 20, 3_600_000)]


def test_checkpoint_line() -> None:
    assert _checkpoint_lines() == [
        'collector_checkpoint,chunk=0,partition=part-1 generation=7i,count=2i,'
        f'sha="{"ab" * 32}",data="eJzLSM3JyQcABiwCFQ==",collector="core-1",bytes=20i '
        '3600000']


def test_lines_carry_only_the_declared_tags_and_fields() -> None:
    by_name = {m.name: m for m in schema.MEASUREMENTS}
    seen = set()
    for ln in _lines() + _checkpoint_lines():
        head, rest = re.split(r"(?<!\\) ", ln, maxsplit=1)
        fields = rest.rsplit(" ", 1)[0]
        measurement, *tags = re.split(r"(?<!\\),", head)
        m = by_name[measurement]
        seen.add(measurement)
        for t in tags:
            assert _declared(m.tags, t.split("=", 1)[0]), (measurement, t)
        for f in re.findall(r'(?:^|,)([a-z_]+)=', re.sub(r'"(?:[^"\\]|\\.)*"', '""', fields)):
            assert _declared(m.fields, f), (measurement, f)
    assert seen == set(by_name), "a measurement without a representative line"


class _RecordingDb:
    """Answers every query with no rows, and keeps the queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def rows(self, q: str) -> list[dict[str, object]]:
        self.queries.append(q)
        return []


def test_the_report_reads_only_names_the_schema_declares() -> None:
    """collector/readback.py's queries, as sent to InfluxDB: the measurements and names of
    collector/schema.py only."""
    db = _RecordingDb()
    start, end = TS, TS.replace(day=27)
    filters = readback.Filters(province="08", commune="02269", service="fibre", site="s")
    readback.service_points(db, start, end, filters)  # type: ignore[arg-type]  # a fake
    readback.element_timelines(db, start, end, filters)  # type: ignore[arg-type]  # a fake
    readback.alerted_periods(db, start, end, filters)  # type: ignore[arg-type]  # a fake
    readback.last_write(db)  # type: ignore[arg-type]  # a fake
    by_name = {m.name: m for m in schema.MEASUREMENTS}
    read = set()
    for q in db.queries:
        (measurement,) = re.findall(r'FROM "([^"]+)"', q)
        read.add(measurement)
        m = by_name[measurement]
        names = set(re.findall(r'"([^"]+)"', q)) - {measurement}
        assert names <= {*m.tags, *m.fields}, (q, names - {*m.tags, *m.fields})
    assert read == {"service_state", "element_state", "outage", "collector_stats"}


#: The one InfluxDB type of each field of the profile and power measurements.
PROFILE_FIELD_TYPES = {
    "profile": {"value": "float", "counter": "integer", "rate": "float", "rate_note": "string",
                "text": "string", "code": "integer", "unknown": "string", "error": "string",
                "cause": "string", "warnings": "string"},
    "power": {"state": "string", "code": "integer", "minutes_remaining": "float",
              "charge_pct": "float", "seconds_on_battery": "integer", "profile": "string"},
}
_FIELD = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^,]+)(?:,|$)')


def _field_type(text: str) -> str:
    if text.startswith('"'):
        return "string"
    if text in ("true", "false"):
        return "boolean"
    return "integer" if text.endswith("i") else "float"


def test_profile_field_types_are_the_schemas() -> None:
    assert {m: set(t) for m, t in PROFILE_FIELD_TYPES.items()} == {
        schema.PROFILE.name: set(schema.PROFILE.fields),
        schema.POWER.name: set(schema.POWER.fields)}


@settings(max_examples=300)
@given(st.lists(st.builds(lambda p, pw: poll("d", ts=TS, n_if=0, profiles=p, power=pw),
                          st.lists(profile_readings(), max_size=3),
                          st.none() | power_readings), min_size=1, max_size=3))
def test_a_profile_field_has_one_type_whatever_the_agent_sends(
        polls: list[wire.DevicePoll]) -> None:
    """No field-type conflict is possible in InfluxDB: every ``profile`` and ``power`` field
    key is written with one type only (a gauge sent as the JSON integer 40 is the float
    40.0; a counter too large for InfluxDB is left out, never written as a float)."""
    for ln in schema.telemetry_lines(WHERE, telemetry(polls=polls)):
        head, rest = re.split(r"(?<!\\) ", ln, maxsplit=1)
        measurement = head.split(",", 1)[0]
        if measurement not in PROFILE_FIELD_TYPES:
            continue
        fields = rest.rsplit(" ", 1)[0]
        pairs = _FIELD.findall(fields)
        assert ",".join(f"{k}={v}" for k, v in pairs) == fields, ln
        for key, text in pairs:
            assert _field_type(text) == PROFILE_FIELD_TYPES[measurement][key], (key, text, ln)
