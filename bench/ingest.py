"""Collector ingest: telemetry messages/s and points/s end to end into InfluxDB, side by side
with the broker ceiling (mosquitto_sub on the same stream) and the database ceiling
(the same line protocol POSTed straight to InfluxDB's /write).

Everything real, on 127.0.0.1: Mosquitto and a fresh InfluxDB 1.x (lab/), the
collector as a real ``xanet collector`` process (product defaults: Receive Maximum 2000,
batches of 5,000 lines, 1 s flush), the stream published by ``mosquitto_pub -l -q 1``
(C, one process) from a file of pre-encoded telemetry messages (xanet.wire, ~10 interfaces
per device as in the province). Per scenario, in this order and in this one invocation:

1. broker ceiling   ``mosquitto_sub -C N -q 1`` receives the whole published stream;
2. database ceiling the collector's own line protocol for those messages
                    (collector.lineproto) POSTed in 5,000-line batches, 1 and 4 in flight,
                    into a fresh database;
3. xanet            the collector subscribed (persistent session, manual acks after the
                    write) while the same file is published; its points are counted in
                    InfluxDB afterwards (every one must be there), the rate is taken from
                    its stats log between 10 % and 90 % of the points written.

    python bench/ingest.py                                   # ~1.5 minutes
    python bench/ingest.py --single 200000 --batched 20000   # longer runs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from common import CpuMeter, finish, header, print_table, workdir

import lab
from collector import schema
from lab.fleet import collector_config, to_toml
from xanet import topics, wire

PROVINCE = "08"
COMMUNE = "00691"
SITE = "hub-00691"
AGENT = "agt-bench"
TOPIC = topics.build(PROVINCE, COMMUNE, SITE, "telemetry")
WINDOW = timedelta(minutes=90)  # measured points are 1 h old, warm-up points 2 h


def make_messages(n_messages: int, polls_per_message: int, ifaces: int,
                  devices: int, age: timedelta = timedelta(hours=1)) -> list[bytes]:
    """Pre-encoded telemetry: distinct (device, ts) per poll so no point overwrites another."""
    base = datetime.now(UTC) - age
    out = []
    k = 0
    for seq in range(n_messages):
        polls = []
        for _ in range(polls_per_message):
            dev = k % devices
            ts = base + timedelta(milliseconds=k // devices)
            polls.append(wire.DevicePoll(
                device=f"dev-{dev:05d}", ts=ts, reachable=True, rtt_ms=12.5, uptime_cs=123456 + k,
                interfaces=[wire.InterfacePoll(
                    index=i, name=f"ge-0/0/{i}", oper=1, admin=1, speed_bps=1_000_000_000,
                    hc=True, in_octets=10_000_000 + k * 1000 + i, out_octets=5_000_000 + k * 500,
                    in_bps=800_000.0 + i, out_bps=400_000.0 + i, in_util_pct=0.08,
                    out_util_pct=0.04) for i in range(1, ifaces + 1)]))
            k += 1
        out.append(wire.encode(wire.Telemetry(agent=AGENT, site=SITE, seq=seq, polls=polls)))
    return out


def lines_of(messages: list[bytes]) -> list[str]:
    where = topics.parse(TOPIC)
    out: list[str] = []
    for m in messages:
        msg = wire.decode(m, "telemetry")
        assert isinstance(msg, wire.Telemetry)
        out.extend(schema.telemetry_lines(where, msg))
    return out


def publish(port: int, stream: Path, topic: str = TOPIC) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-M", "100",
         "-i", f"bench-pub-{time.monotonic_ns()}", "-t", topic, "-l"],
        stdin=stream.open("rb"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# ----------------------------------------------------------------------------- ceilings


def broker_ceiling(port: int, stream: Path, n: int, timeout_s: float) -> dict[str, Any]:
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-C", str(n),
         "-t", TOPIC, "-i", f"bench-sub-{time.monotonic_ns()}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # subscribed
    t0 = time.perf_counter()
    pub = publish(port, stream)
    try:
        sub.wait(timeout_s)
    except subprocess.TimeoutExpired:
        sub.kill()
        raise RuntimeError("mosquitto_sub did not receive every message in time") from None
    wall = time.perf_counter() - t0
    pub.wait(30)
    return {"wall_s": wall, "messages": n}


def prepare_database(url: str, db: str, warmup: list[str]) -> None:
    """A fresh database whose series already exist (as they do after the fleet's first poll):
    the measured writes then add points, not series."""
    r = httpx.post(f"{url}/query", data={"q": f'CREATE DATABASE "{db}"'}, timeout=30)
    r.raise_for_status()
    for i in range(0, len(warmup), 5000):
        r = httpx.post(f"{url}/write", params={"db": db, "precision": "ms"}, timeout=60,
                       content=("\n".join(warmup[i:i + 5000]) + "\n").encode())
        if r.status_code != 204:
            raise RuntimeError(f"warm-up /write {r.status_code}: {r.text[:200]}")


async def db_ceiling(url: str, db: str, lines: list[str], in_flight: int,
                     batch: int = 5000) -> dict[str, Any]:
    bodies = [("\n".join(lines[i:i + batch]) + "\n").encode() for i in range(0, len(lines), batch)]
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        queue = list(reversed(bodies))

        async def worker() -> None:
            while queue:
                body = queue.pop()
                resp = await client.post("/write", params={"db": db, "precision": "ms"},
                                         content=body)
                if resp.status_code != 204:
                    raise RuntimeError(f"/write {resp.status_code}: {resp.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return {"wall_s": time.perf_counter() - t0, "lines": len(lines)}


# ----------------------------------------------------------------------------- collector

_STATS = re.compile(r"^(\S+ \S+) INFO xanet.collector: stats (.*)$")


def stats_series(log: Path) -> list[tuple[float, dict[str, int]]]:
    out = []
    for ln in log.read_text(errors="replace").splitlines():
        m = _STATS.match(ln)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        kv = dict(x.split("=", 1) for x in m.group(2).split())
        out.append((t, {k: int(v) for k, v in kv.items() if v.lstrip("-").isdigit()}))
    return out


def overlay(wd: Path, rev: str, files: list[str]) -> Path:
    """A copy of today's collector package with ``files`` (or whole folders, such as
    ``collector``) as they were at git ``rev``; put first on PYTHONPATH, the collector
    process runs that code (before/after rows)."""
    import shutil

    from common import ROOT, rev_tag
    tag = rev_tag(rev)
    root = wd / f"overlay-{tag}"
    if root.exists():
        return root
    shutil.copytree(ROOT / "collector", root / "collector",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for f in files:
        kind = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-t", f"{rev}:{f}"],
                              check=True, capture_output=True, text=True).stdout.strip()
        if kind == "tree":
            shutil.rmtree(root / f, ignore_errors=True)
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, f], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
            continue
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{f}"], check=True,
                              capture_output=True, text=True).stdout
        (root / f).write_text(text)
    return root


# --pin: the collector alone on this CPU, everything else (this script, Mosquitto,
# InfluxDB, mosquitto_pub) on the others. Set by main().
COLLECTOR_CPUS: set[int] | None = None


def _pin_collector() -> None:  # runs in the child between fork and exec
    if COLLECTOR_CPUS is not None:
        os.sched_setaffinity(0, COLLECTOR_CPUS)


def run_collector(wd: Path, mqtt_port: int, influx: lab.InfluxDB1, db: str,
                  collector_id: str, pythonpath: Path | None = None,
                  ) -> tuple[subprocess.Popen[bytes], Path]:
    cfg = collector_config(mqtt_port=mqtt_port, influx_url=influx.url, database=db,
                           dead_letter_dir=wd / f"dead-letter-{collector_id}",
                           collector_id=collector_id)
    # Product defaults for the write path (collector_config tunes them for tests).
    cfg["influx"] = {"api": "v1", "url": influx.url, "database": db}
    cfg["collector"]["province"] = PROVINCE
    # One agent id carries the whole stream (a central poller of --devices devices, 11
    # series each: 28,798 at the default 2,618), above the guard's per-agent default of
    # 25,000 new series per window, which would refuse the last tenth as a flood.
    cfg["guards"] = {"max_new_series_per_agent": 1_000_000}
    path = wd / f"collector-{collector_id}.toml"
    path.write_text(to_toml(cfg))
    log = wd / f"collector-{collector_id}.log"
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xanet.cli", "--log-level", "info", "collector",
         "--config", str(path)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=wd, env=env,
        preexec_fn=_pin_collector if COLLECTOR_CPUS is not None else None)
    deadline = time.monotonic() + 30
    while "subscribed to" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"collector did not subscribe:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, log


def collector_run(wd: Path, mqtt: lab.Mosquitto, influx: lab.InfluxDB1, db: str,
                  stream: Path, n_messages: int, n_lines: int, timeout_s: float,
                  collector_id: str, profile_dir: Path | None = None,
                  pythonpath: Path | None = None) -> dict[str, Any]:
    proc, log = run_collector(wd, mqtt.port, influx, db, collector_id, pythonpath)
    try:
        meter = CpuMeter(proc.pid, influx.pid or 0, mqtt.pid or 0)
        spy = None
        if profile_dir is not None:
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
                 "--rate", "200", "--nonblocking", "--pid", str(proc.pid),
                 "-o", str(profile_dir / f"collector-{collector_id}.folded")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.perf_counter()
        pub = publish(mqtt.port, stream)
        deadline = time.monotonic() + timeout_s
        done_at = None
        while time.monotonic() < deadline:
            time.sleep(0.5)
            series = stats_series(log)
            if series and series[-1][1].get("lines_written", 0) >= n_lines \
                    and series[-1][1].get("acked", 0) >= n_messages:
                done_at = time.perf_counter()
                break
            if proc.poll() is not None:
                raise RuntimeError(f"collector died:\n{log.read_text()[-2000:]}")
        wall_cpu = meter.read()
        if spy is not None:
            spy.send_signal(2)  # SIGINT: py-spy writes its profile
            spy.wait(30)
            assert profile_dir is not None
            print_profile(profile_dir / f"collector-{collector_id}.folded")
        pub.wait(30)
        if done_at is None:
            raise RuntimeError(f"collector did not write every line within {timeout_s}s:\n"
                               f"{series[-1] if series else 'no stats'}")
    finally:
        proc.terminate()
        proc.wait(30)
    # The stats line is written once a second: the sustained rate is the slope between the
    # first sample above 10 % and the last below 90 % of the lines.
    series = stats_series(log)
    lo = [(t, s["lines_written"]) for t, s in series if s.get("lines_written", 0) > 0.1 * n_lines]
    win = [(t, w) for t, w in lo if w < 0.9 * n_lines] or lo
    if len(win) >= 2 and win[-1][0] > win[0][0]:
        lines_per_s = (win[-1][1] - win[0][1]) / (win[-1][0] - win[0][0])
    else:
        lines_per_s = n_lines / (done_at - t0)
    since = f"WHERE time > now() - {int(WINDOW.total_seconds())}s"
    counted = influx.query(f'SELECT count("up") AS polls FROM "device" {since}', db=db)
    icounted = influx.query(f'SELECT count("oper") AS n FROM "interface" {since}', db=db)
    stored = (counted[0]["polls"] if counted else 0) + (icounted[0]["n"] if icounted else 0)
    wall, (cpu_collector, cpu_influx, cpu_mqtt) = wall_cpu
    return {"lines_per_s": lines_per_s, "overall_lines_per_s": n_lines / (done_at - t0),
            "stored_points": stored, "expected_points": n_lines,
            "collector_cpu_s": cpu_collector, "influx_cpu_s": cpu_influx,
            "mosquitto_cpu_s": cpu_mqtt, "wall_s": wall}


def print_profile(folded: Path, top: int = 25) -> None:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    from collections import Counter
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for ln in folded.read_text().splitlines():
        stack, _, count = ln.rpartition(" ")
        n = int(count)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].split("/")[-1] + ")"
                  for f in stack.split(";") if f]
        total += n
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"   py-spy: {total} samples of the collector ({folded})")
    print("   self %   function")
    for f, n in own.most_common(top):
        print(f"   {100 * n / total:6.1f}   {f}")
    print("   incl %   function")
    for f, n in incl.most_common(top + 15):
        print(f"   {100 * n / total:6.1f}   {f}")


# ----------------------------------------------------------------------------- driver


def scenario(name: str, wd: Path, mqtt: lab.Mosquitto, influx: lab.InfluxDB1,
             n_messages: int, polls_per_message: int, args: argparse.Namespace,
             ) -> list[dict[str, Any]]:
    messages = make_messages(n_messages, polls_per_message, args.ifaces, args.devices)
    stream = wd / f"{name}.stream"
    stream.write_bytes(b"\n".join(messages) + b"\n")
    lines = lines_of(messages)
    n_lines = len(lines)
    warmup = lines_of(make_messages(args.devices, 1, args.ifaces, args.devices,
                                    age=timedelta(hours=2)))
    ppm = n_lines / n_messages
    size = sum(map(len, messages)) / n_messages
    print(f"   {name}: {n_messages:,} messages x {polls_per_message} poll(s) x {args.ifaces} "
          f"interfaces = {n_lines:,} points ({ppm:.0f} per message, {size:,.0f} B per message)",
          flush=True)
    rows = []
    b = broker_ceiling(mqtt.port, stream, n_messages, args.timeout)
    rows.append({"scenario": name, "path": "broker ceiling: mosquitto_sub -q 1",
                 "msg/s": n_messages / b["wall_s"], "points/s": n_lines / b["wall_s"]})
    for in_flight in (1, 4):
        db = f"ceiling_{name}_{in_flight}"
        prepare_database(influx.url, db, warmup)
        d = asyncio.run(db_ceiling(influx.url, db, lines, in_flight))
        rows.append({"scenario": name,
                     "path": f"database ceiling: POST /write 5,000 lines, {in_flight} in flight",
                     "msg/s": n_messages / d["wall_s"], "points/s": n_lines / d["wall_s"]})
    lower = min(rows[0]["points/s"], rows[1]["points/s"])
    variants: list[tuple[str, Path | None]] = [("", None)]
    if args.baseline:
        variants.append((f" @{args.baseline}",
                         overlay(wd, args.baseline, args.baseline_files.split(","))))
    for label, pythonpath in variants:
        rows.append(collector_row(wd, mqtt, influx, name, label, pythonpath, warmup, stream,
                                  n_messages, n_lines, lower, ppm, args))
    return rows


def collector_row(wd: Path, mqtt: lab.Mosquitto, influx: lab.InfluxDB1, name: str,
                  label: str, pythonpath: Path | None, warmup: list[str], stream: Path,
                  n_messages: int, n_lines: int, lower: float, ppm: float,
                  args: argparse.Namespace) -> dict[str, Any]:
    tag = "".join(c if c.isalnum() else "_" for c in f"{name}{label}")
    prepare_database(influx.url, f"xanet_{tag}", warmup)
    c = collector_run(wd, mqtt, influx, f"xanet_{tag}", stream, n_messages, n_lines,
                      args.timeout, tag, wd if args.profile else None, pythonpath)
    if c["stored_points"] != c["expected_points"]:
        print(f"   WARNING: {name}{label}: {c['stored_points']} points stored, "
              f"{c['expected_points']} expected", flush=True)
    return {
        "scenario": name, "path": f"xanet collector{label} (1 process) -> InfluxDB",
        "msg/s": c["lines_per_s"] / ppm, "points/s": c["lines_per_s"],
        "% of lower ceiling": 100 * c["lines_per_s"] / lower,
        "collector CPU %": 100 * c["collector_cpu_s"] / c["wall_s"],
        "influxd CPU %": 100 * c["influx_cpu_s"] / c["wall_s"],
        "mosquitto CPU %": 100 * c["mosquitto_cpu_s"] / c["wall_s"],
        "CPU us/point": 1e6 * c["collector_cpu_s"] / n_lines,
        "stored/expected": f"{c['stored_points']:,}/{c['expected_points']:,}",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--single", type=int, default=20_000, help="single-device messages")
    p.add_argument("--batched", type=int, default=2_000, help="batched messages")
    p.add_argument("--small", type=int, default=40_000,
                   help="single-device messages with one interface (message-rate bound)")
    p.add_argument("--polls-per-message", type=int, default=10, help="polls per batched message")
    p.add_argument("--ifaces", type=int, default=10, help="interfaces per device poll")
    p.add_argument("--devices", type=int, default=2618, help="distinct devices in the stream")
    p.add_argument("--timeout", type=float, default=300.0, help="per run")
    p.add_argument("--baseline", metavar="GIT_REV",
                   help="also run the collector with --baseline-files as at this revision")
    # Whole packages: since issue 16 the line encoder spans lineproto.py and schema.py, and
    # xanet.cli imports what the collector package of its own revision offers.
    p.add_argument("--baseline-files", default="collector,xanet",
                   help="files or folders taken from the baseline (comma-separated)")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the collector during each run and print its hot spots")
    p.add_argument("--pin", action="store_true",
                   help="give the collector the last CPU to itself and run everything else "
                        "(this script, Mosquitto, InfluxDB, mosquitto_pub) on the others: "
                        "what one collector process does with one core")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    header("collector ingest vs broker and database ceilings")
    if args.pin:
        global COLLECTOR_CPUS
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            p.error("--pin needs at least 2 CPUs")
        COLLECTOR_CPUS = {cpus[-1]}
        os.sched_setaffinity(0, set(cpus[:-1]))  # inherited by every other process started
        print(f"   pinned: collector on CPU {cpus[-1]}, everything else on CPU "
              f"{','.join(map(str, cpus[:-1]))} (other people's work is not pinned)", flush=True)
    wd = workdir("ingest")
    rows: list[dict[str, Any]] = []
    with lab.Mosquitto(wd / "mosquitto") as mqtt, lab.InfluxDB1(wd / "influx") as influx:
        if args.single:
            rows += scenario("single", wd, mqtt, influx, args.single, 1, args)
        if args.batched:
            rows += scenario("batched", wd, mqtt, influx, args.batched, args.polls_per_message,
                             args)
        if args.small:
            small = argparse.Namespace(**{**vars(args), "ifaces": 1})
            rows += scenario("single-1if", wd, mqtt, influx, args.small, 1, small)
    print_table(rows, ["scenario", "path", "msg/s", "points/s", "% of lower ceiling",
                       "collector CPU %", "influxd CPU %", "mosquitto CPU %", "CPU us/point",
                       "stored/expected"])
    print("   goals: batched >= 90 % of the lower ceiling; single-device >= 10,000 msg/s")
    finish({"rows": rows}, args.json)


if __name__ == "__main__":
    main()
