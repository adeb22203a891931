"""A partition's checkpoint at province scale (config/inventory.province.toml: 124
communes, 1,292 sites of which 1,168 BTS, 1,810 devices, 396 agents): its size as JSON,
compressed and in InfluxDB chunks, the CPU of one snapshot + encode and of one decode,
and (``--influx``) one write and one restore against a real InfluxDB 1.x (lab/influx.py).

The state: every element observed up a few seconds before the engine's last emit (the
engine's seed), every agent with a sequence position, a last sign of life, an instance
owner and online; 5 % of the sites down long enough for their outages to be open.

    python bench/checkpoint.py --influx
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from typing import Any

from common import ROOT, best_cpu_s, finish, header, print_table, workdir

from collector.alerting import Alerting
from collector.availability import AvailabilityEngine, Observation, Topology
from collector.checkpoint import decode, encode, to_chunks, to_json
from collector.config import CollectorConfig
from collector.continuity import Continuity
from collector.guard import Guard
from collector.sequence import SequenceTracker
from collector.statestore import CheckpointStore
from collector.writer import make_writer
from xanet.inventory import Inventory, load_inventory

T0 = 1_750_000_000.0


class Owner:
    """The collector's state a checkpoint reads (collector/continuity.py's ``Owner``)."""

    def __init__(self, cfg: CollectorConfig, inventory: Inventory, state_dir: Any) -> None:
        self.cfg = cfg
        self.fenced = False
        self.sequences = SequenceTracker()
        self.guard = Guard(cfg.guards)
        self.agents_online: dict[str, bool] = {}
        self.engine: AvailabilityEngine | None = AvailabilityEngine(
            Topology.from_inventory(inventory), stale_after_s=180.0, bucket_s=300.0)
        alerts = cfg.alerts.model_copy(update={"url": "http://127.0.0.1:9", "state_path":
                                               state_dir / "outages.json"})
        self.alerting: Alerting | None = Alerting(alerts, inventory, now=T0)

    def owning(self) -> bool:
        return not self.fenced


def build(cfg: CollectorConfig, inventory: Inventory, state_dir: Any) -> Owner:
    o = Owner(cfg, inventory, state_dir)
    assert o.engine is not None and o.alerting is not None
    down = {s.id for k, s in enumerate(inventory.sites) if k % 20 == 0}
    for minute in range(6):  # polls every minute; the down sites down for 5 minutes
        now = T0 + 60 * minute
        for spec in Topology.from_inventory(inventory).elements:
            site_id = spec.element.split("/", 1)[0]
            o.engine.add(Observation(spec.element, now - 5, "down" if site_id in down and
                                     minute > 0 else "up"))
        o.alerting.update(o.engine.emit(now).elements, now)
    for k, site in enumerate(inventory.sites):
        agent = site.agent or f"agt-{site.id}"
        for n in range(100 + k % 7):
            o.sequences.observe(agent, n)
        o.alerting.agent_seen(agent, T0 + 300 - k % 60)
        o.guard.instances.observe(agent, f"{site.id}-box-a1b2c3", T0 + 300)
        o.agents_online[agent] = True
    return o


async def round_trip(cfg: CollectorConfig, owner: Owner) -> tuple[float, float, int]:
    """One write and one restore through a real InfluxDB: their wall times and the
    facts restored."""
    writer = make_writer(cfg.influx)
    try:
        keep = Continuity(owner, CheckpointStore(cfg, writer), clock=lambda: T0 + 305)
        t = time.perf_counter()
        assert await keep.write(), "checkpoint not written"
        wrote = time.perf_counter() - t
        fresh = Owner(cfg, load_inventory(ROOT / "config" / "inventory.province.toml"),
                      workdir("checkpoint-b"))
        back = Continuity(fresh, CheckpointStore(cfg, writer), clock=lambda: T0 + 305)
        t = time.perf_counter()
        cp = await back.restore()
        read = time.perf_counter() - t
        assert cp is not None and owner.alerting is not None
        assert len(cp.outages) == len(owner.alerting.core.records())
        return wrote, read, len(cp.engine.facts) if cp.engine else 0
    finally:
        await writer.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="best of")
    p.add_argument("--influx", action="store_true", help="write and restore through InfluxDB")
    p.add_argument("--json")
    args = p.parse_args()
    logging.getLogger("xanet").setLevel(logging.ERROR)  # not every outage opened
    header("a partition's checkpoint at province scale")
    inventory = load_inventory(ROOT / "config" / "inventory.province.toml")
    wd = workdir("checkpoint")
    cfg = CollectorConfig.model_validate({"partition": {"id": "p-08"}})
    owner = build(cfg, inventory, wd)
    keep = Continuity(owner, CheckpointStore(cfg, make_writer(cfg.influx)),
                      clock=lambda: T0 + 305)
    cp = keep.snapshot(T0 + 305)
    limit = cfg.state.max_checkpoint_bytes
    blob = encode(cp, limit)
    json_bytes = len(json.dumps(to_json(cp), ensure_ascii=False, separators=(",", ":")))
    chunks = to_chunks(cp.generation, blob)
    row: dict[str, Any] = {
        "sites": len(inventory.sites), "open outages": len(cp.outages),
        "agents": len(cp.seen), "facts": len(cp.engine.facts) if cp.engine else 0,
        "json KiB": json_bytes / 1024, "compressed KiB": len(blob) / 1024,
        "chunks": len(chunks),
        "snapshot+encode ms": 1000 * best_cpu_s(lambda: encode(keep.snapshot(T0 + 305), limit),
                                          args.repeat),
        "decode ms": 1000 * best_cpu_s(lambda: decode(blob, "p-08", limit), args.repeat),
    }
    if args.influx:
        import lab

        with lab.InfluxDB1(wd / "influx") as influx:
            influx.create_database("xanet")
            icfg = CollectorConfig.model_validate({"partition": {"id": "p-08"}, "influx": {
                "url": influx.url, "database": "xanet"}})
            wrote, read, facts = asyncio.run(round_trip(icfg, owner))
            row |= {"write ms": 1000 * wrote, "restore ms": 1000 * read,
                    "facts restored": facts}
    print_table([row], list(row))
    finish({"checkpoint": row}, args.json)


if __name__ == "__main__":
    main()
