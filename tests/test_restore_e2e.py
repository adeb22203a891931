"""A partition's new owner goes on from its checkpoint: Mosquitto (its own), InfluxDB,
Alertmanager (Debian's) with a webhook receiver that keeps every notification.

Two sites publish a poll every 0.5 s as their agents would. Collector A (partition
``p1``: the checkpoint is on) sees BTS 01 go down: one outage, alerted. A stops
acknowledging (a collector dying in the middle of its writes), receives a few more
rounds, writes one more checkpoint, and is dropped without its stop path (no last
checkpoint, no save: a SIGKILL in-process; the lease slice's test kills real
processes). Polls go on meanwhile (queued in the partition's session). Collector B -
another state_path, empty - starts on the same InfluxDB and broker session (the
members of a partition share one data session: here one ``[collector] id``): it
restores A's checkpoint before it subscribes, gets the re-delivered and the queued
messages, and:

* the outage stays one open outage: Alertmanager saw one alert, notified once, no
  resolved in between; no agent was found silent;
* the re-delivered messages the checkpoint had seen are duplicates, no sequence gap;
* BTS 01 comes back: the outage closes once (one resolved, one ``open`` 0 point).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import lab
from lab.fleet import collector_config
from tests.factories import LAM_BINH, inv_device, inv_site, inventory_toml
from tests.pipeline import publishing, start_collector, wait_for
from tests.test_alerting_e2e import TelegramStub
from xanet import wire

POLL_S = 0.5
INVENTORY = inventory_toml(
    inv_site("hub", agent="agt-hub", name="Trung tâm", devices=[inv_device("rtr", "fibre")]),
    inv_site("bts-01", role="bts", name="BTS 01", agent="agt-bts-01", technologies=["4g"],
             devices=[inv_device("nb", "mobile_4g")]),
    communes=LAM_BINH,
)
SITES = {"hub": "rtr", "bts-01": "nb"}


class Sites:
    """Each site's poll every ``POLL_S``, numbered as its agent numbers them."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seq = dict.fromkeys(SITES, 0)
        self.down: set[str] = set()

    async def live(self) -> None:
        while True:
            now = datetime.now(UTC)
            for site, device in SITES.items():
                self.seq[site] += 1
                up = site not in self.down
                poll = (wire.DevicePoll(device=device, ts=now, reachable=True, rtt_ms=2.0,
                                        uptime_cs=1000) if up else
                        wire.DevicePoll(device=device, ts=now, reachable=False,
                                        error="no answer", cause="timeout",
                                        ping=wire.PingResult(sent=2, received=0)))
                msg = wire.Telemetry(agent=f"agt-{site}", site=site, seq=self.seq[site],
                                     sent=now, polls=[poll])
                await self.client.publish(f"xanet/v1/08/02266/{site}/telemetry",
                                          wire.encode(msg), qos=1)
            await asyncio.sleep(POLL_S)


