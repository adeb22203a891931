"""Truth in the field with the real agent (issue 13): only a real loss of reachability
makes an element down; a monitoring fault is unknown with a reason, never downtime, and
raises one monitoring alert (the NOC's monitoring route), no outage alert.

The agent (``xanet agent``, a real process) runs in network namespace "site"; net-snmp's
snmpd runs in namespace "dev" (three devices on one address) and in namespace "cut" (the
device whose reachability is really cut), each joined to "site" by a veth pair. The agent
reaches the root namespace's Mosquitto through a loopback relay; the collector, InfluxDB
and Alertmanager (deploy/alertmanager/alertmanager.yml, re-pointed at a local SMTP sink)
run in the root namespace.

* ``rtr-ok``: SNMPv3 with the right keys;
* ``rtr-badkey``: the same SNMPv3 user with a wrong auth key (snmpd answers with a
  usmStatsWrongDigests report): cause ``auth``;
* ``rtr-badcomm``: a wrong v2c community (snmpd stays silent, the host answers ping):
  ``snmp_silent``;
* ``rtr-cut``: right v2c community, in its own namespace, where nftables drops all
  traffic for a known time: really unreachable, so ``down``.

Every packet is sent from inside the namespaces this test created (198.18.0.0/15), or
on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from lab import Alertmanager, InfluxDB1, Mosquitto, SmtpSink
from lab.fleet import agent_config, to_toml
from lab.netns import Lab, NetnsSnmpd, lab_skip_reason
from tests.pipeline import ROOT, running, start_collector, wait_for
from tests.test_alerting_e2e import TelegramStub, am_config
from tests.test_truth_e2e import POLL_S, collector_cfg, element_summary, inventory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(lab_skip_reason() is not None, reason=lab_skip_reason() or ""),
]

SITE = "hub-f"
AGENT = "agt-field"
CUT_S = 6.0  # how long rtr-cut is really unreachable
HOLD_S = 2.0  # alert hold-down and clear-down
FAULTS = {"rtr-badkey": "auth", "rtr-badcomm": "snmp_silent"}
#: The first carries the site's fibre (its uplink: were it rtr-cut, the cut would be a
#: XanetSiteDown); the others are broadband elements.
DEVICES = ["rtr-ok", "rtr-cut", *FAULTS]


@pytest.fixture
def telegram() -> Iterator[TelegramStub]:
    with TelegramStub() as stub:
        yield stub


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


class AlertHistory:
    """Every alert Alertmanager held while the test ran (polled): each label set with
    every distinct ``startsAt`` seen (an alert that resolved and fired again has two)."""

    def __init__(self, am: Alertmanager) -> None:
        self.am = am
        self.starts: dict[tuple[tuple[str, str], ...], set[str]] = {}

    async def run(self) -> None:
        while True:
            for a in await asyncio.to_thread(self.am.alerts):
                key = tuple(sorted(a["labels"].items()))
                self.starts.setdefault(key, set()).add(a["startsAt"])
            await asyncio.sleep(0.3)

    def of(self, alertname: str) -> dict[str, int]:
        """device -> how many times an alert ``alertname`` started for it."""
        return {dict(k).get("device", ""): len(v) for k, v in self.starts.items()
                if dict(k)["alertname"] == alertname}


def mails(sink: SmtpSink) -> list[tuple[str, str, str, list[str]]]:
    """(to, status, alertname, [device of each alert]) of every e-mail received."""
    out = []
    for m in sink.messages():
        subject = str(m["Subject"])  # "[FIRING:2] XanetMonitoringBroken prov/commune/site"
        status, alertname = subject[1:].split("]")[0].split(":")[0], subject.split()[1]
        devices = [pair.split("=", 1)[1] for line in text_of(m).splitlines()
                   for pair in line.split() if pair.startswith("device=")]
        out.append((str(m["To"]), status, alertname, devices))
    return out


def text_of(m: Message) -> str:
    for part in m.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/plain part in {m['Subject']}")


async def test_real_agent_monitoring_faults_are_unknown_and_a_real_cut_is_down(
    tmp_path: Path, lab: Lab, mosquitto: Mosquitto, influxdb: InfluxDB1,
    make_alertmanager: Callable[..., Alertmanager], smtp_sink: SmtpSink,
    telegram: TelegramStub,
) -> None:
    province = f"f{uuid.uuid4().hex[:6]}"
    db = f"field_{province}"
    influxdb.create_database(db)
    am = make_alertmanager(am_config(smtp_sink, telegram))

    # -- the field: site <-veth-> dev (three devices), site <-veth-> cut (one device)
    site, dev, cut = lab.netns("site"), lab.netns("dev"), lab.netns("cut")
    _, dev_ip = lab.link(site, dev)
    _, cut_ip = lab.link(site, cut)
    dev_snmpd = NetnsSnmpd(tmp_path / "snmpd-dev", dev, dev_ip).start()
    cut_snmpd = NetnsSnmpd(tmp_path / "snmpd-cut", cut, cut_ip).start()
    lab.relay_to_root(site, mosquitto.port)
    v3 = {"version": "3", "user": dev_snmpd.v3_user, "auth_protocol": "SHA",
          "priv_protocol": "AES", "priv_key": {"env": "T_FIELD_PRIV"}}
    devices: list[dict[str, Any]] = [
        {"id": "rtr-ok", "host": dev_ip, "snmp": {**v3, "auth_key": {"env": "T_FIELD_AUTH"}}},
        {"id": "rtr-badkey", "host": dev_ip,
         "snmp": {**v3, "auth_key": {"env": "T_FIELD_WRONG_AUTH"}}},
        {"id": "rtr-badcomm", "host": dev_ip,
         "snmp": {"version": "2c", "community": {"env": "T_FIELD_WRONG_COMMUNITY"}}},
        {"id": "rtr-cut", "host": cut_ip},
    ]
    cfg_path = tmp_path / "agent.toml"
    cfg_path.write_text(to_toml(agent_config(
        agent_id=AGENT, site=SITE, commune="02266", province=province,
        mqtt_port=mosquitto.port, devices=devices, spool_path=tmp_path / "spool.sqlite3",
        interval_s=POLL_S, snmp={"version": "2c", "community": {"env": "T_FIELD_COMMUNITY"}},
        # a silent device's poll (SNMP and the echoes run concurrently) ends within the
        # interval: 0.6 s for SNMP, 2 x 0.4 s + 0.05 s for ICMP; no slot is skipped
        polling={"timeout_s": 0.6, "retries": 0},
        icmp={"enabled": True, "count": 2, "interval_s": 0.05, "timeout_s": 0.4})))
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "T_FIELD_COMMUNITY": cut_snmpd.community,
           "T_FIELD_WRONG_COMMUNITY": "not-the-community",
           "T_FIELD_AUTH": dev_snmpd.v3_auth_key,
           "T_FIELD_WRONG_AUTH": "not-the-auth-key-1",
           "T_FIELD_PRIV": dev_snmpd.v3_priv_key}

    collector = start_collector(collector_cfg(
        tmp_path, province, inventory(province, {SITE: (AGENT, DEVICES)}), mosquitto,
        influxdb, db, am, hold_down_s=HOLD_S, clear_down_s=HOLD_S))
    history = AlertHistory(am)
    agent_log = tmp_path / "agent.log"

    def states() -> dict[str, str]:
        rows = influxdb.query('SELECT last("state") AS "state" FROM "element_state" '
                              'GROUP BY "element"', db=db)
        return {r["element"]: r["state"] for r in rows}

    async with running(collector):
        await wait_for(lambda: collector.subscribed.is_set(), 20, "collector subscribed")
        watcher = asyncio.create_task(history.run())
        with agent_log.open("ab") as log:
            agent = site.popen([sys.executable, "-m", "xanet.cli", "--log-level", "info",
                                "agent", "--config", str(cfg_path)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            want = {f"{SITE}/rtr-ok": "up", f"{SITE}/rtr-cut": "up",
                    **{f"{SITE}/{d}": "unknown" for d in FAULTS}}
            await wait_for(lambda: states() == want, 20, "every element observed")
            start = time.time()
            await asyncio.sleep(4 * POLL_S)  # steady state before the cut

            cut.drop()  # all traffic: rtr-cut neither answers SNMP nor ping
            cut_at = time.time()
            await asyncio.sleep(CUT_S)
            cut.undrop()
            restored_at = time.time()
            cut_s = restored_at - cut_at

            def routed() -> set[tuple[str, str, str]]:
                return {(to, status, name) for to, status, name, _ in mails(smtp_sink)}

            # the outage has fired, and resolved after the clear-down; both e-mails are in
            await wait_for(lambda: {("noc@example.invalid", "FIRING", "XanetDeviceDown"),
                                    ("noc@example.invalid", "RESOLVED", "XanetDeviceDown"),
                                    ("monitoring@example.invalid", "FIRING",
                                     "XanetMonitoringBroken")} <= routed(),
                           20, "the outage fired and resolved, the monitoring alerts mailed")
            await asyncio.sleep(2 * POLL_S)  # the last states written; a stray alert seen
            end = time.time() - POLL_S  # what the collector has surely written by now
            assert agent.poll() is None, agent_log.read_text()
        finally:
            watcher.cancel()
            agent.terminate()
            agent.wait(15)

    # -- availability: a monitoring fault is never downtime; a real cut is, for its time
    downs = influxdb.query('SELECT "state" FROM "element_state" WHERE "state" = \'down\' '
                           'GROUP BY "element"', db=db)
    assert {r["element"] for r in downs} == {f"{SITE}/rtr-cut"}, downs  # ever, not just here
    window = end - start
    ok, ok_reasons = element_summary(influxdb, db, f"{SITE}/rtr-ok", start, end)
    assert ok.up_s == pytest.approx(window) and not ok_reasons, (ok, ok_reasons)
    faulty = {}
    for device, cause in FAULTS.items():
        s, reasons = element_summary(influxdb, db, f"{SITE}/{device}", start, end)
        assert s.down_s == 0.0 and s.up_s == 0.0, (device, s)
        assert s.unknown_s == pytest.approx(window), (device, s)
        assert reasons == {f"monitoring_error:{cause}"}, (device, reasons)
        faulty[device] = s
    down, cut_reasons = element_summary(influxdb, db, f"{SITE}/rtr-cut", start, end)
    assert abs(down.down_s - cut_s) <= POLL_S + 0.5, (down, cut_s)
    assert down.outages == 1, down
    # The poll that straddles the restore sends its SNMP request while the path is down
    # and gets its echo after: the agent asks SNMP once more before it calls the device
    # snmp_silent (agent/app.py), so the cut is down and then up, never a monitoring fault.
    assert down.unknown_s == 0.0, down
    assert cut_reasons == set(), cut_reasons

    # -- alerts: one monitoring alert per faulty device with its cause, one outage alert
    assert history.of("XanetMonitoringBroken") == dict.fromkeys(FAULTS, 1)
    assert history.of("XanetDeviceDown") == {"rtr-cut": 1}
    names = {dict(k)["alertname"] for k in history.starts}
    assert names == {"XanetMonitoringBroken", "XanetDeviceDown"}, history.starts
    causes = {dict(k)["device"]: (dict(k)["cause"], dict(k)["severity"])
              for k in history.starts if dict(k)["alertname"] == "XanetMonitoringBroken"}
    assert causes == {d: (c, "warning") for d, c in FAULTS.items()}

    # -- routes: monitoring faults to the NOC's monitoring team only, the outage to the
    # operators' route only (one page for it: its group holds no other alert)
    got = mails(smtp_sink)
    named: dict[tuple[str, str], set[str]] = {}
    for to, _, name, devs in got:
        named.setdefault((to, name), set()).update(devs)
    assert named == {("noc@example.invalid", "XanetDeviceDown"): {"rtr-cut"},
                     ("monitoring@example.invalid", "XanetMonitoringBroken"): set(FAULTS)}, got
    pages = [m for m in got if m[1:3] == ("FIRING", "XanetDeviceDown")]
    assert len(pages) == 1, got

    # -- the outage as recorded: opened at the first down, closed at the first up
    outages = influxdb.query('SELECT "open", "kind", "device" FROM "outage"', db=db,
                             epoch="ms")
    assert [(r["open"], r["kind"], r["device"]) for r in outages] == [
        (1, "device_down", "rtr-cut"), (0, "device_down", "rtr-cut")], outages
    outage_s = (outages[1]["time"] - outages[0]["time"]) / 1000
    assert abs(outage_s - cut_s) <= POLL_S + 0.5, (outage_s, cut_s)

    # -- the agent's view on the wire: the cause and the ICMP witness of each failed poll
    failed: dict[str, list[tuple[str, int]]] = {}
    for r in influxdb.query('SELECT "cause", "ping_received" FROM "device" '
                            'WHERE "cause" != \'\' GROUP BY "device"', db=db):
        failed.setdefault(r["device"], []).append((r["cause"], r["ping_received"]))
    assert set(failed) == {"rtr-badkey", "rtr-badcomm", "rtr-cut"}, failed
    assert set(failed["rtr-badkey"]) == {("auth", 2)}, failed  # USM report, ping answered
    assert set(failed["rtr-badcomm"]) == {("timeout", 2)}, failed  # SNMP silent, ping not
    cut_polls = [echo for cause, echo in failed["rtr-cut"] if cause == "timeout"]
    assert len(cut_polls) == len(failed["rtr-cut"]), failed
    assert cut_polls.count(0) >= CUT_S / POLL_S - 2, failed  # neither witness answered

    print(f"MEASURE window {window:.1f} s, poll interval {POLL_S:.0f} s")
    print(f"MEASURE rtr-ok: up {ok.up_s:.2f} s = {100 * ok.up_s / window:.1f} %")
    for device, s in faulty.items():
        print(f"MEASURE {device}: down {s.down_s:.2f} s, unknown {s.unknown_s:.2f} s "
              f"(monitoring_error:{FAULTS[device]}), XanetMonitoringBroken x1 (monitoring@)")
    print(f"MEASURE rtr-cut: cut {cut_s:.2f} s, measured down {down.down_s:.2f} s "
          f"(error {down.down_s - cut_s:+.2f} s), unknown {down.unknown_s:.2f} s (a poll "
          f"straddling the restore), outages {down.outages}, XanetDeviceDown x1 (noc@), "
          f"outage record {outage_s:.2f} s (error {outage_s - cut_s:+.2f} s)")
