"""The Grafana dashboards (dashboards/boards.py, rendered by dashboards/generate.py) against
a real InfluxDB.

Grafana cannot run here, so this does what Grafana would: every template
variable's query and every panel's InfluxQL, with ``$province``, ``$commune``,
``$site``, ``$target``, ``$timeFilter`` and ``$__interval`` substituted the way
Grafana's InfluxDB data source does, is run against InfluxDB 1.x and must
return data; the fields it names must be stored ones, and the unit each panel
shows a column in must be the unit of the stored field.

Data:
- ``device``, ``interface``, ``agent_status``, ``collector_stats``: written by
  the REAL pipeline: an agent polls snmpsim recordings and net-snmp's snmpd,
  spools while the broker is not there yet (so the spool panels have a
  backlog and drops to show), then publishes to Mosquitto; the collector
  writes InfluxDB.
- ``profile`` and ``power``: an hour of a UPS whose mains fail and a firewall's 14
  sensors (tests/profiledata.py: values as the EAST UPS and PA-5050 recordings have
  them), published to Mosquitto as an agent with device profiles sends them; the
  collector writes InfluxDB.
- ``availability``, ``service_state`` and ``outage``: representative points
  encoded by the collector's own encoders (collector/facts.py
  ``emission_lines``, collector/alerting.py ``outage_lines``) and written by
  this test, not by the pipeline (the pipeline here has no inventory and no
  alerting). The outage points come from the real :class:`AlertCore` driven
  through a scripted hour of element states; ENCODER_SCHEMA is what they
  must store.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import lab
from collector import schema
from collector.alerting import outage_lines
from collector.availability import (
    ElementPoint,
    Emission,
    Rollup,
    ServiceKey,
    ServicePoint,
    State,
)
from collector.facts import emission_lines
from collector.outages import AlertCore, AlertEvent, Policy, alert_topology
from dashboards import generate
from dashboards.influxql import DATASOURCE_UID, InfluxQuery
from dashboards.power import POWER_STATE
from lab.fleet import agent_config, collector_config
from tests.pipeline import ROOT, running, start_agent, start_collector, wait_for
from tests.profiledata import mains_failure_hour
from xanet import topics, wire
from xanet.inventory import Inventory, load_inventory, parse_inventory

# The example inventory's province, communes and hub site (config/inventory.example.toml).
PROVINCE, COMMUNE, SITE = "08", "02269", "hub-thuong-lam"
OTHER_COMMUNE = "02266"  # only in the availability points
BTS_AGENT = "agt-bts-thuong-lam-02"  # the example inventory's agent of bts-thuong-lam-02
AGENT = "agent-dash"
ALL = ".*"  # the dashboards' All value

#: The measurements this test writes with the collector's encoders (tags, fields with
#: InfluxDB types): service_state and availability as collector/facts.py writes
#: them, outage as collector/alerting.py does (docs/alerts.md).
ENCODER_SCHEMA: dict[str, tuple[set[str], dict[str, str]]] = {
    "service_state": ({"province", "commune", "service"},
                      {"state": "string", "code": "integer"}),
    "availability": ({"province", "commune", "service"},
                     {"up_s": "float", "down_s": "float", "unknown_s": "float",
                      "maintenance_s": "float", "bucket_s": "float",
                      "availability_pct": "float", "coverage_pct": "float"}),
    "outage": ({"province", "commune", "site", "service", "kind", "device", "interface"},
               {"open": "integer", "children": "string", "summary": "string",
                "maintenance": "boolean", "cause": "string"}),
}
PIPELINE_MEASUREMENTS = {"device", "interface", "agent_status", "collector_stats", "profile",
                         "power"}
#: The agent of the site's UPS and firewall (device profiles; tests/profiledata.py).
POWER_AGENT = "agent-power"
POWER_TOPIC = topics.build(PROVINCE, COMMUNE, SITE, "telemetry")

#: Grafana unit of a stored field, by its name's suffix (units in names: HOUSE_STYLE).
SUFFIX_UNITS = {"_bytes_per_s": "Bps", "_bps": "bps", "_pct": "percent", "_ms": "ms",
                "_s": "s"}
DEFAULT_INTERVAL = "5s"


#: An agent on a saturated thin link (its status only: the bytes panels' known values).
THIN_AGENT = "agent-thin"
THIN_STATUS = topics.build(PROVINCE, COMMUNE, SITE, "status")


def thin_status() -> wire.Status:
    return wire.Status(
        agent=THIN_AGENT, site=SITE, state="online", ts=datetime.now(UTC),
        reason="uplink saturated: 3 profile(s) polled at x4 their interval",
        health=wire.AgentHealth(
            spool_depth=5_400, devices=10, bytes_sent=9_000_000, bytes_live=1_000_000,
            bytes_backlog=8_000_000, bytes_per_poll=2_200.0, bytes_per_interface=220.0,
            compression_ratio=1.0, backlog_bytes=120_000, drain_bytes_per_s=8_000.0,
            drain_eta_s=15.0, budget_bytes_per_s=6_400.0, saturated=True,
            profiles_stretched=3, stretch_factor=4))


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(generate.JSON_DIR.glob("*.json"))}


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dash["panels"]:
        if p.get("type") == "row":
            yield from p.get("panels") or []
        else:
            yield p


def all_panels() -> list[tuple[str, dict[str, Any]]]:
    return [(name, p) for name, d in dashboards().items() for p in panels(d)]


# --------------------------------------------------------------------------
# the generator and the SDK


def test_committed_json_is_what_the_generator_makes() -> None:
    assert generate.stale(generate.rendered()) == [], (
        "dashboards/json is out of date: run python -m dashboards.generate")


def test_check_mode_detects_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for p in generate.JSON_DIR.glob("*.json"):
        (tmp_path / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(generate, "JSON_DIR", tmp_path)
    assert generate.main(["--check"]) == 0
    victim = tmp_path / "agent-health.json"
    victim.write_text(victim.read_text(encoding="utf-8").replace("spool_depth", "spool_dept"))
    assert generate.main(["--check"]) == 1
    victim.unlink()
    assert generate.main(["--check"]) == 1
    assert generate.main([]) == 0 and generate.main(["--check"]) == 0


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_json_round_trips_through_the_sdk_models(name: str) -> None:
    data = dashboards()[name]
    model = generate.from_data(data)
    assert generate.to_data(model) == data
    targets = [t for p in model.panels or [] for t in getattr(p, "targets", None) or []]
    assert targets and all(isinstance(t, InfluxQuery) for t in targets)


def test_every_panel_is_raw_influxql_on_the_provisioned_datasource() -> None:
    uids = set()
    for name, d in dashboards().items():
        assert d["uid"].startswith("xanet-"), name
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                uids.add(v["datasource"]["uid"])
                assert v["query"].startswith("SHOW TAG VALUES FROM ")
        for p in panels(d):
            assert p["targets"], (name, p["title"])
            for t in p["targets"]:
                assert t["rawQuery"] is True and t["query"].startswith("SELECT "), t
                assert t["resultFormat"] in ("time_series", "table")
                uids.add(t["datasource"]["uid"])
    assert uids == {DATASOURCE_UID}
    for name, d in dashboards().items():
        titles = [p["title"] for p in panels(d)]
        assert len(titles) == len(set(titles)), (name, titles)
    names = {d["uid"] for d in dashboards().values()}
    assert len(names) == len(generate.DASHBOARDS)
    for d in dashboards().values():
        assert {v["name"] for v in d["templating"]["list"]} >= {"province", "commune"}


def _queries() -> list[str]:
    out = []
    for d in dashboards().values():
        out += [v["query"] for v in d["templating"]["list"] if v["type"] == "query"]
        out += [t["query"] for p in panels(d) for t in p["targets"]]
    return out


def test_every_name_a_query_uses_is_in_the_schema() -> None:
    """Without InfluxDB: each measurement a query reads is one of collector/schema.py's, and
    each quoted name in it is a tag or field of those measurements, or an alias it makes."""
    by_name = {m.name: m for m in schema.MEASUREMENTS}
    read = set()
    for q in _queries():
        measurements = re.findall(r'FROM "([^"]+)"', q)
        assert measurements, q
        assert set(measurements) <= set(by_name), q
        read |= set(measurements)
        known = {n for m in measurements for n in (*by_name[m].tags, *by_name[m].fields)}
        families = [re.sub(r"\{[a-z_]+\}", "[a-z0-9_]+", n) for n in known if "{" in n]
        aliases = set(re.findall(r'AS "([^"]+)"', q))
        names = {n for n in set(re.findall(r'"([^"]+)"', q)) - set(measurements)
                 if not any(re.fullmatch(f, n) for f in families)}
        assert names <= known | aliases, (q, names - known - aliases)
    # the checkpoint is a new owner's state, not something to look at
    assert read == set(by_name) - {"element_state", "maintenance", "unmapped_device",
                                   "collector_checkpoint"}


def test_encoder_schema_is_the_schema_modules() -> None:
    for name, (tags, fields) in ENCODER_SCHEMA.items():
        m = {m.name: m for m in schema.MEASUREMENTS}[name]
        assert tags == set(m.tags) and set(fields) == set(m.fields), name


# --------------------------------------------------------------------------
# Grafana's interpolation, as its InfluxDB data source does it

_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|\[\]{}/])")


def regex_value(value: str | list[str]) -> str:
    """A variable's value inside ``/^...$/``: All is ``.*`` (the dashboards'
    allValue, unescaped); one value is regex-escaped; several are ``(a|b)``."""
    if value == ALL:
        return ALL
    values = [value] if isinstance(value, str) else value
    escaped = [_REGEX_SPECIAL.sub(r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(query: str, variables: dict[str, str | list[str]], *, from_ms: int,
                to_ms: int, interval: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "timeFilter":
            return f"time >= {from_ms}ms and time <= {to_ms}ms"
        if name == "__interval":
            return interval
        if name == "target":
            return str(variables["target"])
        return regex_value(variables[name])

    out = re.sub(r"\$(\w+)", sub, query)
    assert not re.search(r"\$\w", out), out  # every variable substituted
    return out


def test_interpolation_matches_grafana() -> None:
    q = 'SELECT 1 FROM "x" WHERE "a" =~ /^$commune$/ AND "s" =~ /^$site$/ AND $timeFilter ' \
        'GROUP BY time($__interval)'
    got = interpolate(q, {"commune": ["00688", "a.b"], "site": ALL}, from_ms=1, to_ms=2,
                      interval="5s")
    assert got == ('SELECT 1 FROM "x" WHERE "a" =~ /^(00688|a\\.b)$/ AND "s" =~ /^.*$/ AND '
                   'time >= 1ms and time <= 2ms GROUP BY time(5s)')


# --------------------------------------------------------------------------
# data: the real pipeline, plus availability and outage points from the encoders


def availability_lines(now_ms: int) -> list[str]:
    """REPRESENTATIVE availability points, encoded by the collector's own encoder
    (collector/facts.py ``emission_lines``) for the example inventory: 5-minute
    roll-ups for the last hour and fibre state changes, in two communes."""
    inventory = load_inventory(ROOT / "config" / "inventory.example.toml")
    services_ = ["fibre", "broadband", "mobile_2g", "mobile_4g"]
    rollups: list[Rollup] = []
    changes: list[ServicePoint] = []
    for commune in (COMMUNE, OTHER_COMMUNE):
        for k in range(12):
            start_s = (now_ms - (12 - k) * 300_000) / 1000
            for svc in services_:
                # OTHER_COMMUNE's fibre is down 60 s in every bucket: 80 % < target.
                down = 60.0 if (commune == OTHER_COMMUNE and svc == "fibre") else 0.0
                unknown = 30.0 if svc == "mobile_4g" else 0.0
                rollups.append(Rollup(ServiceKey(commune, svc), start_s, 300.0,
                                      300.0 - down - unknown, down, unknown))
        states: tuple[State, ...] = ("up", "down", "up", "unknown")
        for i, state in enumerate(states):
            changes.append(ServicePoint(ServiceKey(commune, "fibre"),
                                        (now_ms - (40 - 10 * i) * 60_000) / 1000, state))
    return emission_lines(Emission(elements=[], services=changes, rollups=rollups), inventory)


def outage_inventory() -> Inventory:
    """The example inventory with a second OLT at the hub: two devices of one site
    with the same service, whose outages differ only by their ``device`` tag."""
    data = tomllib.loads((ROOT / "config" / "inventory.example.toml").read_text("utf-8"))
    hub = next(s for s in data["sites"] if s["id"] == SITE)
    hub["devices"].append({"id": "olt-2", "elements": [{"service": "broadband"}]})
    return parse_inventory(data)


def outage_events(now_ms: int) -> list[AlertEvent]:
    """REPRESENTATIVE outages, decided by the collector's own :class:`AlertCore` over
    the last hour (one evaluation every 10 s, every agent heard unless silent):

    - 50 min ago the hub's fibre uplink and both BTS behind it go down: one root
      outage (children: the two BTS); back up 45 min ago, so it closes;
    - 35 min ago one of the hub router's two fibre ports goes down while the router
      answers (an interface outage, tagged with its interface); back 30 min ago;
    - 20 min ago both OLTs of the hub stop answering: two device_down outages,
      same site and service, still open;
    - 10 min ago the BTS agent's Last Will arrives: agent_silent, still open.
    """
    inv = outage_inventory()
    core = AlertCore(alert_topology(inv),
                     Policy(hold_down_s=60, clear_down_s=60, agent_silent_after_s=180,
                            root_wait_s=30),
                     now=now_ms / 1000 - 3600)

    def keys(*sites: str, device: str | None = None) -> list[str]:
        return [e.key for site in sites for d in inv.site(site).devices
                if device in (None, d.id) for e in d.elements]

    uplink = keys(SITE, device="rtr-1")
    behind = keys("bts-thuong-lam-01", "bts-thuong-lam-02")
    olts = keys(SITE, device="olt-1") + keys(SITE, device="olt-2")
    script: list[tuple[int, State, list[str]]] = [  # (minutes ago, state, elements)
        (55, "up", keys(*(s.id for s in inv.sites_of_commune(COMMUNE)))),
        (50, "down", uplink + behind),
        (45, "up", uplink + behind),
        (35, "down", uplink[1:]),  # one of the two fibre ports: an interface outage
        (30, "up", uplink[1:]),
        (20, "down", olts),
    ]
    for minutes_ago, state, elements in script:
        ts = now_ms / 1000 - minutes_ago * 60
        core.add_points(ElementPoint(e, ts, state) for e in elements)
    silent_at = now_ms / 1000 - 600
    core.agent_offline(BTS_AGENT, silent_at)
    events: list[AlertEvent] = []
    for step_ in range(3600 // 10 + 1):
        t = now_ms / 1000 - 3600 + step_ * 10
        for agent in core.topology.agent_units:
            if agent != BTS_AGENT or t < silent_at:
                core.agent_seen(agent, t)
        events += core.evaluate(t)
    got = sorted({(ev.action, ev.alert.kind, ev.alert.labels.get("device", ""),
                   ev.alert.labels.get("interface", "")) for ev in events})
    assert got == [("firing", "agent_silent", "", ""), ("firing", "device_down", "olt-1", ""),
                   ("firing", "device_down", "olt-2", ""),
                   ("firing", "device_down", "rtr-1", "ge-0/0/1"),
                   ("firing", "root", "", ""),
                   ("resolved", "device_down", "rtr-1", "ge-0/0/1"),
                   ("resolved", "root", "", "")], got
    root = [ev.alert for ev in events if ev.alert.kind == "root"][-1]
    assert root.children == ("bts-thuong-lam-01", "bts-thuong-lam-02"), root
    return events


async def _fill_from_pipeline(tmp: Path, influxdb: lab.InfluxDB1, broker: lab.Mosquitto,
                              snmpsim: lab.SnmpSim, snmpd: lab.Snmpd, db: str) -> None:
    devices = [
        {"id": "vyatta", "host": "127.0.0.1", "port": snmpsim.port,
         "snmp": {"version": "2c", "community": {"env": "T_DASH_IFX"}}},
        {"id": "ubnt-m5", "host": "127.0.0.1", "port": snmpsim.port,
         "snmp": {"version": "2c", "community": {"env": "T_DASH_IFTABLE"}}},
        # Real, moving counters (lo carries the SNMP traffic itself): real rates.
        {"id": "linux", "host": "127.0.0.1", "port": snmpd.port,
         "snmp": {"version": "2c", "community": {"env": "T_DASH_SNMPD"}}},
        {"id": "dead-box", "host": "127.0.0.1", "port": lab.free_udp_port(),
         "snmp": {"version": "2c", "community": {"env": "T_DASH_IFX"}}},
    ]
    agent = start_agent(agent_config(
        agent_id=AGENT, site=SITE, commune=COMMUNE, province=PROVINCE,
        mqtt_port=broker.port, devices=devices, spool_path=tmp / "spool.sqlite3",
        interval_s=1.0, spool={"max_messages": 10}))
    collector = start_collector(collector_config(
        mqtt_port=broker.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp / "dead", collector_id=f"dash-{db}",
        state={"checkpoint": "on"}))  # its counts for the partitions table

    def count(q: str) -> int:
        rows = influxdb.query(q, db=db)
        return int(rows[0]["count"]) if rows else 0

    async with running(collector):
        async with running(agent):
            # No broker yet: the agent polls and spools; its spool overflows (drops).
            # (the spool's SQLite connection belongs to this thread: poll it here)
            deadline = time.monotonic() + 30
            while agent.spool.dropped == 0:
                assert time.monotonic() < deadline, "no spool drops while the broker was away"
                await asyncio.sleep(0.25)
            await asyncio.to_thread(broker.start)
            await wait_for(lambda: count('SELECT count("in_bps") FROM "interface" '
                                         "WHERE \"device\" = 'linux'") >= 4, 40,
                           "rates of snmpd's interfaces")
            await wait_for(lambda: count('SELECT count("online") FROM "agent_status"') >= 3,
                           30, "three agent status points")
            await wait_for(lambda: count('SELECT count("received") FROM "collector_stats"')
                           >= 3, 30, "three collector_stats points")
            # A site's mains fail: the UPS and firewall polls of the last hour, as an agent
            # with device profiles sends them, through the broker to the collector.
            polls = mains_failure_hour(datetime.now(UTC))
            async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                for seq, pair in enumerate(zip(polls[::2], polls[1::2], strict=True)):
                    await client.publish(POWER_TOPIC, wire.encode(wire.Telemetry(
                        agent=POWER_AGENT, site=SITE, seq=seq, polls=list(pair))), qos=1)
            await wait_for(lambda: count('SELECT count("code") FROM "power"') >= len(polls) // 2,
                           30, "the UPS's power readings")
            # A thin-link site's agent: its uplink saturated, profiles stretched x4.
            async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                await client.publish(THIN_STATUS, wire.encode(thin_status()), qos=1)
            await wait_for(lambda: count('SELECT count("stretch_factor") FROM "agent_status" '
                                         f"WHERE \"agent\" = '{THIN_AGENT}'") >= 1,
                           30, "the thin-link agent's status")
        # The agent stopped cleanly: its last status says offline, and why.
        await wait_for(lambda: count('SELECT count("reason") FROM "agent_status"') >= 1, 20,
                       "the agent's offline status")


@pytest.fixture(scope="module")
def filled(influxdb: lab.InfluxDB1, snmpsim: lab.SnmpSim, snmpd: lab.Snmpd,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A database filled by the real pipeline + encoder points; (db, now_ms)."""
    db = f"dash_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    tmp = tmp_path_factory.mktemp("dashboards")
    broker = lab.Mosquitto(tmp / "mosquitto")  # started only once the agent spools
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("T_DASH_IFX", lab.COMMUNITY_IFX)
            mp.setenv("T_DASH_IFTABLE", lab.COMMUNITY_IFTABLE_ONLY)
            mp.setenv("T_DASH_SNMPD", snmpd.community)
            asyncio.run(_fill_from_pipeline(tmp, influxdb, broker, snmpsim, snmpd, db))
    finally:
        broker.stop()
    now_ms = int(time.time() * 1000)
    influxdb.write(availability_lines(now_ms)
                   + outage_lines(outage_events(now_ms), PROVINCE), db=db, precision="ms")
    yield db, now_ms


