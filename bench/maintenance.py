"""Engine cost of declared maintenance windows, on the generated month of
lab/engine_month.py (100 communes, 500 commune-services, hourly polls, replays and
lost data): the month replayed in arrival order with no window, with 200 windows known
from the start, and with the same 200 windows declared after the month (``set_maintenance``
then one ``emit``: the late rewrite). The last two must give the same downtime.

    python bench/maintenance.py                                 # ~15 s
"""

from __future__ import annotations

import random
import time

import common  # noqa: F401  # puts the repository on sys.path

from collector.availability import AvailabilityEngine, Maintenance, summarize
from lab.engine_month import DAYS, MONTH_START, POLL_S, STALE_CELLS, generate_month


def main() -> None:
    month = generate_month(seed=20250701, communes=100)
    elements = [s.element for s in month.topology.elements]
    rng = random.Random(1)
    windows = []
    for i in range(200):  # 1-8 h, three random elements each
        start = MONTH_START + rng.randrange(DAYS * 24) * POLL_S
        windows.append(Maintenance(f"m{i}", frozenset(rng.sample(elements, 3)), start,
                                   start + rng.randint(1, 8) * POLL_S))
    end = MONTH_START + (DAYS + 1) * 86400

    def run(known: list[Maintenance], late: list[Maintenance]) -> tuple[float, float, float]:
        eng = AvailabilityEngine(month.topology, stale_after_s=STALE_CELLS * POLL_S,
                                 bucket_s=6 * POLL_S)
        eng.set_maintenance(known)
        t = time.perf_counter()
        nxt = MONTH_START + 6 * POLL_S
        for arrival, fact in month.arrivals:
            while arrival >= nxt:
                eng.emit(nxt)
                nxt += 6 * POLL_S
            eng.add(fact)
        eng.emit(end)
        replay = time.perf_counter() - t
        t = time.perf_counter()
        if late:
            eng.set_maintenance(late)
            eng.emit(end + 1)
        rewrite = time.perf_counter() - t
        down = sum(summarize(eng.stored_service_points(k), MONTH_START, end).down_s
                   for k in eng.service_keys)
        return replay, rewrite, down

    for label, known, late in (("no window", [], []), ("200 windows known", windows, []),
                               ("200 windows declared after the month", [], windows)):
        replay, rewrite, down = run(known, late)
        print(f"{label:38s} replay {replay:5.2f} s   late rewrite {rewrite * 1000:5.0f} ms   "
              f"downtime {down / 3600:7.0f} h")


if __name__ == "__main__":
    main()
