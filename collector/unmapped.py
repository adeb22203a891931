"""Polls of devices the inventory does not know: logged by name, counted per device.

A device in an agent's config but not in the inventory gives no availability and no
alert; it must not be a nameless count either. Each such device is logged with its
site, agent and poll count, at most once per :data:`LOG_EVERY_S` per device, and its
count is written as an ``unmapped_device`` point (tags collector, site, device; field
``polls``: polls so far in this run) with every stats write where it changed.
``xanet check-config agent.toml inventory.toml`` finds the same before deployment.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

from collector.schema import unmapped_device_line
from xanet import wire

log = logging.getLogger("xanet.collector.unmapped")

LOG_EVERY_S = 600.0


class UnmappedLog:
    """Rate-limited warnings and per-device points; the caller passes the time."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self.every_s = every_s
        self._logged: dict[tuple[str, str], float] = {}
        self._written: Counter[tuple[str, str]] = Counter()

    def check(self, msg: wire.Telemetry, counts: Mapping[tuple[str, str], int],
              now: float) -> int:
        """Log the unmapped devices of ``msg`` not logged for ``every_s``; return how
        many lines were logged."""
        logged = 0
        for poll in msg.polls:
            key = (msg.site, poll.device)
            n = counts.get(key, 0)
            if n == 0:
                continue
            last = self._logged.get(key)
            if last is not None and now - last < self.every_s:
                continue
            self._logged[key] = now
            logged += 1
            log.warning("device %s at site %s (agent %s) is not in the inventory: %d poll(s) "
                        "not counted for availability so far (xanet check-config agent.toml "
                        "inventory.toml lists such devices; logged at most every %.0f s)",
                        poll.device, msg.site, msg.agent, n, self.every_s)
        return logged

    def lines(self, counts: Mapping[tuple[str, str], int], collector: str,
              ts_ms: int) -> list[str]:
        """``unmapped_device`` points for the devices whose count changed."""
        out: list[str] = []
        for (site, device), n in sorted(counts.items()):
            if self._written[(site, device)] == n:
                continue
            ln = unmapped_device_line(collector, site, device, n, ts_ms)
            if ln:
                out.append(ln)
                self._written[(site, device)] = n
        return out