# --------------------------------------------------------------------------
# running the panels


def run(influxdb: lab.InfluxDB1, db: str, q: str) -> list[dict[str, Any]]:
    """Series of the answer (``columns``, ``values``, ``tags``); raises on an error."""
    body = influxdb.query_raw(q, db=db, epoch="ms")
    series: list[dict[str, Any]] = []
    for result in body.get("results", []):
        assert "error" not in result, (q, result["error"])
        series.extend(result.get("series", []))
    return series


def has_data(series: list[dict[str, Any]]) -> bool:
    return any(v is not None for s in series for row in s["values"]
               for col, v in zip(s["columns"], row, strict=True) if col != "time")


VARIABLE_SETS: dict[str, dict[str, str | list[str]]] = {
    "all": {"province": PROVINCE, "commune": ALL, "site": ALL, "target": "99"},
    "one": {"province": PROVINCE, "commune": COMMUNE, "site": SITE, "target": "99.9"},
    "several": {"province": [PROVINCE], "commune": [COMMUNE, OTHER_COMMUNE],
                "site": [SITE, "bts-thuong-lam-02"], "target": "95"},
}


def test_template_variables_list_the_stored_values(
        influxdb: lab.InfluxDB1, filled: tuple[str, int]) -> None:
    db, now_ms = filled
    expected = {"province": {PROVINCE}, "commune": {COMMUNE}, "site": {SITE}}
    for name, d in dashboards().items():
        for v in d["templating"]["list"]:
            if v["type"] != "query":
                continue
            q = interpolate(v["query"], VARIABLE_SETS["one"], from_ms=0, to_ms=now_ms,
                            interval=DEFAULT_INTERVAL)
            got = {r["value"] for r in influxdb.query(q, db=db)}
            assert got == expected[v["name"]], (name, v["name"], q)


