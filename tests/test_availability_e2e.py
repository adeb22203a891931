"""Availability through the real pipeline: a router that really stops answering, and an
agent SIGKILLed for a while; the report's availability and coverage match what was
injected within one poll interval."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import lab
from collector.config import CollectorConfig
from collector.readback import Filters, availability_report
from lab import SimInterface, write_numeric_recording
from lab.fleet import agent_config, collector_config, to_toml
from lab.programs import Subprogram
from tests.factories import LAM_BINH_THUONG_LAM, inv_device, inv_site, inventory_toml
from tests.pipeline import running, start_agent, start_collector, wait_for

INTERVAL_S = 1.0

INVENTORY = inventory_toml(
    inv_site("hub-lam-binh", agent="agt-lam-binh",
             devices=[inv_device("rtr-1", {"service": "fibre", "interface": "xe-0/0/0"}),
                      inv_device("olt-1", "broadband")]),
    inv_site("hub-thuong-lam", "02269", agent="agt-thuong-lam",
             devices=[inv_device("rtr-1", {"service": "fibre", "interface": "ge-0/0/0"})]),
    communes=LAM_BINH_THUONG_LAM,
)


def recording(path: Path, ifname: str) -> Path:
    write_numeric_recording(path, sys_descr="router (simulated)",
                            interfaces=[SimInterface(index=1, name=ifname)])
    return path


async def test_outage_and_agent_silence_measured(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1,
    make_snmpsim: Callable[..., lab.SnmpSim], monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = f"avail_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    inv = tmp_path / "inventory.toml"
    inv.write_text(INVENTORY)
    # Lâm Bình's router and OLT on one simulator (stopped to cut the router off... and the
    # OLT stays up on its own); Thượng Lâm on another.
    lb_rtr = make_snmpsim({"rtr": recording(tmp_path / "lb-rtr.snmprec", "xe-0/0/0")})
    lb_olt = make_snmpsim({"olt": recording(tmp_path / "lb-olt.snmprec", "pon0")})
    tl_rtr = make_snmpsim({"rtr": recording(tmp_path / "tl-rtr.snmprec", "ge-0/0/0")})
    monkeypatch.setenv("T_RTR", "rtr")
    monkeypatch.setenv("T_OLT", "olt")

    def dev(dev_id: str, sim: lab.SnmpSim, env: str) -> dict[str, Any]:
        return {"id": dev_id, "host": "127.0.0.1", "port": sim.port,
                "snmp": {"version": "2c", "community": {"env": env}}}

    lam_binh = start_agent(agent_config(
        agent_id="agt-lam-binh", site="hub-lam-binh", commune="02266", province="08",
        mqtt_port=mosquitto.port, spool_path=tmp_path / "lb.sqlite3", interval_s=INTERVAL_S,
        devices=[dev("rtr-1", lb_rtr, "T_RTR"), dev("olt-1", lb_olt, "T_OLT")]))
    tl_cfg = agent_config(
        agent_id="agt-thuong-lam", site="hub-thuong-lam", commune="02269", province="08",
        mqtt_port=mosquitto.port, spool_path=tmp_path / "tl.sqlite3", interval_s=INTERVAL_S,
        devices=[dev("rtr-1", tl_rtr, "T_RTR")])
    (tmp_path / "tl.toml").write_text(to_toml(tl_cfg))
    thuong_lam = Subprogram("agent", tmp_path / "tl.toml", env={"T_RTR": "rtr"})
    coll_cfg = collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=db,
        inventory={"path": str(inv)},
        availability={"stale_after_s": 3 * INTERVAL_S, "bucket_s": 10.0,
                      "emit_interval_s": 0.5})
    collector = start_collector(coll_cfg)

    def service_rows(commune: str, service: str) -> list[dict[str, Any]]:
        return influxdb.query(
            f'SELECT "state" FROM "service_state" WHERE "commune" = \'{commune}\' '
            f'AND "service" = \'{service}\'', db=db, epoch="ms")

    def online() -> bool:
        rows = influxdb.query('SELECT last("online") FROM "agent_status" '
                              'WHERE "agent" = \'agt-thuong-lam\'', db=db)
        return bool(rows) and rows[0]["last"] == 1

    async with running(collector, lam_binh):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        thuong_lam.start()
        try:
            for commune, service in (("02266", "fibre"), ("02266", "broadband"),
                                     ("02269", "fibre")):
                await wait_for(lambda c=commune, s=service: any(
                    r["state"] == "up" for r in service_rows(c, s)), 40, f"{commune} {service} up")
            await wait_for(lambda: lam_binh.health.polls_ok >= 2, 20, "polls")
            window_start = time.time()
            await asyncio.sleep(3)

            # The router stops answering: its simulator is stopped.
            cut = time.time()
            lb_rtr.stop()
            await asyncio.sleep(6)
            lb_rtr.start()
            back = time.time()
            await asyncio.sleep(3)

            # Thượng Lâm's agent is SIGKILLed (Last Will), then restarted.
            killed = time.time()
            thuong_lam.kill()
            await asyncio.sleep(5)
            thuong_lam.start()
            await wait_for(online, 30, "agent back online")
            restarted = time.time()
            await asyncio.sleep(4)
            window_end = time.time()
            await asyncio.sleep(1.5)  # let the last emission and stats be written
        finally:
            thuong_lam.kill()

    cfg = CollectorConfig.model_validate(coll_cfg)
    start = datetime.fromtimestamp(window_start, UTC)
    end = datetime.fromtimestamp(window_end, UTC)
    report = availability_report(cfg, collector.inventory, start, end, Filters())
    rows = {(r.commune, r.service): r for r in report.rows}
    window = window_end - window_start

    # The router outage: downtime = the time it did not answer, within one poll interval.
    fibre_lb = rows[("02266", "fibre")].summary
    injected = back - cut
    assert abs(fibre_lb.down_s - injected) <= INTERVAL_S + 0.5, (fibre_lb, injected)
    assert fibre_lb.outages == 1
    assert abs(fibre_lb.availability_pct - 100 * (window - injected) / window) < 100 * (
        INTERVAL_S + 0.5) / window
    # The OLT on the same site kept answering: broadband untouched.
    bb = rows[("02266", "broadband")].summary
    assert bb.down_s == 0 and bb.availability_pct == 100.0 and bb.coverage_pct > 99.0

    # The silent agent: its time is unknown (lost coverage), never downtime.
    fibre_tl = rows[("02269", "fibre")].summary
    silent = restarted - killed
    assert fibre_tl.down_s == 0 and fibre_tl.outages == 0
    assert fibre_tl.availability_pct == 100.0
    assert abs(fibre_tl.unknown_s - silent) <= 2 * INTERVAL_S + 0.5, (fibre_tl, silent)
    assert fibre_tl.coverage_pct < 100 * (window - silent + 2 * INTERVAL_S + 0.5) / window

    print(f"router outage injected {injected:.2f}s, measured down {fibre_lb.down_s:.2f}s; "
          f"agent silence injected {silent:.2f}s, measured unknown {fibre_tl.unknown_s:.2f}s; "
          f"window {window:.1f}s")
    # Province KPI: Lâm Bình's fibre failed 99 %; Thượng Lâm's was 100 % of what is known,
    # but its agent was silent for more than 10 % of the window: below the default 90 %
    # minimum coverage it is "insufficient data", counted apart (the coverage rule).
    kpis = {k.service: k for k in report.kpis}
    if fibre_tl.coverage_pct < 90:
        assert rows[("02269", "fibre")].status == "insufficient"
        assert (kpis["fibre"].met, kpis["fibre"].failed, kpis["fibre"].insufficient) == (0, 1, 1)
    loose = availability_report(cfg, collector.inventory, start, end, Filters(),
                                min_coverage_pct=0)
    kpis = {k.service: k for k in loose.kpis}
    assert (kpis["fibre"].met, kpis["fibre"].failed) == (1, 1)

    # The same report through the command line, as an operator runs it.
    (tmp_path / "collector.toml").write_text(to_toml(coll_cfg))
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "xanet.cli", "report", "availability", "--config",
         str(tmp_path / "collector.toml"), "--from", start.isoformat(), "--to",
         end.isoformat(), "--format", "json", "--lang", "en"],
        capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    assert json.dumps(doc, ensure_ascii=False).count("02266") >= 2
    table = (await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "xanet.cli", "report", "availability", "--config",
         str(tmp_path / "collector.toml"), "--from", start.isoformat(), "--to",
         end.isoformat(), "--commune", "02266"],
        capture_output=True, text=True, check=True)).stdout
    assert "Lâm Bình" in table and "Thượng Lâm" not in table
