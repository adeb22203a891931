"""`make demo`: xanet end to end on real components, on a simulated fleet.

Starts Mosquitto, InfluxDB 1.x and snmpsim (real router recordings from
snmpsim-data plus simulated commune routers and BTS whose counters advance),
writes agent and collector configs for the example inventory
(config/inventory.example.toml), runs the agents and the collector as real
`xanet` processes, cuts one commune's router off mid-run (its simulator is
stopped, so it really stops answering) and shows the alert that outage raised in
Alertmanager, then prints what reached InfluxDB, the availability report and the outage
list, writes the monthly document (HTML) for the demo's window, and stops everything it
started.

    DEMO_SECONDS=90 make demo      # run longer (default 75)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import lab  # noqa: E402
from lab import SimInterface, write_numeric_recording  # noqa: E402
from lab.fleet import agent_config, collector_config, to_toml  # noqa: E402
from lab.programs import Subprogram  # noqa: E402

RUN = ROOT / ".run" / "demo"
PROVINCE = "08"
DB = "xanet"
INTERVAL_S = 5.0


def say(msg: str) -> None:
    print(f"[demo {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def sim_device(path: Path, descr: str, ifaces: list[tuple[int, str, float]]) -> Path:
    write_numeric_recording(
        path, sys_descr=descr,
        interfaces=[SimInterface(index=i, name=name, in_rate=rate, out_rate=rate / 3,
                                 speed_bps=1_000_000_000) for i, name, rate in ifaces])
    return path


def main() -> int:
    seconds = float(os.environ.get("DEMO_SECONDS", "75"))
    if RUN.exists():
        shutil.rmtree(RUN)
    (RUN / "recordings").mkdir(parents=True)
    started: list[Any] = []
    procs: list[Subprogram] = []
    try:
        say("starting Mosquitto, InfluxDB 1.x, Alertmanager and snmpsim on 127.0.0.1 ...")
        mqtt = lab.Mosquitto(RUN / "mosquitto").start()
        started.append(mqtt)
        alertmanager = lab.Alertmanager(RUN / "alertmanager", ALERTMANAGER_YML).start()
        started.append(alertmanager)
        influx = lab.InfluxDB1(RUN / "influxdb").start()
        started.append(influx)
        influx.create_database(DB)
        rec = RUN / "recordings"
        # Simulated devices of the example inventory (ifNames as the inventory names them),
        # counters advancing at the given octets/s; plus two real recordings.
        main_sim = lab.SnmpSim(RUN / "snmpsim-main", {
            "thuong-lam/rtr-1": sim_device(rec / "tl-rtr.snmprec", "Juniper MX204 (simulated)",
                                           [(1, "ge-0/0/0", 2_500_000), (2, "ge-0/0/1", 400_000)]),
            "thuong-lam/olt-1": sim_device(rec / "tl-olt.snmprec", "OLT (simulated)",
                                           [(1, "gpon-0/1", 1_200_000)]),
            "thuong-lam/csr-1": sim_device(rec / "tl-csr.snmprec", "Cell-site router (simulated)",
                                           [(2, "ge-0/0/2", 80_000), (3, "ge-0/0/3", 900_000)]),
            "thuong-lam/nodeb-1": sim_device(rec / "tl-nodeb.snmprec", "NodeB (simulated)",
                                             [(1, "eth0", 150_000)]),
            "na-hang/rtr-1": sim_device(rec / "nh-rtr.snmprec", "Cisco ASR (simulated)",
                                        [(1, "ge-0/0/0", 3_000_000), (5, "ge-0/0/5", 700_000)]),
            "na-hang/csr-1": sim_device(rec / "nh-csr.snmprec", "Cell-site router (simulated)",
                                        [(1, "ge-0/0/1", 60_000), (2, "ge-0/0/2", 200_000),
                                         (3, "ge-0/0/3", 1_500_000)]),
            lab.COMMUNITY_IFX: lab.RECORDING_IFX,
            lab.COMMUNITY_IFTABLE_ONLY: lab.RECORDING_IFTABLE_ONLY,
        }).start()
        started.append(main_sim)
        # Lâm Bình's router gets a simulator of its own, so the demo can cut it off.
        lam_binh_sim = lab.SnmpSim(RUN / "snmpsim-lam-binh", {
            "lam-binh/rtr-1": sim_device(rec / "lb-rtr.snmprec", "Juniper MX104 (simulated)",
                                         [(1, "xe-0/0/0", 5_000_000)]),
        }).start()
        started.append(lam_binh_sim)

        def dev(dev_id: str, community: str, sim: lab.SnmpSim,
                site: str | None = None, commune: str | None = None) -> dict[str, Any]:
            snmp = {"version": "2c", "community": {"env": env_name(community)}}
            d: dict[str, Any] = {"id": dev_id, "host": "127.0.0.1", "port": sim.port,
                                 "snmp": snmp}
            if site:
                d["site"] = site
            if commune:
                d["commune"] = commune
            return d

        def env_name(community: str) -> str:
            return "DEMO_COMMUNITY_" + "".join(c if c.isalnum() else "_" for c in community).upper()

        env = {env_name(c): c for c in [*main_sim.communities, *lam_binh_sim.communities]}
        agents = {
            "agt-thuong-lam": agent_config(
                agent_id="agt-thuong-lam", site="hub-thuong-lam", commune="02269",
                province=PROVINCE, mqtt_port=mqtt.port, spool_path=RUN / "agt-thuong-lam.db",
                interval_s=INTERVAL_S, batch={"max_polls": 4, "linger_s": 0.5},
                devices=[dev("rtr-1", "thuong-lam/rtr-1", main_sim),
                         dev("olt-1", "thuong-lam/olt-1", main_sim),
                         dev("csr-1", "thuong-lam/csr-1", main_sim, site="bts-thuong-lam-01"),
                         dev("vyatta-lab", lab.COMMUNITY_IFX, main_sim),
                         dev("ubnt-m5-lab", lab.COMMUNITY_IFTABLE_ONLY, main_sim)]),
            "agt-bts-thuong-lam-02": agent_config(
                agent_id="agt-bts-thuong-lam-02", site="bts-thuong-lam-02", commune="02269",
                province=PROVINCE, mqtt_port=mqtt.port, spool_path=RUN / "agt-bts-tl-02.db",
                interval_s=INTERVAL_S,
                devices=[dev("nodeb-1", "thuong-lam/nodeb-1", main_sim)]),
            "agt-lam-binh": agent_config(
                agent_id="agt-lam-binh", site="hub-lam-binh", commune="02266",
                province=PROVINCE, mqtt_port=mqtt.port, spool_path=RUN / "agt-lam-binh.db",
                interval_s=INTERVAL_S,
                devices=[dev("rtr-1", "lam-binh/rtr-1", lam_binh_sim)]),
            "agt-na-hang": agent_config(
                agent_id="agt-na-hang", site="hub-na-hang", commune="02221",
                province=PROVINCE, mqtt_port=mqtt.port, spool_path=RUN / "agt-na-hang.db",
                interval_s=INTERVAL_S,
                devices=[dev("rtr-1", "na-hang/rtr-1", main_sim),
                         dev("csr-1", "na-hang/csr-1", main_sim, site="bts-na-hang-01")]),
        }
        coll = collector_config(mqtt_port=mqtt.port, influx_url=influx.url, database=DB,
                                dead_letter_dir=RUN / "dead-letter", collector_id="demo",
                                inventory={"path": str(ROOT / "config/inventory.example.toml")})
        coll["collector"]["stats_interval_s"] = 5
        # The targets the province declares (its published claims) for the monthly document
        coll["report"] = {"targets": {
            "fibre": {"communes_pct": 100.0, "label": "100% xã có cáp quang đến trung tâm"},
            "broadband": {"communes_pct": 98.0, "label": "98% xã có Internet băng rộng"},
            **{f"mobile_{g}": {"communes_pct": 98.6, "label": "phủ sóng di động 98,6%"}
               for g in ("2g", "3g", "4g")}}}
        # Alerts through the real Alertmanager; a hold-down of two polls so the demo's
        # outage (~25 s) raises one (production: 120 s, docs/alerts.md).
        coll["alerts"] = {"url": alertmanager.url, "hold_down_s": 2 * INTERVAL_S,
                          "clear_down_s": 2 * INTERVAL_S, "poll_interval_s": INTERVAL_S,
                          "agent_silent_after_s": 6 * INTERVAL_S, "resend_interval_s": 5.0,
                          "expire_after_s": 60.0, "state_path": str(RUN / "outages.json")}
        # Polls every 5 s: an element is unknown after 15 s without data; 1-minute roll-ups.
        coll["availability"] = {"stale_after_s": 3 * INTERVAL_S, "bucket_s": 60.0,
                                "emit_interval_s": 2.0}
        (RUN / "collector.toml").write_text(to_toml(coll))
        check = [sys.executable, "-m", "xanet.cli", "check-config", str(RUN / "collector.toml")]
        for name, cfg in agents.items():
            (RUN / f"{name}.toml").write_text(to_toml(cfg))
            check.append(str(RUN / f"{name}.toml"))
        check.append(str(ROOT / "config/inventory.example.toml"))
        say("xanet check-config on every generated config and the inventory:")
        subprocess.run(check, check=True, env={**os.environ, **env})

        say(f"starting the collector and {len(agents)} agents (poll interval {INTERVAL_S:g}s) ...")
        collector = Subprogram("collector", RUN / "collector.toml", env=env).start()
        procs.append(collector)
        time.sleep(1.0)
        for name in agents:
            procs.append(Subprogram("agent", RUN / f"{name}.toml", env=env).start())

        cut_at, back_at = seconds * 0.3, seconds * 0.65
        t0 = time.monotonic()
        time.sleep(min(10.0, cut_at / 2))
        window_start = datetime.now(UTC)  # agents have polled at least once by now
        time.sleep(max(0.0, cut_at - (time.monotonic() - t0)))
        say("OUTAGE: hub-lam-binh's router stops answering (its simulator is stopped)")
        lam_binh_sim.stop()
        outage_start = datetime.now(UTC)
        alert = wait_for_alert(alertmanager, "hub-lam-binh",
                               time.monotonic() + (back_at - cut_at))
        show_alert(alert, outage_start)
        time.sleep(max(0.0, back_at - (time.monotonic() - t0)))
        lam_binh_sim.start()
        outage_end = datetime.now(UTC)
        say(f"hub-lam-binh's router answers again after {(outage_end - outage_start).seconds}s")
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        window_end = datetime.now(UTC)
        say("stopping agents, then the collector (SIGTERM: they flush and say goodbye)")
        for p in procs[1:]:
            p.stop()
        time.sleep(1.5)
        collector.stop()
        show(influx)
        report(window_start, window_end, outage_start, outage_end, env)
        return 0 if alert is not None else 1
    finally:
        for p in reversed(procs):
            p.stop()
        for s in reversed(started):
            s.stop()
        say(f"everything stopped; logs and data under {RUN.relative_to(ROOT)}/")


def show(influx: lab.InfluxDB1) -> None:
    print()
    print("What reached InfluxDB, per device (InfluxQL):")
    print('  SELECT count(up), sum(up), last(rtt_ms), last(uptime_s) FROM device '
          'GROUP BY commune, site, device')
    rows = influx.query('SELECT count("up") AS polls, sum("up") AS answered, '
                        'last("rtt_ms") AS rtt_ms, last("uptime_s") AS uptime_s FROM "device" '
                        'GROUP BY "commune", "site", "device"', db=DB, epoch="s")
    print(f"  {'commune':8} {'site':20} {'device':12} {'polls':>5} {'answered':>8} "
          f"{'rtt ms':>7} {'uptime s':>10}")
    for r in sorted(rows, key=lambda r: (r["commune"], r["site"], r["device"])):
        print(f"  {r['commune']:8} {r['site']:20} {r['device']:12} {r['polls']:>5} "
              f"{r['answered']:>8} {fmt(r['rtt_ms'], '.1f'):>7} {fmt(r['uptime_s'], '.0f'):>10}")
    print()
    print("Per interface (last values; rates computed by the agent from 64/32-bit counters):")
    print('  SELECT last(oper), last(in_bps), last(out_bps), last(in_util_pct), count(in_octets) '
          'FROM interface GROUP BY site, device, ifname')
    rows = influx.query('SELECT last("oper") AS oper, last("in_bps") AS in_bps, '
                        'last("out_bps") AS out_bps, last("in_util_pct") AS util, '
                        'count("in_octets") AS samples FROM "interface" '
                        'GROUP BY "site", "device", "ifname"', db=DB, epoch="s")
    print(f"  {'site':20} {'device':12} {'interface':12} {'oper':>4} {'in Mbit/s':>10} "
          f"{'out Mbit/s':>10} {'util %':>7} {'samples':>7}")
    hidden = 0
    for r in sorted(rows, key=lambda r: (r["site"], r["device"], r["ifname"])):
        if r["device"].endswith("-lab") and r["oper"] != 1:
            hidden += 1
            continue
        print(f"  {r['site']:20} {r['device']:12} {r['ifname'][:12]:12} {fmt(r['oper'], 'd'):>4} "
              f"{mbit(r['in_bps']):>10} {mbit(r['out_bps']):>10} {fmt(r['util'], '.2f'):>7} "
              f"{r['samples']:>7}")
    if hidden:
        print(f"  (+{hidden} interfaces of the lab recordings that are oper-down, not shown)")
    status = influx.query('SELECT last("online") AS online, last("spool_depth") AS spool '
                          'FROM "agent_status" GROUP BY "agent"', db=DB, epoch="s")
    print()
    print("Agents (last status; 0 = offline after the clean stop):")
    for r in status:
        print(f"  {r['agent']:24} online={r['online']} spool_depth={r['spool']}")


def report(start: datetime, end: datetime, cut: datetime, back: datetime,
           env: dict[str, str]) -> None:
    print()
    print(f"Injected: hub-lam-binh's router (commune 02266, fibre) did not answer from "
          f"{cut:%H:%M:%S} to {back:%H:%M:%S} ({(back - cut).total_seconds():.0f} s of a "
          f"{(end - start).total_seconds():.0f} s window).")
    for lang in ("vi", "en"):
        cmd = [sys.executable, "-m", "xanet.cli", "report", "availability", "--config",
               str(RUN / "collector.toml"), "--from", start.isoformat(timespec="seconds"),
               "--to", end.isoformat(timespec="seconds"), "--lang", lang]
        print()
        print("$ xanet report availability --config .run/demo/collector.toml "
              f"--from {start:%Y-%m-%dT%H:%M:%SZ} --to {end:%Y-%m-%dT%H:%M:%SZ} --lang {lang}")
        subprocess.run(cmd, check=True, env={**os.environ, **env})
    window = ["--from", start.isoformat(timespec="seconds"), "--to",
              end.isoformat(timespec="seconds")]
    print()
    print("$ xanet report outages --config .run/demo/collector.toml "
          f"--from {start:%Y-%m-%dT%H:%M:%SZ} --to {end:%Y-%m-%dT%H:%M:%SZ} --lang en")
    subprocess.run([sys.executable, "-m", "xanet.cli", "report", "outages", "--config",
                    str(RUN / "collector.toml"), *window, "--lang", "en"],
                   check=True, env={**os.environ, **env})
    out = RUN / "monthly.html"
    subprocess.run([sys.executable, "-m", "xanet.cli", "report", "monthly", "--config",
                    str(RUN / "collector.toml"), *window, "--lang", "vi", "--format", "html",
                    "--output", str(out)], check=True, env={**os.environ, **env},
                   stdout=subprocess.DEVNULL)
    print()
    say(f"the monthly document for this window: {out} (open it in a browser; "
        "--format pdf prints it)")


ALERTMANAGER_YML = """\
route:
  receiver: demo
  group_by: [alertname, province, commune, site]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: demo
