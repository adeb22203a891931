"""Fault alerts: an agent misbehaving (a duplicate instance, a wrong clock, a flood of new
series), as opposed to an outage (collector/alerts.py). Pure.

A fault is raised with :meth:`FaultBook.raise_` every time it is observed; it fires at the
first observation and resolves once it has not been observed for its ``quiet_s``
(:meth:`FaultBook.sweep`). Alertmanager identifies an alert by its labels, so a fault
raised again while firing is one alert, re-posted, never a new page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

#: alertname -> what it means (docs/alerts.md)
ALERTNAMES: Mapping[str, str] = {
    "XanetDuplicateAgent": "two live instances of one agent id; the second is refused",
    "XanetClockSkew": "an agent's clock differs from the collector's beyond the threshold",
    "XanetCardinalityExceeded": "an agent or device sends more new series than allowed",
}


@dataclass(slots=True)
class Fault:
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    last_seen: float
    quiet_s: float
    ends_at: float | None = None

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.labels.items()))


@dataclass
class FaultBook:
    firing: dict[tuple[tuple[str, str], ...], Fault] = field(default_factory=dict)
    resolved: list[Fault] = field(default_factory=list)  # not yet delivered
    raised: int = 0  # faults that started firing
    changed: bool = False

    def raise_(self, alertname: str, labels: Mapping[str, str], summary: str, now: float,
               quiet_s: float, severity: Literal["warning", "major", "critical"] = "warning",
               ) -> bool:
        """Observe a fault; ``True`` when it starts firing now (log it then)."""
        full = {"alertname": alertname, "severity": severity,
                **{k: v for k, v in labels.items() if v}}
        fault = Fault(full, {"summary": summary, "summary_en": summary}, now, now, quiet_s)
        old = self.firing.get(fault.key)
        if old is not None:
            old.last_seen = now
            old.quiet_s = quiet_s
            if old.annotations != fault.annotations:
                old.annotations = fault.annotations
                self.changed = True
            return False
        self.firing[fault.key] = fault
        self.raised += 1
        self.changed = True
        return True

    def sweep(self, now: float) -> list[Fault]:
        """Resolve the faults not observed for their ``quiet_s``; return them."""
        done = [f for f in self.firing.values() if now - f.last_seen >= f.quiet_s]
        for f in done:
            del self.firing[f.key]
            f.ends_at = now
            self.resolved.append(f)
            self.changed = True
        return done

    def is_firing(self, alertname: str, **labels: str) -> bool:
        return any(f.labels.get("alertname") == alertname
                   and all(f.labels.get(k) == v for k, v in labels.items())
                   for f in self.firing.values())


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def payloads(book: FaultBook, now: float, expire_after_s: float) -> list[dict[str, Any]]:
    """Alertmanager v2 ``postableAlert`` s: every firing fault (endsAt = now + expiry, so
    Alertmanager resolves it by itself if the collector stops) and the resolved ones."""
    out = []
    for f in [*book.firing.values(), *book.resolved]:
        ends = f.ends_at if f.ends_at is not None else now + expire_after_s
        out.append({"labels": dict(f.labels), "annotations": dict(f.annotations),
                    "startsAt": _iso(f.starts_at), "endsAt": _iso(max(ends, f.starts_at))})
    return out
