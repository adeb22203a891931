"""What bench/country.py asks the store, InfluxDB 1.x or VictoriaMetrics: the lag probes'
points as they become visible, and the points stored per province and measurement."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

import lab
from lab.country import PROBE

DB = "country"
PROBE_BACK_S = 900  # how far back the lag probe looks: a probe later than this is unseen
#: The country's ~1.1M series and ~100k values of the element tag are past InfluxDB 1.x's
#: defaults (max-series-per-database 1,000,000, max-values-per-tag 100,000: refused lines);
#: tsi1 keeps the series index on disk (inmem held 4.4 GB at 1.1M series).
INFLUX_DATA = ('  index-version = "tsi1"\n  max-series-per-database = 0\n'
               '  max-values-per-tag = 0')


class Store:
    """The store's daemon and the three questions the bench asks it."""

    def __init__(self, kind: str, wd: Path) -> None:
        self.kind = kind
        self.daemon: lab.InfluxDB1 | lab.VictoriaMetrics = (
            lab.InfluxDB1(wd / "influx", data_conf=INFLUX_DATA) if kind == "influx"
            else lab.VictoriaMetrics(wd / "vm"))

    def start(self) -> None:
        self.daemon.start()
        if isinstance(self.daemon, lab.InfluxDB1):
            self.daemon.create_database(DB)

    @property
    def url(self) -> str:
        return self.daemon.url

    def probes(self) -> list[tuple[str, int]]:
        """(province, poll ts ms) of the probe points of the last ``PROBE_BACK_S``."""
        if isinstance(self.daemon, lab.InfluxDB1):
            rows = self.daemon.query(f'SELECT "up", "province" FROM "device" WHERE '
                                     f'"device" = \'{PROBE}\' AND time > now() - '
                                     f'{PROBE_BACK_S}s', db=DB, epoch="ms")
            return [(r["province"], r["time"]) for r in rows]
        start = int(time.time() - PROBE_BACK_S)
        r = httpx.post(f"{self.url}/api/v1/export",
                       data={"match[]": f'device_up{{device="{PROBE}"}}', "start": str(start)},
                       timeout=10)
        r.raise_for_status()
        out = []
        for ln in r.text.splitlines():
            if ln.strip():
                s = json.loads(ln)
                out += [(s["metric"].get("province", ""), t) for t in s["timestamps"]]
        return out

    def counts(self, provinces: list[str], start_ms: int,
               end_ms: int) -> dict[str, int]:
        """Points per measurement (device, interface, agent_status) with ts in
        [start, end), one province at a time (a count over the country's 1.1M series at
        once took InfluxDB 1.x to 11 GB)."""
        out = {"device": 0, "interface": 0, "agent_status": 0}
        if isinstance(self.daemon, lab.VictoriaMetrics):
            self.daemon.flush()
        for p in provinces:
            for m, f in (("device", "up"), ("interface", "oper"), ("agent_status", "online")):
                out[m] += self._count(p, m, f, start_ms, end_ms)
        return out

    def _count(self, province: str, m: str, f: str, start_ms: int, end_ms: int) -> int:
        if isinstance(self.daemon, lab.InfluxDB1):
            rows = self.daemon.query(
                f'SELECT count("{f}") AS n FROM "{m}" WHERE "province" = \'{province}\' '
                f'AND time >= {start_ms}ms AND time < {end_ms}ms', db=DB)
            return int(rows[0]["n"]) if rows else 0
        # (end - window, end] at end - 1 ms: [start, end)
        q = (f'sum(count_over_time({m}_{f}{{province="{province}"}}'
             f'[{end_ms - start_ms}ms]))')
        r = httpx.post(f"{self.url}/api/v1/query",
                       data={"query": q, "time": f"{(end_ms - 1) / 1000:.3f}"}, timeout=120)
        r.raise_for_status()
        result = r.json()["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    def stop(self) -> None:
        self.daemon.stop()


class LagProbe(threading.Thread):
    """Every 0.5 s: the probe points seen for the first time, and when."""

    def __init__(self, store: Store) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.seen: dict[tuple[str, int], float] = {}
        self.stop = threading.Event()
        self.errors = 0

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                found = self.store.probes()
            except (lab.ServiceError, httpx.HTTPError):
                self.errors += 1
                continue
            now = time.time()
            for key in found:
                self.seen.setdefault(key, now)

    def lags(self, start: float, end: float) -> list[float]:
        return [seen - ts / 1000 for (_p, ts), seen in self.seen.items()
                if start <= ts / 1000 < end]