async def test_a_new_owner_goes_on_from_the_checkpoint_no_second_alert_no_false_recovery(
        tmp_path: Path, make_mosquitto: Callable[..., lab.Mosquitto], influxdb: lab.InfluxDB1,
        webhook_am: tuple[lab.Alertmanager, TelegramStub],
        caplog: pytest.LogCaptureFixture) -> None:
    alertmanager, hook = webhook_am
    mosquitto = make_mosquitto()  # its own: the session and retained messages are the test's
    db = f"restore_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    (tmp_path / "inventory.toml").write_text(INVENTORY)

    def config(member: str) -> dict[str, Any]:
        return collector_config(
            mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
            dead_letter_dir=tmp_path / member / "dead", collector_id="p1-data",
            partition={"id": "p1"}, state={"checkpoint_interval_s": 1.0},
            inventory={"path": str(tmp_path / "inventory.toml")},
            availability={"stale_after_s": 5.0, "bucket_s": 10.0, "emit_interval_s": 0.5},
            alerts={"url": alertmanager.url, "hold_down_s": 1.5, "clear_down_s": 1.5,
                    "poll_interval_s": POLL_S, "root_wait_s": 0.5,
                    "agent_silent_after_s": 6.0, "resend_interval_s": 2.0,
                    "expire_after_s": 120.0, "retry_min_s": 0.2, "retry_max_s": 1.0,
                    "state_path": str(tmp_path / member / "outages.json")})

    def notified() -> list[tuple[str, str, str]]:
        """(status, alertname, site) of every alert of every notification, in order."""
        return [(a["status"], a["labels"]["alertname"], a["labels"]["site"])
                for m in hook.messages for a in m.get("alerts", [])]

    def site_down_alerts() -> list[dict[str, Any]]:
        return [a for a in alertmanager.alerts()
                if a["labels"]["alertname"] == "XanetSiteDown"
                and a["status"]["state"] == "active"]

    def outage_points() -> list[int]:
        return [r["open"] for r in influxdb.query(
            "SELECT \"open\" FROM \"outage\" WHERE \"site\" = 'bts-01' AND \"kind\" = 'root'",
            db=db, epoch="ms")]

    started = time.monotonic()
    a = start_collector(config("a"))
    stop_a = asyncio.Event()
    run_a = asyncio.create_task(a.run(stop_a))
    async with publishing(mosquitto.port, Sites) as sites:
        await wait_for(a.subscribed.is_set, 20, "A subscribed")
        await wait_for(lambda: a.polls >= 6, 10, "A polling")
        sites.down = {"bts-01"}
        [alert] = await wait_for(site_down_alerts, 10, "BTS 01's outage alerted")
        assert alert["labels"]["site"] == "bts-01"
        assert a.continuity is not None
        await wait_for(lambda: ("firing", "XanetSiteDown", "bts-01") in notified(), 10,
                       "the notification")
        written = a.continuity.written
        await wait_for(lambda: a.continuity is not None and a.continuity.written > written,
                       5, "A's checkpoint with the outage")
        # A dies in the middle of its writes: what it receives now it never acknowledges
        a.mqtt.settle = lambda ticket: None  # type: ignore[method-assign]
        received = a.received
        await wait_for(lambda: a.received >= received + 4, 5, "A receiving, not acking")
        unacked = a.acks.unacked  # received, stored or not, never acknowledged
        assert unacked >= 4
        written = a.continuity.written  # the next checkpoint has them as seen
        await wait_for(lambda: a.continuity is not None and a.continuity.written > written,
                       5, "A's checkpoint after them")
        run_a.cancel()  # no stop path: no last checkpoint, no save, no drain
        with contextlib.suppress(asyncio.CancelledError):
            await run_a
        assert not (tmp_path / "b").exists()
        await asyncio.sleep(1.0)  # polls published meanwhile wait in the session

        caplog.set_level(logging.INFO, logger="xanet.collector.continuity")
        b = start_collector(config("b"))
        assert b.alerting is not None and b.alerting.core.open_outages() == {}
        stop_b = asyncio.Event()
        run_b = asyncio.create_task(b.run(stop_b))
        try:
            await wait_for(b.subscribed.is_set, 20, "B subscribed")
            [restored] = [r.getMessage() for r in caplog.records
                          if r.getMessage().startswith("restored checkpoint")]
            # the site's outage, alerted, and its device's, covered by it (not alerted)
            # and each element's deciding facts (its last poll before A's last emit, and
            # any after it): two elements, two or more facts
            m = re.search(r"of partition p1 from \S+: 2 open outages, 2 agents, (\d+) facts "
                          r"\(written by collector p1-data\)$", restored)
            assert m is not None and int(m.group(1)) >= 2, restored
            assert sorted((r.unit, r.alerted) for r in b.alerting.core.records()) == [
                ("device:bts-01/nb", False), ("site:bts-01", True)]
            await wait_for(lambda: b.sequences.duplicates >= unacked, 10,
                           "the re-delivered messages, duplicates")
            await wait_for(lambda: b.polls >= 8, 10, "B polling")
            assert (b.stats()["seq_gaps"], b.stats()["seq_resumed"]) == (0, 0)
            assert b.stats()["alerts_opened"] <= 1  # the restored outage re-announced at most
            await asyncio.sleep(2 * POLL_S + 1.0)  # evaluations, re-posts, group_interval
            [same] = site_down_alerts()
            assert (same["labels"], same["startsAt"]) == (alert["labels"], alert["startsAt"])
            assert notified().count(("firing", "XanetSiteDown", "bts-01")) == 1
            assert not [n for n in notified() if n[0] == "resolved"], "a false recovery"
            assert not [n for n in notified() if n[1] == "XanetAgentSilent"]
            # ------------------------------------------------- BTS 01 back
            sites.down = set()
            await wait_for(lambda: ("resolved", "XanetSiteDown", "bts-01") in notified(),
                           15, "the outage closed")
            await wait_for(lambda: outage_points() == [1, 0], 5, "one open, one close")
            assert notified().count(("resolved", "XanetSiteDown", "bts-01")) == 1
            assert b.stats()["alerts_resolved"] == 1
            assert not [n for n in notified() if n[1] == "XanetAgentSilent"]
        finally:
            stop_b.set()
            await asyncio.wait_for(run_b, 30)
    assert b.stats()["seq_gaps"] == 0
    assert time.monotonic() - started < 40
