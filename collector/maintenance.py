"""Declared maintenance windows: the record, its storage form, its scope and its silence.
Pure.

A window is declared for a **site**, a **device** (``site/device``) or a **commune**,
over ``[start, end)``, with a reason and who declared it. It is stored in InfluxDB as
the ``maintenance`` measurement (docs/data.md), one point per window at its start, so
the CLI, the collector and the report read one source:

    maintenance,province=08,scope=site,target=hub-a start_ms=...i,end_ms=...i,
        reason="...",who="...",silence_id="...",ended=false <start ms>

Its id is derived from its identity (scope, target, start), so no field holds it and a
rewritten point (``xanet maintenance end``) keeps it. Inside a window the elements in
scope are in the availability state ``maintenance`` (collector/availability.py), and
alerts matching the scope's labels are silenced in Alertmanager (:func:`matchers`).
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from collector.availability import Maintenance
from collector.schema import maintenance_line
from xanet.inventory import Inventory

Scope = Literal["site", "device", "commune"]
SCOPES: Final[tuple[Scope, ...]] = ("site", "device", "commune")

#: Alert labels a silence matches on, per scope (besides ``province``).
SCOPE_LABELS: Final[Mapping[Scope, tuple[str, ...]]] = {
    "site": ("site",),
    "device": ("site", "device"),
    "commune": ("commune",),
}

_RELATIVE = re.compile(r"^(?:now)?\s*([+-])\s*(\d+(?:\.\d+)?)\s*([smhdw])$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS: Final[Mapping[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class MaintenanceError(ValueError):
    """Bad maintenance input; the message says what is wrong and what would be right."""


@dataclass(frozen=True, slots=True)
class Window:
    """One declared maintenance window (times in epoch seconds, ``[start, end)``)."""

    province: str
    scope: Scope
    target: str  # site id, "site/device", or commune code
    start: float
    end: float
    reason: str
    who: str
    silence_id: str = ""
    ended: bool = False  # ended early by ``xanet maintenance end``

    @property
    def id(self) -> str:
        return window_id(self.scope, self.target, self.start)

    def active_at(self, ts: float) -> bool:
        return self.start <= ts < self.end

    def ended_at(self, now: float) -> Window:
        """This window ended at ``now`` (not before its start: a window that has not
        begun is cancelled, its end set to its start)."""
        return replace(self, end=max(self.start, min(self.end, now)), ended=True)


def _ms(ts: float) -> int:
    return round(ts * 1000)


def window_id(scope: str, target: str, start: float) -> str:
    """``mw-`` and 10 hex digits of a hash of the window's identity (its storage key)."""
    digest = hashlib.sha256(f"{scope}\x00{target}\x00{_ms(start)}".encode()).hexdigest()
    return f"mw-{digest[:10]}"


# ------------------------------------------------------------------------------ time


def parse_when(text: str, now: float) -> float:
    """``now``, a relative time (``+2h``, ``-30m``, ``now+1d``) or an absolute ISO 8601 time
    **with** its zone (``2026-12-01T22:00+07:00``, ``...Z``). An absolute time without a
    zone is refused: a window off by 7 hours silences the wrong night."""
    t = text.strip()
    if t == "now":
        return now
    m = _RELATIVE.match(t)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        return now + sign * float(m.group(2)) * _UNITS[m.group(3)]
    try:
        when = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise MaintenanceError(
            f"{text!r} is not a time: use now, +2h, -30m, or ISO 8601 with its zone, e.g. "
            "2026-12-01T22:00+07:00") from None
    if when.tzinfo is None:
        raise MaintenanceError(
            f"{text!r} has no time zone: add it, e.g. {t}+07:00 (Vietnam) or {t}Z (UTC)")
    return when.timestamp()


