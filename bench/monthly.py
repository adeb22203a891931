"""Time to build a month's report documents for the 124-commune province.

A generated month (lab/monthgen.py: hub cuts taking the BTS behind them down, BTS
outages, agents silent for days, maintenance) for config/inventory.province.toml is
written straight into a real InfluxDB 1.x as the collector would have stored it
(``element_state``, ``service_state``, ``outage``, ``collector_stats``); then the real
commands run, each ``--repeat`` times, and the median wall time is printed:

    xanet report monthly --month 2026-11 --format html
    xanet report monthly --month 2026-11 --format pdf
    xanet report availability --month 2026-11 --format json          (per commune)
    xanet report availability --month 2026-11 --by site --format csv
    xanet report outages --month 2026-11 --format csv

    python bench/monthly.py                     # busy month (~30k stored changes)
    python bench/monthly.py --scale 4 --repeat 1

Wall times include Python start-up and imports (matplotlib, WeasyPrint) - what a person
waits for. On a shared 2-core machine they vary with the neighbours' load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import monthgen  # noqa: E402
from lab.influx import InfluxDB1  # noqa: E402
from xanet.inventory import load_inventory  # noqa: E402

INVENTORY = ROOT / "config" / "inventory.province.toml"
T0 = 1_793_466_000.0  # 2026-11-01T00:00:00+07:00
COMMANDS = {
    "monthly html": ["monthly", "--month", "2026-11", "--format", "html", "-o", "m.html"],
    "monthly pdf": ["monthly", "--month", "2026-11", "--format", "pdf", "-o", "m.pdf"],
    "availability json": ["availability", "--month", "2026-11", "--format", "json"],
    "availability --by site": ["availability", "--month", "2026-11", "--by", "site",
                               "--format", "csv"],
    "outages": ["outages", "--month", "2026-11", "--format", "csv"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="events x this")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    inventory = load_inventory(INVENTORY)
    n = args.scale
    month = monthgen.generate(inventory, T0, 30, seed=1, hub_cuts=int(300 * n),
                              bts_outages=int(4000 * n), silences=int(20 * n),
                              maintenance=int(20 * n))
    with tempfile.TemporaryDirectory(prefix="xanet-bench-monthly-") as tmp:
        work = Path(tmp)
        influx = InfluxDB1(work / "influxdb").start()
        try:
            t = time.perf_counter()
            monthgen.store(month, influx, "xanet")
            lines = len(month.lines())
            print(f"{len(inventory.communes)} communes, {len(inventory.sites)} sites, "
                  f"{len(inventory.elements)} elements; {lines:,} stored points "
                  f"({sum(len(e) for e in month.events.values()):,} site events) written in "
                  f"{time.perf_counter() - t:.1f} s")
            (work / "collector.toml").write_text(monthgen.collector_toml(
                influx.url, "xanet", INVENTORY, work))
            print(f"{'command':28} {'median s':>9}  runs")
            for name, cmd in COMMANDS.items():
                runs = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "xanet.cli", "report", *cmd, "-c",
                                    "collector.toml"], cwd=work, check=True,
                                   stdout=subprocess.DEVNULL)
                    runs.append(time.perf_counter() - t)
                print(f"{name:28} {statistics.median(runs):9.2f}  "
                      + " ".join(f"{r:.2f}" for r in runs))
            pages = subprocess.run(["pdfinfo", str(work / "m.pdf")], capture_output=True,
                                   text=True, check=False).stdout
            size = (work / "m.pdf").stat().st_size
            print(f"PDF: {size / 1024:.0f} KiB; "
                  + next((p for p in pages.splitlines() if p.startswith("Pages")), ""))
        finally:
            influx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
