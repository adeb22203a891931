"""The country's load through K collectors: lag p99, CPU per collector, broker and store CPU,
points/s stored, messages lost, and the scaling from 1 to K collectors, in one run.

Load: lab/countryload.py in its own process plays every agent of the 34 provinces
(lab/country.py: the province inventory x 34, 3,000 devices a province, 10 interfaces a
device, one poll per message every 60 s, each agent's retained status every 60 s): 1,700
telemetry msg/s + 224 statuses/s + 34 probe polls/s ~ 1,958 msg/s, ~21k points/s, from
pre-encoded templates over 4 raw MQTT connections. Its rate, lateness and CPU are its own
report's.

Per K (``--collectors 1,2``: K = 1, then 2, each on fresh daemons): Mosquitto, the store
(InfluxDB 1.x or VictoriaMetrics, which takes the same /write line protocol), and K real
``xanet collector`` processes, collector i owning partition i of the provinces split
evenly (``[partition] provinces``), each with the partition's inventory (its provinces'
communes, sites and agents) so the availability engine runs as in production
(``--no-inventory``: without it). Product defaults for the write path.

Lag: each province's ``probe`` device is polled every second (its poll ts = the
generator's send time, ms); a thread queries the store every 0.5 s for the probes' points
of the last 30 s; lag = first seen - poll ts (an upper bound by up to 0.5 s), over the
probes of the measured window. CPU: process CPU seconds / wall over the window (after
``--warmup``). Stored points/s: the points whose ts is in the window / window. Lost:
after the generator stopped and the collectors drained, points stored vs published
(device = polls, interface = 10 x polls, agent_status = statuses).

    python bench/country.py --collectors 1,2 --store influx --seconds 180
    python bench/country.py --collectors 1,2 --store victoria --seconds 180
    python bench/country.py --collectors 1 --provinces 2 --seconds 10 --warmup 5   # tiny
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from common import CpuMeter, finish, header, percentile, print_table, rss_mb, workdir
from country_store import DB, LagProbe, Store
from ingest import stats_series

import lab
from lab.country import PROVINCES, partition_inventory, split
from lab.fleet import collector_config, to_toml

ROOT = Path(__file__).resolve().parent.parent


def seed(store: Store, provinces: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Every device, interface and agent_status series written once, an hour back, as they
    exist once the fleet has polled once (as bench/ingest.py does): the measured writes add
    points, not series (creating the country's 1.1M series through one collector ran at
    ~5k points/s in InfluxDB 1.x). The lines are the collector's own (collector.schema) for
    the generator's own payloads."""
    from collector import schema
    from lab.country import country
    from lab.countryload import status_template, telemetry_template
    from xanet import topics, wire

    t = time.time() - 3600
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t)).encode()
    counters = [int(t)] * 20
    lines: list[str] = []
    for prov in country(provinces, args.devices_per_province):
        for i, a in enumerate(prov.agents):
            msg = wire.decode(status_template(a, "seed") % stamp, "status")
            assert isinstance(msg, wire.Status)
            where = topics.SiteTopic(a.province, a.commune, a.site, "status")
            lines.append(schema.status_line(where, msg, msg.ts or datetime.now(UTC)))
            for d in (*a.devices, *((prov.probe,) if i == 0 else ())):
                tele = wire.decode(telemetry_template(a, d, "seed")
                                   % (0, stamp, stamp, 1, *counters), "telemetry")
                assert isinstance(tele, wire.Telemetry)
                lines += schema.telemetry_lines(
                    topics.SiteTopic(d.province, d.commune, d.site, "telemetry"), tele)
    t0 = time.monotonic()
    asyncio.run(post_lines(store.url, lines, in_flight=4))
    return {"seed_lines": len(lines), "seed_s": time.monotonic() - t0}


async def post_lines(url: str, lines: list[str], in_flight: int, batch: int = 5000) -> None:
    bodies = [("\n".join(lines[i:i + batch]) + "\n").encode()
              for i in range(0, len(lines), batch)]
    bodies.reverse()
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        async def worker() -> None:
            while bodies:
                resp = await client.post("/write", params={"db": DB, "precision": "ms"},
                                         content=bodies.pop())
                if resp.status_code not in (200, 204):
                    raise RuntimeError(f"/write {resp.status_code}: {resp.text[:300]}")

        await asyncio.gather(*(worker() for _ in range(in_flight)))


