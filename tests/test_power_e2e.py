"""A mains failure through the real pipeline: telemetry with ``DevicePoll.power`` (as an
agent sends it) -> Mosquitto -> collector -> InfluxDB + Alertmanager (Debian's) -> a
webhook receiver (a local HTTP sink): every notification Alertmanager sends is kept.

Three sites in Xã Lâm Bình: the hub, and behind it BTS 01 (2G/4G, with a UPS) and BTS 02
(4G). Every 0.5 s each site publishes a poll of its devices; a device "stops answering"
as a dead one does (SNMP timeout, no ICMP echo).

* BTS 01's UPS goes on battery (40 min left): a warning within one poll; battery low
  (4 min): critical; then BTS 01 stops answering: one outage, ``cause = power``, carried
  by the critical power alert - no ``XanetSiteDown`` notification; the mains and the
  device back: everything resolved.
* BTS 02 down on mains, the hub up: ``cause = site``. The hub and BTS 02 down, the hub
  back first: BTS 02, which went down behind a down parent, ``cause = transmission``.
* The outage list read back from InfluxDB: BTS 01's outage is ``power``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

import lab
from collector.config import CollectorConfig
from collector.outagelist import render_table
from collector.readback import Filters, load, outage_list
from lab.fleet import collector_config
from tests.factories import LAM_BINH, inv_device, inv_site, inventory_toml
from tests.pipeline import publishing, running, start_collector, wait_for
from tests.test_alerting_e2e import TelegramStub
from xanet import wire
from xanet.inventory import load_inventory

POLL_S = 0.5
HOLD_S = 2.0
EMIT_S = 0.5
#: "within one poll": the poll, the collector's next evaluation, Alertmanager's group_wait
WARNING_BOUND_S = POLL_S + EMIT_S + 1.0 + 1.5

INVENTORY = inventory_toml(
    inv_site("hub", agent="agt-hub", name="Trung tâm", devices=[inv_device("rtr", "fibre")]),
    inv_site("bts-01", role="bts", parent="hub", name="BTS 01", agent="agt-bts-01",
             technologies=["2g", "4g"],
             devices=[inv_device("bts", "mobile_2g", "mobile_4g"), inv_device("ups")]),
    inv_site("bts-02", role="bts", parent="hub", name="BTS 02", agent="agt-bts-02",
             technologies=["4g"], devices=[inv_device("nb", "mobile_4g")]),
    communes=LAM_BINH,
)
DEVICES = {"hub": ("rtr",), "bts-01": ("bts", "ups"), "bts-02": ("nb",)}


def poll(device: str, ts: float, up: bool, power: wire.PowerReading | None) -> wire.DevicePoll:
    when = datetime.fromtimestamp(ts, UTC)
    if up:
        return wire.DevicePoll(device=device, ts=when, reachable=True, rtt_ms=2.0,
                               uptime_cs=1000, power=power)
    return wire.DevicePoll(device=device, ts=when, reachable=False, error="no answer",
                           cause="timeout", ping=wire.PingResult(sent=2, received=0))


class Sites:
    """Publishes each site's polls as its agent would; the test sets what they say."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seq = dict.fromkeys(DEVICES, 0)
        self.down: set[str] = set()  # devices that do not answer
        self.power = wire.PowerReading(state="mains", profile="ups-mib", charge_pct=100.0,
                                       seconds_on_battery=0)

    async def publish(self) -> None:
        now = time.time()
        for site, devices in DEVICES.items():
            self.seq[site] += 1
            msg = wire.Telemetry(agent=f"agt-{site}", site=site, seq=self.seq[site], polls=[
                poll(d, now, d not in self.down, self.power if d == "ups" else None)
                for d in devices])
            await self.client.publish(f"xanet/v1/08/02266/{site}/telemetry",
                                      wire.encode(msg), qos=1)

    async def live(self) -> None:
        while True:
            await self.publish()
            await asyncio.sleep(POLL_S)


