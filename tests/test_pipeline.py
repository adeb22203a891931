"""The spine end to end on real components:
snmpsim (real router recordings) + net-snmp snmpd (v2c and v3 authPriv)
→ agent → Mosquitto → collector → InfluxDB 1.x, read back with InfluxQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import lab
from lab.fleet import agent_config, collector_config, to_toml
from lab.programs import Subprogram
from tests.factories import poll, telemetry
from tests.pipeline import running, start_agent, start_collector, wait_for
from xanet import topics, wire

PROVINCE, COMMUNE, SITE = "ha-giang", "00688", "lungcu-hub"

IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
IF_HC_IN = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT = "1.3.6.1.2.1.31.1.1.1.10"
IF_IN = "1.3.6.1.2.1.2.2.1.10"
IF_OUT = "1.3.6.1.2.1.2.2.1.16"


def column(values: dict[str, tuple[str, str]], col: str) -> dict[int, str]:
    prefix = col + "."
    return {int(oid[len(prefix):]): v for oid, (_, v) in values.items()
            if oid.startswith(prefix) and oid[len(prefix):].isdigit()}


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch, snmpd: lab.Snmpd) -> None:
    monkeypatch.setenv("T_SIM_IFX", lab.COMMUNITY_IFX)
    monkeypatch.setenv("T_SIM_IFTABLE", lab.COMMUNITY_IFTABLE_ONLY)
    monkeypatch.setenv("T_SNMPD_COMMUNITY", snmpd.community)
    _user, auth, priv = snmpd.v3
    monkeypatch.setenv("T_SNMPD_AUTH", auth)
    monkeypatch.setenv("T_SNMPD_PRIV", priv)


def fleet(snmpsim: lab.SnmpSim, snmpd: lab.Snmpd) -> list[dict[str, Any]]:
    user = snmpd.v3[0]
    return [
        {"id": "vyatta", "host": "127.0.0.1", "port": snmpsim.port,
         "snmp": {"version": "2c", "community": {"env": "T_SIM_IFX"}}},
        {"id": "ubnt-m5", "host": "127.0.0.1", "port": snmpsim.port,
         "snmp": {"version": "2c", "community": {"env": "T_SIM_IFTABLE"}}},
        {"id": "linux-v2c", "host": "127.0.0.1", "port": snmpd.port,
         "snmp": {"version": "2c", "community": {"env": "T_SNMPD_COMMUNITY"}}},
        {"id": "linux-v3", "host": "127.0.0.1", "port": snmpd.port,
         "snmp": {"version": "3", "user": user, "auth_protocol": "SHA",
                  "auth_key": {"env": "T_SNMPD_AUTH"}, "priv_protocol": "AES",
                  "priv_key": {"env": "T_SNMPD_PRIV"}}},
        # Nothing listens here: the agent must report it as unreachable.
        {"id": "dead-box", "host": "127.0.0.1", "port": lab.free_udp_port(),
         "snmp": {"version": "2c", "community": {"env": "T_SIM_IFX"}}},
    ]


async def test_polls_reach_influxdb_with_recorded_values(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1,
    snmpsim: lab.SnmpSim, snmpd: lab.Snmpd, db: str, secrets_env: None,
) -> None:
    agent = start_agent(agent_config(
        agent_id="agent-1", site=SITE, commune=COMMUNE, province=PROVINCE,
        mqtt_port=mosquitto.port, devices=fleet(snmpsim, snmpd),
        spool_path=tmp_path / "spool.sqlite3", interval_s=2.0))
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=f"c-{db}"))

    def devices_seen() -> set[str]:
        rows = influxdb.query('SELECT count("up") FROM "device" GROUP BY "device"', db=db)
        return {r["device"] for r in rows if r["count"] >= 2}

    async with running(collector, agent):
        await wait_for(lambda: {"vyatta", "ubnt-m5", "linux-v2c", "linux-v3", "dead-box"}
                       <= devices_seen(), 60, "two polls of every device in InfluxDB")

    # Reachability, and the identity tags of every device point.
    rows = influxdb.query('SELECT * FROM "device"', db=db)
    for r in rows:
        assert (r["province"], r["commune"], r["site"], r["agent"]) == (
            PROVINCE, COMMUNE, SITE, "agent-1")
        assert r["up"] == (0 if r["device"] == "dead-box" else 1), r
    assert any(r["device"] == "dead-box" and "no response" in (r.get("error") or "")
               for r in rows)

    # Per interface: ifName, oper status and the 64-bit counters equal the recording.
    rec = lab.snmprec_values(lab.RECORDING_IFX)
    names, opers = column(rec, IF_NAME), column(rec, IF_OPER)
    hc_in, hc_out = column(rec, IF_HC_IN), column(rec, IF_HC_OUT)
    got = influxdb.query('SELECT * FROM "interface" WHERE "device" = \'vyatta\'', db=db)
    assert {int(r["ifindex"]) for r in got} == set(names)
    for r in got:
        i = int(r["ifindex"])
        assert (r["province"], r["commune"], r["site"]) == (PROVINCE, COMMUNE, SITE)
        assert r["ifname"] == names[i]
        assert r["oper"] == int(opers[i])
        assert r["hc"] == 1
        assert r["in_octets"] == int(hc_in[i]) and r["out_octets"] == int(hc_out[i])

    # A device without ifXTable: 32-bit counters, names from ifDescr.
    rec = lab.snmprec_values(lab.RECORDING_IFTABLE_ONLY)
    descr, ins, outs = column(rec, IF_DESCR), column(rec, IF_IN), column(rec, IF_OUT)
    got = influxdb.query('SELECT * FROM "interface" WHERE "device" = \'ubnt-m5\'', db=db)
    assert {int(r["ifindex"]) for r in got} == set(descr)
    for r in got:
        i = int(r["ifindex"])
        assert r["ifname"] == descr[i] and r["hc"] == 0
        assert r["in_octets"] == int(ins[i]) and r["out_octets"] == int(outs[i])

    # snmpd over v3 authPriv sees the same interfaces as over v2c.
    v2 = influxdb.query('SELECT * FROM "interface" WHERE "device" = \'linux-v2c\'', db=db)
    v3 = influxdb.query('SELECT * FROM "interface" WHERE "device" = \'linux-v3\'', db=db)
    assert {r["ifname"] for r in v2} == {r["ifname"] for r in v3} and "lo" in {
        r["ifname"] for r in v3}

    # The agent said it was online; the collector stored it.
    # (Other tests' agents left retained statuses on the shared broker: filter by agent.)
    status = influxdb.query('SELECT * FROM "agent_status" WHERE "agent" = \'agent-1\'', db=db)
    assert status and status[0]["online"] == 1 and status[0]["site"] == SITE
    assert status[-1]["online"] == 0 and status[-1]["reason"] == "agent stopped"
    assert collector.stats()["rejected"] == 0


async def test_v2_write_path_to_victoriametrics(
    tmp_path: Path, mosquitto: lab.Mosquitto, victoria: lab.VictoriaMetrics,
) -> None:
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=victoria.url, dead_letter_dir=tmp_path / "dead",
        collector_id="v2-test",
        influx={"api": "v2", "org": "example-org", "bucket": "xanet", "token": {"env": "HOME"},
                "database": None}))
    site = "v2-site"
    msg = telemetry(seq=1, site=site, agent="agent-v2", polls=[poll("v2-router")])
    topic = topics.build(PROVINCE, COMMUNE, site, "telemetry")
    async with running(collector):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            await client.publish(topic, wire.encode(msg), qos=1)

        def exported() -> list[dict[str, Any]]:
            victoria.flush()
            return victoria.export('{__name__="interface_in_octets", device="v2-router"}')

        series = await wait_for(exported, 30, "interface_in_octets in VictoriaMetrics")
    by_if = {s["metric"]["ifindex"]: s for s in series}
    assert set(by_if) == {"1", "2"}
    for ifindex, s in by_if.items():
        assert s["metric"]["site"] == site and s["metric"]["commune"] == COMMUNE
        assert s["values"] == [1000 * int(ifindex)]
        assert s["timestamps"] == [int(msg.polls[0].ts.timestamp() * 1000)]


BAD_PAYLOADS: list[tuple[str, bytes]] = [
    ("not_json", b"\x00\x01garbage"),
    ("not_object", b'"just a string"'),
    ("unknown_version", json.dumps({"v": 99, "agent": "x"}).encode()),
    ("invalid", json.dumps({"v": 1, "agent": "agent-b", "site": "bad-site", "seq": "x",
                            "polls": []}).encode()),
    ("invalid", wire.encode(telemetry(site="bad-site")).replace(b'"reachable"',
                                                                 b'"extra":1,"reachable"')),
    ("too_large", b"{" + b" " * 300_000 + b"}"),
]


async def test_bad_payloads_counted_good_ones_all_land(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1, db: str,
) -> None:
    dead = tmp_path / "dead"
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db, dead_letter_dir=dead,
        collector_id=f"bad-{db}"))
    site = "bad-site"
    topic = topics.build(PROVINCE, COMMUNE, site, "telemetry")
    wrong_site_topic = topics.build(PROVINCE, COMMUNE, "other-site", "telemetry")
    good = 60
    expected: dict[str, int] = {}
    async with running(collector):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            for seq in range(good):
                await client.publish(topic, wire.encode(
                    telemetry(seq=seq, site=site, agent="agent-b",
                              polls=[poll(f"dev-{seq % 5}", n_if=1)])), qos=1)
                reason, payload = BAD_PAYLOADS[seq % len(BAD_PAYLOADS)]
                await client.publish(topic, payload, qos=1)
                expected[reason] = expected.get(reason, 0) + 1
                if seq % 10 == 0:
                    await client.publish(wrong_site_topic, wire.encode(
                        telemetry(seq=10_000 + seq, site=site, agent="agent-b")), qos=1)
                    expected["topic_mismatch"] = expected.get("topic_mismatch", 0) + 1
                    await client.publish("xanet/v1/ha-giang/00688/bad site/telemetry",
                                         wire.encode(telemetry(site=site)), qos=1)
                    expected["bad_topic"] = expected.get("bad_topic", 0) + 1
        total = good + sum(expected.values())
        await wait_for(lambda: collector.received >= total, 30, "all messages received")

        def stored() -> int:
            rows = influxdb.query('SELECT count("seq") FROM "device"', db=db)
            return int(rows[0]["count"]) if rows else 0

        await wait_for(lambda: stored() == good, 30, f"{good} good polls in InfluxDB")
    stats = collector.stats()
    for reason, n in expected.items():
        assert stats.get(f"rejected_{reason}") == n, (reason, stats)
    assert stats["polls"] == good  # (accepted also counts retained status messages)
    seqs = {r["seq"] for r in influxdb.query('SELECT "seq" FROM "device"', db=db)}
    assert seqs == set(range(good))
    records = collector.dead_letter.records()
    assert len(records) == sum(expected.values())
    assert {r["reason"] for r in records} == set(expected)


async def test_agent_sigkill_last_will_recorded_offline(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1,
    snmpsim: lab.SnmpSim, db: str,
) -> None:
    site = "will-site"
    cfg = agent_config(
        agent_id="agent-will", site=site, commune=COMMUNE, province=PROVINCE,
        mqtt_port=mosquitto.port, spool_path=tmp_path / "spool.sqlite3", interval_s=1.0,
        devices=[{"id": "ubnt", "host": "127.0.0.1", "port": snmpsim.port,
                  "snmp": {"version": "2c", "community": {"env": "T_COMMUNITY"}}}])
    path = tmp_path / "agent.toml"
    path.write_text(to_toml(cfg))
    proc = Subprogram("agent", path, env={"T_COMMUNITY": lab.COMMUNITY_IFTABLE_ONLY})
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=f"will-{db}"))

    def status_rows() -> list[dict[str, Any]]:
        return influxdb.query(
            'SELECT "online", "reason" FROM "agent_status" WHERE "agent" = \'agent-will\'', db=db)

    async with running(collector):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        proc.start()
        try:
            await wait_for(lambda: any(r["online"] == 1 for r in status_rows()), 30,
                           "agent online (birth message) in InfluxDB")
            await wait_for(lambda: influxdb.query(
                'SELECT count("up") FROM "device" WHERE "site" = \'will-site\'', db=db), 30,
                "a poll from the agent")
        finally:
            proc.kill()
        await wait_for(lambda: status_rows() and status_rows()[-1]["online"] == 0, 15,
                       "Last Will recorded as offline")
        await asyncio.sleep(0.5)
    assert collector.agents_online["agent-will"] is False
    last = status_rows()[-1]
    assert "last will" in last["reason"]


async def test_internal_error_dead_letters_the_message_and_the_flow_goes_on(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1, db: str,
) -> None:
    dead = tmp_path / "dead"
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db, dead_letter_dir=dead,
        collector_id=f"bug-{db}"))
    real_store = collector._store

    async def store_with_a_bug(ok: Any, now: Any, ticket: Any) -> None:
        if isinstance(ok.message, wire.Telemetry) and ok.message.seq == 1:
            raise RuntimeError("a bug in the collector")
        await real_store(ok, now, ticket)

    collector._store = store_with_a_bug  # type: ignore[method-assign]  # inject a fault
    site = "bug-site"
    topic = topics.build(PROVINCE, COMMUNE, site, "telemetry")
    async with running(collector):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        # polls a second apart: two polls of one device in the same millisecond are one
        # point in InfluxDB (the later overwrites the earlier), which is not this test's point
        t0 = datetime.now(UTC)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            for seq in range(3):
                await client.publish(topic, wire.encode(telemetry(
                    seq=seq, site=site, agent="agent-bug",
                    polls=[poll(ts=t0 - timedelta(seconds=3 - seq))])), qos=1)
        await wait_for(lambda: influxdb.query('SELECT count("seq") FROM "device"', db=db),
                       20, "good polls stored")
        await wait_for(lambda: collector.acks.unacked == 0, 20, "every message acknowledged")
    assert collector.stats()["rejected_internal_error"] == 1
    seqs = {r["seq"] for r in influxdb.query('SELECT "seq" FROM "device"', db=db)}
    assert seqs == {0, 2}
    (record,) = collector.dead_letter.records()
    assert record["reason"] == "internal_error" and '"seq":1' in record["payload"]
