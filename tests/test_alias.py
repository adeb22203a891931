"""ifAlias, the label NOCs give a port: polled (ifXTable, bounded like ifName), carried as
an optional field of ``InterfacePoll`` (absent when the device has none, so such polls
are byte for byte what a v1 agent sent), admitted within the wire's bounds, stored as the
``alias`` string field of ``interface`` (a field: no new series when a port is relabelled)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import lab
from agent.app import Agent
from agent.config import AgentConfig
from agent.rates import RatePolicy, RateTracker
from agent.snmp import TEXT_TRUNCATED, RawInterface, RawPoll, SnmpPoller, SnmpTarget, SnmpV2c
from agent.telemetry import to_device_poll
from collector.admission import Accepted, Limits, Rejected, admit
from collector.schema import telemetry_lines
from lab import SimInterface, write_numeric_recording
from lab.fleet import agent_config, collector_config
from tests.factories import TOPIC, interface, poll, telemetry
from tests.pipeline import rows, running, start_collector, wait_for
from xanet import topics, wire

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LABEL = 'UPLINK "Lũng Cú", 10G, to hub=dong-van'  # quotes, commas, '=', Vietnamese


def raw(alias: str | None) -> RawPoll:
    return RawPoll("rtr", 100, (RawInterface(1, "ge-0/0/0", "ge-0/0/0", 1, 1, 10**9, 5, 7, True,
                                             None, alias=alias),), rtt_s=0.01)


def test_the_agent_sends_alias_only_when_there_is_one() -> None:
    tracker = RateTracker(RatePolicy(poll_interval_s=60))
    with_alias = to_device_poll("rtr", NOW, raw(LABEL), tracker, 1.0)
    without = to_device_poll("rtr", NOW, raw(None), RateTracker(tracker.policy), 1.0)
    assert with_alias.interfaces[0].alias == LABEL
    assert without.interfaces[0].alias is None
    # A poll without ifAlias is what an agent before ifAlias sent: an old collector takes it.
    assert b"alias" not in wire.encode(telemetry(polls=[without]))
    assert b'"alias":' in wire.encode(telemetry(polls=[with_alias]))


@pytest.mark.parametrize(("alias", "reason"), [
    ("x", None), ("é" * 256, None), ("x" * 257, "invalid"), ("", "invalid"), (7, "invalid"),
])
def test_alias_admitted_within_the_wire_bounds(alias: object, reason: str | None) -> None:
    msg = wire.encode(telemetry(polls=[poll(interfaces=[interface(1)])])).replace(
        b'"hc":true', b'"hc":true,"alias":' + json.dumps(alias).encode())
    got = admit(TOPIC, msg, datetime.now(UTC), Limits())
    if reason is None:
        assert isinstance(got, Accepted)
        assert isinstance(got.message, wire.Telemetry)
        assert got.message.polls[0].interfaces[0].alias == alias
    else:
        assert isinstance(got, Rejected) and got.reason == reason and "alias" in got.detail


def test_alias_is_a_string_field_not_a_tag() -> None:
    msg = telemetry(polls=[poll(ts=NOW, interfaces=[interface(1, alias=LABEL), interface(2)])])
    where = topics.parse(TOPIC)
    assert isinstance(where, topics.SiteTopic)
    first, second = telemetry_lines(where, msg)[1:]
    assert first.endswith(',alias="UPLINK \\"Lũng Cú\\", 10G, to hub=dong-van" 1795953600000')
    assert first.split(" ")[0] == second.split(" ")[0].replace("ifindex=2", "ifindex=1") \
        .replace("ge-0/0/2", "ge-0/0/1")  # same tags: the alias is no part of the series
    assert "alias" not in second


@pytest.mark.integration
async def test_a_long_alias_is_cut_and_counted(
    tmp_path: Path, make_snmpsim: Callable[..., lab.SnmpSim],
) -> None:
    sim = make_snmpsim({"long": write_numeric_recording(tmp_path / "long.snmprec", interfaces=[
        SimInterface(1, "ge-0/0/0", alias="a" * 300), SimInterface(2, "ge-0/0/1", alias="")])})
    poller = SnmpPoller()
    try:
        got = await poller.poll(SnmpTarget(device="long", host=sim.host, port=sim.port,
                                           credentials=SnmpV2c("long")))
    finally:
        poller.close()
    assert [i.alias for i in got.interfaces] == ["a" * 256, None]
    assert dict(got.contained) == {TEXT_TRUNCATED: 1}
    assert any(w.startswith("ifAlias: longer than 256") for w in got.warnings)


@pytest.mark.integration
async def test_alias_polled_and_stored_through_the_pipeline(
    tmp_path: Path, make_snmpsim: Callable[..., lab.SnmpSim], mosquitto: lab.Mosquitto,
    influxdb: lab.InfluxDB1, db: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """snmpsim → agent → Mosquitto → collector → InfluxDB 1.x: the labelled port stores its
    label, the port without one stores no alias."""
    sim = make_snmpsim({"labels": write_numeric_recording(tmp_path / "labels.snmprec",
                                                          interfaces=[
        SimInterface(1, "xe-0/0/0", speed_bps=10**10, alias=LABEL),
        SimInterface(2, "ge-0/0/1"),
    ])})
    monkeypatch.setenv("T_ALIAS_COMMUNITY", "labels")
    agent = Agent(AgentConfig.model_validate(agent_config(
        agent_id="agent-alias", site="alias-site", commune="00688", province="ha-giang",
        mqtt_port=mosquitto.port, spool_path=tmp_path / "spool.sqlite3", interval_s=1.0,
        devices=[{"id": "labelled", "host": sim.host, "port": sim.port,
                  "snmp": {"version": "2c", "community": {"env": "T_ALIAS_COMMUNITY"}}}])))
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=f"c-{db}"))
    query = "SELECT ifindex, alias, oper FROM \"interface\" WHERE device = 'labelled'"
    async with running(collector):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        async with running(agent):
            stored = await wait_for(lambda: len(rows(influxdb, query, db)) >= 2 and
                                    rows(influxdb, query, db), 30, "interface points")
    by_index = {r["ifindex"]: r for r in stored}
    assert by_index["1"]["alias"] == LABEL
    assert by_index["2"]["alias"] is None and by_index["2"]["oper"] == 1
