"""Declared maintenance through the real pipeline: ``xanet maintenance`` (the CLI itself)
-> InfluxDB + Alertmanager silences; crafted telemetry -> Mosquitto -> collector ->
InfluxDB + Alertmanager -> a webhook receiver (a local HTTP sink).

Two sites in two communes, both fibre hubs; every 0.5 s each publishes a poll of its
router, which stops answering (SNMP timeout, no ICMP echo either) when the test says so.

* History: hub-a was down for a minute and this was stored as downtime; a window over
  the middle 20 s of it is then declared after the fact: the stored roll-ups are
  rewritten (those 20 s become ``maintenance_s``, the rest stays downtime).
* Live: a window from now on hub-a, both routers go down: hub-b is alerted and notified,
  hub-a is not (and the silence Alertmanager holds matches hub-a's alert labels); ``list``
  shows the window, ``end`` ends it and expires the silence; then hub-a's down is
  downtime again and it is alerted.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

import lab
from collector.availability import Change, normalize, summarize
from collector.outages import alert_topology, site_unit
from lab.fleet import collector_config, to_toml
from tests.factories import LAM_BINH_THUONG_LAM, inv_device, inv_site, inventory_toml
from tests.pipeline import publishing, running, start_collector, wait_for
from tests.test_alerting_e2e import TelegramStub
from xanet import cli, wire
from xanet.inventory import load_inventory

INVENTORY = inventory_toml(
    inv_site("hub-a", agent="agt-hub-a", devices=[inv_device("rtr-1", "fibre")]),
    inv_site("hub-b", "02269", agent="agt-hub-b", devices=[inv_device("rtr-1", "fibre")]),
    communes=LAM_BINH_THUONG_LAM,
)

COMMUNE = {"hub-a": "02266", "hub-b": "02269"}
POLL_S = 0.5
HOLD_S = 2.0
BUCKET_S = 10.0

AM_CONFIG = """
route:
  receiver: hook
  group_by: [alertname, site]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}/hook
        send_resolved: false
"""


def _poll(ts: float, up: bool) -> wire.DevicePoll:
    when = datetime.fromtimestamp(ts, UTC)
    if up:
        return wire.DevicePoll(device="rtr-1", ts=when, reachable=True, rtt_ms=2.0,
                               uptime_cs=1000)
    return wire.DevicePoll(device="rtr-1", ts=when, reachable=False, error="no answer",
                           cause="timeout", ping=wire.PingResult(sent=2, received=0))


class Sites:
    """Publishes each site's router polls as its agent would (one poll per message)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seq = {"hub-a": 0, "hub-b": 0}
        self.up = {"hub-a": True, "hub-b": True}

    async def publish(self, site: str, ts: float, up: bool) -> None:
        self.seq[site] += 1
        msg = wire.Telemetry(agent=f"agt-{site}", site=site, seq=self.seq[site],
                             polls=[_poll(ts, up)])
        await self.client.publish(f"xanet/v1/08/{COMMUNE[site]}/{site}/telemetry",
                                  wire.encode(msg), qos=1)

    async def live(self) -> None:
        while True:
            now = time.time()
            for site, up in self.up.items():
                await self.publish(site, now, up)
            await asyncio.sleep(POLL_S)


