"""Interface names that repeat on one device (no ifXTable, ifDescr twice with different
states): an inventory element never follows an arbitrary row. By name it is unknown
(``interface_ambiguous``, counted, logged once); with ``ifindex`` it follows that row."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import lab
from collector.availability import Observation, Unobserved
from collector.facts import INTERFACE_AMBIGUOUS, FactMapper
from lab import SimInterface, write_numeric_recording
from lab.fleet import agent_config, collector_config
from tests.factories import interface, inv_device, inv_site, inventory_data, inventory_toml
from tests.pipeline import rows, running, start_agent, start_collector, wait_for
from xanet import wire
from xanet.inventory import parse_inventory
from xanet.inventory.model import Element

TS = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
UP, DOWN = 1, 2


def mapper(*elements: dict[str, Any]) -> FactMapper:
    return FactMapper(parse_inventory(inventory_data(
        inv_site("hub-a", agent="agt-a", devices=[inv_device("rtr", *elements)]))))


def facts_of(m: FactMapper, rows: list[tuple[int, str, int | None]],
             **poll: Any) -> dict[str, object]:
    msg = wire.Telemetry(agent="agt-a", site="hub-a", seq=1, polls=[wire.DevicePoll(
        device="rtr", ts=TS, reachable=poll.pop("reachable", True), **poll,
        interfaces=[interface(index, name=name, oper=oper) for index, name, oper in rows])])
    out: dict[str, object] = {}
    for fact in m.telemetry_facts(msg):
        assert isinstance(fact, Observation | Unobserved)
        out[fact.element] = fact.state if isinstance(fact, Observation) else fact.reason
    return out


ETH0 = {"service": "fibre", "interface": "eth0"}
UPLINK = {"service": "fibre", "interface": "eth0-uplink", "ifindex": 2}
LAN = {"service": "broadband", "interface": "eth0-lan", "ifindex": 3}


@pytest.mark.parametrize(("rows", "want"), [
    # one eth0: found by name, as always
    ([(1, "lo", UP), (2, "eth0", DOWN)], {"hub-a/rtr/eth0": "down"}),
    # eth0 twice, up and down (either order): neither row decides
    ([(2, "eth0", UP), (3, "eth0", DOWN)], {"hub-a/rtr/eth0": INTERFACE_AMBIGUOUS}),
    ([(2, "eth0", DOWN), (3, "eth0", UP)], {"hub-a/rtr/eth0": INTERFACE_AMBIGUOUS}),
    # twice with the same state: still ambiguous (the next poll may differ)
    ([(2, "eth0", UP), (3, "eth0", UP), (4, "eth0", UP)],
     {"hub-a/rtr/eth0": INTERFACE_AMBIGUOUS}),
    # another name repeating does not touch eth0
    ([(2, "eth0", UP), (5, "tun", UP), (6, "tun", DOWN)], {"hub-a/rtr/eth0": "up"}),
])
def test_an_element_by_name(rows: list[tuple[int, str, int | None]],
                            want: dict[str, object]) -> None:
    assert facts_of(mapper(ETH0), rows) == want


@pytest.mark.parametrize(("rows", "want"), [
    ([(2, "eth0", UP), (3, "eth0", DOWN)],
     {"hub-a/rtr/eth0-uplink": "up", "hub-a/rtr/eth0-lan": "down"}),
    ([(2, "eth0", DOWN), (3, "eth0", UP)],
     {"hub-a/rtr/eth0-uplink": "down", "hub-a/rtr/eth0-lan": "up"}),
    # the row gone: no fact (interface_missing), never the other row
    ([(3, "eth0", UP)], {"hub-a/rtr/eth0-lan": "up"}),
    # testing (3): no fact, as by name
    ([(2, "eth0", 3), (3, "eth0", UP)], {"hub-a/rtr/eth0-lan": "up"}),
])
def test_an_element_by_ifindex(rows: list[tuple[int, str, int | None]],
                               want: dict[str, object]) -> None:
    assert facts_of(mapper(UPLINK, LAN), rows) == want


def test_a_down_device_is_down_whatever_its_names() -> None:
    rows = [(2, "eth0", UP), (3, "eth0", DOWN)]
    assert facts_of(mapper(ETH0, UPLINK), rows, reachable=False, cause="timeout") == {
        "hub-a/rtr/eth0": "down", "hub-a/rtr/eth0-uplink": "down"}
    assert facts_of(mapper(ETH0), rows, reachable=False, cause="auth") == {
        "hub-a/rtr/eth0": "monitoring_error:auth"}


def test_ambiguity_is_counted_at_every_poll_and_named_once() -> None:
    m = mapper(ETH0, {"service": "broadband", "interface": "eth0"})
    rows = [(2, "eth0", UP), (3, "eth0", DOWN)]
    facts_of(m, rows)
    assert m.take_new_ambiguous() == [("hub-a/rtr/eth0", "2, 3")]  # one key, two services
    facts_of(m, rows)
    assert m.take_new_ambiguous() == []
    assert m.counts.interface_ambiguous == 4  # two elements x two polls
    assert m.counts.interface_missing == 0


def test_ifindex_needs_a_name_and_a_valid_index() -> None:
    with pytest.raises(ValidationError, match="ifindex needs interface"):
        Element(site="s", device="d", service="fibre", ifindex=2)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Element(site="s", device="d", service="fibre",  # type: ignore[arg-type]
                interface="x", ifindex=0)
    assert Element(site="s", device="d", service="fibre",  # type: ignore[arg-type]
                   interface="x", ifindex=7).key == "s/d/x"


@pytest.mark.integration
async def test_duplicate_ifdescr_through_the_pipeline(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1, db: str,
    make_snmpsim: Callable[..., lab.SnmpSim], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A router without ifXTable whose ifDescr ``eth0`` names an up row (2) and a down row
    (3), through snmpsim → agent → Mosquitto → collector (inventory) → InfluxDB: the element
    by name is stored unknown (``interface_ambiguous``), those by ifindex follow their row."""
    sim = make_snmpsim({"dup": write_numeric_recording(tmp_path / "dup.snmprec", interfaces=[
        SimInterface(1, "lo", hc=False),
        SimInterface(2, "eth0", hc=False, oper_status=UP),
        SimInterface(3, "eth0", hc=False, oper_status=DOWN),
    ])})
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(inventory_toml(inv_site("hub-a", agent="agt-a", devices=[
        inv_device("rtr", ETH0, UPLINK, LAN)])))
    monkeypatch.setenv("T_DUP", "dup")
    agent = start_agent(agent_config(
        agent_id="agt-a", site="hub-a", commune="02266", province="08",
        mqtt_port=mosquitto.port, spool_path=tmp_path / "spool.sqlite3", interval_s=1.0,
        devices=[{"id": "rtr", "host": sim.host, "port": sim.port,
                  "snmp": {"version": "2c", "community": {"env": "T_DUP"}}}]))
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=f"c-{db}",
        inventory={"path": str(inventory)},
        availability={"stale_after_s": 3.0, "bucket_s": 10.0, "emit_interval_s": 0.5}))

    def states() -> dict[str, tuple[str, str | None]]:
        got = rows(influxdb, 'SELECT "element", "state", "reason" FROM "element_state"', db)
        return {r["element"]: (r["state"], r["reason"]) for r in got}

    caplog.set_level(logging.WARNING, logger="xanet.collector")
    async with running(collector, agent):
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        want = {
            "hub-a/rtr/eth0": ("unknown", INTERFACE_AMBIGUOUS),
            "hub-a/rtr/eth0-uplink": ("up", None),
            "hub-a/rtr/eth0-lan": ("down", None),
        }
        await wait_for(lambda: agent.health.polls_ok >= 3 and states() == want, 30,
                       "the three elements' states after three polls")
        assert collector.stats()["interfaces_ambiguous"] >= 3
    logged = [r.getMessage() for r in caplog.records if "several rows" in r.getMessage()]
    assert logged == ["element hub-a/rtr/eth0: its interface name is on several rows of the "
                      "poll (ifIndex 2, 3): unknown (interface_ambiguous) until the inventory "
                      "names its ifindex (docs/inventory.md)"]
