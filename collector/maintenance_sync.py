"""The collector's copy of the declared maintenance windows, reloaded from InfluxDB.

At start and every ``availability.maintenance_reload_s`` the windows that can still
matter (ending after now − ``availability.horizon_s``) are read back
(collector/maintenance_store.py) and handed, as a whole set, to the availability engine
(which rewrites what changed at its next emit, like late data) and to the alerting core
(which flags the outages they overlap). While InfluxDB cannot answer, the last set
stays in force.
"""

from __future__ import annotations

import asyncio
import logging
import time

from collector.alerting import Alerting
from collector.availability import AvailabilityEngine
from collector.config import CollectorConfig
from collector.maintenance import Window, engine_windows, iso, windows_by_element
from collector.maintenance_store import load_windows
from collector.readback import QueryError
from xanet.inventory import Inventory

log = logging.getLogger("xanet.collector.maintenance")


class MaintenanceSync:
    def __init__(self, cfg: CollectorConfig, inventory: Inventory, engine: AvailabilityEngine,
                 alerting: Alerting | None) -> None:
        self.cfg = cfg
        self.inventory = inventory
        self.engine = engine
        self.alerting = alerting
        self.windows: dict[str, Window] = {}
        self.reloads = 0
        self.failures = 0
        self._failing = False

    def apply(self, windows: list[Window]) -> int:
        """Take the current set of windows; return how many elements' windows changed."""
        new = {w.id: w for w in windows}
        for wid in new.keys() - self.windows.keys():
            w = new[wid]
            log.info("maintenance %s: %s %s %s .. %s by %s: %s", wid, w.scope, w.target,
                     iso(w.start), iso(w.end), w.who, w.reason)
            if w.province == self.inventory.province.code and not engine_windows(
                    [w], self.inventory)[0].elements:
                log.warning("maintenance %s: %s %s has no element in the inventory", wid,
                            w.scope, w.target)
        for wid, w in new.items():
            old = self.windows.get(wid)
            if old is not None and (old.end, old.ended) != (w.end, w.ended):
                log.info("maintenance %s: %s %s now ends %s%s", wid, w.scope, w.target,
                         iso(w.end), " (ended early)" if w.ended else "")
        for wid in self.windows.keys() - new.keys():
            w = self.windows[wid]
            log.info("maintenance %s: %s %s no longer loaded", wid, w.scope, w.target)
        self.windows = new
        ew = engine_windows(windows, self.inventory)
        changed = self.engine.set_maintenance(ew)
        if self.alerting is not None:
            self.alerting.set_maintenance(windows_by_element(ew))
        return changed

    async def reload(self, now: float | None = None) -> bool:
        """Read the windows back and apply them; False (and the old set kept) on failure."""
        now = time.time() if now is None else now
        since = now - self.cfg.availability.horizon_s
        try:
            windows = await asyncio.to_thread(load_windows, self.cfg,
                                              self.inventory.province.code, ending_after=since)
        except QueryError as exc:
            self.failures += 1
            if not self._failing:
                log.warning("cannot reload maintenance windows (keeping the %d loaded): %s",
                            len(self.windows), exc)
            self._failing = True
            return False
        if self._failing:
            log.info("maintenance windows reloaded again")
        self._failing = False
        self.reloads += 1
        self.apply(windows)
        return True

    async def run(self) -> None:
        """Reload every ``maintenance_reload_s`` (the first at once)."""
        while True:
            await self.reload()
            await asyncio.sleep(self.cfg.availability.maintenance_reload_s)