@pytest.mark.parametrize("variables", sorted(VARIABLE_SETS))
@pytest.mark.parametrize(("dashboard", "title"),
                         [(n, p["title"]) for n, p in all_panels()])
def test_panel_query_returns_data(influxdb: lab.InfluxDB1, filled: tuple[str, int],
                                  dashboard: str, title: str, variables: str) -> None:
    db, now_ms = filled
    panel = next(p for p in panels(dashboards()[dashboard]) if p["title"] == title)
    for t in panel["targets"]:
        q = interpolate(t["query"], VARIABLE_SETS[variables], from_ms=now_ms - 3_900_000,
                        to_ms=now_ms + 1000, interval=panel.get("interval") or DEFAULT_INTERVAL)
        assert has_data(run(influxdb, db, q)), f"no data for {dashboard} / {title}:\n{q}"


def _unit_of(panel: dict[str, Any], column: str) -> str | None:
    config = panel.get("fieldConfig") or {}
    unit: str | None = (config.get("defaults") or {}).get("unit")
    if panel["type"] == "table":
        for o in config.get("overrides") or []:
            if o["matcher"] == {"id": "byName", "options": column}:
                for prop in o["properties"]:
                    if prop["id"] == "unit":
                        unit = prop["value"]
    return unit


def _expected_unit(column: str) -> str | None:
    for suffix, unit in SUFFIX_UNITS.items():
        if column.endswith(suffix):
            return unit
    return None


