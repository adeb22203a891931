"""Split brain (issue 20): the active collector cut from the broker by nftables while it can
still write InfluxDB and reach Alertmanager - the case where two collectors could both
believe they own a partition.

Collector A runs inside a network namespace; everything it talks to (the broker, InfluxDB,
Alertmanager, all on 127.0.0.1 of the root namespace) it reaches through relays in a second
namespace ("core", lab/netns.py) over a veth pair. Collector B, the standby, runs in the root
namespace. Agents publish telemetry to the broker throughout. The cut is an nftables drop, in
"core", of A's packets to the broker's relay only: A keeps InfluxDB and Alertmanager.

What must hold (docs/deploy-core.md, "Two collectors per partition"): A demotes itself
(fenced) before B can take the lease over; B takes it and the partition's session; after the
heal A stays standby and B owner; every published poll is stored exactly once; no monitoring
fault reads as one: no agent-silent alert, no unknown or down state written while A is cut
(what an unfenced A, seeing no data, would write).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import lab
from lab.failover import Publisher, member, owner_epochs
from lab.netns import Lab, lab_skip_reason
from lab.programs import Subprogram
from tests.factories import inv_device, inv_site, inventory_toml
from tests.pipeline import wait_for
from tests.test_alerting_e2e import TelegramStub

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(lab_skip_reason() is not None, reason=lab_skip_reason() or ""),
]

KEEPALIVE_S = 2
AGENTS = ["a1", "a2", "a3"]
CUT_S = 4 * KEEPALIVE_S  # long enough for the lease to move, and a bit


@pytest.fixture
def netlab() -> Iterator[Lab]:
    with Lab() as the_lab:
        yield the_lab


def stats(influxdb: lab.InfluxDB1, db: str, collector: str) -> dict[str, Any]:
    """The newest collector_stats of ``collector`` (what it says of its lease)."""
    rows = influxdb.query(f'SELECT LAST(*) FROM "collector_stats" WHERE '
                          f'"collector" = \'{collector}\'', db=db)
    return {k.removeprefix("last_"): v for k, v in rows[0].items()} if rows else {}


def demoted_at(proc: Subprogram) -> list[str]:
    return [ln for ln in proc.log().splitlines() if "demoted" in ln or "fenced" in ln]


async def test_a_collector_cut_from_the_broker_fences_itself_and_nothing_doubles(
        tmp_path: Path, netlab: Lab, make_mosquitto: Callable[..., lab.Mosquitto],
        influxdb: lab.InfluxDB1, webhook_am: tuple[lab.Alertmanager, TelegramStub]) -> None:
    alertmanager, hook = webhook_am
    broker = make_mosquitto()  # its own: the partition's session and lease are its alone
    db = f"split_{int(time.time() * 1000) % 10**9}"
    influxdb.create_database(db)
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(inventory_toml(*(
        inv_site(f"site-{a}", agent=a, name=f"Site {a}", devices=[inv_device("rtr-1", "fibre")])
        for a in AGENTS)))
    # A inside "a"; its broker, InfluxDB and Alertmanager through relays in "core"
    a_ns, core = netlab.netns("a"), netlab.netns("core")
    _, core_ip = netlab.link(a_ns, core)
    am_port = int(alertmanager.url.rsplit(":", 1)[1])
    for port in (broker.port, influxdb.port, am_port):
        netlab.relay_to_root(core, port, bind=core_ip)

    def sections(host: str) -> dict[str, dict[str, Any]]:
        return {"inventory": {"path": str(inventory)},
                "availability": {"stale_after_s": 6.0, "bucket_s": 10.0,
                                 "emit_interval_s": 0.5},
                "alerts": {"url": f"http://{host}:{am_port}", "hold_down_s": 2.0,
                           "agent_silent_after_s": 6.0, "poll_interval_s": 0.5,
                           "state_path": str(tmp_path / f"outages-{host}.json")}}

    a = member(tmp_path, "coll-a", mqtt_port=broker.port, database=db,
               influx_url=f"http://{core_ip}:{influxdb.port}", keepalive_s=KEEPALIVE_S,
               mqtt={"host": core_ip}, **sections(core_ip))
    a.prefix = a_ns.wrap([])
    b = member(tmp_path, "coll-b", mqtt_port=broker.port, database=db,
               influx_url=influxdb.url, keepalive_s=KEEPALIVE_S, **sections("127.0.0.1"))
    publisher = Publisher(broker.port, AGENTS, rate_per_s=30.0)
    stop = asyncio.Event()
    try:
        a.start()
        await wait_for(lambda: owner_epochs(a), 20, "A owns the partition")
        # the partition's session exists from its first subscription on (before it, the
        # broker queues nothing for it: the first start of a partition, as of any collector)
        await wait_for(lambda: "subscribed to" in a.log(), 20, "A subscribed")
        b.start()
        pub = asyncio.create_task(publisher.run(stop))
        await wait_for(lambda: stats(influxdb, db, "coll-a").get("polls", 0) >= 60, 20,
                       "A stores polls")
        # ---------------------------------------------------------- the cut
        cut = time.time()
        core.drop(proto="tcp", dport=broker.port)
        await wait_for(lambda: owner_epochs(b), 6 * KEEPALIVE_S, "B takes the lease over")
        [(b_owned, b_epoch)] = owner_epochs(b)
        assert b_epoch > owner_epochs(a)[-1][1]
        assert demoted_at(a), a.log()[-3000:]
        await asyncio.sleep(max(0.0, cut + CUT_S - time.time()))
        # ---------------------------------------------------------- the heal
        core.undrop()
        await asyncio.sleep(3 * KEEPALIVE_S)
        assert len(owner_epochs(a)) == 1, "A took the lease back after the heal"
        assert owner_epochs(b) == [(b_owned, b_epoch)], "B lost the lease after the heal"
        stop.set()
        await pub
        # ---------------------------------------------------------- what is stored
        def stored() -> dict[str, int]:
            rows = influxdb.query('SELECT COUNT("up") FROM "device" GROUP BY "agent"',
                                  db=db)
            return {r["agent"]: r["count"] for r in rows} if rows and "agent" in rows[0] \
                else {}
        try:
            await wait_for(lambda: stored() == publisher.published, 20,
                           "every published poll stored")
        finally:
            # exactly once: none lost, none doubled
            assert stored() == publisher.published
        # no monitoring fault read as one, from either side of the cut
        states = influxdb.query('SELECT "state" FROM "element_state"', db=db)
        assert {r["state"] for r in states} <= {"up"}, states
        assert not [m for m in hook.messages
                    for al in m.get("alerts", [])], hook.messages
        assert alertmanager.alerts() == []
    finally:
        stop.set()
        for proc in (a, b):
            proc.stop()