def xanet(*argv: str) -> tuple[int, str, str]:
    """``xanet ARGV`` in-process (in a worker thread: it runs its own event loop)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def get_silence(am: lab.Alertmanager, silence_id: str) -> dict[str, Any]:
    r = httpx.get(f"{am.url}/api/v2/silence/{silence_id}", timeout=10.0)
    r.raise_for_status()
    out: dict[str, Any] = r.json()
    return out


def _iso(ts: float, offset_h: int = 0) -> str:
    return datetime.fromtimestamp(ts, timezone(timedelta(hours=offset_h))).isoformat()


@pytest.fixture
def am(make_alertmanager: Callable[..., lab.Alertmanager]) -> Any:
    with TelegramStub() as hook:  # any HTTP sink that answers 200 keeps the posts
        yield make_alertmanager(AM_CONFIG.format(url=hook.url)), hook


async def test_maintenance_window_no_downtime_no_alert_then_ended(
        tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1,
        am: tuple[lab.Alertmanager, TelegramStub]) -> None:
    alertmanager, hook = am
    db = f"maint_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    (tmp_path / "inventory.toml").write_text(INVENTORY)
    cfg = collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=db,
        inventory={"path": str(tmp_path / "inventory.toml")},
        availability={"stale_after_s": 3.0, "bucket_s": BUCKET_S, "emit_interval_s": 0.5,
                      "maintenance_reload_s": 1.0},
        alerts={"url": alertmanager.url, "hold_down_s": HOLD_S, "clear_down_s": 2.0,
                "poll_interval_s": POLL_S, "root_wait_s": 0.0,
                "agent_silent_after_s": 60.0, "resend_interval_s": 2.0,
                "expire_after_s": 120.0, "retry_min_s": 0.2, "retry_max_s": 1.0,
                "state_path": str(tmp_path / "outages.json")})
    config = tmp_path / "collector.toml"
    config.write_text(to_toml(cfg))
    conf = ("--config", str(config))

    def q(influxql: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = influxdb.query(influxql, db=db, epoch="ms")
        return rows

    def rollups(t0: float, t1: float, commune: str = "02266") -> tuple[float, float]:
        rows = q(f'SELECT sum("down_s"), sum("maintenance_s") FROM "availability" WHERE '
                 f'"commune" = \'{commune}\' AND time >= {round(t0 * 1000)}ms AND '
                 f'time < {round(t1 * 1000)}ms')
        return (rows[0]["sum"], rows[0]["sum_1"]) if rows else (math.nan, math.nan)

    def service_timeline(commune: str) -> list[Change]:
        rows = q(f'SELECT "state" FROM "service_state" WHERE "commune" = \'{commune}\'')
        return normalize((r["time"] / 1000.0, r["state"]) for r in rows)

    def hooked(site: str) -> list[dict[str, Any]]:
        """Notifications about the collector's alerts for ``site`` (the probe posted below
        has no annotations)."""
        return [a for m in hook.messages for a in m.get("alerts", [])
                if a["labels"].get("site") == site and a.get("annotations")]

    started = time.monotonic()
    collector = start_collector(cfg)
    async with running(collector), publishing(mosquitto.port, Sites) as sites:
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        # ---------------------------------------------- history, window declared late
        b = math.floor(time.time() / BUCKET_S) * BUCKET_S
        for k in range(30):  # hub-a down from b-120 to b-60 (polls every 2 s)
            await sites.publish("hub-a", b - 120 + 2 * k, up=False)
        await wait_for(lambda: rollups(b - 120, b - 60) == (60.0, 0.0), 20,
                       "a minute of downtime stored")
        code, out, err = await asyncio.to_thread(
            xanet, "maintenance", "add", *conf, "--site", "hub-a",
            "--start", _iso(b - 100, 7), "--end", _iso(b - 80), "--reason", "thay module quang",
            "--who", "noc-test")
        assert code == 0, err
        assert "no silence: the window is already over" in out
        await wait_for(lambda: rollups(b - 120, b - 60) == (40.0, 20.0), 20,
                       "the roll-ups rewritten")
        tl = service_timeline("02266")
        assert (Change(b - 100, "maintenance") in tl and Change(b - 80, "down") in tl), tl

        # ---------------------------------------------------------- live window
        code, out, err = await asyncio.to_thread(
            xanet, "maintenance", "add", *conf, "--site", "hub-a", "--start", "now",
            "--for", "2h", "--reason", "bảo dưỡng định kỳ", "--who", "noc-test")
        assert code == 0, err
        window_id, silence_id = out.split()[0], out.splitlines()[1].split()[1]
        live_start = time.time()
        await wait_for(lambda: collector.maintenance is not None
                       and window_id in collector.maintenance.windows, 10, "window loaded")
        sites.up.update({"hub-a": False, "hub-b": False})
        await wait_for(lambda: hooked("hub-b"), HOLD_S + 12, "hub-b notified")
        await asyncio.sleep(1.0)  # one more group interval: hub-a would have come by now
        assert hooked("hub-a") == []
        assert not [a for a in alertmanager.alerts() if a["labels"].get("site") == "hub-a"]
        # the silence exists and matches what the collector would post for hub-a
        silence = await asyncio.to_thread(get_silence, alertmanager, silence_id)
        assert silence["status"]["state"] == "active"
        assert {(m["name"], m["value"]) for m in silence["matchers"]} == {
            ("province", "08"), ("site", "hub-a")}
        assert silence["createdBy"] == "noc-test" and window_id in silence["comment"]
        labels = dict(alert_topology(load_inventory(tmp_path / "inventory.toml"))
                      .units[site_unit("hub-a")].labels)
        now = time.time()
        alertmanager.post_alerts([{"labels": labels, "startsAt": _iso(now),
                                   "endsAt": _iso(now + 1)}])
        [probe] = [a for a in alertmanager.alerts() if a["labels"] == labels]
        assert probe["status"]["silencedBy"] == [silence_id]

        code, out, err = await asyncio.to_thread(xanet, "maintenance", "list", *conf)
        assert code == 0, err
        [row] = [ln for ln in out.splitlines() if ln.startswith(window_id)]
        assert row.split()[1:4] == ["active", "site", "hub-a"] and "noc-test" in row
        code, out, _ = await asyncio.to_thread(xanet, "maintenance", "list", *conf, "--all")
        assert len([ln for ln in out.splitlines() if ln.startswith("mw-")]) == 2
        assert " over " in out

        code, _, err = await asyncio.to_thread(xanet, "maintenance", "end", *conf, "mw-nope")
        assert code == 2 and "no maintenance window 'mw-nope'" in err
        await asyncio.sleep(max(0.0, 3.5 - (time.time() - live_start)))  # > the hold-down
        code, out, err = await asyncio.to_thread(xanet, "maintenance", "end", *conf, window_id)
        live_end = time.time()
        assert code == 0, err
        assert f"silence {silence_id} expired" in out
        silence = await asyncio.to_thread(get_silence, alertmanager, silence_id)
        assert silence["status"]["state"] == "expired"

        # after the window hub-a's down is downtime again, and alerted
        [fired] = await wait_for(lambda: hooked("hub-a"), HOLD_S + 12, "hub-a notified")
        alerted = time.time()
        assert fired["labels"]["alertname"] == "XanetSiteDown"
        assert alerted - live_end >= HOLD_S - 0.1  # the hold-down counts from the end
    elapsed = time.monotonic() - started
    tl = service_timeline("02266")
    during = summarize(tl, live_start + 1.0, live_end - 0.5)
    assert during.down_s == 0 and during.maintenance_s > 2.0, tl
    after = summarize(tl, live_end + 0.2, alerted)
    assert after.down_s > 0 and after.maintenance_s == 0, tl
    assert summarize(service_timeline("02269"), live_start + 2.0, live_end).down_s > 2.0
    outages = q('SELECT "open", "maintenance", "site" FROM "outage"')
    assert {r["site"] for r in outages} == {"hub-a", "hub-b"}
    assert not any(r["maintenance"] for r in outages)
    print(f"maintenance e2e: history rewritten (40 s down + 20 s maintenance of 60 s); "
          f"live window {live_end - live_start:.1f}s with hub-a down: 0 s downtime, no "
          f"alert; hub-a alerted {alerted - live_end:.1f}s after the end; {elapsed:.1f}s")
