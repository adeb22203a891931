"""Province-scale run: one agent process polls the province's fleet every 60 s, through
Mosquitto and one collector (with the province inventory and availability) into InfluxDB,
with an injected outage; then checks every poll was on time and the availability report.

Fleet: every device of config/inventory.province.toml (124 communes, 1,168 BTS sites:
hubs' routers and OLTs, cell-site routers, NodeB/eNodeB/BTS) plus extra BTS devices (not
in the inventory) up to ``--devices`` (default 2,618 = 2,418 BTS + ~200 hubs, issue 9), each
device ~10 interfaces, served by snmpsim from recordings with advancing counters
(lab.write_numeric_recording), split over several snmpsim processes.
Outage: the devices of ``--outage-communes`` communes sit on a simulator of their own,
which is stopped for ``--outage-minutes`` in the middle of the run (they really stop
answering).

Measured: agent CPU (% of one core) and RSS, polls per device and the largest gap between
two polls of a device (every poll on time: count = window / interval, gap <= 1.5 interval),
the agent's own poll_overruns, latency poll -> visible in InfluxDB (p50/p99, sampled by
querying InfluxDB every 0.5 s: an upper bound by up to 0.5 s), collector/snmpsim/InfluxDB
CPU, and the availability report against the injected outage.

    python bench/province.py --minutes 10            # the issue's run (~12 minutes)
    python bench/province.py --minutes 3 --fraction 0.25   # short version (make bench)
    python bench/province.py --minutes 2 --fraction 0.25 --baseline 29c706b   # before/after

``--baseline REV``: a second agent process, running ``agent/`` and ``xanet/`` as they were at
git revision REV (``git archive``), polls the same fleet from the same simulators at the
same time, publishing to a Mosquitto of its own that nobody reads (what an agent does per
poll does not depend on who subscribes). Its CPU and RSS are measured over the same window
as this tree's agent: a same-run before/after on a shared machine. The simulators then
carry twice the polls.

The simulators are Python (snmpsim, ~18 ms CPU per poll of a 10-interface device): at full
scale they need most of a core themselves. On this 2-core machine everything (simulators,
agent, broker, collector, InfluxDB, and other people's work) shares the cores: compare the
agent's CPU with its budget, not wall-clock numbers between runs.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    CpuMeter,
    export_tree,
    finish,
    header,
    percentile,
    print_table,
    rss_mb,
    workdir,
)

import lab
from collector.config import CollectorConfig
from collector.readback import Filters, availability_report
from lab import SimInterface, write_numeric_recording
from lab.fleet import agent_config, collector_config, inventory_text, to_toml
from xanet.inventory import load_inventory

INVENTORY = ROOT / "config" / "inventory.province.toml"
DB = "province"
AGENT = "agt-province"

# ~10 interfaces per device, named as the inventory's elements name them.
KINDS: dict[str, list[str]] = {
    "rtr": ["xe-0/0/0", "xe-0/0/1", *(f"ge-0/0/{i}" for i in range(8))],
    "olt": ["gpon-0/1", "gpon-0/2", "gpon-0/3", "gpon-0/4", *(f"ge-0/0/{i}" for i in range(6))],
    "csr": [f"ge-0/0/{i}" for i in range(10)],
    "bts": [f"eth{i}" for i in range(10)],
}


def kind_of(device_id: str) -> str:
    if device_id.startswith("rtr"):
        return "rtr"
    if device_id.startswith("olt"):
        return "olt"
    if device_id.startswith("csr"):
        return "csr"
    return "bts"


def recording(path: Path, kind: str, seed: int) -> Path:
    return write_numeric_recording(
        path, sys_descr=f"{kind} (simulated)",
        interfaces=[SimInterface(index=i, name=name, in_rate=50_000.0 * (1 + (i + seed) % 7),
                                 out_rate=20_000.0 * (1 + (i + seed) % 5),
                                 speed_bps=10_000_000_000 if name.startswith("xe") else
                                 1_000_000_000)
                    for i, name in enumerate(KINDS[kind], start=1)])


def bench_inventory(raw: dict[str, Any], path: Path) -> Path:
    """Write the inventory shape (province, communes, sites with devices) as TOML."""
    path.write_text(inventory_text(raw))
    return path


def build_fleet(args: argparse.Namespace, wd: Path) -> tuple[list[dict[str, Any]], set[str], Path]:
    """(devices as {id, site, commune, kind, group}, outage communes, bench inventory path).

    One agent polls the whole fleet: every site's agent becomes the one province agent.
    Device ids stay as the inventory names them (unique per site; the agent keys its
    devices by site/device). Extra BTS are ``xbts-N`` on existing BTS sites.
    """
    import tomllib

    raw = tomllib.loads(INVENTORY.read_text())
    communes = [c["code"] for c in raw["communes"]]
    keep = set(communes[: max(1, round(len(communes) * args.fraction))])
    outage = set(sorted(keep)[: args.outage_communes])
    raw["communes"] = [c for c in raw["communes"] if c["code"] in keep]
    raw["sites"] = [s for s in raw["sites"] if s["commune"] in keep]
    fleet = []
    for site in raw["sites"]:
        site["agent"] = AGENT
        for dev in site.get("devices", []):
            kind = kind_of(dev["id"])
            for key in ("host", "address", "port", "snmp_version", "credentials", "profiles",
                        "interval_s"):
                dev.pop(key, None)  # polling data: the bench agent has its own
            fleet.append({"id": dev["id"], "site": site["id"], "commune": site["commune"],
                          "kind": kind, "group": "outage" if site["commune"] in outage else "main"})
    target = round(args.devices * args.fraction)
    extra_sites = [s for s in raw["sites"] if s["role"] == "bts" and s["commune"] not in outage]
    i = 0
    while len(fleet) < target and extra_sites:
        site = extra_sites[i % len(extra_sites)]
        dev_id = f"xbts-{i // len(extra_sites)}"
        site["devices"].append({"id": dev_id})
        fleet.append({"id": dev_id, "site": site["id"], "commune": site["commune"],
                      "kind": "bts", "group": "main"})
        i += 1
    path = bench_inventory(raw, wd / "inventory.toml")
    load_inventory(path)  # fail here if the rewrite is wrong
    return fleet, outage, path


class LatencyProbe(threading.Thread):
    """Queries InfluxDB every 0.5 s for new device points; first-seen time - poll time."""

    def __init__(self, influx: lab.InfluxDB1) -> None:
        super().__init__(daemon=True)
        self.influx = influx
        self.seen: dict[tuple[str, str, int], float] = {}
        self.samples: list[tuple[float, int, float]] = []  # (poll ts, up, latency s)
        self.stop = threading.Event()
        self.errors = 0

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                rows = self.influx.query('SELECT "up", "site", "device" FROM "device" '
                                         'WHERE time > now() - 60s', db=DB, epoch="ms")
            except lab.ServiceError:
                self.errors += 1
                continue
            now = time.time()
            for r in rows:
                key = (r["site"], r["device"], r["time"])
                if key not in self.seen:
                    self.seen[key] = now
                    self.samples.append((r["time"] / 1000, r["up"], now - r["time"] / 1000))

    def latencies(self, start: float, end: float, up: int) -> list[float]:
        return [lat for ts, u, lat in self.samples if start <= ts < end and u == up]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=3.0, help="measured window")
    p.add_argument("--fraction", type=float, default=1.0, help="share of the communes polled")
    p.add_argument("--devices", type=int, default=2618, help="devices at fraction 1")
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--jitter", type=float, default=1.0,
                   help="agent [polling] jitter (0..1; 1 = polls spread over the interval)")
    p.add_argument("--sims", type=int, default=3, help="snmpsim processes for the main fleet")
    p.add_argument("--outage-communes", type=int, default=3)
    p.add_argument("--outage-minutes", type=float, default=None,
                   help="default: a third of the window")
    p.add_argument("--no-icmp", action="store_true",
                   help="poll without the ICMP witness (every device but the outage's is "
                   "pinged by default)")
    p.add_argument("--baseline", metavar="GIT_REV",
                   help="also run the agent as it was at GIT_REV, polling the same fleet at "
                   "the same time (same-run before/after of agent CPU and RSS)")
    p.add_argument("--json")
    args = p.parse_args()
    header("province-scale run: one agent, one collector, injected outage")
    wd = workdir("province")
    fleet, outage_communes, inventory_path = build_fleet(args, wd)
    inv = load_inventory(inventory_path)
    print(f"   fleet: {len(fleet):,} devices ({sum(d['group'] == 'outage' for d in fleet)} in the "
          f"outage communes {sorted(outage_communes)}), ~10 interfaces each, every "
          f"{args.interval:g} s = {len(fleet) / args.interval:.1f} polls/s", flush=True)
    rec = wd / "recordings"
    started: list[Any] = []
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {}
    try:
        mqtt = lab.Mosquitto(wd / "mosquitto").start()
        started.append(mqtt)
        influx = lab.InfluxDB1(wd / "influx").start()
        started.append(influx)
        influx.create_database(DB)
        recs = {f"{k}{s}": recording(rec / f"{k}{s}.snmprec", k, s) for k in KINDS
                for s in range(2)}
        sims = [lab.SnmpSim(wd / f"snmpsim-{i}", recs).start() for i in range(args.sims)]
        outage_sim = lab.SnmpSim(wd / "snmpsim-outage", recs).start()
        started += [*sims, outage_sim]
        env = {f"PROV_{c.upper()}": c for c in recs}
        devices = []
        for n, d in enumerate(fleet):
            sim = outage_sim if d["group"] == "outage" else sims[n % len(sims)]
            community = f"{d['kind']}{n % 2}"
            devices.append({"id": d["id"], "host": "127.0.0.1",
                            "port": sim.port, "site": d["site"], "commune": d["commune"],
                            "snmp": {"version": "2c",
                                     "community": {"env": f"PROV_{community.upper()}"}},
                            # the injected outage stops a simulator on 127.0.0.1, which
                            # keeps answering ICMP: those devices play hosts that filter
                            # ICMP, so the cut is downtime (docs/availability.md)
                            **({"icmp": False} if d["group"] == "outage" else {})})
        acfg = agent_config(
            agent_id=AGENT, site=fleet[0]["site"], commune=fleet[0]["commune"], province="08",
            mqtt_port=mqtt.port, spool_path=wd / "agent-spool.sqlite3", interval_s=args.interval,
            devices=devices,
            polling={"timeout_s": 2.0, "retries": 1, "jitter": args.jitter,
                     "max_concurrent": 64},
            icmp={"enabled": not args.no_icmp},  # the ICMP witness, as on a site box
            agent={"status_interval_s": 30})
        (wd / "agent.toml").write_text(to_toml(acfg))
        base_agent = None
        if args.baseline:
            base_mqtt = lab.Mosquitto(wd / "mosquitto-baseline").start()
            started.append(base_mqtt)
            base_cfg = agent_config(
                agent_id=f"{AGENT}-base", site=fleet[0]["site"], commune=fleet[0]["commune"],
                province="08", mqtt_port=base_mqtt.port,
                spool_path=wd / "agent-baseline-spool.sqlite3", interval_s=args.interval,
                devices=devices, polling=acfg["polling"], icmp=acfg["icmp"],
                agent={"status_interval_s": 30})
            (wd / "agent-baseline.toml").write_text(to_toml(base_cfg))
            tree = export_tree(args.baseline, wd)
        ccfg = collector_config(
            mqtt_port=mqtt.port, influx_url=influx.url, database=DB,
            dead_letter_dir=wd / "dead-letter", collector_id="province",
            inventory={"path": str(inventory_path)},
            availability={"stale_after_s": 3 * args.interval, "bucket_s": 300.0,
                          "emit_interval_s": 5.0})
        ccfg["collector"]["stats_interval_s"] = 10
        ccfg["influx"] = {"api": "v1", "url": influx.url, "database": DB}
        (wd / "collector.toml").write_text(to_toml(ccfg))
        penv = {**os.environ, **env}
        collector = subprocess.Popen(
            [sys.executable, "-m", "xanet.cli", "--log-level", "info", "collector", "--config",
             str(wd / "collector.toml")], env=penv, cwd=wd,
            stdout=(wd / "collector.log").open("ab"), stderr=subprocess.STDOUT)
        procs.append(collector)
        time.sleep(2)
        agent = subprocess.Popen(
            [sys.executable, "-m", "xanet.cli", "--log-level", "info", "agent", "--config",
             str(wd / "agent.toml")], env=penv, cwd=wd,
            stdout=(wd / "agent.log").open("ab"), stderr=subprocess.STDOUT)
        procs.append(agent)
        if args.baseline:
            base_agent = subprocess.Popen(
                [sys.executable, "-m", "xanet.cli", "--log-level", "info", "agent", "--config",
                 str(wd / "agent-baseline.toml")], env={**penv, "PYTHONPATH": str(tree)},
                cwd=wd, stdout=(wd / "agent-baseline.log").open("ab"), stderr=subprocess.STDOUT)
            procs.append(base_agent)
        probe = LatencyProbe(influx)
        probe.start()
        # One full interval to settle (sessions, first polls, rate baselines), then measure.
        time.sleep(args.interval + 5)
        window = args.minutes * 60
        outage_s = (args.outage_minutes * 60) if args.outage_minutes else window / 3
        meter = CpuMeter(agent.pid, collector.pid, influx.pid or 0, mqtt.pid or 0,
                         *(s.pid or 0 for s in sims), outage_sim.pid or 0)
        base_meter = CpuMeter(base_agent.pid) if base_agent is not None else None
        rss_samples = []
        base_rss: list[float] = []
        t_start = time.time()
        cut_at = t_start + (window - outage_s) / 2
        cut = back = None
        while time.time() < t_start + window:
            time.sleep(1)
            rss_samples.append(rss_mb(agent.pid))
            if base_agent is not None:
                base_rss.append(rss_mb(base_agent.pid))
            if cut is None and time.time() >= cut_at:
                outage_sim.stop()
                cut = time.time()
                print(f"   outage: simulator of {sorted(outage_communes)} stopped", flush=True)
            if cut is not None and back is None and time.time() >= cut + outage_s:
                outage_sim.start()
                back = time.time()
                print(f"   outage over after {back - cut:.0f} s", flush=True)
            if agent.poll() is not None or collector.poll() is not None or (
                    base_agent is not None and base_agent.poll() is not None):
                raise RuntimeError("an agent or the collector died: see logs in " + str(wd))
        t_end = time.time()
        wall, cpu = meter.read()
        if base_meter is not None:
            base_wall, base_cpu = base_meter.read()
            results.update({
                "baseline": args.baseline,
                "baseline_agent_cpu_pct": 100 * base_cpu[0] / base_wall,
                "baseline_agent_cpu_ms_per_poll":
                    1000 * base_cpu[0] / (base_wall * len(fleet) / args.interval),
                "baseline_agent_rss_mb_max": max(base_rss),
                "baseline_agent_rss_mb_end": base_rss[-1],
            })
        time.sleep(8)  # the last polls' points and availability emissions
        probe.stop.set()
        assert cut is not None and back is not None
        results.update(check(args, influx, fleet, devices, t_start, t_end, cut, back,
                             outage_communes, ccfg, inv))
        n_sims = len(sims)
        results.update({
            "agent_cpu_pct": 100 * cpu[0] / wall, "collector_cpu_pct": 100 * cpu[1] / wall,
            "influxd_cpu_pct": 100 * cpu[2] / wall, "mosquitto_cpu_pct": 100 * cpu[3] / wall,
            "snmpsim_cpu_pct": 100 * sum(cpu[4:4 + n_sims + 1]) / wall,
            "agent_rss_mb_max": max(rss_samples), "agent_rss_mb_end": rss_samples[-1],
            "latency_p50_s": percentile(probe.latencies(t_start, t_end, 1), 50),
            "latency_p99_s": percentile(probe.latencies(t_start, t_end, 1), 99),
            "latency_max_s": max(probe.latencies(t_start, t_end, 1), default=float("nan")),
            "latency_samples": len(probe.latencies(t_start, t_end, 1)),
            "latency_unreachable_p50_s": percentile(probe.latencies(t_start, t_end, 0), 50),
            "devices": len(fleet), "polls_per_s": len(fleet) / args.interval,
            "agent_cpu_ms_per_poll": 1000 * cpu[0] / (wall * len(fleet) / args.interval),
        })
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for s in reversed(started):
            s.stop()
    report(results, args, wd)
    finish(results, args.json)


def check(args: argparse.Namespace, influx: lab.InfluxDB1, fleet: list[dict[str, Any]],
          devices: list[dict[str, Any]], t_start: float, t_end: float, cut: float, back: float,
          outage_communes: set[str], ccfg: dict[str, Any], inv: Any) -> dict[str, Any]:
    lo, hi = int(t_start * 1000), int(t_end * 1000)
    rows = influx.query(f'SELECT "up", "site", "device" FROM "device" WHERE time >= {lo}ms '
                        f'AND time < {hi}ms', db=DB, epoch="ms")
    times: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rows:
        times[(r["site"], r["device"])].append(r["time"])
    interval_ms = args.interval * 1000
    expected = (hi - lo) / interval_ms
    counts, gaps, late = [], [], 0
    for d in fleet:
        ts = sorted(times.get((d["site"], d["id"]), []))
        counts.append(len(ts))
        gap = max((b - a for a, b in itertools.pairwise(ts)), default=float("inf"))
        gaps.append(gap / 1000)
        if abs(len(ts) - expected) > 1 or gap > 1.5 * interval_ms:
            late += 1
    status = influx.query(f'SELECT last("poll_overruns") AS o FROM "agent_status" '
                          f'WHERE "agent" = \'{AGENT}\'', db=DB)
    overruns = status[0]["o"] if status else None
    # Availability: the outage communes down for the outage, every other commune never down.
    cfg = CollectorConfig.model_validate(ccfg)
    rep = availability_report(cfg, inv, datetime.fromtimestamp(t_start, UTC),
                              datetime.fromtimestamp(t_end, UTC), Filters(province="08"))
    injected = back - cut
    tolerance = args.interval + 2 * 2.0 + 2  # one poll interval + a timed-out poll + slack
    bad = []
    outage_rows = other_rows = 0
    polled = {d["commune"] for d in fleet}
    for r in rep.rows:
        if r.commune not in polled:
            continue
        s = r.summary
        if r.commune in outage_communes:
            outage_rows += 1
            if abs(s.down_s - injected) > tolerance:
                bad.append(f"{r.commune} {r.service}: down {s.down_s:.0f}s, injected "
                           f"{injected:.0f}s")
        else:
            other_rows += 1
            if s.down_s > 0:
                bad.append(f"{r.commune} {r.service}: down {s.down_s:.0f}s, expected 0")
    return {
        "window_s": t_end - t_start, "expected_polls_per_device": expected,
        "polls_min": min(counts), "polls_max": max(counts), "max_gap_s": max(gaps),
        "devices_not_on_time": late, "agent_poll_overruns": overruns,
        "outage_injected_s": injected, "report_rows_outage": outage_rows,
        "report_rows_other": other_rows, "report_mismatches": bad,
    }


def report(r: dict[str, Any], args: argparse.Namespace, wd: Path) -> None:
    if not r:
        return
    rows = [
        {"measure": "devices / polls per s", "value": f"{r['devices']:,} / {r['polls_per_s']:.1f}"},
        {"measure": "agent CPU (% of one core)", "value": f"{r['agent_cpu_pct']:.1f}",
         "goal": "< 25"},
        {"measure": "agent CPU ms per device poll", "value": f"{r['agent_cpu_ms_per_poll']:.1f}"},
        {"measure": "agent RSS MB (max / end)",
         "value": f"{r['agent_rss_mb_max']:.0f} / {r['agent_rss_mb_end']:.0f}"},
        {"measure": "polls per device (min..max, expected)",
         "value": f"{r['polls_min']}..{r['polls_max']} ({r['expected_polls_per_device']:.1f})"},
        {"measure": "largest gap between two polls of a device s",
         "value": f"{r['max_gap_s']:.1f}", "goal": f"<= {1.5 * args.interval:g}"},
        {"measure": "devices not on time", "value": str(r["devices_not_on_time"]), "goal": "0"},
        {"measure": "agent poll_overruns", "value": str(r["agent_poll_overruns"]), "goal": "0"},
        {"measure": "latency poll -> InfluxDB p50 / p99 / max s (answered polls)",
         "value": f"{r['latency_p50_s']:.2f} / {r['latency_p99_s']:.2f} / "
                  f"{r['latency_max_s']:.2f} ({r['latency_samples']:,} polls)",
         "goal": "p99 <= 2"},
        {"measure": "latency of timed-out polls p50 s (2 s x 2 tries)",
         "value": f"{r['latency_unreachable_p50_s']:.2f}"},
        {"measure": "collector / influxd / mosquitto / snmpsim CPU %",
         "value": f"{r['collector_cpu_pct']:.0f} / {r['influxd_cpu_pct']:.0f} / "
                  f"{r['mosquitto_cpu_pct']:.0f} / {r['snmpsim_cpu_pct']:.0f}"},
        {"measure": "outage injected s; report rows outage / other",
         "value": f"{r['outage_injected_s']:.0f}; {r['report_rows_outage']} / "
                  f"{r['report_rows_other']}"},
        {"measure": "availability report mismatches", "value": str(len(r["report_mismatches"])),
         "goal": "0"},
    ]
    print_table(rows, ["measure", "value", "goal"])
    if "baseline" in r:
        print(f"   same run, same fleet and simulators: this tree's agent vs @{r['baseline']}'s")
        print_table([
            {"agent": "this tree", "CPU %": r["agent_cpu_pct"],
             "CPU ms per poll": r["agent_cpu_ms_per_poll"],
             "RSS MB max / end": f"{r['agent_rss_mb_max']:.0f} / {r['agent_rss_mb_end']:.0f}"},
            {"agent": f"@{r['baseline']}", "CPU %": r["baseline_agent_cpu_pct"],
             "CPU ms per poll": r["baseline_agent_cpu_ms_per_poll"],
             "RSS MB max / end": f"{r['baseline_agent_rss_mb_max']:.0f} / "
                                 f"{r['baseline_agent_rss_mb_end']:.0f}"},
        ], ["agent", "CPU %", "CPU ms per poll", "RSS MB max / end"])
    for m in r["report_mismatches"][:20]:
        print(f"   mismatch: {m}")
    print(f"   logs and data: {wd}")


if __name__ == "__main__":
    main()
