"""Two collectors, one partition: SIGKILL the owner under load, the standby owns it within
the bound and every poll is stored exactly once (issue 20; docs/deploy-core.md, "Two
collectors per partition (failover)").

Real processes (``xanet collector`` twice, a partition of province 08, keepalive 2 s), a
broker of the test's own (the lease is retained there, the partition's session persistent),
the session InfluxDB, an Alertmanager with a webhook. A publisher sends valid telemetry at
50 msg/s for three agents of the inventory, one of them reporting its router unreachable
(an outage open before the kill).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lab
from lab.failover import (
    Publisher,
    current_owner,
    member,
    owner_epochs,
    stored_from,
    stored_seqs,
)
from lab.programs import Subprogram
from tests.factories import inv_device, inv_site, inventory_toml
from tests.pipeline import wait_for
from tests.test_alerting_e2e import TelegramStub

KEEPALIVE_S = 2
#: The issue's bound (2 x keepalive) + 1 s of slack for a loaded CI machine. On loopback a
#: SIGKILLed owner's sockets are closed by the kernel, so the broker publishes its Will at
#: once and the failover takes well under a second (bench/failover.py); a dead host's Will
#: comes 1.5 x keepalive after its last packet.
BOUND_S = 2 * KEEPALIVE_S + 1.0
AGENTS = ["ag1", "ag2", "ag3"]
DOWN = "ag3"


def _tracebacks(log: str) -> list[str]:
    """The log's tracebacks, but for aiomqtt's (2.5.1) socket-registration callback on a
    socket the broker closed while the process was frozen: uvloop refuses ``add_writer``
    on it (a chained KeyError / RuntimeError) and asyncio logs the callback's error; the
    connection is gone either way."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    return [b for b in blocks if not ("uvloop" in b[:800] and "add_writer" in b[:800])]


def _firing(hook: TelegramStub, site: str, status: str) -> int:
    return sum(1 for m in hook.messages for a in m.get("alerts", [])
               if a["labels"].get("site") == site and a["status"] == status)


