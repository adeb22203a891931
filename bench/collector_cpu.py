"""Collector CPU per message on its pure path: admission (xanet.wire.decode + checks) and the
line-protocol encoder (collector.schema.telemetry_lines), per single-device and batched message.

No services: this is the part of the collector's CPU that xanet's own code decides (the
rest is paho/aiomqtt and httpx). ``--baseline REV`` adds rows with wire.py and the line
encoder (collector/schema.py's telemetry_lines, or collector/lineproto.py's before issue 16)
as they were at git revision REV, measured in the same invocation (before/after).

    python bench/collector_cpu.py
    python bench/collector_cpu.py --baseline 048c927 --messages 5000
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from common import finish, header, module_at, print_table, rev_tag
from ingest import TOPIC, make_messages

from collector import admission, schema
from collector.admission import Accepted, Limits, admit
from xanet import topics, wire


def measure_once(messages: list[bytes], wire_mod: Any, lp_mod: Any) -> tuple[float, float, int]:
    """One timed pass: (admission seconds, line-building seconds, lines)."""
    where = topics.parse(TOPIC)
    now = datetime.now(UTC)
    limits = Limits()
    # Admission with the variant's wire module (collector.admission calls wire.decode).
    admission.wire = wire_mod
    # Each pass starts from a collected heap, so it pays for its own garbage only: without
    # this the variant measured after another paid for the other's (HEAD against HEAD read
    # 39 vs 25 us per single message, 298 vs 215 batched).
    gc.collect()
    try:
        t0 = time.process_time()
        decoded = []
        for m in messages:
            verdict = admit(TOPIC, m, now, limits)
            assert isinstance(verdict, Accepted)
            decoded.append(verdict.message)
        t1 = time.process_time()
        # The baseline encoder gets the baseline's own models (field access is the same).
        n_lines = sum(len(lp_mod.telemetry_lines(where, d)) for d in decoded)
        t2 = time.process_time()
    finally:
        admission.wire = wire
    return t1 - t0, t2 - t1, n_lines


def measure(messages: list[bytes], variants: list[tuple[str, Any, Any]],
            repeat: int) -> list[dict[str, float]]:
    """Every variant, best of ``repeat`` rounds, the variants alternating within each round
    after one untimed pass each."""
    for _name, wire_mod, lp_mod in variants:
        measure_once(messages, wire_mod, lp_mod)
    best = [(float("inf"), float("inf"), 0) for _ in variants]
    for _ in range(repeat):
        for i, (_name, wire_mod, lp_mod) in enumerate(variants):
            d, e, n_lines = measure_once(messages, wire_mod, lp_mod)
            best[i] = (min(best[i][0], d), min(best[i][1], e), n_lines)
    n = len(messages)
    return [{"decode us/msg": 1e6 * d / n, "encode us/msg": 1e6 * e / n,
             "encode us/line": 1e6 * e / n_lines, "total us/msg": 1e6 * (d + e) / n,
             "msg/s per core": n / (d + e), "points/s per core": n_lines / (d + e)}
            for d, e, n_lines in best]


def _encoder_at(rev: str, tag: str) -> Any:
    """The module holding ``telemetry_lines`` at ``rev``: schema.py, which imports the
    encoder (collector.lineproto) of that revision too, or the older lineproto.py."""
    try:
        old_lp = module_at(rev, "collector/lineproto.py", f"lineproto_at_{tag}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"no collector/lineproto.py at {rev}") from None
    if hasattr(old_lp, "telemetry_lines"):
        return old_lp
    saved = sys.modules.get("collector.lineproto")
    sys.modules["collector.lineproto"] = old_lp  # the schema of rev with rev's encoder
    try:
        return module_at(rev, "collector/schema.py", f"schema_at_{tag}")
    finally:
        if saved is not None:
            sys.modules["collector.lineproto"] = saved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--ifaces", type=int, default=10)
    p.add_argument("--polls-per-message", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3, help="best of")
    p.add_argument("--baseline", metavar="GIT_REV")
    p.add_argument("--json")
    args = p.parse_args()
    header("collector pure path: admission + line protocol, CPU per message")
    rows = []
    variants: list[tuple[str, Any, Any]] = [("current", wire, schema)]
    if args.baseline:
        tag = rev_tag(args.baseline)
        old_wire = module_at(args.baseline, "xanet/wire.py", f"wire_at_{tag}")
        # telemetry_lines moved from collector/lineproto.py to collector/schema.py (issue 16)
        old_lp = _encoder_at(args.baseline, tag)
        variants.append((f"@{args.baseline}", old_wire, old_lp))
    for label, ppm in (("single", 1), ("batched", args.polls_per_message)):
        messages = make_messages(max(1, args.messages // ppm), ppm, args.ifaces, 2618)
        for (name, _w, _l), row in zip(variants, measure(messages, variants, args.repeat),
                                       strict=True):
            rows.append({"scenario": f"{label} ({ppm} poll/msg)", "code": name, **row})
    print_table(rows, ["scenario", "code", "decode us/msg", "encode us/msg", "encode us/line",
                       "total us/msg", "msg/s per core", "points/s per core"])
    print("   decode = admission (topic, JSON, pydantic model, timestamp bounds), with the"
          " variant's xanet.wire")
    finish({"rows": rows}, args.json)


if __name__ == "__main__":
    main()
