"""CPU of the collector's guard (collector/guard.py: duplicate instances, clock skew,
cardinality) per admitted message, next to the line-protocol encoder's, in steady state
(every series already known). No services.

    python bench/collector_guard.py
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from common import finish, header, print_table
from ingest import TOPIC, make_messages

from collector import schema
from collector.admission import Accepted, Limits, admit
from collector.config import GuardsConfig
from collector.guard import Guard
from xanet import topics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--ifaces", type=int, default=10)
    p.add_argument("--repeat", type=int, default=5, help="best of")
    p.add_argument("--json")
    args = p.parse_args()
    where = topics.parse(TOPIC)
    header("collector guard (duplicates, clock, cardinality) vs the encoder, CPU per message")
    rows = []
    for ppm in (1, 10):
        now = datetime.now(UTC)
        decoded = []
        for m in make_messages(args.messages, ppm, args.ifaces, 200):
            verdict = admit(TOPIC, m, now, Limits())
            assert isinstance(verdict, Accepted)
            msg = verdict.message  # with a send stamp and an instance, as agents send now
            decoded.append(msg.model_copy(update={"sent": now - timedelta(seconds=1),
                                                  "instance": "i-1"}))
        best_g = best_e = float("inf")
        for _ in range(args.repeat):
            guard = Guard(GuardsConfig())
            for d in decoded:
                guard.check(where, d, now)  # every series known from here on
            t0 = time.process_time()
            for d in decoded:
                guard.check(where, d, now)
            t1 = time.process_time()
            for d in decoded:
                schema.telemetry_lines(where, d)  # type: ignore[arg-type]  # telemetry
            t2 = time.process_time()
            best_g, best_e = min(best_g, t1 - t0), min(best_e, t2 - t1)
        n = len(decoded)
        rows.append({"polls/msg": ppm, "guard us/msg": f"{1e6 * best_g / n:.1f}",
                     "encode us/msg": f"{1e6 * best_e / n:.1f}",
                     "guard/encode": f"{best_g / best_e:.0%}"})
    print_table(rows, list(rows[0]))
    finish({"rows": rows}, args.json)


if __name__ == "__main__":
    main()