"""


def wait_for_alert(am: lab.Alertmanager, site: str,
                   deadline: float) -> dict[str, Any] | None:
    """The first active alert for ``site`` in Alertmanager, polled until ``deadline``."""
    while time.monotonic() < deadline:
        for alert in am.alerts():
            if alert["labels"].get("site") == site and alert["status"]["state"] == "active":
                return alert
        time.sleep(0.5)
    return None


def show_alert(alert: dict[str, Any] | None, cut: datetime) -> None:
    if alert is None:
        say("no alert reached Alertmanager during the outage (check .run/demo/ logs)")
        return
    labels, notes = alert["labels"], alert.get("annotations", {})
    say(f"ALERT in Alertmanager {(datetime.now(UTC) - cut).total_seconds():.0f}s after the "
        f"cut (hold-down {2 * INTERVAL_S:g}s): {labels.get('alertname')} "
        f"severity={labels.get('severity')} site={labels.get('site')} "
        f"commune={labels.get('commune')} startsAt={alert.get('startsAt')}")
    for key in ("summary", "summary_vi", "summary_en"):
        if key in notes:
            print(f"    {key}: {notes[key]}")


def fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def mbit(v: Any) -> str:
    return "-" if v is None else f"{v / 1e6:.2f}"


if __name__ == "__main__":
    sys.exit(main())
