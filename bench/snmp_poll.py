"""Agent polling: device-polls/s and CPU per device-poll, side by side with the floors.

Targets (all real daemons on 127.0.0.1, started here):

* ``sim10``   snmpsim serving a simulated province device: 10 interfaces, ifTable +
              ifXTable, counters advancing (lab.write_numeric_recording);
* ``vyatta24`` snmpsim serving the real Vyatta router recording (24 interfaces);
* ``snmpd``   net-snmp's snmpd serving this machine's interfaces.

Rows per target, each measured in this one invocation:

* ``xanet``        agent.snmp.SnmpPoller.poll() - the product's v2c path (agent.snmp.ber,
                   the lean codec) - sequential, then ``--concurrency`` in flight;
* ``xanet via pysnmp`` the same poller with ``v2c_backend="pysnmp"`` (what v2c was before
                   the lean codec);
* ``xanet v3 ...`` (snmpd only) SNMPv3 authPriv SHA/AES-128, lean (agent.snmp.lean_v3, the
                   product's path) and through pysnmp (``v3_backend="pysnmp"``, what v3
                   was before, and still is for DES/AES-192/256);
* ``pysnmp floor`` the same exchange (GET sysUpTime + one multi-column GETBULK loop) as a bare
                   pysnmp loop: no checks, no parsing, no result objects;
* ``minimal codec`` bench/lean_snmp.py: the same exchange with an unchecked ~150-line codec -
                   the floor of any Python codec; xanet's distance to it is what the
                   hardening and the value checks cost;
* ``net-snmp C``   the same request sequence with net-snmp's ``snmpget``/``snmpbulkget``
                   (one process per request, so most of its CPU is process start-up);
* ``--baseline REV``: the lean v2c (and, on snmpd, v3) rows once more, with the poller
                   of this tree and of ``agent/`` + ``xanet/`` at git revision REV
                   (``git archive``), each in a child process (bench/snmp_poll_worker.py),
                   alternating for ``--baseline-rounds`` rounds; the median is shown.

CPU per poll is this process's CPU (user+sys) for the xanet/pysnmp rows, the children's
CPU for the net-snmp rows; the SNMP simulator's CPU is shown apart (it is not the agent).
The province goal: 2,618 devices every 60 s = 43.6 polls/s in < 25 % of one core, i.e.
< 5.7 ms CPU per device poll.

    python bench/snmp_poll.py                  # ~1 minute
    python bench/snmp_poll.py --polls 1000 --profile pyinstrument
    python bench/snmp_poll.py --baseline a0f8b49 --targets sim10 snmpd --netsnmp-polls 0
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import ROOT, CpuMeter, export_tree, finish, header, print_table, workdir

import lab
from agent.snmp import BackendKind, SnmpPoller, SnmpTarget, SnmpV2c, SnmpV3, oids
from agent.snmp.poller import shipped_interface_columns
from lab import SimInterface, write_numeric_recording

COLUMNS = shipped_interface_columns().walked  # the if-mib profile's, as the agent walks
PROVINCE_POLLS_PER_S = 2618 / 60
CPU_BUDGET_MS = 250 / PROVINCE_POLLS_PER_S  # 25 % of a core spread over 43.6 polls/s


def sim_recording(path: Path, n_ifaces: int) -> Path:
    return write_numeric_recording(
        path, sys_descr="province device (simulated)",
        interfaces=[SimInterface(index=i, name=f"ge-0/0/{i}", in_rate=100_000.0 * i,
                                 out_rate=30_000.0 * i) for i in range(1, n_ifaces + 1)])


# ----------------------------------------------------------------------------- xanet


def worker_polls(tree: Path, target: SnmpTarget, n: int, concurrency: int) -> dict[str, Any]:
    """``n`` polls of ``target`` by the poller of ``tree``, in a child process."""
    credentials = target.credentials
    who = (["--v3", credentials.user, credentials.auth_key, credentials.priv_key or ""]
           if isinstance(credentials, SnmpV3) else ["--community", credentials.community])
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("snmp_poll_worker.py")),
         "--tree", str(tree), "--port", str(target.port), *who, "--polls", str(n),
         "--concurrency", str(concurrency), "--max-repetitions", str(target.max_repetitions)],
        capture_output=True, text=True, check=True, cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)})
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def baseline_rows(name: str, targets: list[tuple[str, SnmpTarget]], server_pid: int | None,
                  args: argparse.Namespace) -> list[dict[str, Any]]:
    """This tree's poller and the baseline's, in children, alternating; medians."""
    trees = [("xanet", ROOT), (f"xanet @{args.baseline}", args.baseline_tree)]
    rows = []
    for label, target in targets:
        for conc, n in ((1, args.polls), (args.concurrency, args.polls * 2)):
            runs: dict[str, list[tuple[dict[str, Any], float]]] = {t: [] for t, _ in trees}
            for _ in range(args.baseline_rounds):
                for tree_name, tree in trees:
                    meter = CpuMeter(server_pid) if server_pid else None
                    r = worker_polls(tree, target, n, conc)
                    runs[tree_name].append((r, meter.read()[1][0] if meter else 0.0))
            for tree_name, results in runs.items():
                cpu = statistics.median(r["cpu_s"] for r, _ in results)
                wall = statistics.median(r["wall_s"] for r, _ in results)
                server = statistics.median(s for _, s in results)
                rows.append(row(name, f"{tree_name} {label} (child, median of "
                                      f"{args.baseline_rounds})",
                                {"polls": n, "cpu_s": cpu, "wall_s": wall}, server, conc))
    return rows


async def xanet_polls(target: SnmpTarget, n: int, concurrency: int,
                      profiler: str | None = None,
                      backend: BackendKind = "lean") -> dict[str, Any]:
    poller = SnmpPoller(v2c_backend=backend, v3_backend=backend)
    try:
        await poller.poll(target)  # warm-up: session, engine discovery, caches
        sem = asyncio.Semaphore(concurrency)
        ifaces = 0

        async def one() -> None:
            nonlocal ifaces
            async with sem:
                p = await poller.poll(target)
                ifaces = len(p.interfaces)

        prof: Any = None
        if profiler == "pyinstrument":
            from pyinstrument import Profiler
            prof = Profiler(interval=0.0005, async_mode="disabled")
            prof.start()
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        if prof is not None:
            prof.stop()
            print(prof.output_text(unicode=False, color=False, show_all=False))
        return {"polls": n, "wall_s": wall, "cpu_s": cpu, "ifaces": ifaces}
    finally:
        poller.close()


# ----------------------------------------------------------------------------- floor


async def floor_polls(port: int, community: str, max_reps: int, n: int,
                      concurrency: int, raw: bool = True) -> dict[str, Any]:
    """The same exchange as a poll with no checks and no parsing.

    ``raw``: var-binds handed to pysnmp's command generators directly (no MIB resolution:
    the floor of pysnmp's engine and pyasn1 codec); else through hlapi's get_cmd/bulk_cmd
    with ``lookupMib=False`` (which still resolves every requested OID).
    """
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        bulk_cmd,
        get_cmd,
    )
    from pysnmp.proto import rfc1905

    engine = SnmpEngine()
    auth = CommunityData(community, mpModel=1)
    transport = await UdpTransportTarget.create(("127.0.0.1", port), timeout=2, retries=1)
    ctx = ContextData()
    end = rfc1905.EndOfMibView.tagSet
    columns = [c.oid for c in COLUMNS]
    requests = 0

    from pysnmp.entity.rfc3413 import cmdgen
    from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
    from pysnmp.proto import rfc1902

    null = rfc1902.Null("")

    async def raw_request(request: list[tuple[int, ...]], reps: int | None) -> Any:
        addr, _ = LCD.configure(engine, auth, transport, ctx.contextName)
        fut = asyncio.get_running_loop().create_future()

        def done(*a: Any) -> None:
            fut.set_result(a[2:6])

        vbs = [(rfc1902.ObjectName(o), null) for o in request]
        if reps is None:
            cmdgen.GetCommandGenerator().send_varbinds(engine, addr, ctx.contextEngineId,
                                                       ctx.contextName, vbs, done)
        else:
            cmdgen.BulkCommandGenerator().send_varbinds(engine, addr, ctx.contextEngineId,
                                                        ctx.contextName, 0, reps, vbs, done)
        return await fut

    async def get(oid: tuple[int, ...]) -> Any:
        if raw:
            return await raw_request([oid], None)
        return await get_cmd(engine, auth, transport, ctx, ObjectType(ObjectIdentity(oid)),
                             lookupMib=False)

    async def bulk(request: list[tuple[int, ...]]) -> Any:
        if raw:
            return await raw_request(request, max_reps)
        return await bulk_cmd(engine, auth, transport, ctx, 0, max_reps,
                              *(ObjectType(ObjectIdentity(o)) for o in request),
                              lookupMib=False)

    async def poll() -> None:
        nonlocal requests
        await get(oids.SYS_UPTIME)
        requests += 1
        cursors = list(columns)
        active = list(range(len(columns)))
        while active:
            _, _, _, vbs = await bulk([cursors[i] for i in active])
            requests += 1
            done = set()
            for pos, (name, value) in enumerate(vbs):
                col = active[pos % len(active)]
                oid = tuple(name)
                if value.tagSet == end or oid[: len(columns[col])] != columns[col]:
                    done.add(col)
                else:
                    cursors[col] = oid
            active = [c for c in active if c not in done]

    await poll()
    requests = 0
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await poll()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    engine.close_dispatcher()
    return {"polls": n, "wall_s": wall, "cpu_s": cpu, "requests_per_poll": requests / n}


async def lean_polls(port: int, community: str, max_reps: int, n: int,
                     concurrency: int) -> dict[str, Any]:
    """The same exchange with bench/lean_snmp.py's unchecked minimal codec (a Python floor)."""
    import lean_snmp

    client = await lean_snmp.open_client()
    addr = ("127.0.0.1", port)
    columns = [c.oid for c in COLUMNS]
    _, first = await lean_snmp.poll(client, addr, community.encode(), oids.SYS_UPTIME, columns,
                                    max_reps)
    assert any(first.values()), "lean codec decoded no interface"
    requests = 0
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        nonlocal requests
        async with sem:
            r, _ = await lean_snmp.poll(client, addr, community.encode(), oids.SYS_UPTIME,
                                        columns, max_reps)
            requests += r

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    client.transport.close()
    return {"polls": n, "wall_s": wall, "cpu_s": cpu, "requests_per_poll": requests / n}


