"""A collector pointed at an InfluxDB 1.x database that does not exist yet: it creates it
(``CREATE DATABASE``, once a write says "database not found") and stores its first points;
where it may not, it logs once the exact command to run and its lines wait."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

import lab
from collector.config import InfluxConfig
from collector.errors import WriteUnavailable
from collector.writer import InfluxV1Writer, create_database_command, create_database_statement
from lab.fleet import collector_config
from tests.factories import poll, telemetry
from tests.pipeline import rows, running, start_collector, wait_for
from xanet import topics, wire


def databases(influxdb: lab.InfluxDB1) -> set[str]:
    return {row["name"] for row in influxdb.query("SHOW DATABASES")}


@pytest.mark.integration
async def test_a_collector_creates_its_missing_database_and_stores(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1,
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = f"t_new_{uuid.uuid4().hex[:8]}"
    assert database not in databases(influxdb)
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=database,
        dead_letter_dir=tmp_path / "dead", collector_id=f"c-{database}"))
    msg = telemetry(seq=1, site="new-db-site", agent="agent-new-db", polls=[poll("router-1")])
    caplog.set_level(logging.WARNING, logger="xanet.collector.writer")
    async with running(collector):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            await client.publish(topics.build("ha-giang", "00688", "new-db-site", "telemetry"),
                                 wire.encode(msg), qos=1)

        def stored_rows() -> list[dict[str, Any]]:
            if database not in databases(influxdb):
                return []
            return rows(influxdb, "SELECT * FROM \"interface\" WHERE device = 'router-1'",
                        database)

        stored = await wait_for(stored_rows, 30, "the first points in the new database")
    assert {r["ifindex"] for r in stored} == {"1", "2"}
    created = [r.getMessage() for r in caplog.records if "created it" in r.getMessage()]
    assert len(created) == 1 and database in created[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_command_quotes_the_name() -> None:
    assert create_database_statement("xanet") == 'CREATE DATABASE "xanet"'
    assert create_database_statement('we"ird\\db') == 'CREATE DATABASE "we\\"ird\\\\db"'
    assert create_database_command("http://influx:8086/", "xanet") == (
        "curl -XPOST 'http://influx:8086/query' --data-urlencode 'q=CREATE DATABASE \"xanet\"'")


async def test_no_right_to_create_is_logged_once_with_the_command(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """InfluxDB 1.x's answers to a non-admin user (or a 2.x v1 endpoint that has no
    CREATE DATABASE): the write waits (unavailable, retried), one error names the
    command, every retry asks again (an administrator may grant the right meanwhile)."""
    asked: list[str] = []

    def influx(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/write":
            return httpx.Response(404, json={"error": 'database not found: "xanet"'})
        return httpx.Response(403, json={
            "error": "error authorizing query: collector not authorized to execute statement "
                     "'CREATE DATABASE xanet', requires admin privilege"})

    writer = InfluxV1Writer(InfluxConfig(url="http://influx.example:8086"),
                            transport=httpx.MockTransport(influx))
    caplog.set_level(logging.WARNING, logger="xanet.collector.writer")
    for _ in range(3):
        with pytest.raises(WriteUnavailable, match="database not found"):
            await writer.write(["m v=1i 1"])
    await writer.close()
    assert asked == ["/write", "/query"] * 3
    (error,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "requires admin privilege" in error
    assert create_database_command("http://influx.example:8086", "xanet") in error
