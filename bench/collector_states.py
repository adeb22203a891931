"""Collector CPU of the availability path on the province inventory: mapping polls to facts
(collector.facts.FactMapper, with the witness decision and the monitoring-alert feed) and
the engine's add + emit (collector.availability), now and at a git revision (before/after).

No services; process CPU time, best of ``--repeat``.

    python bench/collector_states.py --baseline 168b68f
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from common import ROOT, best_cpu_s, finish, header, module_at, print_table

import collector.availability as availability
from collector.facts import FactMapper
from collector.monitoring import MonitoringCore
from collector.outages import Policy
from xanet import wire
from xanet.inventory import Inventory, load_inventory

T0 = 1_750_000_000.0


def messages(inventory: Inventory) -> list[wire.Telemetry]:
    """One single-device message per inventory device, every element up, echo answered."""
    ts = datetime.fromtimestamp(T0, UTC)
    out = []
    for site in inventory.sites:
        for d in site.devices:
            ifs = [wire.InterfacePoll(index=i + 1, name=e.interface, oper=1, hc=True)
                   for i, e in enumerate(d.elements) if e.interface]
            out.append(wire.Telemetry(agent=site.agent or "a", site=site.id, seq=1, polls=[
                wire.DevicePoll(device=d.id, ts=ts, reachable=True, rtt_ms=1.0,
                                ping=wire.PingResult(sent=3, received=3, rtt_ms=1.0),
                                interfaces=ifs)]))
    return out


def mapping_us(mapper: Any, msgs: list[wire.Telemetry], repeat: int,
               monitoring: MonitoringCore | None = None) -> float:
    def run() -> None:
        for m in msgs:
            if monitoring is None:
                mapper.telemetry_facts(m)
            else:
                _, verdicts = mapper.map_telemetry(m)
                for v in verdicts:
                    monitoring.add(v.site, v.device, v.ts, v.decision)
    return 1e6 * best_cpu_s(run, repeat) / len(msgs)


def engine_us(mod: Any, inventory: Inventory, rounds: int, repeat: int) -> float:
    """add + emit per element-poll: every element polled each minute, 10 % down once."""
    n = 0

    def run() -> None:
        nonlocal n
        eng = mod.AvailabilityEngine(mod.Topology.from_inventory(inventory),
                                     stale_after_s=180.0, bucket_s=300.0)
        keys = [s.element for s in mod.Topology.from_inventory(inventory).elements]
        n = len(keys) * rounds
        for r in range(rounds):
            now = T0 + r * 60
            for i, k in enumerate(keys):
                eng.add(mod.Observation(k, now, "down" if (r == 5 and i % 10 == 0) else "up"))
            eng.emit(now + 1)
    total = best_cpu_s(run, repeat)
    return 1e6 * total / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3, help="best of")
    p.add_argument("--baseline", metavar="GIT_REV")
    p.add_argument("--json")
    args = p.parse_args()
    header("collector availability path (province inventory)")
    inventory = load_inventory(ROOT / "config" / "inventory.province.toml")
    msgs = messages(inventory)
    policy = Policy(hold_down_s=120, clear_down_s=180, agent_silent_after_s=180)
    rows = [{"code": "now",
             "map us/msg": mapping_us(FactMapper(inventory), msgs, args.repeat),
             "map+monitoring us/msg": mapping_us(
                 FactMapper(inventory), msgs, args.repeat,
                 MonitoringCore(inventory, policy, now=T0, stale_after_s=180.0)),
             "engine us/element-poll": engine_us(availability, inventory, args.rounds,
                                                 args.repeat)}]
    if args.baseline:
        old_av = module_at(args.baseline, "collector/availability.py", "baseline_availability")
        sys.modules["collector.availability"], saved = old_av, availability
        try:
            try:  # collector/states.py before issue 16
                old_states = module_at(args.baseline, "collector/facts.py", "baseline_states")
            except subprocess.CalledProcessError:
                old_states = module_at(args.baseline, "collector/states.py", "baseline_states")
        finally:
            sys.modules["collector.availability"] = saved
        rows.insert(0, {"code": args.baseline,
                        "map us/msg": mapping_us(old_states.FactMapper(inventory), msgs,
                                                 args.repeat),
                        "map+monitoring us/msg": float("nan"),
                        "engine us/element-poll": engine_us(old_av, inventory, args.rounds,
                                                            args.repeat)})
    print(f"{len(msgs)} single-device messages, {args.rounds} rounds of every element")
    print_table(rows, ["code", "map us/msg", "map+monitoring us/msg",
                       "engine us/element-poll"])
    finish({"rows": rows}, args.json)


if __name__ == "__main__":
    main()