def stored_keys(influxdb: lab.InfluxDB1, db: str, measurement: str
                ) -> tuple[set[str], dict[str, str]]:
    tags = {r["tagKey"] for r in influxdb.query(f'SHOW TAG KEYS FROM "{measurement}"', db=db)}
    fields = {r["fieldKey"]: r["fieldType"]
              for r in influxdb.query(f'SHOW FIELD KEYS FROM "{measurement}"', db=db)}
    return tags, fields


def test_fields_and_units_are_the_stored_ones(influxdb: lab.InfluxDB1,
                                              filled: tuple[str, int]) -> None:
    db, now_ms = filled
    schema: dict[str, tuple[set[str], dict[str, str]]] = {
        m: stored_keys(influxdb, db, m) for m in PIPELINE_MEASUREMENTS}
    # What the collector's encoders store is exactly the schema the panels are
    # checked against.
    for m, expected in ENCODER_SCHEMA.items():
        assert stored_keys(influxdb, db, m) == expected, m
        schema[m] = expected
    problems: list[str] = []
    for name, panel in all_panels():
        for t in panel["targets"]:
            q: str = t["query"]
            measurements = set(re.findall(r'FROM "(\w+)"', q))
            aliases = set(re.findall(r'AS "(\w+)"', q))
            known: set[str] = set(aliases)
            for m in measurements:
                if m not in schema:
                    problems.append(f"{name}/{panel['title']}: unknown measurement {m}")
                    continue
                known |= schema[m][0] | set(schema[m][1])
            for ident in set(re.findall(r'"(\w+)"', q)) - measurements:
                if ident not in known:
                    problems.append(f"{name}/{panel['title']}: {ident!r} is not stored in "
                                    f"{sorted(measurements)}")
            # Units: every column the panel gets, as InfluxDB names it.
            vq = interpolate(q, VARIABLE_SETS["all"], from_ms=now_ms - 3_900_000,
                             to_ms=now_ms + 1000,
                             interval=panel.get("interval") or DEFAULT_INTERVAL)
            columns = {c for s in run(influxdb, db, vq) for c in s["columns"]} - {"time"}
            for c in columns:
                want, got = _expected_unit(c), _unit_of(panel, c)
                if want is not None and got != want:
                    problems.append(f"{name}/{panel['title']}: column {c} shown in {got!r}, "
                                    f"stored in {want!r}")
                if want is None and got in SUFFIX_UNITS.values():
                    problems.append(f"{name}/{panel['title']}: column {c} (no unit) shown "
                                    f"in {got!r}")
    assert not problems, "\n".join(problems)


