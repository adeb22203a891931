"""A mains failure through the whole real pipeline (issue 17): snmpsim serving the real EAST
iStars UPS recording (lab/upssim.py: on mains, on battery, battery low, switched by
restarting the simulator) and the site's BTS router (snmpsim, its own port) -> the real
agent polling the UPS with the ``ups-mib`` profile and the router as always -> Mosquitto
-> the real collector -> InfluxDB + Alertmanager (Debian's) -> a webhook receiver (a local
HTTP sink keeping every notification).

One BTS site, BTS 01 in Xã Lâm Bình (2G/4G on its router; the UPS a device of the site
with no elements). Polls every second; hold-down 2 s.

* mains -> on battery: the warning ``XanetSiteOnBattery`` (commune, site, 2G/4G, ~40 min)
  within one poll of the simulator serving it;
* battery low: critical, ~4 min;
* the batteries die (the UPS and the router stop answering): one outage, ``cause =
  power``, carried by the critical power alert - no ``XanetSiteDown``/``XanetDeviceDown``
  page;
* the mains back (both answer, the UPS on mains): everything resolved, the outage closed;
* InfluxDB holds the ``power`` states and the ``profile`` values the variants carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest

import lab
from lab import SimInterface, UpsSim, write_numeric_recording
from lab.fleet import agent_config, collector_config
from tests.factories import LAM_BINH, inv_device, inv_site, inventory_toml
from tests.pipeline import running, start_agent, start_collector, wait_for
from tests.test_alerting_e2e import TelegramStub, freeze, thaw

pytestmark = pytest.mark.integration

INTERVAL_S = 1.0
HOLD_S = 2.0
EMIT_S = 0.5
#: "within one poll" of the simulator serving the new state: the poll, the collector's
#: next evaluation, the post to Alertmanager, and slack for a shared CPU
WARNING_BOUND_S = INTERVAL_S + EMIT_S + 2.5
SITE = "bts-01"

INVENTORY = inventory_toml(
    inv_site(SITE, role="bts", name="BTS 01", agent="agt-bts-01", technologies=["2g", "4g"],
             devices=[inv_device("bts", "mobile_2g", "mobile_4g"), inv_device("ups")]),
    communes=LAM_BINH,
)





@pytest.fixture
def sims(tmp_path: Path, make_snmpsim: Callable[..., lab.SnmpSim]
         ) -> Iterator[tuple[UpsSim, lab.SnmpSim]]:
    """The site's UPS (on mains) and its BTS router, each on its own port."""
    router = make_snmpsim({"bts": write_numeric_recording(
        tmp_path / "bts.snmprec", sys_descr="BTS 01 router (simulated)",
        interfaces=[SimInterface(1, "ge-0/0/0")])})
    with UpsSim(tmp_path / "ups") as ups:
        try:
            yield ups, router
        finally:
            with contextlib.suppress(ProcessLookupError):
                thaw(router)


