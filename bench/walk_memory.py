"""Peak memory of the agent's SNMP poller against a device whose walk never ends.

lab/big_agent.py serves, in a process of its own, an ifTable that never ends (every
GETBULK answer holds new rows). A child process per tree under test imports that tree's
``agent.snmp``, polls the device once and reports its peak RSS (``ru_maxrss``) before and
after the poll, the outcome and the time taken. ``--baseline REV`` adds the poller as it
was at git revision REV (``agent/`` and ``xanet/`` exported with ``git archive``), in the
same invocation: before/after for issue 14 row 6.

    python bench/walk_memory.py --baseline 168b68f          # ~1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, export_tree, finish, header, print_table, workdir

import lab


def _worker(tree: Path, port: int, mode: str) -> dict[str, Any]:
    sys.path.insert(0, str(tree))
    import asyncio
    import resource

    from agent.snmp import SnmpPoller, SnmpTarget, SnmpV2c

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    async def poll() -> tuple[str, float]:
        poller = SnmpPoller()
        started = time.monotonic()
        try:
            raw = await poller.poll(SnmpTarget(device=f"{mode}-dev", host="127.0.0.1",
                                               port=port, credentials=SnmpV2c("public"),
                                               timeout_s=5.0, retries=0))
            outcome = f"{len(raw.interfaces)} interfaces"
        except Exception as exc:  # the outcome is the result here, whatever it is
            outcome = f"{type(exc).__name__}: {str(exc)[-70:]}"
        finally:
            poller.close()
        return outcome, time.monotonic() - started

    before = peak_mb()
    outcome, took_s = asyncio.run(poll())
    return {"peak RSS before MB": round(before, 1), "peak RSS MB": round(peak_mb(), 1),
            "poll s": round(took_s, 2), "outcome": outcome}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline", metavar="GIT_REV")
    p.add_argument("--modes", nargs="+", default=["endless-11", "endless-nested", "wide"])
    p.add_argument("--json")
    p.add_argument("--worker", nargs=3, metavar=("TREE", "PORT", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        tree, port, mode = args.worker
        print(json.dumps(_worker(Path(tree), int(port), mode)))
        return

    header("agent SNMP poller: peak RSS polling one device whose table is huge or never ends")
    wd = workdir("walk-memory")
    trees = [("current", ROOT)]
    if args.baseline:
        trees.append((f"@{args.baseline}", export_tree(args.baseline, wd)))
    rows: list[dict[str, Any]] = []
    for mode in args.modes:
        port = lab.free_udp_port()
        responder = subprocess.Popen(
            [sys.executable, "-m", "lab.big_agent", "--port", str(port), "--mode", mode],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
            for name, tree in trees:
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", str(tree), str(port), mode],
                    capture_output=True, text=True, check=True, cwd=wd,
                    env={**os.environ, "PYTHONPATH": str(tree)})
                rows.append({"device": mode, "code": name, **json.loads(out.stdout)})
        finally:
            responder.terminate()
            responder.wait(10)
    print_table(rows, ["device", "code", "peak RSS before MB", "peak RSS MB", "poll s",
                       "outcome"])
    finish({"rows": rows}, args.json)


if __name__ == "__main__":
    main()