# ----------------------------------------------------------------------------- net-snmp


def netsnmp_polls(port: int, community: str, max_reps: int, n: int) -> dict[str, Any]:
    """GET sysUpTime + the GETBULK sequence of a poll, each request one net-snmp process."""
    env = lab.snmp_env()
    base = ["-v2c", "-c", community, "-On", "-Oq", "-Oe", "-t", "2", "-r", "1",
            f"udp:127.0.0.1:{port}"]
    columns = [oids.dotted(c.oid) for c in COLUMNS]

    def run(cmd: list[str]) -> list[tuple[str, str]]:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, check=True)
        return [tuple(x.split(" ", 1)) if " " in x else (x, "")  # type: ignore[misc]
                for x in out.stdout.splitlines() if x.strip()]

    def poll() -> int:
        run(["snmpget", *base, oids.dotted(oids.SYS_UPTIME)])
        requests = 1
        cursors = {c: c for c in columns}
        active = list(columns)
        while active:
            got = run(["snmpbulkget", f"-Cr{max_reps}", "-Cn0", *base,
                       *(cursors[c] for c in active)])
            requests += 1
            done = set()
            for pos, (oid, value) in enumerate(got):
                col = active[pos % len(active)]
                oid = oid.lstrip(".")
                if value.startswith("No more") or not oid.startswith(col + "."):
                    done.add(col)
                else:
                    cursors[col] = oid
            active = [c for c in active if c not in done]
        return requests

    poll()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    requests = sum(poll() for _ in range(n))
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"polls": n, "wall_s": wall, "cpu_s": cpu, "requests_per_poll": requests / n}