async def test_mains_failure_is_one_incident_then_site_and_transmission_causes(
        tmp_path: Path, make_mosquitto: Callable[..., lab.Mosquitto], influxdb: lab.InfluxDB1,
        webhook_am: tuple[lab.Alertmanager, TelegramStub]) -> None:
    alertmanager, hook = webhook_am
    # its own broker: agents of other tests (same site ids) leave retained statuses and
    # Last Wills on the session's broker, which would read as a silent agent here
    mosquitto = make_mosquitto()
    db = f"power_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    (tmp_path / "inventory.toml").write_text(INVENTORY)
    cfg = collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=db,
        inventory={"path": str(tmp_path / "inventory.toml")},
        availability={"stale_after_s": 3.0, "bucket_s": 10.0, "emit_interval_s": EMIT_S},
        alerts={"url": alertmanager.url, "hold_down_s": HOLD_S, "clear_down_s": 1.5,
                "poll_interval_s": POLL_S, "root_wait_s": 1.0,
                "agent_silent_after_s": 60.0, "resend_interval_s": 2.0,
                "expire_after_s": 120.0, "retry_min_s": 0.2, "retry_max_s": 1.0,
                "state_path": str(tmp_path / "outages.json")})

    def active() -> list[dict[str, Any]]:
        return [a for a in alertmanager.alerts() if a["status"]["state"] == "active"]

    def active_names() -> list[tuple[str, str, str]]:
        return sorted((a["labels"]["alertname"], a["labels"]["site"], a["labels"]["severity"])
                      for a in active())

    def notified() -> set[tuple[str, str, str]]:
        """(status, alertname, site) of every alert Alertmanager notified about."""
        return {(a["status"], a["labels"]["alertname"], a["labels"]["site"])
                for m in hook.messages for a in m.get("alerts", [])}

    def outages(site: str) -> list[tuple[int, str, str]]:
        rows = influxdb.query(f'SELECT "open", "kind", "cause" FROM "outage" WHERE '
                              f'"site" = \'{site}\'', db=db, epoch="ms")
        return [(r["open"], r["kind"], r["cause"]) for r in rows]

    started = time.time()
    collector = start_collector(cfg)
    async with running(collector), publishing(mosquitto.port, Sites) as sites:
        await wait_for(collector.subscribed.is_set, 20, "collector subscribed")
        await wait_for(lambda: collector.polls >= 12, 20, "steady polling")
        assert active() == []
        # ------------------------------------------------ BTS 01: the mains fail
        sites.power = wire.PowerReading(state="on_battery", profile="ups-mib",
                                        minutes_remaining=40.0, charge_pct=97.0,
                                        seconds_on_battery=120)
        failed = time.time()
        [warning] = await wait_for(active, WARNING_BOUND_S + 5, "the warning")
        warned = time.time() - failed
        assert warned <= WARNING_BOUND_S, warned
        assert warning["labels"] == {
            "alertname": "XanetSiteOnBattery", "severity": "warning", "province": "08",
            "commune": "02266", "site": "bts-01", "service": "mobile_2g,mobile_4g"}
        en, vi = warning["annotations"]["summary_en"], warning["annotations"]["summary_vi"]
        assert en == "Xã Lâm Bình: BTS 01 on battery, 2G/4G at risk in ~40 min"
        assert vi == "Xã Lâm Bình: BTS 01 mất điện lưới, chạy ắc quy; 2G/4G có nguy cơ mất " \
                     "sau ~40 phút"
        texts = [en, vi]
        sites.power = wire.PowerReading(state="on_battery", profile="ups-mib",
                                        minutes_remaining=31.0, seconds_on_battery=700)
        await wait_for(lambda: "~31 min" in active()[0]["annotations"]["summary_en"], 10,
                       "the minutes updated in place")
        # ------------------------------------------------ battery low: critical
        sites.power = wire.PowerReading(state="battery_low", profile="ups-mib",
                                        minutes_remaining=4.0, seconds_on_battery=2400)
        await wait_for(lambda: active_names() == [("XanetSiteOnBattery", "bts-01",
                                                   "critical")], 10, "the critical")
        [critical] = active()
        texts += [critical["annotations"]["summary_en"], critical["annotations"]["summary_vi"]]
        assert texts[2] == "Xã Lâm Bình: BTS 01 battery low, 2G/4G at risk in ~4 min"
        # ------------------------------------------------ the batteries die
        sites.down = {"bts", "ups"}
        await wait_for(lambda: outages("bts-01")[:1] == [(1, "root", "power")], 20,
                       "the outage recorded, cause power")
        await wait_for(lambda: "down since" in active()[0]["annotations"]["summary_en"], 10,
                       "the critical says the site is down")
        await asyncio.sleep(HOLD_S + 2)  # the device's own hold-down and root wait too
        [down] = active()
        assert active_names() == [("XanetSiteOnBattery", "bts-01", "critical")]
        texts += [down["annotations"]["summary_en"], down["annotations"]["summary_vi"]]
        assert texts[4].startswith("Xã Lâm Bình: BTS 01 down since ")
        assert "power (on battery since" in texts[4] and texts[4].endswith("2G/4G lost")
        # ------------------------------------------------ the mains and the device back
        sites.power = wire.PowerReading(state="mains", profile="ups-mib", charge_pct=20.0,
                                        seconds_on_battery=0)
        sites.down = set()
        await wait_for(lambda: active() == [], 15, "all resolved")
        await wait_for(lambda: outages("bts-01") == [(1, "root", "power"),
                                                     (0, "root", "power")], 10,
                       "the outage closed")
        await wait_for(lambda: ("resolved", "XanetSiteOnBattery", "bts-01") in notified(),
                       10, "the resolved notification")
        assert {(s, n) for s, n, site in notified() if site == "bts-01"} == {
            ("firing", "XanetSiteOnBattery"), ("resolved", "XanetSiteOnBattery")}
        power_over = time.time()
        # ------------------------------------------------ BTS 02 down on mains: site
        sites.down = {"nb"}
        [alone] = await wait_for(active, 15, "BTS 02 down")
        assert (alone["labels"]["alertname"], alone["labels"]["cause"]) == (
            "XanetSiteDown", "site")
        assert alone["annotations"]["summary_en"].endswith("; cause: site")
        texts += [alone["annotations"]["summary_en"], alone["annotations"]["summary_vi"]]
        sites.down = set()
        await wait_for(lambda: active() == [], 15, "BTS 02 back")
        # ------------------------------------------------ behind a down hub: transmission
        sites.down = {"rtr", "nb"}
        [root] = await wait_for(active, 15, "the hub down")
        assert (root["labels"]["site"], root["labels"]["cause"]) == ("hub", "site")
        await wait_for(lambda: active()[0]["annotations"].get("children") == "bts-02", 10,
                       "BTS 02 behind it")
        sites.down = {"nb"}  # the hub is back first; BTS 02 stays down
        behind = await wait_for(
            lambda: [a for a in active() if a["labels"]["site"] == "bts-02"], 15,
            "BTS 02 alerted on its own")
        assert behind[0]["labels"]["cause"] == "transmission"
        texts += [behind[0]["annotations"]["summary_en"],
                  behind[0]["annotations"]["summary_vi"]]
        sites.down = set()
        await wait_for(lambda: active() == [], 15, "all back")
    assert {r[2] for r in outages("bts-02")} == {"site", "transmission"}
    # the outage list (xanet report outages, the monthly document) reads the cause back
    # (the window ends before the hub's cut: a parent dark within 2 min takes the row)
    window = (datetime.fromtimestamp(started - 60, UTC),
              datetime.fromtimestamp(power_over, UTC))
    inv = load_inventory(tmp_path / "inventory.toml")
    data = await asyncio.to_thread(load, CollectorConfig.model_validate(cfg), inv, *window,
                                   Filters(), alerts=True)
    listed = outage_list(data, inv, Filters())
    assert [(o.root, o.cause) for o in listed if o.root == "bts-01"] == [("bts-01", "power")]
    assert "mất điện" in render_table(listed, "vi", "Asia/Ho_Chi_Minh",
                                      (window[0].timestamp(), window[1].timestamp()))
    print("power e2e: warning {:.1f}s after the mains failed; texts:\n  {}".format(
        warned, "\n  ".join(texts)))
