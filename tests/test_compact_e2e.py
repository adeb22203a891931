"""Compact backlog batches end to end: a real agent's spool replayed through real
Mosquitto to a real collector and InfluxDB - the same points as JSON - and an older
core (no capability message) that gets JSON exactly as before.

Plus the collector's handling of one batch whose messages do not all pass (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lab
from agent.spool import Spool
from collector.acks import Ticket
from lab.backlog import site_backlog
from lab.fleet import agent_config, collector_config
from tests.pipeline import running, start_agent, start_collector, wait_for
from tests.test_fuzz import RecordingWriter
from xanet import compact, topics, wire

PROVINCE, COMMUNE = "ha-giang", "00688"
FIELDS = ("oper", "admin", "speed_bps", "hc", "in_octets", "out_octets", "in_bps", "out_bps",
          "in_util_pct", "out_util_pct", "rate_note", "alias")


def spool_backlog(path: Path, msgs: list[wire.Telemetry]) -> None:
    """The messages in an agent's spool, as its batcher stores them (JSON, no ``sent``)."""
    spool = Spool(path, max_messages=100_000, max_age_s=40 * 86400, fsync="off")
    try:
        for m in msgs:
            topic = topics.build(PROVINCE, COMMUNE, m.site, "telemetry")
            spool.put(topic, lambda seq, m=m: wire.encode(m.model_copy(
                update={"seq": seq, "sent": None, "instance": None})), m.polls[0].ts.timestamp())
    finally:
        spool.close()


def expected_points(msgs: list[wire.Telemetry]) -> dict[tuple[Any, ...], dict[str, Any]]:
    out = {}
    for m in msgs:
        for p in m.polls:
            for i in p.interfaces:
                ms = int(p.ts.timestamp() * 1000)
                out[(ms, p.device, str(i.index))] = {  # InfluxDB stores integers of 63 bits
                    k: (int(v) if isinstance(v, bool) else v)
                    for k, v in i.model_dump().items()
                    if k in FIELDS and v is not None and not (isinstance(v, int) and v >= 2**63)}
    return out


def stored_points(influx: lab.InfluxDB1, db: str, site: str
                  ) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = influx.query(f'SELECT * FROM "interface" WHERE "site" = \'{site}\'', db=db,
                        epoch="ms")
    return {(int(r["time"]), r["device"], r["ifindex"]):
            {k: r[k] for k in FIELDS if r.get(k) is not None} for r in rows}


async def replay(broker: lab.Mosquitto, influxdb: lab.InfluxDB1, db: str, tmp_path: Path,
                 site: str, *, batches: bool) -> tuple[Any, dict[tuple[Any, ...], Any]]:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    msgs = site_backlog(n_dev=3, n_if=24, polls=40, t0=t0, agent=f"agt-{site}", site=site)
    spool_path = tmp_path / "spool.sqlite3"
    spool_backlog(spool_path, msgs)
    collector = start_collector(collector_config(
        mqtt_port=broker.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=f"c-{site}",
        ingest={"batches": batches}))
    agent = start_agent(agent_config(
        agent_id=f"agt-{site}", site=site, commune=COMMUNE, province=PROVINCE,
        mqtt_port=broker.port, spool_path=spool_path, interval_s=5.0,
        devices=[{"id": "live-0", "host": "127.0.0.1", "port": 9,
                  "snmp": {"version": "2c", "community": {"env": "T_Z_COMMUNITY"}}}],
        spool={"replay_rate_per_s": 10_000}))
    async with running(collector):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        async with running(agent):
            await wait_for(lambda: agent.uplink.replayed >= len(msgs), 60, "backlog replayed")
        expected = expected_points(msgs)
        await wait_for(lambda: len(stored_points(influxdb, db, site)) >= len(expected), 30,
                       "every interface sample in InfluxDB")
    return agent, expected