def parse_duration(text: str) -> float:
    """``90m``, ``2h``, ``1d``..."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise MaintenanceError(f"{text!r} is not a duration: use e.g. 30m, 2h, 1d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def check_times(start: float, end: float) -> None:
    if not (math.isfinite(start) and math.isfinite(end)):
        raise MaintenanceError("the window's start and end must be real times")
    if end <= start:
        raise MaintenanceError(
            f"the window ends ({iso(end)}) before it starts ({iso(start)}): "
            "the end must be after the start")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


# ----------------------------------------------------------------------------- scope


def _closest(word: str, choices: Iterable[str], what: str) -> str:
    pool = sorted(set(choices))
    near = difflib.get_close_matches(word, pool, n=3, cutoff=0.5)
    if near:
        hint = "did you mean " + " or ".join(repr(n) for n in near) + "?"
    elif pool:
        shown = ", ".join(pool[:8]) + (", ..." if len(pool) > 8 else "")
        hint = f"known: {shown}"
    else:
        hint = f"the inventory has no {what}"
    return f"unknown {what} {word!r}: {hint}"


def check_target(inventory: Inventory, scope: Scope, target: str) -> None:
    """Raise :class:`MaintenanceError` naming the closest valid target if there is none."""
    if scope == "site":
        if not inventory.has_site(target):
            raise MaintenanceError(_closest(target, (s.id for s in inventory.sites), "site"))
    elif scope == "commune":
        if not inventory.has_commune(target):
            names = {c.code: c.name for c in inventory.communes}
            by_name = {v.casefold(): k for k, v in names.items()}
            if target.casefold() in by_name:
                raise MaintenanceError(f"unknown commune {target!r}: give its code, "
                                       f"{by_name[target.casefold()]!r}")
            raise MaintenanceError(_closest(target, names, "commune"))
    else:
        site, sep, device = target.partition("/")
        if not sep or not site or not device:
            raise MaintenanceError(f"device {target!r}: give it as SITE/DEVICE, e.g. hub-a/rtr-1")
        if not inventory.has_site(site):
            raise MaintenanceError(_closest(site, (s.id for s in inventory.sites), "site"))
        devices = [d.id for d in inventory.site(site).devices]
        if device not in devices:
            raise MaintenanceError(_closest(device, devices, f"device of site {site}"))


def elements_in_scope(inventory: Inventory, scope: Scope, target: str) -> frozenset[str]:
    """The element keys a window covers (empty if the target left the inventory)."""
    if scope == "site":
        if not inventory.has_site(target):
            return frozenset()
        return frozenset(e.key for d in inventory.site(target).devices for e in d.elements)
    if scope == "commune":
        if not inventory.has_commune(target):
            return frozenset()
        return frozenset(e.key for e in inventory.elements_of_commune(target))
    site, _, device = target.partition("/")
    return frozenset(e.key for e in inventory.elements_of_device(site, device))


def engine_windows(windows: Iterable[Window], inventory: Inventory) -> list[Maintenance]:
    """The windows of this inventory's province as the availability engine takes them."""
    province = inventory.province.code
    return [Maintenance(w.id, elements_in_scope(inventory, w.scope, w.target), w.start, w.end)
            for w in windows if w.province == province]


def windows_by_element(windows: Iterable[Maintenance]) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for w in windows:
        if w.end > w.start:
            for element in w.elements:
                out.setdefault(element, []).append((w.start, w.end))
    return out


def scope_labels(inventory: Inventory, scope: Scope, target: str) -> dict[str, str]:
    """The alert labels that identify everything in scope (xanet's alert labels:
    province, commune, site, device; docs/alerts.md)."""
    labels = {"province": inventory.province.code}
    if scope == "device":
        site, _, device = target.partition("/")
        labels.update(site=site, device=device)
    else:
        labels[SCOPE_LABELS[scope][0]] = target
    return labels


def matchers(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Alertmanager v2 equality matchers for these labels."""
    return [{"name": k, "value": v, "isRegex": False, "isEqual": True}
            for k, v in sorted(labels.items())]


# --------------------------------------------------------------------------- storage


def to_line(w: Window) -> str:
    ln = maintenance_line(w.province, w.scope, w.target, _ms(w.start), _ms(w.end), w.reason,
                          w.who, w.silence_id, w.ended)
    if not ln:
        raise MaintenanceError(f"window {w!r} cannot be stored")
    return ln


def from_row(row: Mapping[str, Any]) -> Window:
    """A window from an InfluxQL row (tags and fields; ``time`` in ms)."""
    scope = row.get("scope")
    if scope not in SCOPES:
        raise MaintenanceError(f"maintenance point with scope {scope!r}")
    start_ms, end_ms = row.get("start_ms"), row.get("end_ms")
    if not isinstance(start_ms, int | float) or not isinstance(end_ms, int | float):
        raise MaintenanceError(f"maintenance point without start_ms/end_ms: {dict(row)!r}")
    return Window(
        province=str(row.get("province") or ""), scope=scope, target=str(row.get("target")),
        start=start_ms / 1000.0, end=end_ms / 1000.0, reason=str(row.get("reason") or ""),
        who=str(row.get("who") or ""), silence_id=str(row.get("silence_id") or ""),
        ended=bool(row.get("ended")))


def status(w: Window, now: float) -> str:
    if w.ended and w.end <= w.start:
        return "cancelled"
    if w.ended and w.end <= now:
        return "ended"
    if now < w.start:
        return "scheduled"
    return "active" if now < w.end else "over"