# ----------------------------------------------------------------------------- driver


def row(target: str, impl: str, r: dict[str, Any], server_cpu_s: float | None,
        concurrency: int) -> dict[str, Any]:
    cpu_ms = 1000 * r["cpu_s"] / r["polls"]
    return {
        "target": target,
        "implementation": impl,
        "in flight": concurrency,
        "polls/s": r["polls"] / r["wall_s"],
        "CPU ms/poll": cpu_ms,
        "polls/s per core": 1000 / cpu_ms if cpu_ms else None,
        "province core %": 100 * PROVINCE_POLLS_PER_S * cpu_ms / 1000,
        "server CPU ms/poll": (1000 * server_cpu_s / r["polls"]) if server_cpu_s else None,
        "req/poll": r.get("requests_per_poll"),
    }


async def measured(meter_pid: int | None,
                   fn: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[dict[str, Any], float]:
    meter = CpuMeter(meter_pid) if meter_pid else None
    r = await fn()
    return r, (meter.read()[1][0] if meter else 0.0)


async def bench_target(name: str, port: int, community: str, server_pid: int | None,
                       args: argparse.Namespace,
                       v3: tuple[str, str, str] | None = None) -> list[dict[str, Any]]:
    target = SnmpTarget(device=name, host="127.0.0.1", port=port,
                        credentials=SnmpV2c(community), timeout_s=2.0, retries=1,
                        max_repetitions=args.max_repetitions)
    rows = []
    reps = args.max_repetitions
    n_conc = args.polls * 2
    v3_target = dataclasses.replace(target, credentials=SnmpV3(*v3)) if v3 else None
    for conc, n in ((1, args.polls), (args.concurrency, n_conc)):
        r, s = await measured(server_pid, lambda n=n, conc=conc: xanet_polls(
            target, n, conc, args.profile if conc == 1 else None))
        rows.append(row(name, f"xanet ({r['ifaces']} ifaces)", r, s, conc))
        r, s = await measured(server_pid, lambda n=n, conc=conc: xanet_polls(
            target, n, conc, backend="pysnmp"))
        rows.append(row(name, "xanet via pysnmp", r, s, conc))
        if v3_target is not None:
            r, s = await measured(server_pid, lambda n=n, conc=conc: xanet_polls(
                v3_target, n, conc))
            rows.append(row(name, "xanet v3 SHA/AES lean", r, s, conc))
            r, s = await measured(server_pid, lambda n=n, conc=conc: xanet_polls(
                v3_target, n, conc, backend="pysnmp"))
            rows.append(row(name, "xanet v3 SHA/AES via pysnmp", r, s, conc))
        r, s = await measured(server_pid, lambda n=n, conc=conc: floor_polls(
            port, community, reps, n, conc))
        rows.append(row(name, "pysnmp floor (engine)", r, s, conc))
        r, s = await measured(server_pid, lambda n=n, conc=conc: floor_polls(
            port, community, reps, n, conc, raw=False))
        rows.append(row(name, "pysnmp hlapi loop", r, s, conc))
        r, s = await measured(server_pid, lambda n=n, conc=conc: lean_polls(
            port, community, reps, n, conc))
        rows.append(row(name, "minimal codec, unchecked (bench)", r, s, conc))
    if args.baseline:
        lean = [("lean v2c", target)]
        if v3_target is not None:
            lean.append(("lean v3 SHA/AES", v3_target))
        rows += await asyncio.to_thread(baseline_rows, name, lean, server_pid, args)
    if args.netsnmp_polls:
        meter = CpuMeter(server_pid) if server_pid else None
        r = await asyncio.to_thread(netsnmp_polls, port, community, args.max_repetitions,
                                    args.netsnmp_polls)
        rows.append(row(name, "net-snmp C tools", r, meter.read()[1][0] if meter else None, 1))
    return rows


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    wd = workdir("snmp")
    if args.baseline:
        args.baseline_tree = export_tree(args.baseline, wd)
    started: list[Any] = []
    rows: list[dict[str, Any]] = []
    try:
        recordings: dict[str, Any] = {"sim10": sim_recording(wd / "sim10.snmprec", 10)}
        if "vyatta24" in args.targets:
            recordings["vyatta24"] = lab.RECORDING_IFX
        sim = lab.SnmpSim(wd / "snmpsim", recordings).start()
        started.append(sim)
        snmpd = lab.Snmpd(wd / "snmpd").start() if "snmpd" in args.targets else None
        if snmpd:
            started.append(snmpd)
        for t in args.targets:
            if t == "snmpd":
                assert snmpd is not None
                rows += await bench_target("snmpd", snmpd.port, snmpd.community, snmpd.pid, args,
                                           v3=snmpd.v3)
            else:
                rows += await bench_target(t, sim.port, t, sim.pid, args)
    finally:
        for s in reversed(started):
            s.stop()
    return {"rows": rows, "budget_ms": CPU_BUDGET_MS}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--polls", type=int, default=200, help="sequential polls per row")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--max-repetitions", type=int, default=25)
    p.add_argument("--netsnmp-polls", type=int, default=20, help="0: skip the net-snmp rows")
    p.add_argument("--targets", nargs="+", default=["sim10", "vyatta24", "snmpd"],
                   choices=["sim10", "vyatta24", "snmpd"])
    p.add_argument("--profile", choices=["pyinstrument"], help="profile the sequential xanet row")
    p.add_argument("--baseline", metavar="GIT_REV",
                   help="also poll with agent/ as it was at this revision (before/after)")
    p.add_argument("--baseline-rounds", type=int, default=3,
                   help="with --baseline: alternating child runs per tree (median shown)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    header("agent polling: xanet (lean v2c/v3) vs its pysnmp path vs floors vs net-snmp C tools")
    res = asyncio.run(main_async(args))
    print_table(res["rows"], ["target", "implementation", "in flight", "polls/s", "CPU ms/poll",
                              "polls/s per core", "province core %", "server CPU ms/poll",
                              "req/poll"])
    print(f"   province goal: {PROVINCE_POLLS_PER_S:.1f} polls/s in < 25 % of a core "
          f"= < {CPU_BUDGET_MS:.2f} ms CPU per poll ('province core %' < 25)")
    finish(res, args.json)


if __name__ == "__main__":
    main()