def start_collector(wd: Path, name: str, provinces: list[str], mqtt: lab.Mosquitto,
                    store: Store, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], Path]:
    sections: dict[str, Any] = {}
    if not args.no_inventory:
        inv = wd / f"inventory-{name}.toml"
        inv.write_text(partition_inventory(provinces, args.devices_per_province, name))
        sections["inventory"] = {"path": str(inv)}
    cfg = collector_config(mqtt_port=mqtt.port, influx_url=store.url, database=DB,
                           dead_letter_dir=wd / f"dead-letter-{name}", collector_id=name,
                           **sections)
    cfg["influx"] = {"api": "v1", "url": store.url, "database": DB}  # product write path
    cfg["collector"]["stats_interval_s"] = 1
    cfg["partition"] = {"provinces": provinces}
    path = wd / f"collector-{name}.toml"
    path.write_text(to_toml(cfg))
    log = wd / f"collector-{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xanet.cli", "--log-level", "info", "collector", "--config",
         str(path)], stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=wd)
    return proc, log


def wait_subscribed(procs: list[tuple[subprocess.Popen[bytes], Path]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for proc, log in procs:
        while "subscribed to" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"collector did not subscribe:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)


def machine_busy() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0))


def run_k(k: int, provinces: list[str], store: Store, args: argparse.Namespace,
          wd: Path) -> dict[str, Any]:
    wd = wd / f"k{k}"
    wd.mkdir()
    parts = split(provinces, k)
    mqtt = lab.Mosquitto(wd / "mosquitto").start()
    collectors: list[tuple[subprocess.Popen[bytes], Path]] = []
    gen: subprocess.Popen[bytes] | None = None
    report_path = wd / "countryload.json"
    try:
        collectors = [start_collector(wd, f"part-{i + 1}", part, mqtt, store, args)
                      for i, part in enumerate(parts)]
        wait_subscribed(collectors, 300)
        gen = subprocess.Popen(
            [sys.executable, "-m", "lab.countryload", "--port", str(mqtt.port),
             "--provinces", ",".join(provinces), "--devices-per-province",
             str(args.devices_per_province), "--interval", str(args.interval),
             "--connections", str(args.connections), "--probe-interval",
             str(args.probe_interval), "--report", str(report_path)],
            cwd=ROOT, stdout=(wd / "countryload.log").open("ab"), stderr=subprocess.STDOUT)
        probe = LagProbe(store)
        probe.start()
        while "publishing" not in (wd / "countryload.log").read_text():
            if gen.poll() is not None:
                raise RuntimeError((wd / "countryload.log").read_text()[-2000:])
            time.sleep(0.2)
        time.sleep(args.warmup)
        pids = [p.pid for p, _ in collectors]
        meter = CpuMeter(*pids, mqtt.pid or 0, store.daemon.pid or 0, gen.pid, os.getpid())
        busy0, wall0 = machine_busy(), time.monotonic()
        load0 = os.getloadavg()[0]
        t_ws = time.time()
        rss: list[float] = []
        store_rss: list[float] = []
        while time.time() < t_ws + args.seconds:
            time.sleep(1)
            rss.append(max(rss_mb(p) for p in pids))
            store_rss.append(rss_mb(store.daemon.pid or 0))
            for proc, log in collectors:
                if proc.poll() is not None:
                    raise RuntimeError(f"a collector died: {log.read_text()[-2000:]}")
        t_we = time.time()
        wall, cpu = meter.read()
        machine = (machine_busy() - busy0) / (time.monotonic() - wall0)
        load1 = os.getloadavg()[0]
        gen.send_signal(signal.SIGTERM)
        gen.wait(60)
        gen_report = json.loads(report_path.read_text())
        expected = {"device": sum(v["polls"] for v in gen_report["per_province"].values())}
        expected["interface"] = 10 * expected["device"]
        expected["agent_status"] = sum(v["statuses"] for v in gen_report["per_province"].values())
        t_gen_stop = time.time()
        drained = drain(collectors, args.drain_timeout)
        drain_s = time.time() - t_gen_stop
        run_ms = (int(gen_report["started"] * 1000) - 1000, int(time.time() * 1000) + 1000)
        stored = store.counts(provinces, *run_ms)
        probe.stop.set()
        window = store.counts(provinces, int(t_ws * 1000), int(t_we * 1000))
        lags = probe.lags(t_ws, t_we)
        probes_sent = round((t_we - t_ws) / args.probe_interval) * len(provinces)
        stats = [stats_series(log)[-1][1] if stats_series(log) else {} for _, log in collectors]
    finally:
        if gen is not None and gen.poll() is None:
            gen.kill()
        for proc, _ in collectors:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        mqtt.stop()
    n = len(collectors)
    coll_pct = [100 * c / wall for c in cpu[:n]]
    lost = {m: expected[m] - stored.get(m, 0) for m in expected}
    return {
        "collectors": k, "partitions": [",".join(p) for p in parts],
        "lag_p50_s": percentile(lags, 50), "lag_p99_s": percentile(lags, 99),
        "lag_max_s": max(lags, default=float("nan")), "lag_samples": len(lags),
        "probes_sent_in_window": probes_sent, "drained": drained, "drain_s": drain_s,
        "collector_cpu_pct": coll_pct, "collectors_cpu_pct_total": sum(coll_pct),
        "mosquitto_cpu_pct": 100 * cpu[n] / wall, "store_cpu_pct": 100 * cpu[n + 1] / wall,
        "generator_cpu_pct": 100 * cpu[n + 2] / wall, "bench_cpu_pct": 100 * cpu[n + 3] / wall,
        "machine_busy_cores": machine,
        "others_cpu_pct": 100 * machine - sum(100 * c / wall for c in cpu),
        "load_start": load0, "load_end": load1,
        "points_per_s_stored": sum(window.values()) / (t_we - t_ws),
        "msg_per_s_published": gen_report["achieved_msg_per_s"],
        "msg_per_s_nominal": gen_report["nominal_msg_per_s"],
        "generator_late_p99_s": gen_report["late_p99_s"],
        "generator_late_max_s": gen_report["late_max_s"],
        "generator_per_second_min_max": [gen_report["per_second_min"],
                                         gen_report["per_second_max"]],
        "generator_unacked": gen_report["unacked"],
        "generator_shortfall": gen_report["shortfall"],
        "points_published": sum(expected.values()), "points_stored": sum(stored.values()),
        "points_lost": sum(max(0, v) for v in lost.values()),
        "points_doubled": sum(max(0, -v) for v in lost.values()), "lost_by_measurement": lost,
        "collector_rss_mb_max": max(rss, default=0.0),
        "store_rss_mb_max": max(store_rss, default=0.0),
        "rejected": sum(s.get("rejected", 0) for s in stats),
        "seq_gaps": sum(s.get("seq_gaps", 0) for s in stats),
        "polls_unmapped": sum(s.get("polls_unmapped", 0) for s in stats),
        "window_s": t_we - t_ws, "workdir": str(wd),
    }