@contextlib.asynccontextmanager
async def background(coro: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    task = asyncio.create_task(coro)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def dedup(values: list[Any]) -> list[Any]:
    """Runs of one value as one."""
    return [k for k, _ in groupby(values)]


async def test_mains_failure_through_snmpsim_agent_collector_and_alertmanager(
        tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1,
        webhook_am: tuple[lab.Alertmanager, TelegramStub], sims: tuple[UpsSim, lab.SnmpSim],
        monkeypatch: pytest.MonkeyPatch) -> None:
    alertmanager, hook = webhook_am
    ups, router = sims
    monkeypatch.setenv("T_MAINS_BTS", "bts")
    monkeypatch.setenv("T_MAINS_UPS", ups.community)
    db = f"mains_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    (tmp_path / "inventory.toml").write_text(INVENTORY)
    collector = start_collector(collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp_path / "dead", collector_id=db,
        inventory={"path": str(tmp_path / "inventory.toml")},
        availability={"stale_after_s": 4 * INTERVAL_S, "bucket_s": 10.0,
                      "emit_interval_s": EMIT_S},
        alerts={"url": alertmanager.url, "hold_down_s": HOLD_S, "clear_down_s": 1.5,
                "poll_interval_s": INTERVAL_S, "root_wait_s": 1.0,
                "agent_silent_after_s": 60.0, "resend_interval_s": 2.0,
                "expire_after_s": 120.0, "retry_min_s": 0.2, "retry_max_s": 1.0,
                "state_path": str(tmp_path / "outages.json")}))
    agent = start_agent(agent_config(
        agent_id="agt-bts-01", site=SITE, commune="02266", province="08",
        mqtt_port=mosquitto.port, spool_path=tmp_path / "spool.sqlite3",
        interval_s=INTERVAL_S, polling={"jitter": 0.0},
        devices=[
            # the router: the default profiles (its interfaces)
            {"id": "bts", "host": router.host, "port": router.port,
             "snmp": {"version": "2c", "community": {"env": "T_MAINS_BTS"}}},
            # the UPS: the power profile only
            {"id": "ups", "host": ups.host, "port": ups.port, "profiles": ["ups-mib"],
             "snmp": {"version": "2c", "community": {"env": "T_MAINS_UPS"}}},
        ]))

    def active() -> list[dict[str, Any]]:
        return [a for a in alertmanager.alerts() if a["status"]["state"] == "active"]

    def active_names() -> list[tuple[str, str, str]]:
        return sorted((a["labels"]["alertname"], a["labels"]["site"], a["labels"]["severity"])
                      for a in active())

    def notified() -> list[tuple[str, str, str]]:
        """(status, alertname, severity) of every alert Alertmanager notified about."""
        return [(a["status"], a["labels"]["alertname"], a["labels"]["severity"])
                for m in hook.messages for a in m.get("alerts", [])]

    def query(q: str) -> list[dict[str, Any]]:
        return influxdb.query(q, db=db, epoch="ms")

    def outages() -> list[tuple[int, str, str]]:
        return [(r["open"], r["kind"], r["cause"]) for r in query(
            f'SELECT "open", "kind", "cause" FROM "outage" WHERE "site" = \'{SITE}\'')]

    def element_up() -> bool:  # the router's one element (its services 2G and 4G)
        rows = query('SELECT last("code") FROM "element_state" GROUP BY "element"')
        return [(r["element"], r["last"]) for r in rows] == [(f"{SITE}/bts", 1)]

    def power_states() -> list[str]:
        return [r["state"] for r in query('SELECT "state" FROM "power" WHERE "device" = '
                                          '\'ups\'')]

    def first_read(state: str) -> float | None:
        """When the agent's first poll that read the UPS in ``state`` ran (epoch s)."""
        rows = query(f'SELECT "state" FROM "power" WHERE "device" = \'ups\' AND "state" = '
                     f'\'{state}\' LIMIT 1')
        return rows[0]["time"] / 1000 if rows else None

    #: every (alertname, site, severity) active in Alertmanager, when first seen there
    seen: dict[tuple[str, str, str], float] = {}

    def watch() -> list[tuple[str, str, str]]:
        names = active_names()
        now = time.time()
        for name in names:
            seen.setdefault(name, now)
        return names

    async def sample() -> None:  # every 0.1 s, also while the simulator restarts: the
        while True:              # latencies, and an alert too short to be notified
            await asyncio.to_thread(watch)
            await asyncio.sleep(0.1)

    async with running(collector, agent), background(sample()):
        await wait_for(lambda: element_up() and "mains" in power_states(), 40,
                       "BTS 01 up, on mains")
        assert watch() == []
        # ------------------------------------------------ the mains fail
        failed = time.time()
        await asyncio.to_thread(ups.switch, "on_battery")
        # the simulator answers "on battery" from now on (it may have done so sooner:
        # switch() returns when its readiness probe, whose first GET is lost to the
        # restart and times out after 2 s, is answered)
        served = time.time()
        [warning] = await wait_for(active, WARNING_BOUND_S + 10, "the warning", 0.1)
        warned = seen.get(("XanetSiteOnBattery", SITE, "warning"), time.time())
        assert warned - served <= WARNING_BOUND_S, warned - served
        read: float = await wait_for(lambda: first_read("on_battery"), 5, "on_battery stored")
        # the next poll read it (one sent into the restart may have timed out first)
        assert read - served <= INTERVAL_S + 1.0, read - served
        assert warning["labels"] == {
            "alertname": "XanetSiteOnBattery", "severity": "warning", "province": "08",
            "commune": "02266", "site": SITE, "service": "mobile_2g,mobile_4g"}
        texts = [warning["annotations"]["summary_en"], warning["annotations"]["summary_vi"]]
        assert texts == ["Xã Lâm Bình: BTS 01 on battery, 2G/4G at risk in ~40 min",
                         "Xã Lâm Bình: BTS 01 mất điện lưới, chạy ắc quy; 2G/4G có nguy cơ "
                         "mất sau ~40 phút"]
        assert warning["annotations"]["minutes_remaining"] == "40"
        await wait_for(lambda: ("firing", "XanetSiteOnBattery", "warning") in notified(), 10,
                       "the warning notified")
        paged = time.time()
        # ------------------------------------------------ battery low: critical
        low = time.time()
        await asyncio.to_thread(ups.switch, "battery_low")
        low_served = time.time()
        await wait_for(lambda: ("XanetSiteOnBattery", SITE, "critical") in watch(),
                       WARNING_BOUND_S + 10, "the critical", 0.1)
        critical_at = seen[("XanetSiteOnBattery", SITE, "critical")]
        await wait_for(lambda: watch() == [("XanetSiteOnBattery", SITE, "critical")], 10,
                       "the warning resolved")
        assert critical_at - low_served <= WARNING_BOUND_S, critical_at - low_served
        low_read: float = await wait_for(lambda: first_read("battery_low"), 5,
                                         "battery_low stored")
        assert low_read - low_served <= INTERVAL_S + 1.0, low_read - low_served
        [critical] = active()
        texts += [critical["annotations"]["summary_en"], critical["annotations"]["summary_vi"]]
        assert texts[2] == "Xã Lâm Bình: BTS 01 battery low, 2G/4G at risk in ~4 min"
        assert "ắc quy yếu" in texts[3] and "~4 phút" in texts[3]
        # ------------------------------------------------ the batteries die: both go dark
        dark = time.time()
        ups.stop_answering()
        freeze(router)
        await wait_for(lambda: outages()[:1] == [(1, "root", "power")], 20,
                       "the outage recorded, cause power")
        recorded = time.time()
        await wait_for(lambda: "down since" in active()[0]["annotations"]["summary_en"], 10,
                       "the critical says the site is down")
        await asyncio.sleep(HOLD_S + 2)  # the device's hold-down and the root wait too
        assert watch() == [("XanetSiteOnBattery", SITE, "critical")]
        [down] = active()
        texts += [down["annotations"]["summary_en"], down["annotations"]["summary_vi"]]
        assert texts[4].startswith("Xã Lâm Bình: BTS 01 down since ")
        assert "power (on battery since" in texts[4] and texts[4].endswith("2G/4G lost")
        # ------------------------------------------------ the mains back
        back = time.time()
        thaw(router)
        ups.answer()
        await asyncio.to_thread(ups.switch, "mains")
        await wait_for(lambda: watch() == [], 20, "all resolved")
        resolved = time.time()
        await wait_for(lambda: outages() == [(1, "root", "power"), (0, "root", "power")], 10,
                       "the outage closed")
        await wait_for(lambda: ("resolved", "XanetSiteOnBattery", "critical") in notified(),
                       10, "the resolved notification")
        await wait_for(lambda: dedup(power_states())[-1:] == ["mains"], 10, "mains stored")
    # one incident, one alert: the power alert paged (warning, critical, resolved), nothing
    # else - no XanetSiteDown, no XanetDeviceDown, ever active or notified
    assert set(seen) == {("XanetSiteOnBattery", SITE, "warning"),
                         ("XanetSiteOnBattery", SITE, "critical")}
    assert set(notified()) == {("firing", "XanetSiteOnBattery", "warning"),
                               ("resolved", "XanetSiteOnBattery", "warning"),
                               ("firing", "XanetSiteOnBattery", "critical"),
                               ("resolved", "XanetSiteOnBattery", "critical")}
    # what InfluxDB holds: the UPS's power states and profile values as the variants say
    power = [(r["state"], r["minutes_remaining"], r["charge_pct"], r["seconds_on_battery"])
             for r in query('SELECT "state", "minutes_remaining", "charge_pct", '
                            '"seconds_on_battery" FROM "power" WHERE "device" = \'ups\'')]
    # A poll that caught the simulator restarting (sysUpTime answered, the profile's GET
    # timed out) says "unknown": true, and never the last word; the states between are
    # exactly the variants'.
    unknown = [p for p in power if p[0] == "unknown"]
    assert len(unknown) <= 3 and power[-1][0] != "unknown", power
    assert dedup([p for p in power if p[0] != "unknown"]) == [
        ("mains", 0, 100, 0), ("on_battery", 40, 90, 120), ("battery_low", 4, 12, 2400),
        ("mains", 0, 100, 0)]

    def profile(metric: str) -> list[Any]:
        return dedup([r["value"] if r["value"] is not None else r["text"] for r in query(
            'SELECT "value", "text" FROM "profile" WHERE "device" = \'ups\' AND "profile" = '
            f'\'ups-mib\' AND "metric" = \'{metric}\'')])

    assert profile("minutes_remaining") == [0, 40, 4, 0]
    assert profile("charge_remaining") == [100, 90, 12, 100]
    assert profile("seconds_on_battery") == [0, 120, 2400, 0]
    assert profile("output_source") == ["normal", "battery", "normal"]
    assert profile("battery_status") == ["batteryNormal", "batteryLow", "batteryNormal"]
    print(f"mains failure e2e: on battery: the agent's first poll reading it started "
          f"{read - failed:.1f}s after the switch began (switch() returned after "
          f"{served - failed:.1f}s); the warning active in Alertmanager {warned - read:.1f}s "
          f"after that poll started, {warned - failed:.1f}s after the switch began; notified "
          f"(webhook) {paged - failed:.1f}s. Battery low: first poll {low_read - low:.1f}s "
          f"after the switch began (switch() {low_served - low:.1f}s); the critical active "
          f"{critical_at - low_read:.1f}s after that poll, {critical_at - low:.1f}s after the "
          f"switch began. Both dark: the outage (cause power) recorded {recorded - dark:.1f}s "
          f"later; the mains back: all resolved {resolved - back:.1f}s later. Texts:\n  "
          + "\n  ".join(texts))
