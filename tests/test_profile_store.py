"""Profile values and power readings through the real pipeline: Mosquitto -> collector ->
InfluxDB 1.x, read back with InfluxQL exactly as sent (values, tags, units; a sentinel as
``unknown``, never a number), one type per field as InfluxDB stores it.

The telemetry is what an agent sends for the EAST iStars UPS on battery (40 minutes left,
output source battery(5), its battery voltage the sentinel -1) and the 14 sensors of the
Palo Alto PA-5050 recording, named by entPhysicalName (tests/profiledata.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

import lab
from lab.fleet import collector_config
from tests.pipeline import running, start_collector, wait_for
from tests.profiledata import sensor_poll, ups_poll
from xanet import topics, wire

PROVINCE, COMMUNE, SITE = "ha-giang", "00688", "lungcu-bts-01"


def _key(row: dict[str, Any]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    tags = tuple(sorted((k[2:], v) for k, v in row.items() if k.startswith("t_") and v))
    return row["profile"], row["metric"], tags


async def test_profile_values_and_power_land_as_sent(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1, db: str,
) -> None:
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=f"prof-{db}"))
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    ups = ups_poll("ups-1", ts, minutes=40.0, on_battery=True)
    failed = wire.ProfileReading(profile="host-resources", error="no response",
                                 cause="timeout")
    fw = sensor_poll("fw-1", ts).model_copy(update={"profiles": [
        *(sensor_poll("fw-1", ts).profiles or []), failed]})
    msg = wire.Telemetry(agent="agent-prof", site=SITE, seq=1, polls=[ups, fw])
    topic = topics.build(PROVINCE, COMMUNE, SITE, "telemetry")
    sent = [(r.profile, v, p.device) for p in msg.polls for r in p.profiles or []
            for v in r.values]

    async with running(collector):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            await client.publish(topic, wire.encode(msg), qos=1)
        await wait_for(lambda: len(influxdb.query('SELECT * FROM "profile"', db=db))
                       >= len(sent) + 1, 30, "every profile value in InfluxDB")
    assert collector.stats()["rejected"] == 0

    rows = influxdb.query('SELECT * FROM "profile" WHERE "metric" != \'\'', db=db)
    assert len(rows) == len(sent) == 11 + 2 * 14
    by_key = {(r["device"], *_key(r)): r for r in rows}
    for profile, v, device in sent:
        r = by_key[(device, profile, v.metric, tuple(sorted((v.tags or {}).items())))]
        assert (r["province"], r["commune"], r["site"]) == (PROVINCE, COMMUNE, SITE)
        assert r["time"] == int(ts.timestamp() * 1e9)  # epoch ns
        assert (r.get("unit") or None) == (v.unit or None), (v, r)
        for name in ("value", "counter", "rate", "rate_note", "text", "code", "unknown"):
            assert r.get(name) == getattr(v, name), (name, v, r)

    # The UPS as the NOC reads it: 40 minutes left, on battery(5); the battery voltage the
    # device did not know is unknown (sentinel), never -1 or 0.
    def one(q: str) -> dict[str, Any]:
        (row,) = influxdb.query(q, db=db)
        return row

    ups_q = 'SELECT * FROM "profile" WHERE "device" = \'ups-1\' AND "metric" = '
    assert one(ups_q + "'minutes_remaining'")["value"] == 40.0
    source = one(ups_q + "'output_source'")
    assert (source["text"], source["code"]) == ("battery", 5)
    volts = one(ups_q + "'battery_voltage'")
    assert volts["unknown"] == "sentinel" and volts["value"] is None
    lines = influxdb.query(ups_q + "'input_voltage' GROUP BY \"t_line\"", db=db)
    assert sorted((r["t_line"], r["value"]) for r in lines) == [
        ("1.0", 0.0), ("2.0", 0.0), ("3.0", 0.0)]
    # The firewall's temperatures, by name: four in °C (23, 34, 26, 24), ten fans in rpm.
    temps = influxdb.query('SELECT "value" FROM "profile" WHERE "metric" = \'sensor_value\' '
                           "AND \"t_sensor_type\" = 'celsius' GROUP BY \"t_entity\"", db=db)
    assert {r["t_entity"]: r["value"] for r in temps} == {
        "Temperature @ 10G Phys [U171]": 23.0, "Temperature @ Jaguar [U172]": 34.0,
        "Temperature @ Tiger [U173]": 26.0, "Temperature @ Dune [U174]": 24.0}
    # The failed profile: one point of its own, without metric.
    failure = one('SELECT "error", "cause" FROM "profile" WHERE "profile" = \'host-resources\'')
    assert (failure["error"], failure["cause"]) == ("no response", "timeout")

    power = one('SELECT * FROM "power"')
    assert (power["device"], power["state"], power["code"], power["minutes_remaining"],
            power["charge_pct"], power["seconds_on_battery"], power["profile"]) == (
        "ups-1", "on_battery", 1, 40.0, 100.0, 600, "ups-mib")

    types = {r["fieldKey"]: r["fieldType"]
             for r in influxdb.query('SHOW FIELD KEYS FROM "profile"', db=db)}
    assert types == {"value": "float", "counter": "integer", "rate_note": "string",
                     "text": "string", "code": "integer", "unknown": "string",
                     "error": "string", "cause": "string"}
    types = {r["fieldKey"]: r["fieldType"]
             for r in influxdb.query('SHOW FIELD KEYS FROM "power"', db=db)}
    assert types == {"state": "string", "code": "integer", "minutes_remaining": "float",
                     "charge_pct": "float", "seconds_on_battery": "integer",
                     "profile": "string"}