def test_kpis_compute_the_documented_numbers(influxdb: lab.InfluxDB1,
                                             filled: tuple[str, int]) -> None:
    """On the encoder points: fibre met 99 % in one commune of two; every
    broadband did; the mobile 4G unknown time is lost coverage, not down time;
    three outages are open, the two OLTs' apart."""
    db, now_ms = filled
    d = dashboards()["province-overview"]
    by_title = {p["title"]: p for p in panels(d)}

    def value(title: str) -> Any:
        q = interpolate(by_title[title]["targets"][0]["query"], VARIABLE_SETS["all"],
                        from_ms=now_ms - 3_900_000, to_ms=now_ms + 1000,
                        interval=DEFAULT_INTERVAL)
        (series,) = run(influxdb, db, q)
        return series["values"][0][1]

    assert value("Fibre: communes meeting target") == pytest.approx(50.0)
    assert value("Broadband: communes meeting target") == pytest.approx(100.0)
    assert value("Mobile: communes meeting target") == pytest.approx(100.0)
    assert value("Active outages") == 3
    assert value("Communes measured") == 2
    # fibre 00691 down 60 of 300 s; mobile_4g unknown 30 of 300 s, in both communes.
    assert value("Coverage") == pytest.approx(100 * (8 * 300 - 2 * 30) / (8 * 300))
    q = interpolate(by_title["Open outages"]["targets"][0]["query"], VARIABLE_SETS["all"],
                    from_ms=now_ms - 3_900_000, to_ms=now_ms + 1000, interval=DEFAULT_INTERVAL)
    open_ = sorted((s["tags"]["kind"], s["tags"]["device"]) for s in run(influxdb, db, q))
    assert open_ == [("agent_silent", ""), ("device_down", "olt-1"),
                     ("device_down", "olt-2")]