@pytest.fixture(autouse=True)
def _community(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_Z_COMMUNITY", "public")


@pytest.mark.integration
async def test_backlog_goes_as_compact_batches_and_lands_as_json_would(
        mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1, db: str, tmp_path: Path) -> None:
    agent, expected = await replay(mosquitto, influxdb, db, tmp_path, "zsite", batches=True)
    assert agent.uplink.batches_sent >= 1
    assert agent.uplink.batched_entries == 120
    assert stored_points(influxdb, db, "zsite") == expected  # every value, none more


@pytest.mark.integration
async def test_an_older_core_gets_json(make_mosquitto: Callable[..., lab.Mosquitto],
                                       influxdb: lab.InfluxDB1, db: str,
                                       tmp_path: Path) -> None:
    broker = make_mosquitto()  # its own: no capability message retained by another test
    agent, expected = await replay(broker, influxdb, db, tmp_path, "jsite", batches=False)
    assert agent.uplink.capabilities is None and agent.uplink.batches_sent == 0
    assert stored_points(influxdb, db, "jsite") == expected


async def test_a_batch_with_a_bad_message_stores_the_others_and_acks_once(
        tmp_path: Path) -> None:
    from collector.app import Collector
    from collector.config import CollectorConfig
    now = datetime.now(UTC)
    msgs = site_backlog(n_dev=1, n_if=2, polls=3, t0=now - timedelta(minutes=5),
                        site="site-a")
    wrong_site = msgs[1].model_copy(update={"site": "site-b"})
    too_old = msgs[2].model_copy(update={"polls": [msgs[2].polls[0].model_copy(
        update={"ts": now - timedelta(days=40)})]})
    writer = RecordingWriter()
    c = Collector(CollectorConfig.model_validate(
        {"ingest": {"dead_letter_dir": str(tmp_path / "dead")}}), writer=writer)
    settled: list[Ticket] = []
    c._settle = settled.append  # type: ignore[method-assign]  # count the acks, no broker
    topic = topics.build(PROVINCE, COMMUNE, "site-a", "batch")
    ticket = Ticket(mid=1, qos=1, generation=0)
    await c.handle(topic, compact.encode([msgs[0], wrong_site, too_old]), now, ticket)
    c.sink.flush_soon()
    stop = asyncio.Event()
    stop.set()
    await c.sink.run(stop)
    assert settled == [ticket]
    assert c.stats()["batches"] == 1 and c.received == 3 and c.accepted == 1
    assert c.rejected == {"topic_mismatch": 1, "ts_past": 1}
    assert len([ln for ln in writer.lines if ln.startswith("interface,")]) == 2
    kept = list((tmp_path / "dead").glob("*"))
    text = "".join(p.read_text() for p in kept)
    assert '"topic_mismatch"' in text and "/site-a/telemetry" in text


def _collector(tmp: Path) -> Any:
    from collector.app import Collector
    from collector.config import CollectorConfig
    return Collector(CollectorConfig.model_validate(
        {"ingest": {"dead_letter_dir": str(tmp / "dead")}}), writer=RecordingWriter())


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_fuzzed_batches_through_the_collector(tmp_path: Path, data: st.DataObject) -> None:
    """Valid, mutated and random batches on a batch topic, through ``Collector.handle``:
    nothing escapes, every message inside is counted once (accepted or rejected), the
    MQTT message is settled exactly once."""
    now = datetime.now(UTC)
    c = _collector(tmp_path)
    settled: list[Ticket] = []
    c._settle = settled.append  # type: ignore[method-assign]  # count the acks, no broker
    msgs = site_backlog(n_dev=2, n_if=2, polls=2, t0=now - timedelta(minutes=5),
                        site="site-a", seed=data.draw(st.integers(0, 3)))
    body = bytearray(compact.body(msgs))
    how = data.draw(st.sampled_from(["valid", "flip", "random", "site"]))
    if how == "flip":
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    payload = compact.frame(bytes(body), level=1)
    if how == "random":
        payload = data.draw(st.binary(max_size=200))
    site = "site-b" if how == "site" else "site-a"
    topic = topics.build(PROVINCE, COMMUNE, site, "batch")
    ticket = Ticket(mid=1, qos=1, generation=0)
    await c.handle(topic, payload, now, ticket)
    stop = asyncio.Event()
    stop.set()
    await c.sink.run(stop)
    assert settled == [ticket]
    assert c.accepted + sum(c.rejected.values()) >= c.received >= 1
    if how == "valid":
        assert c.accepted == len(msgs) and not c.rejected
    if how == "site":
        assert c.rejected == {"topic_mismatch": len(msgs)}
