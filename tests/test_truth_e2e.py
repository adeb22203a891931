"""Truth in the field, end to end (issue 13, collector side): telemetry crafted as an agent
sends it (poll cause and ICMP witness set) goes through the real Mosquitto to the real
collector, InfluxDB and Alertmanager running deploy/alertmanager/alertmanager.yml (re-pointed
at a local SMTP sink).

* Monitoring faults - wrong SNMPv3 auth key, wrong priv key, unknown user (USM reports:
  cause ``auth``), wrong v2c community and SNMP filtered while the host answers ping
  (timeout + echo answered: ``snmp_silent``), unresolvable host (``resolve``): 0 s
  downtime, ``unknown`` with the right reason, exactly one ``XanetMonitoringBroken`` per
  device on the NOC monitoring route, no outage alert; a host really unreachable (timeout,
  echo unanswered) for a known time: downtime equal within one poll, one outage alert on
  the operators' route.
* A collector restarted with a live and a silent agent (retained statuses in Mosquitto):
  no alert from the stale retained status, "silent since" within one status interval of
  the agent's last real sign of life.

The agent itself in network namespaces, with real snmpd faults, is the lead's test after
the merge (lab/netns.py, tests/netns.py on the ``poll`` branch); here the agent's side is crafted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import lab
from collector.app import Collector
from collector.availability import normalize, summarize
from lab.fleet import collector_config
from tests.factories import inv_device, inv_site, inventory_toml
from tests.pipeline import running, start_collector, wait_for
from tests.test_alerting_e2e import TelegramStub, am_config
from xanet import topics, wire

POLL_S = 1.0
HOLD_S = 3.0
CLEAR_S = 2.0
COMMUNE = "02266"
SITE = "hub-a"
ANSWERED = wire.PingResult(sent=3, received=3, rtt_ms=2.5)
UNANSWERED = wire.PingResult(sent=3, received=0)

#: device -> (cause, error text, echo) of its failed polls, and the reason expected
FAULTS: dict[str, tuple[wire.PollCause, str, wire.PingResult | None, str]] = {
    "v3-auth-key": ("auth", "usmStatsWrongDigests", ANSWERED, "auth"),
    "v3-priv-key": ("auth", "usmStatsDecryptionErrors", ANSWERED, "auth"),
    "v3-user": ("auth", "usmStatsUnknownUserNames", ANSWERED, "auth"),
    "v2c-community": ("timeout", "no SNMP answer", ANSWERED, "snmp_silent"),
    "snmp-filtered": ("timeout", "no SNMP answer", ANSWERED, "snmp_silent"),
    "no-dns": ("resolve", "no-dns.example.invalid: name does not resolve", None, "resolve"),
}
DOWN_DEVICE = "olt-down"


def inventory(province: str, sites: dict[str, tuple[str, list[str]]]) -> str:
    """sites: id -> (agent, devices); the first device of a site carries its fibre."""
    return inventory_toml(
        *(inv_site(site, COMMUNE, "other", agent=agent,
                   devices=[inv_device(dev, "fibre" if i == 0 else "broadband")
                            for i, dev in enumerate(devices)])
          for site, (agent, devices) in sites.items()),
        communes={COMMUNE: "Xã Lâm Bình"}, province={"code": province, "name": "Test"})


@pytest.fixture
def telegram() -> Iterator[TelegramStub]:
    with TelegramStub() as stub:
        yield stub


@contextlib.asynccontextmanager
async def publisher(port: int) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"t-{uuid.uuid4().hex[:8]}") as c:
        yield c


async def publish(client: aiomqtt.Client, province: str, site: str,
                  msg: wire.Telemetry | wire.Status) -> None:
    kind = "telemetry" if isinstance(msg, wire.Telemetry) else "status"
    await client.publish(topics.build(province, COMMUNE, site, kind), wire.encode(msg), qos=1,
                         retain=kind == "status")


def now_utc() -> datetime:
    return datetime.now(UTC)


class AlertLog:
    """Every alert Alertmanager held while the test ran (polled), by label set."""

    def __init__(self, am: lab.Alertmanager) -> None:
        self.am = am
        self.seen: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}

    async def run(self) -> None:
        while True:
            for a in await asyncio.to_thread(self.am.alerts):
                self.seen.setdefault(tuple(sorted(a["labels"].items())), a)
            await asyncio.sleep(0.3)

    def labels(self) -> list[dict[str, str]]:
        return [dict(k) for k in self.seen]


def collector_cfg(tmp: Path, province: str, inv: str, mosquitto: lab.Mosquitto,
                  influxdb: lab.InfluxDB1, db: str, am: lab.Alertmanager,
                  **alerts: Any) -> dict[str, Any]:
    (tmp / "inventory.toml").write_text(inv)
    return collector_config(
        mqtt_port=mosquitto.port, influx_url=influxdb.url, database=db,
        dead_letter_dir=tmp / "dead", collector_id=db,
        collector={"province": province},
        inventory={"path": str(tmp / "inventory.toml")},
        availability={"stale_after_s": 4 * POLL_S, "bucket_s": 10.0, "emit_interval_s": 0.5},
        alerts={"url": am.url, "hold_down_s": HOLD_S, "clear_down_s": CLEAR_S,
                "poll_interval_s": POLL_S, "agent_silent_after_s": 10.0,
                "resend_interval_s": 2.0, "expire_after_s": 120.0, "retry_min_s": 0.2,
                "retry_max_s": 1.0, "state_path": str(tmp / "outages.json"), **alerts})


def element_summary(influxdb: lab.InfluxDB1, db: str, element: str, start: float,
                    end: float) -> tuple[Any, set[str]]:
    rows = influxdb.query(f'SELECT "state", "reason" FROM "element_state" WHERE "element" = '
                          f"'{element}'", db=db, epoch="ms")
    changes = normalize((r["time"] / 1000, r["state"]) for r in rows)
    return summarize(changes, start, end), {r["reason"] for r in rows if r.get("reason")}


async def test_monitoring_faults_are_unknown_with_one_noc_alert_and_a_real_cut_is_down(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1,
    make_alertmanager: Callable[..., lab.Alertmanager], smtp_sink: lab.SmtpSink,
    telegram: TelegramStub,
) -> None:
    province = f"t{uuid.uuid4().hex[:6]}"
    db = f"truth_{province}"
    influxdb.create_database(db)
    am = make_alertmanager(am_config(smtp_sink, telegram))
    devices = ["rtr-ok", DOWN_DEVICE, *FAULTS]
    cfg = collector_cfg(tmp_path, province, inventory(province, {SITE: ("agt-a", devices)}),
                        mosquitto, influxdb, db, am)
    collector = start_collector(cfg)
    alerts = AlertLog(am)
    ticks, cut_from, cut_to, fixed_at = 16, 3, 9, 10  # polls; faults until fixed_at
    down_polls: list[float] = []
    async with running(collector):
        await wait_for(lambda: collector.subscribed.is_set(), 20, "collector subscribed")
        watcher = asyncio.create_task(alerts.run())
        start = time.time()
        async with publisher(mosquitto.port) as client:
            await publish(client, province, SITE, wire.Status(
                agent="agt-a", site=SITE, state="online", ts=now_utc()))
            for k in range(ticks):
                ts = now_utc()
                polls = [wire.DevicePoll(device="rtr-ok", ts=ts, reachable=True, rtt_ms=1.0,
                                         ping=ANSWERED)]
                if cut_from <= k < cut_to:  # really unreachable: neither witness answers
                    down_polls.append(ts.timestamp())
                    polls.append(wire.DevicePoll(device=DOWN_DEVICE, ts=ts, reachable=False,
                                                 error="no SNMP answer", cause="timeout",
                                                 ping=UNANSWERED))
                else:
                    polls.append(wire.DevicePoll(device=DOWN_DEVICE, ts=ts, reachable=True,
                                                 rtt_ms=1.0, ping=ANSWERED))
                for dev, (cause, error, ping, _) in FAULTS.items():
                    polls.append(
                        wire.DevicePoll(device=dev, ts=ts, reachable=False, error=error,
                                        cause=cause, ping=ping) if k < fixed_at else
                        wire.DevicePoll(device=dev, ts=ts, reachable=True, rtt_ms=1.0,
                                        ping=ping))
                await publish(client, province, SITE, wire.Telemetry(
                    agent="agt-a", site=SITE, seq=k, sent=ts, polls=polls))
                await asyncio.sleep(max(0.0, start + (k + 1) * POLL_S - time.time()))
            end = time.time()
            # every alert resolved (clear-down after the fix and after the cut)
            await wait_for(lambda: not [a for a in am.alerts()
                                        if a["status"]["state"] == "active"],
                           15, "all alerts resolved")
        watcher.cancel()

        def routed() -> set[tuple[str, str]]:
            return {(str(m["To"]), str(m["Subject"]).split("] ")[1].split(" ")[0])
                    for m in smtp_sink.messages()}

        want_routes = {("monitoring@example.invalid", "XanetMonitoringBroken"),
                       ("noc@example.invalid", "XanetDeviceDown")}
        await wait_for(lambda: routed() >= want_routes, 15, "the e-mails")
        await asyncio.sleep(1.5)  # anything misrouted would be here by now
    # exactly one monitoring alert per faulty device, one outage alert, nothing else
    got = sorted((a["alertname"], a.get("device", ""), a.get("cause", ""), a["severity"])
                 for a in alerts.labels())
    want = sorted([("XanetDeviceDown", DOWN_DEVICE, "site", "major")] + [
        ("XanetMonitoringBroken", dev, f[3], "warning") for dev, f in FAULTS.items()])
    assert got == want
    # the NOC's monitoring team gets the monitoring faults, operators the outage
    assert routed() == want_routes, routed()
    # availability: a monitoring fault is never downtime; a real cut is
    for dev, (_, _, _, reason) in FAULTS.items():
        s, reasons = element_summary(influxdb, db, f"{SITE}/{dev}", start, end)
        assert s.down_s == 0.0, dev
        assert s.unknown_s >= fixed_at * POLL_S - 1.5, (dev, s)
        assert reasons == {f"monitoring_error:{reason}"}, (dev, reasons)
    s, _ = element_summary(influxdb, db, f"{SITE}/{DOWN_DEVICE}", start, end)
    injected = (cut_to - cut_from) * POLL_S
    assert abs(s.down_s - injected) <= POLL_S, (s.down_s, injected)
    assert s.outages == 1
    outages = influxdb.query('SELECT "open", "kind", "device" FROM "outage"', db=db)
    assert [(r["open"], r["kind"], r["device"]) for r in outages] == [
        (1, "device_down", DOWN_DEVICE), (0, "device_down", DOWN_DEVICE)]
    # the ICMP witness is stored with the poll
    rows = influxdb.query('SELECT "cause", "ping_received", "ping_loss_pct", "ping_rtt_ms" '
                          'FROM "device" WHERE "device" = \'snmp-filtered\' LIMIT 1', db=db)
    assert rows[0]["cause"] == "timeout" and rows[0]["ping_received"] == 3
    assert rows[0]["ping_loss_pct"] == 0.0 and rows[0]["ping_rtt_ms"] == 2.5
    print(f"monitoring faults: {len(FAULTS)} devices, 0.0 s downtime each, one "
          f"XanetMonitoringBroken each (monitoring@); real cut: injected {injected:.1f} s, "
          f"measured {s.down_s:.2f} s down, one XanetDeviceDown (noc@)")


async def test_restart_stale_retained_status_is_no_sign_of_life(
    tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1,
    make_alertmanager: Callable[..., lab.Alertmanager], smtp_sink: lab.SmtpSink,
    telegram: TelegramStub,
) -> None:
    """agt-live keeps talking (status every STATUS_S, telemetry every poll); agt-gone
    stops 3 s in without a Last Will (its retained "online" stays at the broker). The
    collector is stopped, and started again 3 s later."""
    status_s, silent_s, hold_s = 2.0, 4.0, 2.0
    province = f"t{uuid.uuid4().hex[:6]}"
    db = f"truth_{province}"
    influxdb.create_database(db)
    am = make_alertmanager(am_config(smtp_sink, telegram))
    inv = inventory(province, {"site-live": ("agt-live", ["rtr-1"]),
                               "site-gone": ("agt-gone", ["rtr-1"])})

    def collector() -> Collector:
        return start_collector(collector_cfg(tmp_path, province, inv, mosquitto, influxdb, db,
                                             am, agent_silent_after_s=silent_s,
                                             hold_down_s=hold_s))

    alerts = AlertLog(am)
    last_life: float | None = None
    stop_agents = asyncio.Event()

    async def agent(client: aiomqtt.Client, name: str, site: str, until: float | None) -> None:
        nonlocal last_life
        seq, next_status = 0, 0.0
        while not stop_agents.is_set() and (until is None or time.time() < until):
            ts = now_utc()
            if time.time() >= next_status:
                await publish(client, province, site, wire.Status(
                    agent=name, site=site, state="online", ts=ts))
                next_status = time.time() + status_s
            await publish(client, province, site, wire.Telemetry(
                agent=name, site=site, seq=seq, sent=ts, polls=[wire.DevicePoll(
                    device="rtr-1", ts=ts, reachable=True, rtt_ms=1.0)]))
            if until is not None:
                last_life = ts.timestamp()
            seq += 1
            await asyncio.sleep(POLL_S / 2)

    async with publisher(mosquitto.port) as client:
        t0 = time.time()
        first = collector()
        async with running(first):
            await wait_for(lambda: first.subscribed.is_set(), 20, "collector subscribed")
            live = asyncio.create_task(agent(client, "agt-live", "site-live", None))
            gone = asyncio.create_task(agent(client, "agt-gone", "site-gone", t0 + 3.0))
            await gone
            await asyncio.sleep(max(0.0, t0 + 4.0 - time.time()))
        assert first.alerting is not None and first.alerting.core.liveness()
        await asyncio.sleep(3.0)  # the collector is down; agt-live goes on (queued for it)
        second = collector()
        restarted = time.time()
        watcher = asyncio.create_task(alerts.run())
        async with running(second):
            [silent] = await wait_for(
                lambda: [a for a in am.alerts() if a["status"]["state"] == "active"],
                silent_s + hold_s + 10, "the agent-silent alert")
            seen = time.time()
            await asyncio.sleep(3.0)  # long enough for a wrong alert about agt-live
            stop_agents.set()
            await live
        watcher.cancel()
    assert last_life is not None
    assert silent["labels"]["alertname"] == "XanetAgentSilent"
    assert silent["labels"]["agent"] == "agt-gone"
    starts = datetime.fromisoformat(silent["startsAt"].replace("Z", "+00:00")).timestamp()
    assert abs(starts - last_life) <= status_s, (starts - last_life)
    assert [a["agent"] for a in alerts.labels()] == ["agt-gone"]  # nothing about agt-live
    print(f"restart: silent since {starts - last_life:+.2f} s from the last real sign of "
          f"life (status interval {status_s:.0f} s); alert {seen - restarted:.1f} s after "
          f"the restart; no alert for the live agent")
