"""Agent CPU per poll of everything except SNMP: schedule, rates, wire encode, spool, uplink.

A fake poller hands the real :class:`agent.app.Agent` ready-made ``RawPoll`` objects (10
interfaces, counters advancing) at no SNMP cost; the agent computes rates, encodes
telemetry, stores it in its on-disk spool (fsync "batch", the default) and publishes it to a
real Mosquitto, QoS 1. The figure is the agent process's CPU (user+sys) over a window of
steady polling divided by the polls made in it (the fake poller's own CPU to build the
``RawPoll`` objects is measured and subtracted). Next to it, per stage, the CPU of the pure
steps on the same data: rates + DevicePoll (``agent.telemetry.to_device_poll``),
``wire.encode``, and ``Spool.put`` + ``ack``.

``--baseline REV`` adds rows with the agent as it was at git revision REV (``agent/`` and
``xanet/`` exported with ``git archive``), in the same invocation (before/after).
``--overload-ms X`` adds a scenario whose fake polls burn X ms of CPU each (in 3 chunks, as
a pure-Python SNMP stack does), with the loop-lag admission limit on and off: what the
pollers stored and what the uplink delivered per second.

Every variant runs in its own process (the same interpreter), one after another.

    python bench/agent_cpu.py                                   # ~2 minutes
    python bench/agent_cpu.py --baseline 056c3e7 --overload-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, export_tree, finish, header, median, print_table, workdir

import lab

IFACES = 10


# ----------------------------------------------------------------------------- worker
# Runs in a child process whose sys.path starts with the tree under test.


def _worker(args: argparse.Namespace) -> dict[str, Any]:
    tree = Path(args.tree)
    sys.path.insert(0, str(tree))
    import uvloop

    from agent.app import Agent
    try:  # the pure DevicePoll builder; in agent.app before issue 16
        from agent.telemetry import to_device_poll
    except ImportError:
        from agent.app import to_device_poll
    from agent.config import AgentConfig
    from agent.rates import RatePolicy, RateTracker
    from agent.snmp import RawInterface, RawPoll, SnmpTarget
    from agent.spool import Spool
    from xanet import wire

    assert Path(sys.modules["agent.app"].__file__ or "").is_relative_to(tree)

    def raw_poll(device: str, n: int, interval_s: float) -> RawPoll:
        # ~100 Mb/s on 1 Gb/s ports, uptime advancing with the interval: every rate computed
        octets = n * int(interval_s * 12_500_000)
        return RawPoll(
            device=device, sys_uptime_cs=100_000 + int(100 * interval_s) * n, rtt_s=0.004,
            interfaces=tuple(
                RawInterface(index=i, name=f"ge-0/0/{i}", descr=f"ge-0/0/{i} uplink",
                             oper_status=1, admin_status=1, speed_bps=10**9,
                             in_octets=octets + i, out_octets=octets // 2 + i, hc=True,
                             discontinuity_cs=None)
                for i in range(1, IFACES + 1)))

    class FakePoller:
        def __init__(self, burn_s: float) -> None:
            self.burn_s = burn_s / 3
            self.counts: dict[str, int] = {}
            self.polls = 0
            self.own_cpu_s = 0.0  # building the RawPoll objects: not the agent's cost

        async def poll(self, target: SnmpTarget) -> RawPoll:
            if self.burn_s:
                for _ in range(3):  # a request out, its answer back: 3 loop iterations
                    await asyncio.sleep(0)
                    end = time.thread_time() + self.burn_s
                    while time.thread_time() < end:
                        pass
            c0 = time.perf_counter()  # (process_time is a system call: dearer than the work)
            n = self.counts[target.device] = self.counts.get(target.device, 0) + 1
            raw = raw_poll(target.device, n, args.interval)
            self.polls += 1
            self.own_cpu_s += time.perf_counter() - c0
            return raw

        def close(self) -> None:
            pass

    wd = Path(args.workdir)
    polling: dict[str, Any] = {"interval_s": args.interval, "jitter": 1.0}
    if args.lag_limit == "off":
        polling["max_loop_lag_s"] = 0  # (the option does not exist before the limiter)
    icmp: dict[str, Any] = {}
    if args.icmp != "absent":  # trees before the ICMP witness have no [icmp]
        icmp["icmp"] = {"enabled": args.icmp == "on"}  # the defaults: 2 echoes, 1 s timeout
    cfg = AgentConfig.model_validate({
        **icmp,
        "agent": {"id": "bench-cpu", "province": "08", "commune": "00691", "site": "hub-1",
                  "status_interval_s": 60},
        "mqtt": {"host": "127.0.0.1", "port": args.port},
        "polling": polling,
        "spool": {"path": str(wd / f"spool-{args.label}.sqlite3")},
        "batch": {"max_polls": args.max_polls},
        "snmp": {"version": "2c", "community": {"env": "BENCH_COMMUNITY"}},
        # The fake poller sends no SNMP; with --icmp the pings go to loopback only.
        "devices": [{"id": f"bts-{i:05d}", "host": "127.0.0.1"} for i in range(args.devices)],
    })
    poller = FakePoller(args.burn_ms / 1000)
    agent = Agent(cfg, poller=poller)
    out: dict[str, Any] = {}

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        await asyncio.sleep(args.warmup)
        p0, u0, own0 = poller.polls, agent.uplink.published, poller.own_cpu_s
        t0, w0 = os.times(), time.monotonic()
        await asyncio.sleep(args.seconds)
        t1, wall = os.times(), time.monotonic() - w0
        cpu, sys_cpu = t1.user + t1.system - t0.user - t0.system, t1.system - t0.system
        polls, sent = poller.polls - p0, agent.uplink.published - u0
        own = poller.own_cpu_s - own0
        depth = agent.spool.depth
        stop.set()
        await task
        burn_cpu = polls * args.burn_ms / 1000
        out.update({
            "polls/s": polls / wall, "delivered/s": sent / wall, "spool left": depth,
            "overruns": agent.health.poll_overruns,
            "CPU % of a core": 100 * cpu / wall,
            "ms/poll": 1000 * (cpu - own - burn_cpu) / max(polls, 1),
            "of which sys": 1000 * sys_cpu / max(polls, 1),
        })

    uvloop.run(run())

    # The pure stages, on the same data.
    policy = RatePolicy(poll_interval_s=60, max_gap_factor=3, speed_tolerance=1.1)
    n = 2000
    trackers = [RateTracker(policy) for _ in range(20)]
    raws = [[raw_poll(f"bts-{d}", k, 60.0) for k in range(1, n // 20 + 2)] for d in range(20)]
    from datetime import UTC, datetime
    ts = datetime.now(UTC)
    c0 = time.process_time()
    polls_made = [to_device_poll(f"bts-{d}", ts, raws[d][k], trackers[d], 60.0 * k)
                  for k in range(n // 20 + 1) for d in range(20)]
    out["rates+model us"] = 1e6 * (time.process_time() - c0) / len(polls_made)
    rated = sum(1 for p in polls_made for i in p.interfaces if i.in_bps is not None)
    assert rated >= 0.9 * IFACES * len(polls_made), "the fake counters should yield rates"
    msgs = [wire.Telemetry(agent="bench-cpu", site="hub-1", seq=i, polls=[p])
            for i, p in enumerate(polls_made)]
    c0 = time.process_time()
    payloads = [wire.encode(m) for m in msgs]
    out["encode us"] = 1e6 * (time.process_time() - c0) / len(msgs)
    spool = Spool(wd / f"stage-{args.label}.sqlite3", max_messages=200_000,
                  max_age_s=30 * 86400, fsync="batch")
    c0 = time.process_time()
    def stored(payload: bytes) -> Callable[[int], bytes]:
        return lambda _seq: payload

    for payload in payloads:
        seq = spool.put("xanet/v1/08/00691/hub-1/telemetry", stored(payload), time.time())
        spool.ack(seq)
    out["spool put+ack us"] = 1e6 * (time.process_time() - c0) / len(payloads)
    spool.close()
    out["payload bytes"] = sum(map(len, payloads)) / len(payloads)
    return out


# ----------------------------------------------------------------------------- main


def icmp_setting(tree: Path) -> str:
    """``off`` for a tree whose config knows ``[icmp]`` (every variant then polls alike),
    ``absent`` for trees from before the ICMP witness."""
    return "off" if "class IcmpConfig" in (tree / "agent" / "config.py").read_text() else "absent"


def run_variant(tree: Path, label: str, port: int, wd: Path, args: argparse.Namespace,
                burn_ms: float, lag_limit: str = "default", icmp: str = "off") -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", dir=wd, delete=False) as f:
        out_path = Path(f.name)
    cmd = [sys.executable, __file__, "--worker", "--tree", str(tree), "--port", str(port),
           "--workdir", str(wd), "--label", label, "--devices", str(args.devices),
           "--interval", str(args.interval), "--seconds", str(args.seconds),
           "--warmup", str(args.warmup), "--burn-ms", str(burn_ms), "--lag-limit", lag_limit,
           "--max-polls", str(args.max_polls), "--icmp", icmp,
           "--json", str(out_path)]
    subprocess.run(cmd, check=True, cwd=wd, stdout=subprocess.DEVNULL,
                   env={**os.environ, "BENCH_COMMUNITY": "public"})
    result: dict[str, Any] = json.loads(out_path.read_text())
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, default=500)
    p.add_argument("--interval", type=float, default=10.0, help="poll interval, s")
    p.add_argument("--seconds", type=float, default=20.0, help="measured window")
    p.add_argument("--warmup", type=float, default=None,
                   help="before the window (default: one interval + 1 s)")
    p.add_argument("--baseline", metavar="GIT_REV")
    p.add_argument("--repeat", type=int, default=3,
                   help="rounds (variants alternate); the median is shown")
    p.add_argument("--max-polls", type=int, default=1,
                   help="batch.max_polls (device polls per telemetry message)")
    p.add_argument("--overload-ms", type=float, default=0.0,
                   help="also: fake polls burning this much CPU each, admission limit on/off")
    p.add_argument("--with-icmp", action="store_true",
                   help="also: the current agent with the ICMP witness on (pings to 127.0.0.1)")
    p.add_argument("--json")
    # worker mode (internal)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tree", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--label", help=argparse.SUPPRESS)
    p.add_argument("--burn-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--lag-limit", choices=["on", "off", "default"], default="default",
                   help=argparse.SUPPRESS)
    p.add_argument("--icmp", choices=["on", "off", "absent"], default="off",
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.warmup is None:
        args.warmup = args.interval + 1.0
    if args.worker:
        Path(args.json).write_text(json.dumps(_worker(args)))
        return

    header(f"agent CPU per poll, SNMP excluded: {args.devices} devices every "
           f"{args.interval:g} s ({args.devices / args.interval:.1f} polls/s), "
           f"{IFACES} interfaces each, window {args.seconds:g} s")
    wd = workdir("agent-cpu")
    trees: list[tuple[str, Path, str]] = [("current", ROOT, "off")]
    if args.with_icmp:
        trees.append(("current, ICMP on", ROOT, "on"))
    if args.baseline:
        base = export_tree(args.baseline, wd)
        trees.append((f"@{args.baseline}", base, icmp_setting(base)))
    rows: list[dict[str, Any]] = []
    with lab.Mosquitto(wd / "mosquitto") as mqtt:
        # Variants alternate, round after round; each figure is the median of its rounds.
        runs: list[list[dict[str, Any]]] = [[] for _ in trees]
        for r in range(args.repeat):
            for i, (_name, tree, icmp) in enumerate(trees):
                runs[i].append(run_variant(tree, f"v{i}-{r}", mqtt.port, wd, args, 0.0,
                                           icmp=icmp))
        for (name, _tree, _icmp), results in zip(trees, runs, strict=True):
            rows.append({"scenario": "no SNMP cost", "code": name,
                         **{k: median(res[k] for res in results) for k in results[0]}})
        if args.overload_ms:
            for limit in ("off", "on"):
                rows.append({"scenario": f"polls burn {args.overload_ms:g} ms",
                             "code": f"current, lag limit {limit}",
                             **run_variant(ROOT, f"o-{limit}", mqtt.port, wd, args,
                                           args.overload_ms, limit)})
    print_table(rows, ["scenario", "code", "polls/s", "delivered/s", "spool left", "overruns",
                       "CPU % of a core", "ms/poll", "of which sys"])
    print()
    print_table(rows[:len(trees)], ["code", "rates+model us", "encode us", "spool put+ack us",
                                    "payload bytes"])
    print("   ms/poll: the agent's CPU (user+sys) per poll minus the fake poller's (its RawPoll"
          " building and, when overloaded, the burn); sys: the kernel's part (sockets, SQLite"
          " I/O); stages: one device poll, one message each")
    finish({"rows": rows}, args.json)


if __name__ == "__main__":
    main()