async def test_owner_sigkilled_under_load_standby_owns_within_bound_exactly_once(
    tmp_path: Path, make_mosquitto: Callable[..., lab.Mosquitto], influxdb: lab.InfluxDB1,
    db: str, webhook_am: tuple[lab.Alertmanager, TelegramStub],
) -> None:
    am, hook = webhook_am
    broker = make_mosquitto()
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(inventory_toml(*(
        inv_site(f"site-{a}", agent=a, devices=[inv_device("rtr-1", "fibre")])
        for a in AGENTS)))

    def start(name: str) -> Subprogram:
        return member(
            tmp_path, name, mqtt_port=broker.port, influx_url=influxdb.url, database=db,
            keepalive_s=KEEPALIVE_S, inventory={"path": str(inventory)},
            availability={"stale_after_s": 4.0, "bucket_s": 10.0, "emit_interval_s": 0.5},
            alerts={"url": am.url, "hold_down_s": 1.0, "clear_down_s": 3.0,
                    "poll_interval_s": 1.0, "root_wait_s": 0.0, "agent_silent_after_s": 20.0,
                    "resend_interval_s": 2.0, "expire_after_s": 120.0, "retry_min_s": 0.2,
                    "retry_max_s": 1.0, "state_path": str(tmp_path / f"outages-{name}.json")},
        ).start()

    a, b = start("core-a"), start("core-b")
    procs = [a, b]
    stop = asyncio.Event()
    pub = Publisher(broker.port, AGENTS, rate_per_s=50.0, down={DOWN})
    publisher: asyncio.Task[None] | None = None
    try:
        first = await wait_for(lambda: current_owner(procs), 15, "a first owner")
        await wait_for(lambda: "subscribed to" in first.log(), 10, "the owner subscribed")
        standby = b if first is a else a
        assert "owner at epoch" not in standby.log()
        publisher = asyncio.create_task(pub.run(stop))
        await wait_for(lambda: _firing(hook, f"site-{DOWN}", "firing"), 15,
                       "the outage alerted")
        await asyncio.sleep(1.0)  # under load
        killed_at, killed_wall = time.monotonic(), time.time()
        first.kill()
        probe = await wait_for(lambda: pub.first_sent_after(killed_at, "ag1") is not None,
                               5, "a poll sent after the kill", interval_s=0.02)
        seq = pub.first_sent_after(killed_at, "ag1")
        assert probe and seq is not None
        await wait_for(lambda: stored_from(influxdb, db, "ag1", seq), 15,
                       "the standby's first write", interval_s=0.05)
        first_write_s = time.monotonic() - killed_at
        took = owner_epochs(standby)
        assert took, standby.log()[-2000:]
        owned_s = took[-1][0] - killed_wall
        first.start()  # back, as the standby
        await wait_for(lambda: first.log().count("lease connection up") == 2, 10,
                       "the killed collector back as standby")
        await asyncio.sleep(2.0)  # the new owner under load, the outage still open
        stop.set()
        await publisher
        for agent in AGENTS:
            n = pub.published[agent]
            await wait_for(lambda agent=agent, n=n: len(stored_seqs(influxdb, db, agent)) >= n,
                           15, f"{agent}'s polls stored")
        # A clean stop (SIGTERM) releases the lease: the standby owns at once.
        owned_before = len(owner_epochs(first))
        assert standby.stop() == 0
        assert "lease released at epoch" in standby.log()
        await wait_for(lambda: len(owner_epochs(first)) > owned_before, 2 * KEEPALIVE_S,
                       "the standby owns after the release")
    finally:
        stop.set()
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher
        for p in procs:
            p.stop()
    print(f"failover: owner {owned_s:.2f} s, first write {first_write_s:.2f} s after the "
          f"SIGKILL (keepalive {KEEPALIVE_S} s)")
    # The standby owned the partition within the bound (see BOUND_S).
    assert owned_s <= BOUND_S and first_write_s <= BOUND_S + 1.0, (owned_s, first_write_s)
    # Every published poll stored exactly once (one point per seq; a redelivered message
    # writes the same point again, which InfluxDB keeps once).
    for agent in AGENTS:
        seqs = stored_seqs(influxdb, db, agent)
        twice = [s for s, k in Counter(seqs).items() if k > 1]
        assert not twice and set(seqs) == set(range(pub.published[agent])), agent
    # The standby wrote nothing before it owned the partition.
    rows: list[dict[str, Any]] = influxdb.query(
        'SELECT first("received") FROM "collector_stats" WHERE "collector" = '
        f"'{standby.config_path.stem}'", db=db, epoch="ms")
    assert rows and rows[0]["time"] / 1000 >= killed_wall - 0.5
    stats = influxdb.query('SELECT last("lease_epoch"), last("takeovers") FROM '
                           f"\"collector_stats\" WHERE \"collector\" = "
                           f"'{standby.config_path.stem}'", db=db)
    assert stats[0]["last"] == took[-1][1] and stats[0]["last_1"] == 1
    # The open outage: alerted once, never resolved in between, still firing in
    # Alertmanager after the takeover.
    assert _firing(hook, f"site-{DOWN}", "firing") >= 1
    assert _firing(hook, f"site-{DOWN}", "resolved") == 0
    active = [x for x in am.alerts() if x["labels"].get("site") == f"site-{DOWN}"
              and x["status"]["state"] == "active"]
    assert len(active) == 1, active
    notifications = [m for m in hook.messages
                     if any(x["labels"].get("site") == f"site-{DOWN}" for x in m["alerts"])]
    assert len(notifications) == 1, notifications  # one notification: no second alert
    assert "demoted" not in standby.log()  # the survivor never lost the lease
    assert "Traceback" not in a.log() + b.log()
    # The new owner restored the checkpoint before it subscribed (collector/continuity.py)
    # and went on where the killed one stopped:
    assert "restored checkpoint generation" in standby.log(), standby.log()[-2000:]
    # one outage for the down site: no second "open", no close (no false recovery) ...
    rows = influxdb.query('SELECT "open" FROM "outage" WHERE "site" = '
                          f"'site-{DOWN}'", db=db)
    assert [r["open"] for r in rows] == [1], rows
    # ... its alert started once: the same start in Alertmanager after the takeover ...
    [alerted] = [x for m in notifications for x in m["alerts"]
                 if x["labels"].get("site") == f"site-{DOWN}"]
    assert active[0]["startsAt"][:19] == alerted["startsAt"][:19], (active, alerted)
    # ... its element never read anything but down after the kill (nothing unknown) ...
    states = influxdb.query('SELECT "state" FROM "element_state" WHERE "site" = '
                            f"'site-{DOWN}' AND time > {int(killed_wall * 1e9)}", db=db)
    assert {r["state"] for r in states} <= {"down"}, states
    # ... and the sequence accounting continued: no phantom gap from the takeover.
    gaps = influxdb.query('SELECT last("seq_gaps") FROM "collector_stats" WHERE '
                          f"\"collector\" = '{standby.config_path.stem}'", db=db)
    assert gaps[0]["last"] == 0, gaps