def settle(store: Store, timeout_s: float) -> float:
    """Wait until the store's CPU stayed under 10 % of a core for 5 s (its background
    work after the seeding done: VictoriaMetrics spent minutes merging after 1.1M new
    series, which the first K measured otherwise); the seconds it took."""
    t0 = time.monotonic()
    proc = psutil.Process(store.daemon.pid or 0)
    while time.monotonic() - t0 < timeout_s:
        c0 = proc.cpu_times()
        time.sleep(5)
        c1 = proc.cpu_times()
        if (c1.user + c1.system - c0.user - c0.system) / 5 < 0.10:
            break
    return time.monotonic() - t0


def drain(collectors: list[tuple[subprocess.Popen[bytes], Path]], timeout_s: float) -> bool:
    """Wait until every collector has written and acknowledged all it received, and
    received nothing new for two stats lines (the broker's queue is empty); False if
    ``timeout_s`` passed first."""
    deadline = time.monotonic() + timeout_s
    last: list[int] = []
    while time.monotonic() < deadline:
        time.sleep(1.5)  # past one stats line (stats_interval_s 1)
        stats = [stats_series(log)[-1][1] for _, log in collectors]
        received = [s.get("received", 0) for s in stats]
        idle = all(s.get("unacked", 1) == 0 and s.get("lines_buffered", 1) == 0
                   for s in stats)
        if idle and received == last:
            return True
        last = received
    return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--collectors", default="1,2", help="K values, comma-separated, in order")
    p.add_argument("--store", choices=("influx", "victoria"), default="influx")
    p.add_argument("--seconds", type=float, default=60.0, help="measured window per K")
    p.add_argument("--warmup", type=float, default=30.0)
    p.add_argument("--provinces", type=int, default=len(PROVINCES),
                   help="the first N of the 34 provinces")
    p.add_argument("--devices-per-province", type=int, default=3000)
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--connections", type=int, default=4, help="generator MQTT connections")
    p.add_argument("--no-inventory", action="store_true",
                   help="collectors without inventory (no availability engine)")
    p.add_argument("--probe-interval", type=float, default=1.0)
    p.add_argument("--settle-timeout", type=float, default=600.0,
                   help="after seeding, how long to wait for the store to go quiet")
    p.add_argument("--drain-timeout", type=float, default=600.0,
                   help="after the generator stopped, how long the collectors may take to "
                   "write their backlog")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if a point was lost or doubled, a message rejected, a poll "
                   "unmapped (the smoke run's correctness check; no timing)")
    p.add_argument("--json")
    args = p.parse_args()
    header(f"country load through K collectors ({args.store})")
    provinces = list(PROVINCES[: args.provinces])
    ks = [int(x) for x in args.collectors.split(",")]
    if max(ks) > len(provinces):
        p.error(f"{max(ks)} collectors need at least as many provinces (--provinces)")
    wd = workdir("country")
    rows = []
    store = Store(args.store, wd)
    store.start()
    try:
        seeded = seed(store, provinces, args)
        seeded["settle_s"] = settle(store, args.settle_timeout)
        print(f"   seeded {seeded['seed_lines']:,} series in {seeded['seed_s']:.0f} s; the "
              f"store settled in {seeded['settle_s']:.0f} s", flush=True)
        for k in ks:
            rows.append(run_k(k, provinces, store, args, wd))
            r = rows[-1]
            print(f"   K={k}: lag p99 {r['lag_p99_s']:.2f} s, collectors CPU "
                  f"{' + '.join(f'{c:.0f}' for c in r['collector_cpu_pct'])} %, lost "
                  f"{r['points_lost']:,}", flush=True)
    finally:
        store.stop()
    table(rows, args)
    finish({"store": args.store, "inventory": not args.no_inventory, **seeded, "rows": rows},
           args.json)
    bad = [r for r in rows if r["points_lost"] or r["points_doubled"] or r["rejected"]
           or r["polls_unmapped"] or not r["lag_samples"] or not r["drained"]]
    if args.check and bad:
        print(f"   check failed: {[r['collectors'] for r in bad]}", file=sys.stderr)
        sys.exit(1)


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"   {args.provinces} provinces x {args.devices_per_province:,} devices, every "
          f"{args.interval:g} s; store {args.store}; availability engine "
          f"{'off' if args.no_inventory else 'on'}; window {args.seconds:g} s per K")
    shown = [{
        "K": r["collectors"],
        "lag p50/p99/max s": f"{r['lag_p50_s']:.2f}/{r['lag_p99_s']:.2f}/{r['lag_max_s']:.2f}",
        "probes seen": f"{r['lag_samples']}/{r['probes_sent_in_window']}",
        "collector CPU %": " + ".join(f"{c:.0f}" for c in r["collector_cpu_pct"]),
        "mosquitto %": r["mosquitto_cpu_pct"], "store %": r["store_cpu_pct"],
        "generator %": r["generator_cpu_pct"], "others %": r["others_cpu_pct"],
        "msg/s sent": r["msg_per_s_published"], "points/s stored": r["points_per_s_stored"],
        "lost": r["points_lost"], "doubled": r["points_doubled"], "rejected": r["rejected"],
        "drain s": r["drain_s"],
        "load": f"{r['load_start']:.1f}-{r['load_end']:.1f}",
    } for r in rows]
    print_table(shown, list(shown[0]))
    base = rows[0]
    for r in rows[1:]:
        print(f"   scaling {base['collectors']} -> {r['collectors']} collectors: collector CPU "
              f"{base['collectors_cpu_pct_total']:.0f} % -> {r['collectors_cpu_pct_total']:.0f} "
              f"% in all (max per process {max(base['collector_cpu_pct']):.0f} -> "
              f"{max(r['collector_cpu_pct']):.0f} %), lag p99 {base['lag_p99_s']:.2f} -> "
              f"{r['lag_p99_s']:.2f} s")
    print("   goal (2 collectors): lag p99 <= 5 s, nothing lost")


if __name__ == "__main__":
    main()
