"""Outage alerts through the real pipeline: snmpsim -> agents -> Mosquitto -> collector ->
Alertmanager (Debian's) -> e-mail at a real SMTP sink (aiosmtpd) and Telegram (a local
stand-in for api.telegram.org), with deploy/alertmanager/alertmanager.yml itself, only
re-pointed at the local services and with short group timers.

A device is cut off by freezing its simulator (SIGSTOP: requests go unanswered, as on a
dead link; SIGCONT brings it back at once). Timings: polls every 1 s (SNMP timeout 1 s),
hold-down 4 s, clear-down 3 s; the issue's bound for the first alert is hold-down + one
poll interval + 5 s = 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

import lab
from agent.app import Agent
from collector.alertmanager import AlertmanagerClient, Notifier
from collector.app import Collector
from collector.outages import Alert, AlertEvent
from lab import SimInterface, write_numeric_recording
from lab.fleet import agent_config, collector_config, to_toml
from lab.programs import Subprogram
from tests.factories import LAM_BINH_THUONG_LAM, inv_device, inv_site, inventory_toml
from tests.pipeline import ROOT, running, start_agent, start_collector, wait_for

INTERVAL_S = 1.0
HOLD_S = 4.0
CLEAR_S = 3.0
FIRST_ALERT_BOUND_S = HOLD_S + INTERVAL_S + 5.0
DEPLOY = ROOT / "deploy" / "alertmanager"

SITES = {
    "hub-a": inv_site("hub-a", name="Trung tâm xã Lâm Bình", agent="agt-hub-a",
                      devices=[inv_device("rtr-1", "fibre"), inv_device("olt-1", "broadband")]),
    "hub-b": inv_site("hub-b", "02269", agent="agt-hub-b",
                      devices=[inv_device("rtr-1", "fibre")]),
    **{f"bts-{i}": inv_site(f"bts-{i}", role="bts", parent="hub-a", technologies=["4g"],
                            agent=f"agt-bts-{i}", devices=[inv_device("enb-1", "mobile_4g")])
       for i in (1, 2, 3)},
}


def inventory(*sites: str) -> str:
    """Only the sites a test runs agents for: an agent in the inventory that never
    reports is (rightly) an agent-silent alert."""
    return inventory_toml(*(SITES[s] for s in sites), communes=LAM_BINH_THUONG_LAM)


# ------------------------------------------------------------------ local services


class TelegramStub:
    """Answers the Bot API's sendMessage like Telegram does; keeps what it got."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    msg = {"path": self.path, **json.loads(body)}
                except ValueError:
                    msg = {"path": self.path, "raw": body.decode(errors="replace")}
                stub.messages.append(msg)
                # Alertmanager 0.25 dereferences result.chat (a bare {"result":{}} makes
                # it panic with a nil pointer in telegram.go:93 and exit)
                out = json.dumps({"ok": True, "result": {
                    "message_id": len(stub.messages),
                    "chat": {"id": int(msg.get("chat_id", 0)), "type": "group"}}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TelegramStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def telegram() -> Iterator[TelegramStub]:
    with TelegramStub() as stub:
        yield stub


def test_deploy_config_passes_amtool_check_config(tmp_path: Path) -> None:
    """The example as shipped, and with its templates found (so they are parsed too)."""
    subprocess.run(["amtool", "check-config", str(DEPLOY / "alertmanager.yml")], check=True,
                   capture_output=True)
    cfg = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    cfg["templates"] = [str(DEPLOY / "templates" / "*.tmpl")]
    (tmp_path / "am.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    out = subprocess.run(["amtool", "check-config", str(tmp_path / "am.yml")], check=True,
                         capture_output=True, text=True).stdout
    assert "1 templates" in out and "4 inhibit rules" in out and "SUCCESS" in out


def am_config(sink: lab.SmtpSink, telegram: TelegramStub) -> str:
    """deploy/alertmanager/alertmanager.yml pointed at the local sink and stub."""
    cfg = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    g = cfg["global"]
    g["smtp_smarthost"] = f"127.0.0.1:{sink.port}"
    g["smtp_require_tls"] = False
    del g["smtp_auth_username"], g["smtp_auth_password_file"]
    cfg["templates"] = [str(DEPLOY / "templates" / "*.tmpl")]

    def fast(route: dict[str, Any]) -> None:
        route.update({"group_wait": "1s", "group_interval": "1s"})
        if "repeat_interval" in route or route is cfg["route"]:
            route["repeat_interval"] = "1h"
        for sub in route.get("routes", []):
            fast(sub)

    fast(cfg["route"])
    for receiver in cfg["receivers"]:
        for tg in receiver.get("telegram_configs", []):
            tg["api_url"] = telegram.url
    return str(yaml.safe_dump(cfg, allow_unicode=True))


def recording(path: Path, descr: str) -> Path:
    write_numeric_recording(path, sys_descr=descr, interfaces=[SimInterface(index=1,
                                                                            name="eth0")])
    return path


def freeze(sim: lab.SnmpSim) -> None:
    """The device stops answering (a dead link): its simulator is stopped in its tracks."""
    assert sim.pid is not None
    os.kill(sim.pid, signal.SIGSTOP)


def thaw(sim: lab.SnmpSim) -> None:
    assert sim.pid is not None
    os.kill(sim.pid, signal.SIGCONT)


@dataclass
class World:
    tmp: Path
    db: str
    inventory: Path
    mosquitto: lab.Mosquitto
    influxdb: lab.InfluxDB1
    am: lab.Alertmanager
    sink: lab.SmtpSink
    telegram: TelegramStub
    make_snmpsim: Callable[..., lab.SnmpSim]
    sims: dict[str, lab.SnmpSim] = field(default_factory=dict)

    def sim(self, name: str) -> lab.SnmpSim:
        if name not in self.sims:
            self.sims[name] = self.make_snmpsim(
                {"dev": recording(self.tmp / f"{name}.snmprec", f"{name} (simulated)")})
        return self.sims[name]

    def agent_cfg(self, site: str, commune: str, devices: dict[str, str]) -> dict[str, Any]:
        return agent_config(
            agent_id=f"agt-{site}", site=site, commune=commune, province="08",
            mqtt_port=self.mosquitto.port, spool_path=self.tmp / f"{site}.sqlite3",
            interval_s=INTERVAL_S,
            devices=[{"id": dev, "host": "127.0.0.1", "port": self.sim(sim).port,
                      "snmp": {"version": "2c", "community": {"env": "T_ALERT_COMMUNITY"}}}
                     for dev, sim in devices.items()])

    def agent(self, site: str, commune: str, devices: dict[str, str]) -> Agent:
        return start_agent(self.agent_cfg(site, commune, devices))

    def collector_cfg(self, *sites: str) -> dict[str, Any]:
        self.inventory.write_text(inventory(*sites))
        return collector_config(
            mqtt_port=self.mosquitto.port, influx_url=self.influxdb.url, database=self.db,
            dead_letter_dir=self.tmp / "dead", collector_id=self.db,
            inventory={"path": str(self.inventory)},
            availability={"stale_after_s": 4 * INTERVAL_S, "bucket_s": 10.0,
                          "emit_interval_s": 0.5},
            alerts={"url": self.am.url, "hold_down_s": HOLD_S, "clear_down_s": CLEAR_S,
                    "poll_interval_s": INTERVAL_S,
                    "agent_silent_after_s": 4.0, "resend_interval_s": 2.0,
                    "expire_after_s": 120.0, "retry_min_s": 0.2, "retry_max_s": 1.0,
                    "state_path": str(self.tmp / "outages.json")})

    def collector(self, *sites: str) -> Collector:
        return start_collector(self.collector_cfg(*sites))

    # -- what came out

    def active(self) -> list[dict[str, Any]]:
        return [a for a in self.am.alerts() if a["status"]["state"] == "active"]

    def mails(self, status: str = "FIRING") -> list[str]:
        return [str(m["Subject"]) for m in self.sink.messages()
                if str(m["Subject"]).startswith(f"[{status}")]

    def outage_rows(self) -> list[dict[str, Any]]:
        return self.influxdb.query('SELECT "open", "children", "summary", "kind", "site" '
                                   'FROM "outage"', db=self.db, epoch="ms")

    def all_up(self) -> bool:
        rows = self.influxdb.query('SELECT last("code") FROM "element_state" GROUP BY '
                                   '"element"', db=self.db)
        return len(rows) >= 1 and all(r["last"] == 1 for r in rows)


@pytest.fixture
def world(tmp_path: Path, mosquitto: lab.Mosquitto, influxdb: lab.InfluxDB1,
          make_alertmanager: Callable[..., lab.Alertmanager],
          smtp_sink: lab.SmtpSink, telegram: TelegramStub,
          make_snmpsim: Callable[..., lab.SnmpSim],
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("T_ALERT_COMMUNITY", "dev")
    db = f"alerts_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    inv = tmp_path / "inventory.toml"
    am = make_alertmanager(am_config(smtp_sink, telegram))
    w = World(tmp_path, db, inv, mosquitto, influxdb, am, smtp_sink, telegram, make_snmpsim)
    try:
        yield w
    finally:
        for sim in w.sims.values():
            if sim.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    thaw(sim)


@contextlib.asynccontextmanager
async def up_and_running(w: World, *programs: Agent | Collector) -> AsyncIterator[None]:
    async with running(*programs):
        await wait_for(lambda: w.all_up() and len(w.influxdb.query(
            'SELECT last("code") FROM "element_state" GROUP BY "element"', db=w.db)) >= 1,
            40, "elements up")
        yield


def mail_text(msg: email.message.Message) -> str:
    """The text/plain part, decoded."""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            raw = part.get_payload(decode=True)
            assert isinstance(raw, bytes)
            return raw.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


# -------------------------------------------------------------------------- tests


async def test_device_outage_one_alert_one_mail_then_resolved(world: World) -> None:
    w = world
    collector = w.collector("hub-a")
    agent = w.agent("hub-a", "02266", {"rtr-1": "hub-a-rtr", "olt-1": "hub-a-olt"})
    async with up_and_running(w, collector, agent):
        await wait_for(lambda: len(w.influxdb.query(
            'SELECT last("code") FROM "element_state" GROUP BY "element"', db=w.db)) == 2,
            30, "both elements known")
        cut = time.time()
        freeze(w.sim("hub-a-olt"))
        firing = await wait_for(lambda: w.active(), FIRST_ALERT_BOUND_S + 5, "an alert")
        seen = time.time()
        [alert] = firing
        assert seen - cut <= FIRST_ALERT_BOUND_S, seen - cut
        assert alert["labels"] == {
            "alertname": "XanetDeviceDown", "severity": "major", "province": "08",
            "commune": "02266", "site": "hub-a", "device": "olt-1", "service": "broadband",
            "cause": "site"}
        assert "không hoạt động" in alert["annotations"]["summary_vi"]
        assert "Device olt-1" in alert["annotations"]["summary_en"]
        mails = await wait_for(lambda: w.mails(), 10, "the e-mail")
        mailed = time.time()
        assert mails == ["[FIRING:1] XanetDeviceDown 08/02266/hub-a"]
        text = mail_text(w.sink.messages()[0])
        assert "Thiết bị olt-1" in text and "Device olt-1" in text
        assert "[ĐANG XẢY RA / FIRING] XanetDeviceDown (major)" in text
        # re-posted every 2 s for a while: still one alert, no second e-mail
        await asyncio.sleep(6)
        assert len(w.active()) == 1 and len(w.mails()) == 1
        assert collector.alerting is not None and collector.alerting.notifier.posts >= 3
        # one delivery path: the collector's notifier, shared with the agent faults
        assert collector.alerting.notifier is collector.notifier
        assert collector.stats()["alertmanager_posts"] == collector.alerting.notifier.posts
        assert w.telegram.messages == []  # major: e-mail only

        thaw(w.sim("hub-a-olt"))
        back = time.time()
        await wait_for(lambda: not w.active(), CLEAR_S + INTERVAL_S + 10, "resolved")
        resolved = time.time()
        await wait_for(lambda: w.mails("RESOLVED"), 10, "the resolved e-mail")
        assert len(w.mails()) == 1
    rows = w.outage_rows()
    assert [(r["open"], r["kind"], r["site"]) for r in rows] == [
        (1, "device_down", "hub-a"), (0, "device_down", "hub-a")]
    print(f"device outage: alert in Alertmanager {seen - cut:.1f}s after the cut "
          f"(bound {FIRST_ALERT_BOUND_S:.0f}s), e-mail {mailed - cut:.1f}s; resolved "
          f"{resolved - back:.1f}s after recovery; outage started "
          f"{rows[0]['time'] / 1000 - cut:.1f}s after the cut, ended "
          f"{rows[1]['time'] / 1000 - back:.1f}s after recovery")


async def test_flapping_link_notifies_at_most_once(world: World) -> None:
    w = world
    collector = w.collector("hub-a")
    agent = w.agent("hub-a", "02266", {"rtr-1": "hub-a-rtr", "olt-1": "hub-a-olt"})
    async with up_and_running(w, collector, agent):
        olt = w.sim("hub-a-olt")
        for _ in range(6):  # down 1.5 s, up 2.5 s: faster than the 4 s hold-down
            freeze(olt)
            await asyncio.sleep(1.5)
            thaw(olt)
            await asyncio.sleep(2.5)
        await asyncio.sleep(HOLD_S + CLEAR_S + 2)
        downs = w.influxdb.query('SELECT "state" FROM "element_state" WHERE '
                                 '"element" = \'hub-a/olt-1\' AND "state" = \'down\'', db=w.db)
        assert len(downs) >= 3, "the flaps were really seen as down"
        assert len(w.mails()) <= 1
        assert len({json.dumps(a["labels"], sort_keys=True) for a in w.am.alerts()}) <= 1
        print(f"flapping: {len(downs)} down periods seen, {len(w.mails())} e-mail(s), "
              f"{len(w.am.alerts())} alert(s)")


async def test_hub_cut_off_is_one_root_alert_listing_its_bts(world: World) -> None:
    w = world
    collector = w.collector("hub-a", "bts-1", "bts-2", "bts-3")
    agents = [w.agent("hub-a", "02266", {"rtr-1": "hub-a-rtr", "olt-1": "hub-a-olt"})]
    agents += [w.agent(f"bts-{i}", "02266", {"enb-1": f"bts-{i}"}) for i in (1, 2, 3)]
    async with up_and_running(w, collector, *agents):
        await wait_for(lambda: len(w.influxdb.query(
            'SELECT last("code") FROM "element_state" GROUP BY "element"', db=w.db)) == 5,
            40, "all five elements known")
        cut = time.time()
        # the hub's uplink dies: nothing behind it answers any more
        for name in ("hub-a-rtr", "hub-a-olt", "bts-1", "bts-2", "bts-3"):
            freeze(w.sim(name))
        [alert] = await wait_for(lambda: w.active(), FIRST_ALERT_BOUND_S + 5, "the alert")
        seen = time.time()
        assert alert["labels"]["alertname"] == "XanetSiteDown"
        assert alert["labels"]["site"] == "hub-a"
        assert alert["labels"]["severity"] == "critical"
        await wait_for(lambda: w.active()[0]["annotations"].get("children")
                       == "bts-1,bts-2,bts-3", 10, "children listed")
        await asyncio.sleep(HOLD_S + 3)  # every BTS hold-down has long passed
        active = w.active()
        assert len(active) == 1, active
        assert "3 trạm phía sau" in active[0]["annotations"]["summary_vi"]
        assert len(await wait_for(lambda: w.mails(), 10, "the e-mail")) == 1
        assert len(await wait_for(lambda: w.telegram.messages, 10, "telegram")) == 1
        assert "/sendMessage" in w.telegram.messages[0]["path"]
        assert w.telegram.messages[0]["chat_id"] == "-1001234567891"  # province 08's chat
        assert "Trung tâm xã Lâm Bình" in w.telegram.messages[0]["text"]
        for name in ("hub-a-rtr", "hub-a-olt", "bts-1", "bts-2", "bts-3"):
            thaw(w.sim(name))
        await wait_for(lambda: not w.active(), CLEAR_S + INTERVAL_S + 10, "resolved")
        await asyncio.sleep(2)
        assert len(w.mails()) == 1 and not any(
            a["labels"]["site"] != "hub-a" for a in w.am.alerts())
    rows = w.outage_rows()
    assert [(r["open"], r["kind"], r["site"], r["children"]) for r in rows] == [
        (1, "root", "hub-a", "bts-1,bts-2,bts-3"), (0, "root", "hub-a", "bts-1,bts-2,bts-3")]
    print(f"hub cut off: one root alert {seen - cut:.1f}s after the cut, 3 children listed")


async def test_agent_killed_is_one_agent_silent_alert_and_no_device_alert(
        world: World) -> None:
    w = world
    collector = w.collector("hub-b")
    cfg = w.agent_cfg("hub-b", "02269", {"rtr-1": "hub-b-rtr"})
    (w.tmp / "agent-hub-b.toml").write_text(to_toml(cfg))
    agent = Subprogram("agent", w.tmp / "agent-hub-b.toml",
                       env={"T_ALERT_COMMUNITY": "dev"})
    async with running(collector):
        agent.start()
        try:
            await wait_for(w.all_up, 40, "hub-b up")
            polls = collector.polls
            await wait_for(lambda: collector.polls >= polls + 3, 20, "steady polling")
            killed = time.time()
            agent.kill()
            [alert] = await wait_for(lambda: w.active(), 30, "the agent-silent alert")
            seen = time.time()
            assert alert["labels"]["alertname"] == "XanetAgentSilent"
            assert alert["labels"]["agent"] == "agt-hub-b"
            assert alert["labels"]["severity"] == "warning"
            assert "KHÔNG XÁC ĐỊNH" in alert["annotations"]["summary_vi"]
            assert "UNKNOWN" in alert["annotations"]["summary_en"]
            # the Last Will (at once here: the kernel closes a killed process's socket;
            # at most 1.5 x keepalive = 7.5 s otherwise) and the staleness of the
            # elements have both passed, plus a hold-down: still nothing but the silence
            await asyncio.sleep(max(0.0, killed + 7.5 + HOLD_S + 2 - time.time()))
            assert [a["labels"]["alertname"] for a in w.active()] == ["XanetAgentSilent"]
            assert collector.agents_online.get("agt-hub-b") is False  # the Will arrived
            mails = await wait_for(lambda: w.mails(), 10, "the e-mail")
            assert mails == ["[FIRING:1] XanetAgentSilent 08/02269/hub-b"]
        finally:
            agent.kill()
    states = w.influxdb.query('SELECT "state" FROM "element_state" WHERE "element" = '
                              '\'hub-b/rtr-1\'', db=w.db)
    assert "down" not in {r["state"] for r in states}
    print(f"agent SIGKILLed: agent-silent alert after {seen - killed:.1f}s "
          f"(Last Will + hold-down {HOLD_S:.0f} s)")


async def test_collector_restart_during_outage_no_duplicate_and_still_resolves(
        world: World) -> None:
    w = world
    cfg = w.collector_cfg("hub-a")
    (w.tmp / "collector.toml").write_text(to_toml(cfg))
    agent = w.agent("hub-a", "02266", {"rtr-1": "hub-a-rtr", "olt-1": "hub-a-olt"})

    def collector_proc() -> Subprogram:
        return Subprogram("collector", w.tmp / "collector.toml",
                          env={"PYTHONPATH": str(ROOT)}, log_path=w.tmp / "collector.log")

    first = collector_proc().start()
    second: Subprogram | None = None
    try:
        async with running(agent):
            await wait_for(w.all_up, 40, "elements up")
            freeze(w.sim("hub-a-olt"))
            [alert] = await wait_for(lambda: w.active(), FIRST_ALERT_BOUND_S + 5, "alert")
            await wait_for(lambda: w.mails(), 10, "the e-mail")
            state = json.loads((w.tmp / "outages.json").read_text())
            assert [o["unit"] for o in state["open"]] == ["device:hub-a/olt-1"]
            first.kill()  # SIGKILL: no goodbye, no last post
            await asyncio.sleep(2)
            second = collector_proc().start()
            await wait_for(lambda: "1 open outage(s) recovered" in second.log(), 30,
                           "the outage recovered")
            await asyncio.sleep(8)  # several re-posts by the new collector
            [again] = w.active()
            assert again["fingerprint"] == alert["fingerprint"]
            assert again["startsAt"] == alert["startsAt"]
            assert len(w.mails()) == 1, w.mails()
            thaw(w.sim("hub-a-olt"))
            await wait_for(lambda: not w.active(), CLEAR_S + INTERVAL_S + 15, "resolved")
            await wait_for(lambda: w.mails("RESOLVED"), 10, "the resolved e-mail")
            assert len(w.mails()) == 1
            assert json.loads((w.tmp / "outages.json").read_text())["open"] == []
    finally:
        first.kill()
        if second is not None:
            second.stop()
    assert "Traceback" not in (w.tmp / "collector.log").read_text()



async def test_notifier_retries_while_alertmanager_is_down(world: World) -> None:
    """The edge alone against the real Alertmanager: stopped, then back on its port."""
    w = world
    w.am.stop()
    notifier = Notifier(AlertmanagerClient(w.am.url, timeout_s=2), resend_interval_s=30,
                        expire_after_s=300, retry_min_s=0.2, retry_max_s=1.0)
    alert = Alert("device:hub-a/olt-1", "device_down",
                  {"alertname": "XanetDeviceDown", "severity": "major", "province": "08",
                   "commune": "02266", "site": "hub-a", "device": "olt-1",
                   "service": "broadband"},
                  {"summary_en": "Device olt-1 down", "summary_vi": "Thiết bị olt-1 mất"},
                  time.time() - 60)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    notifier.submit([AlertEvent("firing", alert)])
    await wait_for(lambda: notifier.failures >= 2, 10, "failed attempts")
    await asyncio.to_thread(w.am.start)
    [got] = await wait_for(lambda: w.active(), 15, "the alert delivered")
    assert got["labels"]["device"] == "olt-1" and notifier.unavailable is False
    await wait_for(lambda: w.mails(), 10, "the e-mail")
    stop.set()
    await asyncio.wait_for(task, 10)
    await notifier.port.close()
    print(f"alertmanager down: {notifier.failures} failed attempt(s), then delivered")