async def test_frozen_owner_is_fenced_and_comes_back_as_standby(
    tmp_path: Path, make_mosquitto: Callable[..., lab.Mosquitto], influxdb: lab.InfluxDB1,
    db: str,
) -> None:
    """The owner frozen (SIGSTOP: a host that stops answering, its sockets open): the broker
    ends its session after 1.5 x keepalive, the standby owns; thawed, the old owner finds
    its lease expired, writes nothing more (fenced), and rejoins as the standby without
    touching the new owner's session. Every poll stored exactly once."""
    broker = make_mosquitto()
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(inventory_toml(*(
        inv_site(f"site-{a}", agent=a, devices=[inv_device("rtr-1", "fibre")])
        for a in AGENTS)))
    procs = [member(tmp_path, name, mqtt_port=broker.port, influx_url=influxdb.url,
                    database=db, keepalive_s=KEEPALIVE_S, inventory={"path": str(inventory)},
                    availability={"stale_after_s": 4.0, "bucket_s": 10.0,
                                  "emit_interval_s": 0.5}).start()
             for name in ("core-a", "core-b")]
    stop = asyncio.Event()
    pub = Publisher(broker.port, AGENTS, rate_per_s=50.0)
    publisher: asyncio.Task[None] | None = None
    frozen: Subprogram | None = None
    try:
        frozen = await wait_for(lambda: current_owner(procs), 15, "a first owner")
        await wait_for(lambda: "subscribed to" in frozen.log(), 10, "the owner subscribed")
        other = procs[1] if frozen is procs[0] else procs[0]
        publisher = asyncio.create_task(pub.run(stop))
        await asyncio.sleep(1.5)
        assert frozen.proc is not None
        frozen.proc.send_signal(signal.SIGSTOP)
        frozen_wall = time.time()
        await wait_for(lambda: owner_epochs(other), 6 * KEEPALIVE_S, "the standby owns")
        await asyncio.sleep(1.0)
        frozen.proc.send_signal(signal.SIGCONT)
        thawed = frozen.log().count("lease connection up")
        await wait_for(lambda: "demoted at epoch" in frozen.log(), 10, "the thawed demoted")
        await wait_for(lambda: frozen.log().count("lease connection up") > thawed, 10,
                       "the thawed one back on a fresh lease connection")
        await asyncio.sleep(1.0)
        stop.set()
        await publisher
        for agent in AGENTS:
            n = pub.published[agent]
            await wait_for(lambda agent=agent, n=n: len(stored_seqs(influxdb, db, agent)) >= n,
                           15, f"{agent}'s polls stored")
        log_frozen, log_other = frozen.log(), other.log()  # before the stops hand it over
    finally:
        stop.set()
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher
        if frozen is not None and frozen.proc is not None and frozen.proc.poll() is None:
            frozen.proc.send_signal(signal.SIGCONT)
        for p in procs:
            p.stop()
    for agent in AGENTS:
        seqs = stored_seqs(influxdb, db, agent)
        assert sorted(seqs) == list(range(pub.published[agent])), agent
    # Fenced: past its deadline (the last acknowledged renewal + 1 keepalive, at most
    # 1 keepalive after the freeze) it wrote no stats (nor availability: same check).
    late = influxdb.query('SELECT count("received") FROM "collector_stats" WHERE '
                          f"\"collector\" = '{frozen.config_path.stem}' AND "
                          f"time > {int((frozen_wall + KEEPALIVE_S) * 1e9)}", db=db)
    assert not late, late
    # Back as the standby: it saw the new owner renew and claimed nothing; the new owner
    # kept its session (never taken over) and was never demoted.
    after_thaw = log_frozen.split("demoted at epoch")[-1]
    assert f"held by {other.config_path.stem}" in after_thaw
    assert "claiming epoch" not in after_thaw
    assert "demoted" not in log_other and "data session ended" not in log_other
    assert _tracebacks(log_frozen + log_other) == []