def test_power_panels_show_the_mains_failure(influxdb: lab.InfluxDB1,
                                             filled: tuple[str, int]) -> None:
    """On the hour the collector stored: the UPS is the one device on battery now, 40
    minutes left; its state went mains -> on battery; the temperatures are the firewall's
    four sensors by name and the UPS battery's; three input lines at 0 V now."""
    db, now_ms = filled
    by_title = {p["title"]: p for p in panels(dashboards()["power-environment"])}

    def series(title: str) -> list[dict[str, Any]]:
        q = interpolate(by_title[title]["targets"][0]["query"], VARIABLE_SETS["one"],
                        from_ms=now_ms - 3_900_000, to_ms=now_ms + 1000, interval="5m")
        return run(influxdb, db, q)

    (now,) = series("Sites on battery now")
    assert now["tags"] == {"commune": COMMUNE, "site": SITE, "device": "ups-1"}
    row = dict(zip(now["columns"], now["values"][0], strict=True))
    assert (row["state"], row["minutes_remaining"], row["charge_pct"], row["on_battery_s"]) \
        == ("on_battery", 40.0, 100.0, 600)
    (state,) = series("Power state")
    codes = [v for _, v in state["values"] if v is not None]
    assert codes[0] == 0 and codes[-1] == 1 and sorted(set(codes)) == [0, 1]
    assert {str(c) for c in codes} <= set(POWER_STATE[0].options)
    (minutes,) = series("Minutes remaining on battery")
    left = [v for _, v in minutes["values"] if v is not None]
    assert left[0] == 60.0 and left[-1] == 40.0 and left == sorted(left, reverse=True)
    temps = {(s["tags"]["device"], s["tags"]["metric"], s["tags"]["t_entity"])
             for s in series("Temperatures")}
    assert temps == {("ups-1", "battery_temperature", ""),
                     *(("fw-1", "sensor_value", f"Temperature @ {chip}")
                       for chip in ("10G Phys [U171]", "Jaguar [U172]", "Tiger [U173]",
                                    "Dune [U174]"))}
    volts = {s["tags"]["t_line"]: [v for _, v in s["values"] if v is not None][-1]
             for s in series("UPS input voltage")}
    assert volts == {"1.0": 0.0, "2.0": 0.0, "3.0": 0.0}


