"""Run every bench in turn (short default sizes) and print their figures.

    python bench/run_all.py            # ~12 minutes: what `make bench` runs
    python bench/run_all.py --smoke    # tiny sizes, ~3 minutes: checks the scripts still run
    python bench/run_all.py --only ingest snmp_poll

Each bench prints the command that reproduces it; longer runs are flags of each script
(see BENCHMARKS.md). Every number is measured next to its ceiling in the same invocation:
this machine is shared, so compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

DEFAULT: dict[str, list[str]] = {
    "snmp_poll": ["--polls", "100", "--netsnmp-polls", "10"],
    "collector_cpu": [],
    "collector_guard": [],
    "agent_cpu": ["--overload-ms", "30"],
    "ingest": [],
    "spool_replay": [],
    "compact": ["--hours", "6"],
    "agent_memory": [],
    "walk_memory": [],
    "province": ["--minutes", "3", "--fraction", "0.25"],
    "thin_link": ["--hours", "0.5", "--encoding", "both"],
    "checkpoint": ["--influx"],
    "country": ["--collectors", "1,2", "--seconds", "60", "--store", "victoria"],
    "failover": ["--rounds", "5"],
    "bridge_cut": ["--cut-s", "60", "--inflight", "100"],
}

SMOKE: dict[str, list[str]] = {
    "snmp_poll": ["--polls", "3", "--concurrency", "2", "--netsnmp-polls", "1",
                  "--targets", "sim10", "snmpd"],
    "collector_cpu": ["--messages", "20", "--repeat", "1"],
    "collector_guard": ["--messages", "20", "--repeat", "1"],
    "agent_cpu": ["--devices", "20", "--interval", "2", "--seconds", "2", "--warmup", "1",
                  "--repeat", "1", "--overload-ms", "5"],
    "ingest": ["--single", "300", "--batched", "30", "--small", "300", "--devices", "20",
               "--timeout", "120"],
    "spool_replay": ["--messages", "300", "--throttled-seconds", "1", "--depth", "1500"],
    "compact": ["--hours", "0.2", "--devices", "2", "--batch-bytes", "16384"],
    "agent_memory": ["--devices", "1", "3", "--interval", "2", "--rounds", "1",
                     "--timeout", "60"],
    "walk_memory": ["--modes", "long-descr"],
    "province": ["--minutes", "0.2", "--fraction", "0.03", "--interval", "5",
                 "--outage-communes", "1", "--sims", "1"],
    "thin_link": ["--hours", "0.02", "--encoding", "json", "--live-interval", "5"],
    "checkpoint": ["--repeat", "1"],
    "country": ["--collectors", "2", "--provinces", "2", "--interval", "20", "--seconds", "3",
                "--warmup", "2", "--drain-timeout", "20", "--settle-timeout", "0", "--check"],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes (scripts still run)")
    p.add_argument("--only", nargs="+", choices=sorted(DEFAULT))
    args = p.parse_args()
    plan = SMOKE if args.smoke else DEFAULT
    failed = []
    for name, extra in plan.items():
        if args.only and name not in args.only:
            continue
        cmd = [sys.executable, str(HERE / f"{name}.py"), *extra]
        print(f"\n### {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.run(cmd, cwd=HERE.parent).returncode
        print(f"### {name}: exit {rc} after {time.monotonic() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
