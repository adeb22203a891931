"""A Counter32-only port too fast for its poll interval gets rates within 1 % through the
real pipeline: snmpsim (``numeric``) → agent (readings between polls) → Mosquitto →
collector → InfluxDB 1.x.

The issue's case is a gigabit port carrying 700 Mbit/s polled every 60 s: 5.25e9 octets per
interval, more than one wrap, and a second one would fit in 1.1 x 1 Gbit/s x 60 s. A
Counter32-only device (no ifXTable) cannot report more than 2**32-1 bit/s, so this test
keeps that geometry at a quarter of the wall time: a 4 Gbit/s port carrying 2.8 Gbit/s
polled every 15 s (the same 5.25e9 octets per interval, the same wraps; readings every 5 s
as for the gigabit port at 60 s every 20 s). tests/test_subpoll.py has the 60 s case on
the pure core.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lab
from agent.app import Agent
from agent.config import AgentConfig
from agent.subpoll import SubPlan
from lab import SimInterface, write_numeric_recording
from lab.fleet import agent_config, collector_config
from tests.pipeline import running, start_collector, wait_for

INTERVAL_S = 15.0
PORT = SimInterface(1, "ge-0/0/0", in_rate=2.8e9 / 8, out_rate=1.2e9 / 8,
                    in_initial=2**32 - 2 * 10**9, out_initial=2**32 - 10**8,
                    speed_bps=4_000_000_000, hc=False)


async def test_a_counter32_port_too_fast_for_the_interval_gets_rates(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1, db: str,
    make_snmpsim: Callable[..., lab.SnmpSim], monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = make_snmpsim({"fast": write_numeric_recording(tmp_path / "fast.snmprec",
                                                        interfaces=[PORT])})
    monkeypatch.setenv("T_FAST", "fast")
    agent = Agent(AgentConfig.model_validate(agent_config(
        agent_id="agent-fast", site="fast-site", commune="00688", province="ha-giang",
        mqtt_port=mosquitto.port, spool_path=tmp_path / "spool.sqlite3", interval_s=INTERVAL_S,
        devices=[{"id": "fast", "host": sim.host, "port": sim.port,
                  "snmp": {"version": "2c", "community": {"env": "T_FAST"}}}])))
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=f"c-{db}"))

    def stored() -> list[dict[str, Any]]:
        return influxdb.query('SELECT "in_bps", "out_bps", "rate_note", "speed_bps" FROM '
                              "\"interface\" WHERE \"device\" = 'fast' ORDER BY time ASC", db=db)

    async with running(collector):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        async with running(agent):
            rows = await wait_for(lambda: len(stored()) >= 3 and stored(), 3 * INTERVAL_S + 20,
                                  "three polls of the fast port")
            assert agent.between == {"fast-site/fast": SubPlan(5.0, 2, (1,), False)}
            note = agent.status("online").reason
            assert note is not None and "Counter32 readings between polls: 1 port(s)" in note
    assert rows[0]["rate_note"] == "first_poll"
    for row in rows[1:]:
        assert row["speed_bps"] == PORT.speed_bps and row["rate_note"] is None, row
        for direction, rate in (("in", PORT.in_rate), ("out", PORT.out_rate)):
            assert row[f"{direction}_bps"] == pytest.approx(rate * 8, rel=0.01), (direction, row)