def test_power_state_colours_name_every_stored_code() -> None:
    assert {int(k): v.text for k, v in POWER_STATE[0].options.items()} == {
        code: state.replace("_", " ") for state, code in schema.POWER_CODES.items()}


def test_uplink_bytes_panels_show_the_thin_link_agent(influxdb: lab.InfluxDB1,
                                                      filled: tuple[str, int]) -> None:
    """The agent-health dashboard's bytes panels show what a saturated agent reported, and
    the real agent's own bytes (it sent live and backlog: its spool filled first)."""
    db, now_ms = filled
    board = dashboards()["agent-health"]

    def answer(title: str) -> dict[str, dict[str, float]]:
        panel = next(p for p in panels(board) if p["title"] == title)
        q = interpolate(panel["targets"][0]["query"], VARIABLE_SETS["one"],
                        from_ms=now_ms - 3_900_000, to_ms=now_ms + 1000,
                        interval=DEFAULT_INTERVAL)
        out: dict[str, dict[str, float]] = {}
        for series in run(influxdb, db, q):
            agent = series["tags"]["agent"]
            for row in series["values"]:
                for col, v in zip(series["columns"], row, strict=True):
                    if col != "time" and v is not None:
                        out.setdefault(agent, {})[col] = max(v, out.get(agent, {}).get(col, v))
        return out

    stretched = answer("Saturated uplink: profiles stretched, and by how much")
    assert stretched[THIN_AGENT] == {"profiles_stretched": 3, "stretch_factor": 4}
    assert stretched[AGENT]["stretch_factor"] == 1  # the lab agent keeps up
    assert answer("Backlog drain ETA")[THIN_AGENT] == {"drain_eta_s": 15.0}
    assert answer("Backlog to send (bytes)")[THIN_AGENT] == {"backlog_bytes": 120_000}
    per = answer("Bytes per poll and per interface sample (on the wire)")
    assert per[THIN_AGENT] == {"bytes_per_poll": 2_200.0, "bytes_per_interface": 220.0}
    assert per[AGENT]["bytes_per_poll"] > per[AGENT]["bytes_per_interface"] > 0
    # 1.0 while only JSON went (live polls); above once a compact backlog batch went
    assert answer("Compression ratio (JSON bytes / wire bytes)")[AGENT][
        "compression_ratio"] >= 1.0
    rates = answer("Uplink bytes/s: live, backlog, and the backlog's budget")[AGENT]
    assert rates["live_bytes_per_s"] > 0 and rates["budget_bytes_per_s"] > 0
