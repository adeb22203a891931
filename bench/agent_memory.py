"""Agent memory: RSS of a real ``xanet agent`` process polling 1, 100 and 2,600 devices.

Each device is a 10-interface snmpsim device (ifTable + ifXTable, advancing counters); the
agent polls every 60 s (jitter 0.5), batches nothing, publishes to a real Mosquitto. RSS is
sampled every 0.2 s until every device has been polled twice (counted on the broker with
mosquitto_sub), so rate state, sessions and the spool are all in use. Next to it, in the same
invocation: the RSS of a Python process that only imports the agent's modules (the floor
any Python agent pays).

    python bench/agent_memory.py                       # ~2 minutes
    python bench/agent_memory.py --devices 1 100 1000 2600 5000
    python bench/agent_memory.py --devices 100 --v3-devices 100   # also SNMPv3 authPriv (snmpd)

``--v3-devices``: the same, every device polled with SNMPv3 authPriv (SHA/AES-128) against a
real net-snmp snmpd — on the lean v3 path, so without pysnmp (docs/snmp.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from common import finish, header, print_table, rss_mb, workdir
from snmp_poll import sim_recording

import lab
from lab.fleet import agent_config, to_toml


def import_floor(extra: str = "") -> float:
    code = (f"import agent.app, agent.snmp, aiomqtt, uvloop, resource, sys{extra};"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


V3 = {"version": "3", "user": "xanetv3", "auth_protocol": "SHA",  # snmpd's user (services)
      "auth_key": {"env": "BENCH_V3_AUTH"}, "priv_protocol": "AES",
      "priv_key": {"env": "BENCH_V3_PRIV"}}


def run(n: int, wd: Any, mqtt: lab.Mosquitto, port: int, interval: float,
        rounds: int, timeout_s: float, v3: lab.Snmpd | None = None) -> dict[str, Any]:
    site = f"site-{n}{'-v3' if v3 else ''}"
    snmp = V3 if v3 else {"version": "2c", "community": {"env": "BENCH_COMMUNITY"}}
    devices = [{"id": f"dev-{i:05d}", "host": "127.0.0.1", "port": port, "snmp": snmp}
               for i in range(n)]
    cfg = agent_config(agent_id=f"agt-mem-{site}", site=site, commune="00691", province="08",
                       mqtt_port=mqtt.port, spool_path=wd / f"spool-{n}.sqlite3",
                       interval_s=interval, devices=devices,
                       polling={"timeout_s": 2.0, "retries": 1, "jitter": 0.5})
    path = wd / f"agent-{site}.toml"
    path.write_text(to_toml(cfg))
    expected = n * rounds
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt.port), "-q", "1", "-C",
         str(expected), "-t", f"xanet/v1/08/00691/{site}/telemetry"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    env = {**os.environ, "BENCH_COMMUNITY": "sim10"}
    if v3 is not None:
        env |= {"BENCH_V3_AUTH": v3.v3_auth_key, "BENCH_V3_PRIV": v3.v3_priv_key}
    agent = subprocess.Popen(
        [sys.executable, "-m", "xanet.cli", "--log-level", "warning", "agent", "--config",
         str(path)], env=env, cwd=wd, stdout=(wd / f"agent-{site}.log").open("ab"),
        stderr=subprocess.STDOUT)
    samples: list[float] = []
    t0 = time.monotonic()
    try:
        while sub.poll() is None and time.monotonic() - t0 < timeout_s:
            time.sleep(0.2)
            if agent.poll() is not None:
                raise RuntimeError(f"agent died: {(wd / f'agent-{site}.log').read_text()[-2000:]}")
            samples.append(rss_mb(agent.pid))
        complete = sub.poll() is not None
        end_rss = rss_mb(agent.pid)
    finally:
        agent.terminate()
        agent.wait(30)
        if sub.poll() is None:
            sub.kill()
    return {"devices": f"{n} (SNMPv3 authPriv)" if v3 else n,
            "RSS MB (after all polled)": end_rss, "RSS MB (max)": max(samples),
            "polls seen": "all" if complete else "TIMED OUT",
            "seconds": time.monotonic() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, nargs="+", default=[1, 100, 2600])
    p.add_argument("--v3-devices", type=int, nargs="*", default=[],
                   help="also these sizes polled with SNMPv3 authPriv against snmpd")
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--rounds", type=int, default=2, help="polls per device before the reading")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--json")
    args = p.parse_args()
    header("agent memory (RSS) by number of devices")
    wd = workdir("memory")
    rows: list[dict[str, Any]] = [
        {"devices": 0, "RSS MB (after all polled)": import_floor(),
         "polls seen": "import floor (python -c 'import agent.app'), v2c only"},
        {"devices": 0, "RSS MB (after all polled)": import_floor(", agent.snmp.lean_v3"),
         "polls seen": "import floor + lean SNMPv3 (agent.snmp.lean_v3; cryptography on 1st AES)"},
        {"devices": 0, "RSS MB (after all polled)": import_floor(", agent.snmp.pysnmp_backend"),
         "polls seen": "import floor + pysnmp (what a DES/AES-192/256 v3 device adds)"},
    ]
    with lab.Mosquitto(wd / "mosquitto") as mqtt, lab.SnmpSim(
            wd / "snmpsim", {"sim10": sim_recording(wd / "sim10.snmprec", 10)}) as sim:
        for n in args.devices:
            rows.append(run(n, wd, mqtt, sim.port, args.interval, args.rounds, args.timeout))
            print(f"   {n} device(s) done", flush=True)
        if args.v3_devices:
            with lab.Snmpd(wd / "snmpd") as snmpd:
                for n in args.v3_devices:
                    rows.append(run(n, wd, mqtt, snmpd.port, args.interval, args.rounds,
                                    args.timeout, v3=snmpd))
                    print(f"   {n} SNMPv3 device(s) done", flush=True)
    print_table(rows, ["devices", "RSS MB (after all polled)", "RSS MB (max)", "polls seen",
                       "seconds"])
    print("   goal: <= 60 MB at 100 devices")
    finish({"rows": rows}, args.json)


if __name__ == "__main__":
    main()
